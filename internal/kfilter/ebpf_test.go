//go:build linux

package kfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/decode"
)

// newTestEBPF loads the eBPF filter, or skips the test where it cannot be.
func newTestEBPF(tb testing.TB, cfg Config) *EBPF {
	tb.Helper()
	e, err := NewEBPF(cfg)
	if err != nil {
		skipNoBPF(tb, err)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// tuples returns the contents of the tuple map.
func tuples(tb testing.TB, e *EBPF) map[tupleKey]tupleValue {
	tb.Helper()
	out := map[tupleKey]tupleValue{}
	var k tupleKey
	var v tupleValue
	it := e.Tuples().Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// clearTuples empties the tuple map.
func clearTuples(tb testing.TB, e *EBPF) {
	tb.Helper()
	for k := range tuples(tb, e) {
		if err := e.Tuples().Delete(k); err != nil {
			tb.Fatal(err)
		}
	}
}

// ebpfRun runs the filter once on frame and returns its verdict.
func ebpfRun(tb testing.TB, e *EBPF, frame []byte) uint32 {
	tb.Helper()
	ret, err := testRun(e.Program(), frame, nil)
	if err != nil {
		tb.Fatalf("running the eBPF filter: %v", err)
	}
	return ret
}

// The endpoints of the test segments (bpfTCPHeader, bpfIP).
var (
	initAddr4 = netip.MustParseAddr("192.0.2.1")
	respAddr4 = netip.MustParseAddr("198.51.100.2")
	initAddr6 = netip.MustParseAddr("2001:db8::1")
	respAddr6 = netip.MustParseAddr("2001:db8::2")
)

// keyOf returns the map key of the connection between a and b as the
// program makes it: the endpoints in canonical order (the address as two
// native-endian 64-bit words, then the port as the program loads it from
// the stack, native-endian of the network-order bytes).
func keyOf(a, b netip.AddrPort) tupleKey {
	k, _ := keyOrder(a, b)
	return k
}

// keyOrder returns keyOf(a, b) and whether a is endpoint B of it.
func keyOrder(a, b netip.AddrPort) (tupleKey, bool) {
	type end struct {
		addr [16]byte
		port [2]byte
	}
	mk := func(ap netip.AddrPort) end {
		var e end
		if ap.Addr().Is4() {
			a4 := ap.Addr().As4()
			copy(e.addr[:], a4[:])
		} else {
			e.addr = ap.Addr().As16()
		}
		binary.BigEndian.PutUint16(e.port[:], ap.Port())
		return e
	}
	less := func(x, y end) bool {
		for i := 0; i < 16; i += 8 {
			xw, yw := binary.NativeEndian.Uint64(x.addr[i:]), binary.NativeEndian.Uint64(y.addr[i:])
			if xw != yw {
				return xw < yw
			}
		}
		return binary.NativeEndian.Uint16(x.port[:]) <= binary.NativeEndian.Uint16(y.port[:])
	}
	ea, eb := mk(a), mk(b)
	swapped := !less(ea, eb)
	if swapped {
		ea, eb = eb, ea
	}
	k := tupleKey{AddrA: ea.addr, AddrB: eb.addr, Family: 4}
	if !a.Addr().Is4() {
		k.Family = 6
	}
	k.PortA = binary.NativeEndian.Uint16(ea.port[:])
	k.PortB = binary.NativeEndian.Uint16(eb.port[:])
	return k, swapped
}

// seg describes a test segment of the connection from the initiator's port
// sport to the responder's port 443.
type seg struct {
	from     byte // 'i': the initiator, 'r': the responder
	flags    string
	seq, ack uint32
	data     int
}

// Address plans of the test connections.
const (
	planNormal = iota // the initiator 192.0.2.1 or 2001:db8::1, the responder .2
	planMirror        // the other way round: the initiator's address sorts last
	planSame          // both ends on 192.0.2.1 or 2001:db8::1: the ports decide
)

// planAddrs returns the initiator's and responder's endpoints of plan.
func planAddrs(plan int, v6 bool, sport uint16) (ia, ra netip.AddrPort) {
	i, r := initAddr4, respAddr4
	if v6 {
		i, r = initAddr6, respAddr6
	}
	switch plan {
	case planMirror:
		i, r = r, i
	case planSame:
		r = i
	}
	return netip.AddrPortFrom(i, sport), netip.AddrPortFrom(r, 443)
}

// frame builds s as an Ethernet frame (tagged with tags), IPv6 if v6,
// with the addresses of plan.
func (s seg) frame(tb testing.TB, v6 bool, sport uint16, tags ...layers.EthernetType) []byte {
	return s.framePlan(tb, planNormal, v6, sport, tags...)
}

// framePlan is frame with the addresses of plan.
func (s seg) framePlan(tb testing.TB, plan int, v6 bool, sport uint16, tags ...layers.EthernetType) []byte {
	tb.Helper()
	mods := []func(*layers.IPv4, *layers.IPv6, *layers.TCP){bpfNumbers(s.seq, s.ack), bpfPorts(sport)}
	ia, ra := planAddrs(plan, v6, sport)
	mods = append(mods, func(ip4 *layers.IPv4, ip6 *layers.IPv6, _ *layers.TCP) {
		if ip4 != nil {
			ip4.SrcIP, ip4.DstIP = ia.Addr().AsSlice(), ra.Addr().AsSlice()
		}
		if ip6 != nil {
			ip6.SrcIP, ip6.DstIP = ia.Addr().AsSlice(), ra.Addr().AsSlice()
		}
	})
	if s.from == 'r' {
		mods = append(mods, bpfReverse)
	}
	et, ls := bpfTCPSeg(s.flags, s.data, mods...)(tb, v6)
	return bpfEther(tb, tags, et, ls...)
}

// entry is what a test expects of the map after a segment: the tuple is
// absent (nil), or present with these fields.
type entry struct {
	isn, risn uint32
	synack    bool
	synLen    uint16
}

const (
	isn  = 1_000_000
	risn = 3_000_000_000
)

// TestEBPFHandshakes runs handshakes segment by segment through the filter
// and checks, after each, the verdict (passed whole up to SnapLen, or
// dropped) and the tuple map: entered on the SYN, removed when the
// handshake is decided, kept otherwise.
func TestEBPFHandshakes(t *testing.T) {
	e := newTestEBPF(t, Config{Timeout: time.Minute})
	inMap := func(isn, risn uint32, synack bool) *entry { return &entry{isn: isn, risn: risn, synack: synack} }
	syn := seg{'i', "S", isn, 0, 0}
	synAck := seg{'r', "SA", risn, isn + 1, 0}
	type step struct {
		seg
		pass bool
		want *entry
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"data ACK completes, then the connection is invisible", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'i', "PA", isn + 1, risn + 1, 300}, true, nil},
			{seg{'r', "PA", risn + 1, isn + 301, 1400}, false, nil},
			{seg{'i', "A", isn + 301, risn + 1401, 0}, false, nil},
			{seg{'i', "FA", isn + 301, risn + 1401, 0}, false, nil},
		}},
		{"pure ACK completes", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'i', "A", isn + 1, risn + 1, 0}, true, nil},
			{seg{'i', "PA", isn + 1, risn + 1, 100}, false, nil},
		}},
		{"data from the responder first passes and decides nothing", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'r', "PA", risn + 1, isn + 1, 100}, true, inMap(isn, risn, true)},
			{seg{'i', "A", isn + 1, risn + 101, 0}, true, nil},
		}},
		{"the first acknowledgement not seen: a later one completes", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'i', "PA", isn + 301, risn + 1 + 1448, 100}, true, nil},
		}},
		{"an acknowledgement beyond whose seq does not fit passes and decides nothing", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'i', "PA", isn + 3_000_000_000, risn + 1 + 1448, 100}, true, inMap(isn, risn, true)},
			{seg{'i', "A", isn + 1, risn, 0}, true, inMap(isn, risn, true)},
		}},
		{"one way: no SYN/ACK seen, seq = ISN+1 completes", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'i', "PA", isn + 1, 777, 50}, true, nil},
		}},
		{"TCP Fast Open: the SYN/ACK acknowledges the SYN's data", []step{
			{seg{'i', "S", isn, 0, 100}, true, &entry{isn: isn, synLen: 100}},
			{seg{'r', "SA", risn, isn + 101, 0}, true, &entry{isn: isn, risn: risn, synack: true, synLen: 100}},
			{seg{'i', "A", isn + 101, risn + 1, 0}, true, nil},
		}},
		{"refused Fast Open: the SYN/ACK acknowledges ISN+1, the data is resent", []step{
			{seg{'i', "S", isn, 0, 100}, true, &entry{isn: isn, synLen: 100}},
			{seg{'r', "SA", risn, isn + 1, 0}, true, &entry{isn: isn, risn: risn, synack: true, synLen: 100}},
			{seg{'i', "PA", isn + 1, risn + 1, 100}, true, nil},
		}},
		{"SYN/ACK with another acknowledgement is no answer", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'r', "SA", risn, isn + 5, 0}, true, inMap(isn, 0, false)},
			{seg{'i', "A", isn + 1, 4242, 0}, true, nil},
		}},
		{"SYN/ACK from the initiator is no answer", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'i', "SA", risn, isn + 1, 0}, true, inMap(isn, 0, false)},
		}},
		{"reject: RST/ACK answering the SYN", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'r', "RA", 0, isn + 1, 0}, true, nil},
			{syn, true, inMap(isn, 0, false)}, // a retry (Windows after RST)
		}},
		{"reject: RST after the SYN/ACK", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'r', "R", risn + 1, 0, 0}, true, nil},
		}},
		{"abort: RST from the initiator", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'i', "R", isn + 1, 0, 0}, true, nil},
		}},
		{"RSTs whose numbers fit no rule pass and change nothing", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'i', "R", isn + 77, 0, 0}, true, inMap(isn, 0, false)},
			{seg{'r', "R", 5, 0, 0}, true, inMap(isn, 0, false)},
			{seg{'r', "RA", 5, isn + 9, 0}, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'r', "R", risn + 2, 0, 0}, true, inMap(isn, risn, true)},
		}},
		{"an RST of no handshake passes", []step{
			{seg{'r', "RA", 5, 6, 0}, true, nil},
		}},
		{"SYN retransmission refreshes, a new ISN replaces", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{syn, true, inMap(isn, risn, true)},
			{seg{'i', "S", isn + 99, 0, 0}, true, inMap(isn+99, 0, false)},
		}},
		{"SYN/ACK retransmission", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'r', "SA", risn + 5, isn + 1, 0}, true, inMap(isn, risn, true)},
		}},
		{"a SYN the other way round while in progress changes nothing", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'r', "S", 42, 0, 0}, true, inMap(isn, 0, false)},
		}},
		{"FIN while in progress passes; FIN/ACK acknowledging the SYN/ACK completes", []step{
			{syn, true, inMap(isn, 0, false)},
			{synAck, true, inMap(isn, risn, true)},
			{seg{'r', "FA", risn + 1, isn + 1, 0}, true, inMap(isn, risn, true)},
			{seg{'i', "FA", isn + 1, risn + 2, 0}, true, nil},
		}},
		{"SYN with FIN enters nothing", []step{
			{seg{'i', "SF", isn, 0, 0}, true, nil},
		}},
		{"segments without ACK pass while in progress", []step{
			{syn, true, inMap(isn, 0, false)},
			{seg{'i', "P", isn + 1, 0, 10}, true, inMap(isn, 0, false)},
		}},
	} {
		for _, v6 := range []bool{false, true} {
			for _, tags := range [][]layers.EthernetType{nil, {layers.EthernetTypeDot1Q}, {layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}} {
				// The initiator's address sorts first or last, or equals
				// the responder's; its port sorts before or after 443.
				for _, plan := range [][2]uint16{{planNormal, 40000}, {planMirror, 40000}, {planSame, 40000}, {planSame, 80}} {
					name := fmt.Sprintf("%s/IPv%d/%d tags/plan %d/port %d", c.name, map[bool]int{false: 4, true: 6}[v6], len(tags), plan[0], plan[1])
					clearTuples(t, e)
					ia, ra := planAddrs(int(plan[0]), v6, plan[1])
					key, initB := keyOrder(ia, ra)
					for i, s := range c.steps {
						ret := ebpfRun(t, e, s.framePlan(t, int(plan[0]), v6, plan[1], tags...))
						if want := map[bool]uint32{true: SnapLen, false: 0}[s.pass]; ret != want {
							t.Errorf("%s: step %d (%c %s): filter returned %d, want %d", name, i, s.from, s.flags, ret, want)
						}
						got := tuples(t, e)
						v, ok := got[key]
						switch {
						case s.want == nil && len(got) != 0:
							t.Errorf("%s: step %d (%c %s): map holds %v, want nothing", name, i, s.from, s.flags, got)
						case s.want != nil && (!ok || len(got) != 1):
							t.Errorf("%s: step %d (%c %s): map holds %v, want the key %+v", name, i, s.from, s.flags, got, key)
						case s.want != nil:
							wantFlags := uint8(0)
							if initB {
								wantFlags |= flagInitB
							}
							if s.want.synack {
								wantFlags |= flagSynAck
							}
							if v.ISN != s.want.isn || v.RISN != s.want.risn || v.Flags != wantFlags || v.SynLen != s.want.synLen {
								t.Errorf("%s: step %d (%c %s): entry %+v, want ISN %d RISN %d flags %#x SYN payload %d",
									name, i, s.from, s.flags, v, s.want.isn, s.want.risn, wantFlags, s.want.synLen)
							}
						}
					}
				}
			}
		}
	}
}

// TestEBPFPolicy runs every test frame through the filter with the map
// empty: SYNs, SYN/ACKs, RSTs, ICMP errors and the encapsulations pass as
// through the classic filter, the other TCP segments do not; and only a
// SYN enters the map.
func TestEBPFPolicy(t *testing.T) {
	e := newTestEBPF(t, Config{})
	tested, accepted := 0, 0
	for _, f := range bpfAllFrames(t) {
		clearTuples(t, e)
		ret, err := testRun(e.Program(), f.data, nil)
		if errors.Is(err, errTooShort) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if want := map[bool]uint32{true: SnapLen, false: 0}[f.wantEBPF]; ret != want {
			t.Errorf("%s: filter returned %d, want %d\n% x", f.name, ret, want, f.data)
		}
		var p decode.Packet
		st := (&decode.Decoder{}).Decode(&p, decode.LinkEthernet, f.data, false)
		enters := ret == SnapLen && st == decode.OK && p.Kind == decode.KindTCP &&
			p.Flags&(decode.SYN|decode.ACK|decode.RST|decode.FIN) == decode.SYN
		if n := len(tuples(t, e)); n != map[bool]int{false: 0, true: 1}[enters] {
			t.Errorf("%s: the map holds %d tuples; the frame is a SYN that passed: %v", f.name, n, enters)
		}
		tested++
		if ret != 0 {
			accepted++
		}
	}
	t.Logf("%d frames judged, %d accepted", tested, accepted)
}

// TestEBPFLinkTypes checks the network header's place: the filter reads
// the IP header there, after any link-layer header, as it does on a
// tunnel or loopback interface. In a test run the kernel puts it after an
// Ethernet header; what the filter finds there must be what the classic
// filter finds.
func TestEBPFLinkTypes(t *testing.T) {
	e := newTestEBPF(t, Config{})
	c := loadClassic(t, nil)
	for _, f := range bpfCaseFrames(t) {
		ret, err := testRun(c, f.data, nil)
		if err != nil {
			t.Fatal(err)
		}
		clearTuples(t, e)
		if got := ebpfRun(t, e, f.data); f.wantEBPF && got != ret {
			t.Errorf("%s: eBPF %d, classic %d", f.name, got, ret)
		}
	}
}

// TestEBPFExpiry checks that a handshake whose last SYN or SYN/ACK is older
// than the timeout (plus a second) counts as absent, and is removed when
// met.
func TestEBPFExpiry(t *testing.T) {
	e := newTestEBPF(t, Config{Timeout: 5 * time.Second})
	ia, ra := netip.AddrPortFrom(initAddr4, 40000), netip.AddrPortFrom(respAddr4, 443)
	key, initB := keyOrder(ia, ra)
	// The program reads the coarse clock where the kernel has it; the
	// fine one is never behind it, so ages only look longer to it.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		t.Fatal(err)
	}
	now := uint32(uint64(ts.Nano()) >> tsShift)
	limit := uint32((5*time.Second + timeoutSlack) >> tsShift)
	for _, c := range []struct {
		name string
		age  uint32 // in map units
		pass bool
	}{
		{"fresh", 0, true},
		{"just within", limit - 50, true}, // 50 units: more than the test takes
		{"expired", limit + 10, false},    // 10 units: more than a clock tick
		{"long expired", 1 << 30, false},
	} {
		clearTuples(t, e)
		v := tupleValue{ISN: isn, RISN: risn, Flags: flagSynAck, Time: now - c.age}
		if initB {
			v.Flags |= flagInitB
		}
		if err := e.Tuples().Put(key, v); err != nil {
			t.Fatal(err)
		}
		// A segment from the responder decides nothing.
		ret := ebpfRun(t, e, seg{'r', "PA", risn + 1, isn + 1, 10}.frame(t, false, 40000))
		if (ret == SnapLen) != c.pass {
			t.Errorf("%s: filter returned %d, want it to pass: %v", c.name, ret, c.pass)
		}
		if _, ok := tuples(t, e)[key]; ok != c.pass {
			t.Errorf("%s: tuple in the map: %v, want %v", c.name, ok, c.pass)
		}
	}
}

// TestEBPFLRU fills the map beyond its size: the tuples entered last stay,
// the oldest go, and a handshake whose SYN/ACK came late survives a flood
// of SYNs that outlives its SYN.
func TestEBPFLRU(t *testing.T) {
	e := newTestEBPF(t, Config{MaxSessions: 1}) // the smallest map
	size := MapEntries(1)
	flood := func(i int) []byte {
		return seg{'i', "S", uint32(i), 0, 0}.frame(t, false, uint16(1024+i%60000))
	}
	// The victim: a SYN first, its SYN/ACK after half a map of flood.
	victim := func(s seg) []byte { return s.frame(t, true, 5555) }
	ebpfRun(t, e, victim(seg{'i', "S", isn, 0, 0}))
	n := 2 * size
	for i := range n {
		if ebpfRun(t, e, flood(i)) != SnapLen {
			t.Fatal("a SYN was dropped")
		}
		if i == size/2 {
			ebpfRun(t, e, victim(seg{'r', "SA", risn, isn + 8, 0}))
		}
	}
	got := tuples(t, e)
	if len(got) > size {
		t.Errorf("%d tuples in a map of %d", len(got), size)
	}
	present := func(i int) bool {
		_, ok := got[keyOf(netip.AddrPortFrom(initAddr4, uint16(1024+i%60000)), netip.AddrPortFrom(respAddr4, 443))]
		return ok
	}
	oldGone, newKept := 0, 0
	for i := range size / 4 {
		if !present(i) {
			oldGone++
		}
		if present(n - 1 - i) {
			newKept++
		}
	}
	// The kernel's LRU is approximate (it evicts in batches from lists
	// that are per CPU in part): most of the oldest go, not all, and which
	// varies with where the runs were scheduled (88% seen on a busy
	// machine).
	if oldGone < size/4*3/4 || newKept < size/4*9/10 {
		t.Errorf("of the oldest quarter %d gone, of the newest %d kept, want both about %d", oldGone, newKept, size/4)
	}
	if _, ok := got[keyOf(netip.AddrPortFrom(initAddr6, 5555), netip.AddrPortFrom(respAddr6, 443))]; !ok {
		t.Errorf("the handshake refreshed by its SYN/ACK was displaced before older SYNs")
	}
	t.Logf("map of %d: %d tuples after %d SYNs; %d of the oldest %d gone, %d of the newest kept", size, len(got), n, oldGone, size/4, newKept)
}

// TestEBPFMutations checks, on random corruptions of the test frames, that
// the filter never drops a SYN, SYN/ACK, RST or ICMP error that the decoder
// makes into a packet the classifier uses, and returns only 0 or SnapLen.
func TestEBPFMutations(t *testing.T) {
	e := newTestEBPF(t, Config{})
	used := func(p *decode.Packet) bool {
		return p.Kind == decode.KindICMP || p.Kind == decode.KindTCP && p.Flags&(decode.SYN|decode.RST) != 0
	}
	seeds := bpfCaseFrames(t)
	r := rand.New(rand.NewPCG(3, 4))
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	var buf []byte
	for range iters {
		buf = mutate(r, append(buf[:0], seeds[r.IntN(len(seeds))].data...))
		ret, err := testRun(e.Program(), buf, nil)
		if errors.Is(err, errTooShort) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if ret != 0 && ret != SnapLen {
			t.Fatalf("filter returned %d\n% x", ret, buf)
		}
		bpfCheckDecoder(t, buf, ret == SnapLen, used)
		if t.Failed() {
			return
		}
	}
}

// skbContext is the start of struct __sk_buff, as BPF_PROG_TEST_RUN takes
// it: the interface a frame is on.
type skbContext struct {
	_       [10]uint32
	Ifindex uint32
}

// TestEBPFInterfaces checks the allow-list: in a network namespace of its
// own with two interfaces (a veth pair), frames "on" each (BPF_PROG_TEST_RUN puts
// a frame on the interface its context names) pass or not as the list
// says, and changing the list takes effect at once.
func TestEBPFInterfaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2)")
	}
	ns := fmt.Sprintf("tpk-kf-%d", os.Getpid())
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "d1", "type", "veth", "peer", "name", "d2"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	e := newTestEBPF(t, Config{})
	et, ls := bpfTCPSeg("S", 0)(t, false)
	syn := bpfEther(t, nil, et, ls...)

	// The test runs go on a thread in the namespace, which dies with it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits after
		errc <- func() error {
			fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				return err
			}
			idx := map[string]int{}
			for _, name := range []string{"d1", "d2"} {
				ifi, err := netInterfaceIndex(name)
				if err != nil {
					return err
				}
				idx[name] = ifi
			}
			check := func(what string, list []int, want map[string]bool) error {
				if err := e.setInterfaces(list); err != nil {
					return err
				}
				for name, pass := range want {
					ret, err := testRun(e.Program(), syn, &skbContext{Ifindex: uint32(idx[name])})
					if err != nil {
						return err
					}
					if (ret == SnapLen) != pass {
						return fmt.Errorf("%s: a SYN on %s: filter returned %d, want it to pass: %v", what, name, ret, pass)
					}
				}
				return nil
			}
			d1, d2 := idx["d1"], idx["d2"]
			return errors.Join(
				check("no list", nil, map[string]bool{"d1": true, "d2": true}),
				check("d1", []int{d1}, map[string]bool{"d1": true, "d2": false}),
				check("d2", []int{d2}, map[string]bool{"d1": false, "d2": true}),
				check("both", []int{d1, d2}, map[string]bool{"d1": true, "d2": true}),
				check("none", []int{}, map[string]bool{"d1": false, "d2": false}),
				check("no list again", nil, map[string]bool{"d1": true, "d2": true}),
				check("d1 again", []int{d1}, map[string]bool{"d1": true, "d2": false}),
			)
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := e.currentInterfaces(); len(got) != 1 {
		t.Errorf("allow-list map holds %v, want one interface", got)
	}
}

// netInterfaceIndex returns the index of the interface name in the calling
// thread's network namespace (net.InterfaceByName may ask from another
// thread).
func netInterfaceIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// TestEBPFMemory measures the kernel memory of the tuple map at the default
// --max-sessions, as the kernel accounts it (memlock), and fails if an
// entry costs more than the README says.
func TestEBPFMemory(t *testing.T) {
	for _, maxSessions := range []int{1 << 16, 1 << 20} {
		e := newTestEBPF(t, Config{MaxSessions: maxSessions})
		info, err := e.Tuples().Info()
		if err != nil {
			t.Fatal(err)
		}
		mem, ok := info.Memlock()
		if !ok {
			t.Skip("the kernel does not report the map's memory")
		}
		n := MapEntries(maxSessions)
		t.Logf("--max-sessions=%d: %d entries, %d bytes (%.1f MiB), %.0f bytes an entry",
			maxSessions, n, mem, float64(mem)/(1<<20), float64(mem)/float64(n))
		if per := float64(mem) / float64(n); per > 160 {
			t.Errorf("%.0f bytes an entry, more than the 160 the README allows", per)
		}
		e.Close()
	}
}

// TestMapEntries checks the map's size rule.
func TestMapEntries(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, 1 << 18}, {1, minMapEntries}, {1 << 20, 1 << 18}, {100000, 25000}, {16384, minMapEntries}} {
		if got := MapEntries(c.in); got != c.want {
			t.Errorf("MapEntries(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestTupleLayout checks that the key and value types have the sizes the
// program lays out.
func TestTupleLayout(t *testing.T) {
	if n := binary.Size(tupleKey{}); n != tupleKeySize {
		t.Errorf("tupleKey is %d bytes, the program's key %d", n, tupleKeySize)
	}
	if n := binary.Size(tupleValue{}); n != tupleValueSize {
		t.Errorf("tupleValue is %d bytes, the program's value %d", n, tupleValueSize)
	}
}
