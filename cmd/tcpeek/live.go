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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/logging"
)

// stopWithin is how long after SIGINT or SIGTERM a live tcpeek waits for
// the reader of its output to take the last lines and the summary; the
// socket is removed and the process exits within 2 s whatever the reader
// does.
const stopWithin = time.Second

// addrRefresh is how often the interface's addresses are read again, so
// that addresses added or removed while running are picked up.
const addrRefresh = 2 * time.Second

// runLive watches an interface until SIGINT or SIGTERM.
func runLive(o *options, set *filter.Set, log *logging.Logger, out *outputs) int {
	var ifname string
	switch {
	case len(o.ifaces) > 1:
		log.Errorf("-i given %d times: one interface for now", len(o.ifaces))
		return 1
	case len(o.ifaces) == 1:
		ifname = o.ifaces[0]
	}
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

	// Everything that needs privileges first: the capture, the socket.
	lv, err := capture.OpenLive(capture.LiveConfig{Interface: ifname, BufferMB: o.bufferMB, Promisc: o.promisc})
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer lv.Close()
	m := newMonitor(o, set, log, out, true)
	addrs, err := interfaceAddrs(ifname)
	if err != nil {
		log.Warnf("reading the addresses of %s: %v", ifname, err)
	}
	m.pipe.SetLocal(filter.NewLocal(addrs, o.localNets))
	log.Debugf("local addresses: %s (of %s), networks: %s", addrList(addrs), ifname, netList(o.localNets))
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
	log.Noticef("listening on %s, link-type %s, capture size %d bytes, buffer size %d MB",
		ifname, linkTypeName(lv.LinkType()), capture.SnapLen, o.bufferMB)
	// Ready means that the socket answers (systemd Type=notify).
	if err := notifyService("READY=1"); err != nil {
		log.Warnf("%v", err)
	}

	done := make(chan struct{})
	defer close(done)
	go refreshAddrs(done, ifname, o.localNets, addrs, m, log)

	// stopBy is when the end must be over: a stuck reader of the output
	// may not delay it further (SPEC §11).
	var stopBy atomic.Int64
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					log.Noticef("SIGHUP ignored: tcpeek has nothing to reload; SIGINT or SIGTERM stop it")
					continue
				}
				stopBy.Store(time.Now().Add(stopWithin).UnixNano())
				log.Infof("%v: stopping", s)
				notifyService("STOPPING=1")
				m.pipe.Stop()
				return
			case <-done:
				return
			}
		}
	}()

	runErr := m.pipe.Run(lv)
	deadline := time.Now().Add(stopWithin)
	if t := stopBy.Load(); t != 0 {
		deadline = time.Unix(0, t)
	}
	status := m.finish(ifname, runErr, deadline)
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
		m.pipe.SetLocal(filter.NewLocal(addrs, nets))
		log.Infof("addresses of %s now: %s", ifname, addrList(addrs))
	}
}

// addrList joins addresses for a log line.
func addrList(addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return "none"
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// netList joins networks for a log line.
func netList(nets []netip.Prefix) string {
	if len(nets) == 0 {
		return "none"
	}
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.String()
	}
	return strings.Join(s, " ")
}
