package netwatch

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ErrNoDefaultInterface is the error of Open with the default Selector on
// a host where no interface is up, is not a loopback and has an address.
var ErrNoDefaultInterface = errors.New("no interface is up with an address; name one with -i")

// Errors of a conn's Receive.
var (
	// errOverrun: notifications were dropped because the socket's buffer
	// was full (ENOBUFS).
	errOverrun = errors.New("netlink socket buffer overrun")
	// errTruncated: a message did not fit in the buffer given and was lost.
	errTruncated = errors.New("netlink message truncated")
	// errClosed: the conn was closed.
	errClosed = errors.New("netlink socket closed")
	// errDeadline: the deadline set by SetDeadline passed.
	errDeadline = errors.New("netlink socket read deadline exceeded")
)

// conn is a NETLINK_ROUTE socket subscribed to link and address
// notifications: on Linux a real one, in tests a fake kernel.
type conn interface {
	// Send sends one request.
	Send(b []byte) error
	// Receive reads one datagram (one or more messages) into b. Its errors
	// are errOverrun, errTruncated (with the bytes that fit), errClosed,
	// errDeadline or another error.
	Receive(b []byte) (int, error)
	// PortID returns the socket's netlink port ID: replies to its requests
	// carry it, notifications do not.
	PortID() uint32
	// SetDeadline sets the time after which Receive returns errDeadline
	// (no deadline for the zero Time).
	SetDeadline(t time.Time) error
	// GrowBuffer asks for a larger receive buffer after an overrun and
	// returns its size in bytes.
	GrowBuffer() int
	// Close closes the socket; a Receive in progress returns errClosed.
	Close() error
}

// Tuning.
const (
	// dumpTimeout bounds the wait for a dump to finish.
	dumpTimeout = 10 * time.Second
	// dumpAttempts bounds the dumps made in a row because notifications
	// were lost or the dump was interrupted.
	dumpAttempts = 10
	// initialBuf and maxBuf bound the buffer Receive reads into.
	initialBuf = 64 << 10
	maxBuf     = 1 << 20
	// retryFirst and retryMax bound the wait before a retry after an error.
	retryFirst = time.Second
	retryMax   = time.Minute
)

// Watcher follows the selected interfaces and the host's addresses through
// netlink notifications. Open reads the initial State; Start delivers the
// following ones.
type Watcher struct {
	c   conn
	sel Selector
	tr  *tracker // owned by Open, then by the goroutine Start starts
	buf []byte
	req []byte
	seq uint32
	// retry is the first wait before a retry after an error.
	retry time.Duration
	mu    sync.Mutex
	st    State // the last State handed out
	stop  chan struct{}
	done  chan struct{} // closed when the goroutine has returned

	startOnce, closeOnce sync.Once
	started              bool // under mu
	closeErr             error
}

// Open opens a NETLINK_ROUTE socket, subscribes it to link and IPv4 and
// IPv6 address notifications, then reads every link and address, so that
// no change made after the read began is missed. State returns what it
// read. Notifications queue in the socket until Start.
//
// With the default Selector, Open picks the first interface (by index)
// that is up, is not a loopback and has an address, and follows it as if
// it had been named; Selector tells which. When there is none, the error
// is ErrNoDefaultInterface.
//
// A name given to -i that no interface has is not an error: it is in
// State().Missing and is captured once an interface takes the name; the
// caller decides whether it may start without it.
//
// The socket is in the network namespace of the calling thread. Netlink
// needs no privilege, so dropping privileges after Open changes nothing.
func Open(sel Selector) (*Watcher, error) {
	c, err := dial()
	if err != nil {
		return nil, err
	}
	w, err := open(c, sel)
	if err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

// open is Open on a given conn.
func open(c conn, sel Selector) (*Watcher, error) {
	w := &Watcher{c: c, sel: sel, buf: make([]byte, initialBuf), retry: retryFirst, stop: make(chan struct{}), done: make(chan struct{})}
	fresh, err := w.dump()
	if err != nil {
		return nil, err
	}
	if sel.IsDefault() {
		l, ok := fresh.defaultLink()
		if !ok {
			return nil, ErrNoDefaultInterface
		}
		w.sel = Selector{names: []string{l.name}}
	}
	w.tr = newTracker(w.sel)
	w.tr.reconcile(fresh)
	w.tr.changes = nil // the initial State is no change
	w.st = w.tr.state()
	return w, nil
}

// Selector returns the selector the Watcher follows: the one given to Open,
// or for the default one, the name of the interface Open picked.
func (w *Watcher) Selector() Selector { return w.sel }

// State returns the last State: the initial one until Start has delivered
// another.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// Start starts the goroutine that reads notifications and calls fn with
// each new State, one call at a time, until Close. Each State is whole; its
// Changes tell what changed since the previous one (the first call's since
// the initial State). The messages read together make one State. fn runs on
// the watcher's goroutine: while it runs, notifications queue in the
// socket, and if they overrun its buffer the watcher reads every interface
// and address again (a Resynced change), so a slow fn delays updates but
// loses none. fn must not be nil. Start does nothing after the first call
// or after Close.
func (w *Watcher) Start(fn func(State)) {
	w.startOnce.Do(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		select {
		case <-w.stop:
			return // closed
		default:
		}
		w.started = true
		go w.run(fn)
	})
}

// Close stops the goroutine, waits until it has returned (fn is not called
// after Close returns) and closes the socket. fn must not call Close.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		close(w.stop)
		started := w.started
		w.mu.Unlock()
		w.closeErr = w.c.Close()
		if started {
			<-w.done
		}
	})
	return w.closeErr
}

// run reads notifications until Close.
func (w *Watcher) run(fn func(State)) {
	defer close(w.done)
	for {
		n, err := w.c.Receive(w.buf)
		switch {
		case err == nil:
			w.applyAll(w.buf[:n])
		case errors.Is(err, errOverrun), errors.Is(err, errTruncated):
			err = w.resync(err)
		}
		for retry := w.retry; err != nil; retry = min(2*retry, retryMax) {
			select {
			case <-w.stop:
				return // closing: the error is Close's doing
			default:
			}
			if errors.Is(err, errClosed) {
				return
			}
			w.tr.note(Change{Kind: Failed, Msg: fmt.Sprintf("following interfaces by netlink: %v; retrying in %v", err, retry)})
			w.publish(fn)
			select {
			case <-w.stop:
				return
			case <-time.After(retry):
			}
			err = w.resync(nil)
		}
		w.publish(fn)
	}
}

// publish hands fn the new State if anything changed.
func (w *Watcher) publish(fn func(State)) {
	if len(w.tr.changes) == 0 {
		return
	}
	st := w.tr.state()
	w.mu.Lock()
	w.st = st
	w.mu.Unlock()
	fn(st)
}

// applyAll applies the messages in b to the model. Messages the model does
// not follow, malformed ones, and the remains of an earlier dump are
// skipped.
func (w *Watcher) applyAll(b []byte) {
	for len(b) > 0 {
		h, body, rest, err := nextMessage(b)
		if err != nil {
			return
		}
		b = rest
		if e, ok, _ := decode(h.Type, body); ok {
			w.tr.apply(e)
		}
	}
}

// resync reads every link and address again after notifications were lost
// (cause is errOverrun or errTruncated), or after an error (cause nil), and
// records the differences as changes.
func (w *Watcher) resync(cause error) error {
	what := "after an error"
	switch {
	case errors.Is(cause, errOverrun):
		what = fmt.Sprintf("notifications were lost (socket buffer full, now %d KiB)", w.c.GrowBuffer()>>10)
	case errors.Is(cause, errTruncated):
		old := len(w.buf)
		if old < maxBuf {
			w.buf = make([]byte, 2*old)
		}
		what = fmt.Sprintf("a notification did not fit in %d KiB (now %d KiB)", old>>10, len(w.buf)>>10)
	}
	fresh, err := w.dump()
	if err != nil {
		return err
	}
	w.tr.note(Change{Kind: Resynced, Msg: "netlink: " + what + ": interfaces and addresses read again"})
	w.tr.reconcile(fresh)
	return nil
}

// dump reads every link and address into a new table. Notifications that
// arrive meanwhile are applied to it in the order they arrive, which is
// the order of the kernel's changes: each message tells an object's whole
// state at the time it was sent. A dump during which notifications were
// lost, or which the kernel marks as interrupted (NLM_F_DUMP_INTR: the
// objects changed while it was read), is read again.
func (w *Watcher) dump() (*table, error) {
	var err error
	for range dumpAttempts {
		t := newTable()
		if err = w.dumpOne(t, rtmGetLink); err == nil {
			err = w.dumpOne(t, rtmGetAddr)
		}
		switch {
		case err == nil:
			return t, nil
		case errors.Is(err, errOverrun), errors.Is(err, errRedo):
			continue
		case errors.Is(err, errTruncated):
			if len(w.buf) >= maxBuf {
				return nil, err
			}
			w.buf = make([]byte, 2*len(w.buf))
			continue
		}
		return nil, err
	}
	return nil, fmt.Errorf("reading interfaces and addresses: %d attempts in a row were disturbed: %w", dumpAttempts, err)
}

// errRedo says that a dump was interrupted and must be read again.
var errRedo = errors.New("netlink dump interrupted by changes")

// dumpOne sends a dump request of type typ and applies the replies, and
// the notifications that arrive with them, to t, until the dump's end.
func (w *Watcher) dumpOne(t *table, typ uint16) error {
	what := "links"
	if typ == rtmGetAddr {
		what = "addresses"
	}
	w.seq++
	w.req = appendRequest(w.req[:0], typ, w.seq)
	if err := w.c.Send(w.req); err != nil {
		return fmt.Errorf("asking the kernel for its %s: %w", what, err)
	}
	if err := w.c.SetDeadline(time.Now().Add(dumpTimeout)); err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer w.c.SetDeadline(time.Time{})
	var lost, intr error // the dump is read to its end before it is read again
	for {
		n, err := w.c.Receive(w.buf)
		switch {
		case errors.Is(err, errOverrun) || errors.Is(err, errTruncated):
			lost = err
			continue
		case errors.Is(err, errDeadline):
			return fmt.Errorf("reading the kernel's %s: no answer within %v", what, dumpTimeout)
		case err != nil:
			return fmt.Errorf("reading the kernel's %s: %w", what, err)
		}
		b := w.buf[:n]
		for len(b) > 0 {
			h, body, rest, err := nextMessage(b)
			if err != nil {
				return fmt.Errorf("reading the kernel's %s: %w", what, err)
			}
			b = rest
			mine := h.Pid == w.c.PortID() && h.Seq == w.seq
			if mine && h.Flags&nlmFDumpIntr != 0 {
				intr = errRedo
			}
			switch {
			case mine && h.Type == nlmsgDone:
				if errno, err := parseErrno(body); err == nil && errno != 0 {
					return fmt.Errorf("reading the kernel's %s: %w", what, syscall.Errno(errno))
				}
				if lost != nil {
					return lost
				}
				return intr
			case mine && h.Type == nlmsgError:
				errno, err := parseErrno(body)
				if err != nil {
					return fmt.Errorf("reading the kernel's %s: %w", what, err)
				}
				if errno != 0 {
					return fmt.Errorf("reading the kernel's %s: %w", what, syscall.Errno(errno))
				}
			default:
				e, ok, err := decode(h.Type, body)
				if mine && err != nil {
					return fmt.Errorf("reading the kernel's %s: %w", what, err)
				}
				if ok {
					t.apply(e)
				}
			}
		}
	}
}
