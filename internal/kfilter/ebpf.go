package kfilter

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// EBPF is the stateful eBPF socket filter. Its map of handshakes in progress
// is an LRU hash: when it is full, a new SYN displaces the tuple used
// longest ago, the classifier's own policy (SPEC §11). An EBPF serves one
// socket; its methods are safe for concurrent use.
//
// Loading it needs CAP_BPF (CAP_SYS_ADMIN before Linux 5.8) and a seccomp
// policy that allows bpf(); attaching it needs only the socket. Before Linux
// 5.11 its memory counts against RLIMIT_MEMLOCK, which NewEBPF raises if it
// may; later kernels charge it to the memory cgroup.
type EBPF struct {
	prog    *ebpf.Program
	tuples  *ebpf.Map // the handshakes in progress: tupleKey -> tupleValue
	ifaces  *ebpf.Map // the allow-list: ifindex -> 1
	control *ebpf.Map // [0]: 1 if the allow-list applies

	mu       sync.Mutex
	attached int   // the socket attached to, -1 if none
	allowed  []int // the allow-list in ifaces, sorted; nil if it does not apply
}

// Sizes of the eBPF maps.
const (
	// mapRatio is how many sessions of --max-sessions share one entry of
	// the tuple map. See MapEntries.
	mapRatio = 4
	// minMapEntries is the smallest tuple map.
	minMapEntries = 4096
	// maxInterfaces bounds the allow-list. Its map is allocated as
	// entries come, but its buckets are not: 16 bytes an entry of the
	// bound, 256 KiB.
	maxInterfaces = 16384
	// timeoutSlack is how much longer than the classifier's timeout the
	// filter keeps a handshake, so that clock differences never make it
	// drop a segment the classifier would still use.
	timeoutSlack = time.Second
	// tsShift turns nanoseconds into the map's time unit, 2^20 ns (about a
	// millisecond), so that a time fits in 32 bits (it wraps after 52 days;
	// only differences are used).
	tsShift = 20
)

// MapEntries returns the number of entries of the tuple map for a
// classifier bounded to maxSessions sessions in progress: a quarter of it
// (at least 4096). The map is preallocated kernel memory, 120 bytes an
// entry on Linux 6.18 (TestEBPFMemory measures it: 30 MiB for the default
// 1048576). It only has to hold each handshake from its last
// SYN or SYN/ACK to its completing ACK, about a round trip, so under a flood
// it keeps real handshakes as long as it holds more than a round trip of
// flood; the classifier's table also remembers ended sessions, which the map
// does not.
func MapEntries(maxSessions int) int {
	if maxSessions <= 0 {
		maxSessions = 1 << 20
	}
	return max(maxSessions/mapRatio, minMapEntries)
}

// tupleKey is a key of the tuple map: the two endpoints of a connection in a
// canonical order (the lower first, comparing each address as two
// native-endian 64-bit words, then the ports), so that a segment finds its
// handshake from either direction. IPv4 addresses fill the first 4 bytes of
// their 16. Ports are in network byte order.
type tupleKey struct {
	AddrA, AddrB [16]byte
	PortA, PortB uint16
	Family       uint8 // 4 or 6
	_            [3]byte
}

// tupleValue is a value of the tuple map.
type tupleValue struct {
	ISN    uint32 // the initiator's ISN
	RISN   uint32 // the responder's ISN, if Flags&flagSynAck
	Time   uint32 // the last SYN or SYN/ACK, in units of 2^tsShift ns of CLOCK_MONOTONIC
	SynLen uint16 // the SYN's payload (TCP Fast Open)
	Flags  uint8  // flagInitB, flagSynAck
	_      uint8
}

// Flags of a tupleValue.
const (
	flagInitB  = 1 // the initiator is endpoint B of the key
	flagSynAck = 2 // the SYN/ACK was seen
)

// Sizes of the map keys and values, as the program lays them out.
const (
	tupleKeySize   = 40
	tupleValueSize = 16
)

// NewEBPF creates the maps and loads the program. Its errors say what is
// missing (a capability, the bpf() system call, kernel support).
func NewEBPF(cfg Config) (*EBPF, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	e := &EBPF{attached: -1}
	var err error
	e.tuples, err = newMap(&ebpf.MapSpec{
		Name: "tcpeek_tuples", Type: ebpf.LRUHash,
		KeySize: tupleKeySize, ValueSize: tupleValueSize,
		MaxEntries: uint32(MapEntries(cfg.MaxSessions)),
	})
	if err == nil {
		e.ifaces, err = newMap(&ebpf.MapSpec{
			Name: "tcpeek_ifaces", Type: ebpf.Hash, Flags: 1, // BPF_F_NO_PREALLOC
			KeySize: 4, ValueSize: 4, MaxEntries: maxInterfaces,
		})
	}
	if err == nil {
		e.control, err = newMap(&ebpf.MapSpec{
			Name: "tcpeek_control", Type: ebpf.Array,
			KeySize: 4, ValueSize: 4, MaxEntries: 1,
		})
	}
	if err != nil {
		e.Close()
		return nil, loadError("creating the eBPF maps", err)
	}
	timeout := int64((cfg.Timeout + timeoutSlack + (1<<tsShift - 1)) >> tsShift)
	// The coarse clock where the kernel has it (5.11), the fine one else.
	for _, clock := range []asm.BuiltinFunc{asm.FnKtimeGetCoarseNs, asm.FnKtimeGetNs} {
		spec := &ebpf.ProgramSpec{
			Name:         "tcpeek_filter",
			Type:         ebpf.SocketFilter,
			License:      "MIT",
			Instructions: ebpfProgram(e.tuples.FD(), e.ifaces.FD(), e.control.FD(), min(timeout, 1<<31-1), clock),
		}
		e.prog, err = ebpf.NewProgramWithOptions(spec, ebpf.ProgramOptions{LogSizeStart: 1 << 20})
		if err == nil {
			break
		}
	}
	if err != nil {
		e.Close()
		return nil, loadError("loading the eBPF program", err)
	}
	return e, nil
}

// newMap creates a map; if the kernel refuses for want of locked memory
// (Linux before 5.11 counts maps against RLIMIT_MEMLOCK), it raises the
// limit and tries again.
func newMap(spec *ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(spec)
	if errors.Is(err, os.ErrPermission) {
		raiseMemlock()
		m, err = ebpf.NewMap(spec)
	}
	return m, err
}

// loadError wraps an error of loading eBPF with what to do about it.
func loadError(what string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		// cilium/ebpf's own hint names only RLIMIT_MEMLOCK.
		return fmt.Errorf("%s: %w: it needs CAP_BPF (CAP_SYS_ADMIN before Linux 5.8), "+
			"a seccomp policy that allows bpf(), and before Linux 5.11 a large enough RLIMIT_MEMLOCK", what, syscall.EPERM)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s: %w (Linux 4.18 or later is needed)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Name returns "ebpf".
func (*EBPF) Name() string { return NameEBPF }

// Attach attaches the program to the socket fd (once) and sets its
// allow-list: interfaces joining it are added before those leaving it are
// removed, so the interfaces that stay never miss a frame.
func (e *EBPF) Attach(fd int, ifindexes []int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.prog == nil {
		return errors.New("kfilter: the eBPF filter is closed")
	}
	if err := e.setInterfaces(ifindexes); err != nil {
		return err
	}
	if fd != e.attached {
		if err := attachEBPF(fd, e.prog.FD()); err != nil {
			return err
		}
		e.attached = fd
	}
	return nil
}

// setInterfaces brings the allow-list map to ifindexes (nil: no list).
func (e *EBPF) setInterfaces(ifindexes []int) error {
	var on uint32
	if ifindexes != nil {
		on = 1
		want := slices.Clone(ifindexes)
		slices.Sort(want)
		want = slices.Compact(want)
		if len(want) > maxInterfaces {
			return fmt.Errorf("kfilter: %d interfaces, more than the %d the eBPF filter takes", len(want), maxInterfaces)
		}
		one := uint32(1)
		for _, idx := range want {
			if idx <= 0 || int64(idx) > 1<<31-1 {
				return fmt.Errorf("kfilter: bad interface index %d", idx)
			}
			if _, ok := slices.BinarySearch(e.allowed, idx); ok {
				continue
			}
			if err := e.ifaces.Update(uint32(idx), one, ebpf.UpdateAny); err != nil {
				return allowListError(fmt.Sprintf("adding interface %d to", idx), err)
			}
		}
		if e.allowed == nil {
			// The list starts to apply: it must not hold interfaces that
			// left it while it did not.
			e.allowed = e.currentInterfaces()
		}
		for _, idx := range e.allowed {
			if _, ok := slices.BinarySearch(want, idx); !ok {
				if err := e.ifaces.Delete(uint32(idx)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					return allowListError(fmt.Sprintf("removing interface %d from", idx), err)
				}
			}
		}
		e.allowed = want
	} else {
		e.allowed = nil
	}
	if err := e.control.Update(uint32(0), on, ebpf.UpdateAny); err != nil {
		return allowListError("switching", err)
	}
	return nil
}

// allowListError wraps an error of changing the allow-list map.
func allowListError(what string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		// Kernels before the rework of bpf() permissions (Linux 6.5)
		// refuse every bpf() command to a process without CAP_BPF while
		// kernel.unprivileged_bpf_disabled is set, map updates included.
		return fmt.Errorf("%s the eBPF filter's allow-list: %w (this kernel refuses it once privileges "+
			"are dropped: keep CAP_BPF, or capture a fixed set of interfaces)", what, err)
	}
	return fmt.Errorf("%s the eBPF filter's allow-list: %w", what, err)
}

// currentInterfaces returns the interfaces in the allow-list map, sorted.
func (e *EBPF) currentInterfaces() []int {
	var out []int
	var k, v uint32
	it := e.ifaces.Iterate()
	for it.Next(&k, &v) {
		out = append(out, int(k))
	}
	slices.Sort(out)
	return out
}

// Close closes the program and the maps.
func (e *EBPF) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	if e.prog != nil {
		errs = append(errs, e.prog.Close())
	}
	for _, m := range []*ebpf.Map{e.tuples, e.ifaces, e.control} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	e.prog, e.tuples, e.ifaces, e.control = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Program returns the loaded program, for tests and measurements.
func (e *EBPF) Program() *ebpf.Program { return e.prog }

// Tuples returns the map of handshakes in progress, for tests and
// measurements.
func (e *EBPF) Tuples() *ebpf.Map { return e.tuples }
