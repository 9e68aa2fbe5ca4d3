// Package kfilter makes the kernel filters of a live capture: the programs
// attached to its AF_PACKET socket that let through only the frames the
// handshake classifier can use, cut to SnapLen bytes, so that the rest of a
// busy link never leaves the kernel.
//
// Two filters exist. The eBPF filter (EBPF) is stateful: an LRU hash map
// holds the 4-tuples whose handshake is in progress, entered by their SYN,
// so that every segment of those passes — the data segment that completes a
// handshake included — and nothing of established connections does. The
// classic BPF filter (Classic) is stateless and lets through SYN, FIN and RST
// segments and pure ACKs: it misses the handshakes whose completing ACK
// carries data. Both let through ICMP and ICMPv6 destination-unreachable
// messages and, whole, the encapsulations the decoder peels; both drop the
// loopback's outgoing copy of each frame (the kernel shows every frame on lo
// twice) and, given an allow-list of interfaces, the frames of every other
// interface.
//
// Both read the frame relative to the headers the kernel found: the network
// header, whose EtherType is the socket buffer's protocol, or, when that
// protocol is a VLAN tag left in the frame, the link-layer header. So one
// program serves an Ethernet interface, the loopback, a tunnel or PPP
// interface without link-layer header, and a socket bound to no interface
// that receives all of them.
//
// The capture does not choose: its caller opens the filter (Open) and hands
// it to the capture, which attaches it to its socket.
package kfilter

import (
	"errors"
	"fmt"
	"time"
)

// SnapLen is how many bytes of an accepted frame the filters keep: enough
// for every header the decoder reads (tunnels included).
const SnapLen = 256

// Kind chooses a kernel filter.
type Kind int

// Kernel filters, the values of tcpeek's --kernel-filter.
const (
	// KindAuto is the eBPF filter where it can be loaded, else the classic one.
	KindAuto Kind = iota
	// KindEBPF is the stateful eBPF filter.
	KindEBPF
	// KindClassic is the classic BPF filter.
	KindClassic
)

// Names of the filters, as Filter.Name returns them and --kernel-filter takes
// them.
const (
	NameAuto    = "auto"
	NameEBPF    = "ebpf"
	NameClassic = "classic"
)

// String returns the name of the kind: auto, ebpf or classic.
func (k Kind) String() string {
	switch k {
	case KindAuto:
		return NameAuto
	case KindEBPF:
		return NameEBPF
	case KindClassic:
		return NameClassic
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses auto, ebpf or classic.
func ParseKind(s string) (Kind, error) {
	switch s {
	case NameAuto:
		return KindAuto, nil
	case NameEBPF:
		return KindEBPF, nil
	case NameClassic:
		return KindClassic, nil
	}
	return 0, fmt.Errorf("kernel filter %q is not auto, ebpf or classic", s)
}

// Config sizes the eBPF filter. The classic filter needs nothing of it.
type Config struct {
	// Timeout is the handshake timeout (--timeout): the eBPF filter forgets
	// a handshake whose last SYN or SYN/ACK is older than Timeout plus a
	// second. Zero means 60 s.
	Timeout time.Duration
	// MaxSessions is the classifier's bound on sessions in progress
	// (--max-sessions); the eBPF map holds MapEntries(MaxSessions) tuples.
	// Zero means 1048576.
	MaxSessions int
}

// Filter is a kernel filter, ready to be attached to a packet socket.
type Filter interface {
	// Name returns "ebpf" or "classic", for STATS capture.kernel_filter
	// and the metrics.
	Name() string
	// Attach attaches the filter to the AF_PACKET socket fd, or, if it is
	// attached already, changes its allow-list. With ifindexes nil the
	// filter accepts frames of every interface; otherwise only those of the
	// interfaces listed (none if the list is empty). Changing the list
	// leaves no gap for the interfaces that stay in it.
	Attach(fd int, ifindexes []int) error
	// Close releases what the filter holds in the process. A socket it is
	// attached to keeps it until the socket is closed; the allow-list can no
	// longer be changed.
	Close() error
}

// FallbackError is the warning Open returns with the classic filter when
// KindAuto could not load the eBPF one. Its message says why, and what the
// classic filter misses; the caller logs it once.
type FallbackError struct {
	// Err is why the eBPF filter could not be loaded.
	Err error
}

// ClassicMisses says what the classic filter misses, for a warning.
const ClassicMisses = "The classic BPF filter lets through pure ACKs only: a handshake whose " +
	"initiator acknowledges the SYN/ACK on its first data segment (TCP_DEFER_ACCEPT, " +
	"TCP Fast Open, a write already queued) is counted late, with too long a handshake time, " +
	"or as a timeout or an abort when the connection is reset before any pure ACK."

// Error returns the reason and what the classic filter misses.
func (e *FallbackError) Error() string {
	return fmt.Sprintf("eBPF kernel filter unavailable, using classic BPF: %v. %s", e.Err, ClassicMisses)
}

// Unwrap returns why eBPF could not be loaded.
func (e *FallbackError) Unwrap() error { return e.Err }

// Open returns the kernel filter of the given kind. With KindAuto it returns the
// eBPF filter or, when that cannot be loaded (an old kernel, no CAP_BPF, a
// seccomp policy without bpf()), the classic filter and in warn a
// *FallbackError for the caller to log. err is non-nil only when no filter
// could be made: then f is nil.
func Open(kind Kind, cfg Config) (f Filter, warn error, err error) {
	switch kind {
	case KindClassic:
		c, err := NewClassic()
		if err != nil {
			return nil, nil, err
		}
		return c, nil, nil
	case KindEBPF:
		e, err := NewEBPF(cfg)
		if err != nil {
			return nil, nil, err
		}
		return e, nil, nil
	case KindAuto:
		e, eerr := NewEBPF(cfg)
		if eerr == nil {
			return e, nil, nil
		}
		c, err := NewClassic()
		if err != nil {
			return nil, nil, errors.Join(eerr, err)
		}
		return c, &FallbackError{Err: eerr}, nil
	}
	return nil, nil, fmt.Errorf("kfilter: unknown kind %d", int(kind))
}
