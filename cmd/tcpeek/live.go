package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/kfilter"
	"github.com/tcpeek/tcpeek/internal/logging"
	"github.com/tcpeek/tcpeek/internal/netwatch"
)

// stopWithin is how long after SIGINT or SIGTERM a live tcpeek waits for
// the reader of its output to take the last lines and the summary; the
// socket is removed and the process exits within 2 s whatever the reader
// does.
const stopWithin = time.Second

// runLive watches the interfaces of -i until SIGINT or SIGTERM.
func runLive(o *options, set *filter.Set, log *logging.Logger, out *outputs) int {
	// stopBy is when the end must be over, once a signal came: a stuck
	// reader of the output may not delay it further (SPEC §11). Whatever
	// ends the run, what was logged gets until then to reach the reader
	// (the error that made tcpeek exit 1 among it).
	var stopBy atomic.Int64
	defer func() {
		deadline := time.Now().Add(stopWithin)
		if t := stopBy.Load(); t != 0 {
			deadline = time.Unix(0, t)
		}
		out.errLossy.Drain(deadline)
	}()

	// The interfaces and the host's addresses, followed by netlink.
	w, err := netwatch.Open(o.sel)
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer w.Close()
	sel := w.Selector() // without -i: the interface Open picked
	st := w.State()
	if len(st.Missing) > 0 {
		log.Errorf("no interface %s (ip link lists them)", strings.Join(st.Missing, ", "))
		return 1
	}
	scope := capture.ScopeSet // several -i, or globs: an allow-list
	switch {
	case sel.IsAny():
		scope = capture.ScopeAll
	case len(sel.Names()) == 1 && len(sel.Globs()) == 0:
		scope = capture.ScopeOne
	}
	for _, g := range sel.Globs() {
		if len(st.Interfaces) == 0 {
			log.Noticef("no interface matches %q yet: capture starts when one appears", g)
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
	kf, warn, err := kfilter.Open(o.kernelFilter, kfilter.Config{Timeout: o.timeout, MaxSessions: o.maxSessions})
	if err != nil {
		log.Errorf("--kernel-filter=%s: %v", o.kernelFilterName, err)
		return 1
	}
	defer kf.Close()
	if warn != nil {
		log.Warnf("%v", warn)
	}
	lv, err := capture.OpenLive(capture.LiveConfig{Scope: scope, Interfaces: st.Indexes(),
		BufferMB: o.bufferMB, Promisc: o.promisc, Filter: kf})
	if err != nil {
		log.Errorf("%s: %v", sel, err)
		return 1
	}
	defer lv.Close()
	m := newMonitor(o, set, log, out, true)
	m.stats.SetKernelFilter(lv.FilterName())
	m.pipe.SetLocal(filter.NewLocal(st.Local, o.localNets))
	log.Debugf("local addresses: %s, networks: %s", addrList(st.Local), netList(o.localNets))
	if len(st.Local) == 0 && len(o.localNets) == 0 {
		log.Warnf("%s has no address yet: sessions count in RX or TX once it has one (or give --local-net)", sel)
	}
	// An address added is local for the next packet; an interface that
	// comes, goes or comes back changes what is captured, not the
	// counters (SPEC §3).
	w.Start(func(st netwatch.State) {
		for _, c := range st.Changes {
			if c.Kind == netwatch.AddrAdded || c.Kind == netwatch.AddrRemoved {
				log.Infof("%s", c.Msg)
			} else {
				log.Noticef("%s", c.Msg)
			}
		}
		m.pipe.SetLocal(filter.NewLocal(st.Local, o.localNets))
		idx := st.Indexes()
		if scope == capture.ScopeOne && len(idx) != 1 {
			return // gone: the capture waits for it to come back
		}
		if err := lv.SetInterfaces(idx); err != nil {
			log.Errorf("capturing on %s now: %v", interfaceList(st.Interfaces), err)
		}
	})

	// Signals are handled: from here on, an answer on the socket or
	// /metrics means that the daemon is set up.
	srv, stop, err := m.setUp(cred, o.socket != "")
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer stop()
	log.Noticef("listening on %s, kernel filter %s, capture size %d bytes, buffer size %d MB",
		interfaceList(st.Interfaces), lv.FilterName(), kfilter.SnapLen, o.bufferMB)
	// Ready means that the socket answers (systemd Type=notify).
	if err := notifyService("READY=1"); err != nil {
		log.Warnf("%v", err)
	}

	done := make(chan struct{})
	defer close(done)
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

	runErr := m.pipe.Run(followed{lv})
	deadline := time.Now().Add(stopWithin)
	if t := stopBy.Load(); t != 0 {
		deadline = time.Unix(0, t)
	}
	status := m.finish(sel.String(), runErr, deadline)
	if srv != nil {
		if err := srv.Close(); err != nil {
			log.Warnf("%v", err)
		}
	}
	return status
}

// followed is a live capture whose interfaces the watcher follows: the
// deletion of the one it is bound to is not the end of the capture, which
// resumes when an interface of that name comes back (the watcher says so
// in the log).
type followed struct{ *capture.Live }

func (f followed) Next(fr *capture.Frame) error {
	err := f.Live.Next(fr)
	if errors.Is(err, capture.ErrInterfaceGone) {
		return capture.ErrIdle
	}
	return err
}

// interfaceList names interfaces for a log line.
func interfaceList(ifs []netwatch.Interface) string {
	if len(ifs) == 0 {
		return "no interface yet"
	}
	s := make([]string, len(ifs))
	for i, ifi := range ifs {
		s[i] = fmt.Sprintf("%s (%d)", ifi.Name, ifi.Index)
	}
	return strings.Join(s, ", ")
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
