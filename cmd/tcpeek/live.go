package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/kfilter"
	"github.com/tcpeek/tcpeek/internal/logging"
)

// addrRefresh is how often the interface's addresses are read again, so
// that addresses added or removed while running are picked up.
const addrRefresh = 2 * time.Second

// runLive watches an interface until SIGINT or SIGTERM.
func runLive(o *options, set *filter.Set, log *logging.Logger, stdout *os.File, errw *ttyWriter) int {
	ifname := o.iface
	if ifname == "" {
		var err error
		if ifname, err = defaultInterface(); err != nil {
			log.Errorf("%v", err)
			return 1
		}
	}
	// Signals are caught from the start: the socket answers before the
	// capture loop runs, and a SIGTERM sent as soon as it answers must
	// still print the summary and remove the socket, not kill tcpeek.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cred, err := lookupUser(o.user)
	if err != nil {
		log.Errorf("-u %s: %v", o.user, err)
		return 1
	}

	// Everything that needs privileges first: the kernel filter, the
	// capture, the socket.
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		log.Errorf("no interface %q (ip link lists them): %v", ifname, err)
		return 1
	}
	kf, warn, err := kfilter.Open(kfilter.KindAuto, kfilter.Config{Timeout: o.timeout, MaxSessions: o.maxSessions})
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer kf.Close()
	if warn != nil {
		log.Warnf("%v", warn)
	}
	lv, err := capture.OpenLive(capture.LiveConfig{Scope: capture.ScopeOne, Interfaces: []int{ifi.Index},
		BufferMB: o.bufferMB, Promisc: o.promisc, Filter: kf})
	if err != nil {
		log.Errorf("%s: %v", ifname, err)
		return 1
	}
	defer lv.Close()
	start := time.Now()
	m := newMonitor(o, set, log, stdout, errw, start, true)
	addrs, err := interfaceAddrs(ifname)
	if err != nil {
		log.Warnf("reading the addresses of %s: %v", ifname, err)
	}
	m.local.Store(filter.NewLocal(addrs, o.localNets))
	if len(addrs) == 0 && len(o.localNets) == 0 {
		log.Warnf("%s has no address yet: sessions count in RX or TX once it has one (or give --local-net)", ifname)
	}

	// Signals are handled: from here on, an answer on the socket or
	// /metrics means that the daemon is set up.
	srv, stop, err := m.setUp(cred, o.socket != "")
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer stop()
	log.Noticef("listening on %s, kernel filter %s, capture size %d bytes, buffer size %d MB",
		ifname, lv.FilterName(), kfilter.SnapLen, o.bufferMB)

	done := make(chan struct{})
	defer close(done)
	go refreshAddrs(done, ifname, o.localNets, addrs, m, log)

	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					log.Noticef("SIGHUP ignored: tcpeek has nothing to reload; SIGINT or SIGTERM stop it")
					continue
				}
				log.Infof("%v: stopping", s)
				m.pipe.Stop()
				return
			case <-done:
				return
			}
		}
	}()

	runErr := m.pipe.Run(lv)
	status := m.finish(ifname, runErr)
	if srv != nil {
		if err := srv.Close(); err != nil {
			log.Warnf("%v", err)
		}
	}
	return status
}

// defaultInterface returns the first interface that is up, is not a
// loopback and has an address.
func defaultInterface() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("listing the network interfaces: %w", err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if addrs, err := ifi.Addrs(); err == nil && len(addrs) > 0 {
			return ifi.Name, nil
		}
	}
	return "", errors.New("no interface is up with an address; name one with -i")
}

// interfaceAddrs returns the IPv4 and IPv6 addresses of an interface.
func interfaceAddrs(ifname string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// refreshAddrs reads the interface's addresses again every addrRefresh and
// gives the classifier's filters a new local set when they changed.
func refreshAddrs(done <-chan struct{}, ifname string, nets []netip.Prefix, cur []netip.Addr, m *monitor, log *logging.Logger) {
	tick := time.NewTicker(addrRefresh)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		addrs, err := interfaceAddrs(ifname)
		if err != nil || slices.Equal(addrs, cur) {
			continue
		}
		cur = addrs
		m.local.Store(filter.NewLocal(addrs, nets))
		var s []string
		for _, a := range addrs {
			s = append(s, a.String())
		}
		log.Infof("addresses of %s now: %s", ifname, strings.Join(s, " "))
	}
}
