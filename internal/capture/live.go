package capture

import (
	"errors"
	"fmt"
	"time"
)

// Scope says which interfaces a live capture sees.
type Scope int

// Scopes of a live capture.
const (
	// ScopeOne is one interface: the socket is bound to its index, so the
	// kernel shows it no other interface's frames. SetInterfaces with
	// another index binds it there (an interface of the same name that
	// came back).
	ScopeOne Scope = iota
	// ScopeAll is every interface of the network namespace (-i any): the
	// socket is bound to none.
	ScopeAll
	// ScopeSet is the interfaces of an allow-list that SetInterfaces
	// changes at run time (-i repeated, or a glob): the socket is bound to
	// none, and the kernel filter, which then must be given, drops the
	// frames of the other interfaces first.
	ScopeSet
)

// Filter is a kernel filter program, made by the caller (package kfilter
// makes them): the capture attaches it to its socket and keeps its
// allow-list current. The capture does not choose the program.
type Filter interface {
	// Name returns the filter's name ("ebpf", "classic").
	Name() string
	// Attach attaches the filter to the packet socket fd with the
	// allow-list ifindexes (nil: every interface), or, attached already,
	// changes the list with no gap for the interfaces that stay in it.
	Attach(fd int, ifindexes []int) error
}

// LiveConfig says what and how to capture live.
type LiveConfig struct {
	// Scope says which interfaces the capture sees.
	Scope Scope
	// Interfaces are the indexes of the interfaces: for ScopeOne exactly
	// one; for ScopeSet the allow-list (it may be empty); for ScopeAll the
	// interfaces whose drop counters Stats sums (the capture sees every
	// interface anyway). SetInterfaces changes them.
	Interfaces []int
	// BufferMB is the size of the ring shared with the kernel, in MiB.
	BufferMB int
	// Promisc puts the interfaces in promiscuous mode while they are
	// captured.
	Promisc bool
	// PollTimeout is how long Next waits for a frame before it returns
	// ErrIdle (default 200 ms).
	PollTimeout time.Duration
	// Filter is the kernel filter; nil attaches none: every frame reaches
	// user space, whole.
	Filter Filter
}

// Stats are a live capture's counters, since it began.
type Stats struct {
	// Packets counts the frames that passed the kernel filter, whether
	// they reached the ring or were dropped.
	Packets uint64
	// Drops counts the frames the kernel dropped because the ring was
	// full.
	Drops uint64
	// IfDrops counts the frames the captured interfaces dropped
	// (rx_dropped), while they were captured.
	IfDrops uint64
}

// ErrIdle is returned by a live capture's Next when no frame arrived within
// the poll timeout, so that the caller can let time pass on a quiet link.
var ErrIdle = errors.New("capture: no frame within the poll timeout")

// ErrInterfaceGone is returned, wrapped, by Next of a ScopeOne capture,
// once, when the interface it is bound to is deleted. The capture stays
// usable: Next goes on, and SetInterfaces binds it to the interface that
// takes the name next. A caller that follows interfaces logs it and goes
// on; one that does not stops there.
var ErrInterfaceGone = errors.New("the interface is gone")

// Live reads frames from an AF_PACKET socket through a memory-mapped
// TPACKET_V3 ring, on Linux. The kernel filter is attached before the
// socket is bound, so no frame that the filter rejects is ever queued.
//
// Frames of interfaces with an Ethernet header (Ethernet, the loopback)
// are returned whole, link type Ethernet; those of others (tunnels, PPP,
// anything without an Ethernet header) from their network header behind a
// Linux cooked (SLL) header written in place, so every link type decodes
// the same way. The loopback's outgoing copy of each frame is skipped: on
// lo every frame is seen once.
//
// One goroutine calls Next and, once it returned for the last time, Close;
// SetInterfaces, Interfaces and Stats may be called from any goroutine.
type Live struct {
	live // per operating system
}

// OpenLive opens a live capture. It needs CAP_NET_RAW (and CAP_NET_ADMIN for
// promiscuous mode); the kernel filter needs what its maker says.
func OpenLive(cfg LiveConfig) (*Live, error) {
	switch cfg.Scope {
	case ScopeOne:
		if len(cfg.Interfaces) != 1 {
			return nil, fmt.Errorf("capture: one interface to bind to, not %d", len(cfg.Interfaces))
		}
	case ScopeAll:
	case ScopeSet:
		if cfg.Filter == nil {
			return nil, errors.New("capture: a set of interfaces needs a kernel filter to check it")
		}
	default:
		return nil, fmt.Errorf("capture: unknown scope %d", cfg.Scope)
	}
	for _, idx := range cfg.Interfaces {
		if idx <= 0 {
			return nil, fmt.Errorf("capture: bad interface index %d", idx)
		}
	}
	if cfg.BufferMB < 1 {
		cfg.BufferMB = 2
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 200 * time.Millisecond
	}
	l := &Live{}
	if err := l.open(cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// Next reads the next frame into f; f.Data points into the ring and stays
// valid until the next call. It returns ErrIdle when no frame arrived within
// the poll timeout. A captured interface that goes down, or away, ends
// nothing: its frames resume when it comes back (for ScopeOne, when
// SetInterfaces names it again); the deletion of a ScopeOne capture's
// interface is reported once, as ErrInterfaceGone.
func (l *Live) Next(f *Frame) error { return l.next(f) }

// Buffered tells whether Next has a frame to return without waiting.
func (l *Live) Buffered() bool { return l.buffered() }

// SetInterfaces changes the interfaces, by index (see
// LiveConfig.Interfaces): ScopeOne binds the socket to the index given, if
// one is and it changed (none: the interface is gone, the socket stays
// where it was and shows nothing); ScopeSet changes the filter's
// allow-list, with no gap for the interfaces that stay; every scope follows
// the drop counters and promiscuous mode of the interfaces given.
func (l *Live) SetInterfaces(ifindexes []int) error { return l.setInterfaces(ifindexes) }

// Interfaces returns the current interfaces, sorted.
func (l *Live) Interfaces() []int { return l.interfaces() }

// Stats returns the capture's counters. The kernel's are read each time;
// the interfaces' at most once a second.
func (l *Live) Stats() Stats { return l.stats() }

// KernelStats returns Stats as three numbers, for pipeline.KernelStats.
func (l *Live) KernelStats() (recv, drops, ifdrops uint64) {
	s := l.Stats()
	return s.Packets, s.Drops, s.IfDrops
}

// FilterName returns the kernel filter's name, "none" without one: for
// STATS capture.kernel_filter and the metrics.
func (l *Live) FilterName() string { return l.filterName() }

// Close releases the ring and the socket (and leaves promiscuous mode).
func (l *Live) Close() error { return l.close() }
