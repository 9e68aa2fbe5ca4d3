package classify

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpeek/tcpeek/internal/decode"
)

// handshakes returns the packets of n successful IPv4 handshakes, each
// followed by data segments, interleaved as a busy link would carry them.
func handshakes(n, data int) []decode.Packet {
	var ps []decode.Packet
	for i := 0; i < n; i++ {
		c := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		s := netip.AddrFrom4([4]byte{10, 2, 0, 1})
		cp := uint16(32768 + i%20000)
		isn, risn := uint32(i)*7919, uint32(i)*104729
		ps = append(ps,
			decode.Packet{Kind: decode.KindTCP, Src: c, Dst: s, SrcPort: cp, DstPort: 443, Flags: decode.SYN, Seq: isn, IPID: uint16(i), HasTS: true, TSVal: uint32(i)},
			decode.Packet{Kind: decode.KindTCP, Src: s, Dst: c, SrcPort: 443, DstPort: cp, Flags: decode.SYN | decode.ACK, Seq: risn, Ack: isn + 1, HasTS: true, TSVal: uint32(i)},
			decode.Packet{Kind: decode.KindTCP, Src: c, Dst: s, SrcPort: cp, DstPort: 443, Flags: decode.ACK, Seq: isn + 1, Ack: risn + 1},
		)
		for d := 0; d < data; d++ {
			ps = append(ps, decode.Packet{Kind: decode.KindTCP, Src: s, Dst: c, SrcPort: 443, DstPort: cp, Flags: decode.ACK | decode.PSH, Seq: risn + 1 + uint32(d)*1400, Ack: isn + 1})
		}
	}
	return ps
}

func benchmarkClassify(b *testing.B, sessions, data int) {
	ps := handshakes(sessions, data)
	events := 0
	c := New(Config{Timeout: 60 * time.Second, MaxSessions: 1 << 20, Emit: func(*Event) { events++ }})
	now := int64(1e18)
	// Warm up so that the table and the slab have their steady-state size.
	for i := range ps {
		now += 1000
		c.Handle(&ps[i], now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now += 1000
		c.Handle(&ps[i%len(ps)], now)
	}
	b.StopTimer()
	if events == 0 {
		b.Fatal("no session ended")
	}
}

// BenchmarkClassifyHandshake measures handshake-only traffic: every packet
// is a SYN, SYN/ACK or ACK of a session among 100,000.
func BenchmarkClassifyHandshake(b *testing.B) { benchmarkClassify(b, 100000, 0) }

// BenchmarkClassifyBulk measures traffic where most packets are data
// segments of sessions that are no longer tracked.
func BenchmarkClassifyBulk(b *testing.B) { benchmarkClassify(b, 100000, 10) }

// BenchmarkClassifyTimeouts measures unanswered SYNs: each opens a session
// that later times out, so the expiry path runs as often as the open path.
func BenchmarkClassifyTimeouts(b *testing.B) {
	c := New(Config{Timeout: time.Second, MaxSessions: 1 << 20})
	p := decode.Packet{Kind: decode.KindTCP, Dst: netip.MustParseAddr("10.2.0.1"), DstPort: 80, Flags: decode.SYN}
	now := int64(1e18)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Src = netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)})
		p.SrcPort = uint16(i)
		p.Seq = uint32(i)
		now += 10000 // 100,000 SYNs per second: 100,000 sessions open
		c.Handle(&p, now)
	}
}

// TestMemoryPerSession opens a million sessions and checks that each costs
// at most 200 bytes of heap (the slab entry and its share of the index).
func TestMemoryPerSession(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million sessions")
	}
	const n = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := New(Config{Timeout: time.Hour, MaxSessions: n})
	p := decode.Packet{Kind: decode.KindTCP, Dst: netip.MustParseAddr("10.2.0.1"), DstPort: 443, Flags: decode.SYN}
	for i := 0; i < n; i++ {
		p.Src = netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)})
		p.SrcPort = uint16(i)
		p.Seq = uint32(i)
		c.Handle(&p, 1e18+int64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.InProgress() != n {
		t.Fatalf("%d sessions in progress, want %d", c.InProgress(), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d sessions in progress: %.0f bytes of heap each (entry %d bytes)", n, per, unsafe.Sizeof(entry{}))
	if per > 200 {
		t.Errorf("%.0f bytes per session, want at most 200", per)
	}
	runtime.KeepAlive(c)
}

// BenchmarkClassifyFlood measures a SYN flood from random sources into a full
// table: every SYN is looked up in the memory of displaced attempts and
// displaces the session refreshed longest ago.
func BenchmarkClassifyFlood(b *testing.B) {
	c := New(Config{Timeout: 60 * time.Second, MaxSessions: 1 << 16})
	now := int64(1e18)
	// Warm up: fill the table and the memory of displaced attempts.
	const warm = 1 << 18
	for i := 0; i < warm; i++ {
		p := floodSyn(i, false)
		now += 1000
		c.Handle(&p, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := floodSyn(warm+i, false)
		now += 1000
		c.Handle(&p, now)
	}
	b.StopTimer()
	if c.Displaced() < uint64(b.N) {
		b.Fatalf("%d displaced, want at least %d", c.Displaced(), b.N)
	}
}
