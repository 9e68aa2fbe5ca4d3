package classify

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/decode"
)

// floodSyn returns the i-th SYN of a flood from random sources, as
// hping3 --flood -S --rand-source sends them, to port 81 of srv4 (or of
// srv6).
func floodSyn(i int, v6 bool) decode.Packet {
	src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	dst := srv4
	if v6 {
		src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		dst = srv6
	}
	p := decode.Packet{Kind: decode.KindTCP, Src: src, Dst: dst, SrcPort: uint16(1024 + i%50000), DstPort: 81,
		Flags: decode.SYN, Seq: uint32(i) * 2654435761}
	if !v6 {
		p.IPID = uint16(i) | 1
	}
	return p
}

// digest is a running hash of a stream of events, to compare two streams
// too long to keep.
type digest struct {
	h uint64
	n int
}

func (d *digest) add(e *Event) {
	i, r := e.Init.As16(), e.Resp.As16()
	for _, v := range []uint64{uint64(e.Kind), uint64(e.Result), e.Filters, uint64(e.Start), uint64(e.End),
		uint64(e.SynAck), b2u(e.SawSynAck), uint64(e.InitPort)<<16 | uint64(e.RespPort),
		uint64(e.ICMPType)<<8 | uint64(e.ICMPCode), uint64(e.DupSYN)<<32 | uint64(e.DupSYNACK), b2u(e.Reopened),
		addrOf(netip.AddrFrom16(i))[0], addrOf(netip.AddrFrom16(i))[1],
		addrOf(netip.AddrFrom16(r))[0], addrOf(netip.AddrFrom16(r))[1]} {
		d.h = (d.h ^ v) * 0x100000001b3
	}
	d.n++
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// pair feeds the same packets and ticks to a classifier and to a reference
// whose table never shrinks: whatever the shrinking does (entries moved,
// chunks dropped, the index replaced), the events must be the same.
type pair struct {
	c, ref      *Classifier
	got, want   digest
	checks      int
	checkBelow  int // check the invariants while fewer entries are in use
	checkPeriod int
	calls       int
	// batch > 0: the classifier gets the packets in batches of that many
	// (HandleBatch), the reference one by one.
	batch   int
	pending []decode.Packet
	times   []int64
}

func newPair(cfg Config) *pair {
	p := &pair{checkBelow: 1 << 62, checkPeriod: 1}
	emit := cfg.Emit
	cfg.Emit = func(e *Event) {
		p.got.add(e)
		if emit != nil {
			emit(e)
		}
	}
	p.c = New(cfg)
	cfg.Emit = func(e *Event) { p.want.add(e) }
	p.ref = New(cfg)
	p.ref.tab.frozen = true
	return p
}

func (p *pair) handle(t *testing.T, q *decode.Packet, at int64) {
	p.ref.Handle(q, at)
	if p.batch > 0 {
		p.pending, p.times = append(p.pending, *q), append(p.times, at)
		if len(p.pending) == p.batch {
			p.flush(t)
		}
		return
	}
	p.c.Handle(q, at)
	p.after(t)
}

func (p *pair) flush(t *testing.T) {
	if len(p.pending) > 0 {
		p.c.HandleBatch(p.pending, p.times)
		p.pending, p.times = p.pending[:0], p.times[:0]
		p.after(t)
	}
}

func (p *pair) advance(t *testing.T, at int64) {
	p.flush(t)
	p.c.Advance(at)
	p.ref.Advance(at)
	p.after(t)
}

func (p *pair) after(t *testing.T) {
	t.Helper()
	tab := &p.c.tab
	p.calls++
	if tab.used < p.checkBelow && p.calls%p.checkPeriod == 0 {
		p.checks++
		if err := p.c.checkInvariants(); err != nil {
			t.Fatalf("after %d calls: %v", p.calls, err)
		}
	}
}

func (p *pair) compare(t *testing.T) {
	t.Helper()
	p.flush(t)
	if p.got != p.want {
		t.Errorf("events differ from a table that does not shrink: %d events (hash %x), want %d (hash %x)",
			p.got.n, p.got.h, p.want.n, p.want.h)
	}
	if err := p.c.checkInvariants(); err != nil {
		t.Error(err)
	}
	if err := p.ref.checkInvariants(); err != nil {
		t.Error(err)
	}
}

// TestShrinkAfterFlood fills the table with n unanswered SYNs, among which
// every 997th keeps retransmitting and completes long after all the others
// have ended (at 20 s: timeout, then memory of the failure), so that the
// chunks they sit in must be evacuated. It checks that
// the slab and the index fall back to their smallest size, that entries were
// moved while the index was being shrunk, that the stragglers' numbers come
// out exact, and that every event is the same as with a table that does
// not shrink.
func TestShrinkAfterFlood(t *testing.T) {
	for _, n := range []int{1 << 15, 1 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 1<<15 && testing.Short() {
				t.Skip("a million sessions twice")
			}
			const stride = 997
			timeout := 10 * time.Second
			successes := 0
			p := newPair(Config{Timeout: timeout, MaxSessions: n, Seed: 7, Emit: func(e *Event) {
				if e.Result == Success {
					successes++
					if e.DupSYN != 8 || !e.SawSynAck || e.Reopened || e.Start >= t0+int64(n)*int64(us) {
						t.Errorf("straggler: %+v, want 8 duplicate SYNs", e)
					}
				}
			}})
			at := func(d time.Duration) int64 { return t0 + int64(d) }
			p.checkBelow = 0
			for i := 0; i < n; i++ {
				q := floodSyn(i, false)
				p.handle(t, &q, at(time.Duration(i)*us))
			}
			// Check the invariants on every tick and packet from now on,
			// but only while the table is small enough to make it cheap.
			p.checkBelow = min(n, 1<<16)
			if n > 1<<15 {
				p.checkPeriod = 7
			}
			peakChunks, peakIndex, peakMem := p.c.tab.chunkCount(), len(p.c.tab.index), p.c.Memory()
			// The slowest tick that ended and forgot no session: how long a
			// step of maintenance takes, apart from expiry.
			var slowest time.Duration
			var clock string
			defer lockThread()()
			for d := 1 * s1; d <= 70*s1; d += 100 * ms {
				events, used := p.got.n, p.c.tab.used
				start, _ := threadCPU()
				p.c.Advance(at(d))
				if end, what := threadCPU(); p.got.n == events && p.c.tab.used == used {
					slowest, clock = max(slowest, end-start), what
				}
				p.advance(t, at(d))
				if d%(5*s1) == 0 && d <= 40*s1 {
					k := int(d / (5 * s1))
					for i := 0; i < n; i += stride {
						q := floodSyn(i, false)
						q.HasTS, q.TSVal = true, uint32(k) // a retransmission
						p.handle(t, &q, at(d)+int64(i))
					}
				}
				if d == 42*s1 {
					for i := 0; i < n; i += stride {
						q := floodSyn(i, false)
						sa := decode.Packet{Kind: decode.KindTCP, Src: q.Dst, Dst: q.Src, SrcPort: q.DstPort, DstPort: q.SrcPort,
							Flags: decode.SYN | decode.ACK, Seq: 77, Ack: q.Seq + 1}
						p.handle(t, &sa, at(d)+int64(i))
						a := decode.Packet{Kind: decode.KindTCP, Src: q.Src, Dst: q.Dst, SrcPort: q.SrcPort, DstPort: q.DstPort,
							Flags: decode.ACK, Seq: q.Seq + 1, Ack: 78}
						p.handle(t, &a, at(d)+int64(i)+500)
					}
				}
			}
			tab := &p.c.tab
			t.Logf("%d sessions: %d chunks, index of %d slots, %d MiB at the peak; then %d chunks, %d slots, %d KiB; "+
				"%d entries moved (%d in an old index), %d chunks dropped, %d index shrinks; slowest maintenance tick %v (%s)",
				n, peakChunks, peakIndex, peakMem>>20, tab.chunkCount(), len(tab.index), p.c.Memory()>>10,
				tab.moves, tab.movesInOld, tab.chunkDrops, tab.indexShrinks, slowest, clock)
			if want := (n-1)/stride + 1; successes != want {
				t.Errorf("%d stragglers completed, want %d", successes, want)
			}
			if tab.chunkCount() != 1 || len(tab.index) != minTableSlots || tab.old != nil || tab.used != 0 {
				t.Errorf("after the flood: %d chunks, %d slots, old index %v, %d in use; want 1, %d, none, 0",
					tab.chunkCount(), len(tab.index), tab.old != nil, tab.used, minTableSlots)
			}
			if tab.chunkDrops != peakChunks-1 || tab.moves == 0 || tab.indexShrinks == 0 {
				t.Errorf("%d chunks dropped, %d entries moved, %d index shrinks; want %d, some, some",
					tab.chunkDrops, tab.moves, tab.indexShrinks, peakChunks-1)
			}
			if p.checks == 0 {
				t.Error("invariants never checked: the test missed its aim")
			}
			if p.ref.tab.chunkCount() != peakChunks {
				t.Errorf("reference table has %d chunks, want %d", p.ref.tab.chunkCount(), peakChunks)
			}
			if m := p.c.Memory(); m > 1<<20 {
				t.Errorf("table holds %d bytes after the flood", m)
			}
			p.compare(t)
		})
	}
}

// TestShrinkStepByStep shrinks a table in steps of a given budget, calling
// the table's maintenance directly (past the shrink delay), and between
// steps refreshes, ends and opens sessions, and checks the invariants:
// whatever the step, entries moved out of chunks being evacuated, also
// while the index is being shrunk, are found, listed in order and expire
// as they would have.
func TestShrinkStepByStep(t *testing.T) {
	for _, budget := range []int{costMove + 1, 4 * costMove, 1 << 12, maintMax} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			const n, stride = 1 << 15, 97
			timeout := 10 * time.Second
			p := newPair(Config{Timeout: timeout, MaxSessions: n, Seed: 3})
			p.checkBelow = 0
			at := func(d time.Duration) int64 { return t0 + int64(d) }
			for i := 0; i < n; i++ {
				q := floodSyn(i, false)
				p.handle(t, &q, at(time.Duration(i)*us))
			}
			retransmit := func(i int, d time.Duration) {
				q := floodSyn(i, false)
				q.HasTS, q.TSVal = true, uint32(d)
				p.handle(t, &q, at(d))
			}
			for i := 0; i < n; i += stride {
				retransmit(i, 9*s1+time.Duration(i))
			}
			p.advance(t, at(21*s1)) // all but the stragglers timed out and are forgotten
			p.checkBelow = n
			tab := &p.c.tab
			now := at(21 * s1)
			tab.maintain(now, 0, &p.c.lists) // notes the table is too big
			late := now + shrinkDelay
			rng := rand.New(rand.NewPCG(uint64(budget), 1))
			next := n
			steps := 0
			for d := 21 * s1; tab.maint && steps < 100000; d += us {
				tab.maintain(late, budget, &p.c.lists)
				steps++
				p.after(t)
				switch i := rng.IntN(n/stride) * stride; rng.IntN(4) {
				case 0:
					retransmit(i, d)
				case 1: // the server refuses it
					q := floodSyn(i, false)
					r := decode.Packet{Kind: decode.KindTCP, Src: q.Dst, Dst: q.Src, SrcPort: q.DstPort, DstPort: q.SrcPort,
						Flags: decode.RST | decode.ACK, Ack: q.Seq + 1}
					p.handle(t, &r, at(d))
				case 2:
					q := floodSyn(next, false)
					next++
					p.handle(t, &q, at(d))
				}
			}
			t.Logf("%d steps: %d entries moved (%d in an old index), %d chunks dropped, %d index shrinks; %d chunks, index of %d slots",
				steps, tab.moves, tab.movesInOld, tab.chunkDrops, tab.indexShrinks, tab.chunkCount(), len(tab.index))
			if tab.maint || tab.moves == 0 || tab.chunkDrops == 0 || tab.indexShrinks == 0 {
				t.Error("the table did not shrink as meant")
			}
			if budget < 1<<12 && tab.movesInOld == 0 {
				t.Error("no entry moved while its slot was in an old index: the test missed its aim")
			}
			p.advance(t, at(time.Minute))
			p.compare(t)
		})
	}
}

// TestShrinkRandom drives a classifier through bursts of SYNs (beyond
// MaxSessions, so that sessions are displaced and reopened) and quiet
// spells, with every kind of segment sent at random to recent attempts, and
// checks its invariants all along and its events against a table that
// does not shrink, fed packet by packet while the classifier gets them in
// batches.
func TestShrinkRandom(t *testing.T) {
	steps := 240000
	if testing.Short() {
		steps = 120000
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			p := newPair(Config{Timeout: 30 * time.Second, MaxSessions: 20000, Seed: seed})
			p.checkPeriod, p.batch = 97, 37
			type attempt struct {
				i      int
				isn    uint32
				lastTS uint32
			}
			var recent [1 << 16]attempt
			opened := 0
			now := t0
			for step := 0; step < steps; step++ {
				busy := step/60000%2 == 0
				if busy {
					now += rng.Int64N(20_000)
				} else {
					now += rng.Int64N(20_000_000)
				}
				if !busy && rng.IntN(50) == 0 {
					p.advance(t, now)
					continue
				}
				newRate := 2
				if busy {
					newRate = 8
				}
				if opened == 0 || rng.IntN(10) < newRate {
					a := attempt{i: opened, isn: rng.Uint32(), lastTS: uint32(step) + 1}
					recent[opened%len(recent)] = a
					opened++
					q := floodSyn(a.i, a.i%4 == 0)
					q.Seq, q.IPID, q.HasTS, q.TSVal = a.isn, 0, true, a.lastTS
					p.handle(t, &q, now)
					continue
				}
				a := &recent[rng.IntN(min(opened, len(recent)))]
				q := floodSyn(a.i, a.i%4 == 0)
				q.IPID = 0
				fromServer := false
				switch rng.IntN(8) {
				case 0: // a retransmitted SYN
					a.lastTS = uint32(step) + 1
					q.Seq, q.HasTS, q.TSVal = a.isn, true, a.lastTS
				case 1: // a copy of the last SYN
					q.Seq, q.HasTS, q.TSVal = a.isn, true, a.lastTS
				case 2, 3: // the SYN/ACK
					fromServer = true
					q.Flags, q.Seq, q.Ack = decode.SYN|decode.ACK, a.isn^0x5555, a.isn+1
				case 4, 5: // the ACK
					q.Flags, q.Seq, q.Ack = decode.ACK, a.isn+1, a.isn^0x5555+1
				case 6: // an RST from either end
					if rng.IntN(2) == 0 {
						fromServer = true
						q.Flags, q.Seq, q.Ack = decode.RST|decode.ACK, 0, a.isn+1
					} else {
						q.Flags, q.Seq = decode.RST, a.isn+1
					}
				case 7: // a new attempt on the same tuple
					a.isn, a.lastTS = rng.Uint32(), uint32(step)+1
					q.Seq, q.HasTS, q.TSVal = a.isn, true, a.lastTS
				}
				if fromServer {
					q.Src, q.Dst, q.SrcPort, q.DstPort = q.Dst, q.Src, q.DstPort, q.SrcPort
				}
				p.handle(t, &q, now)
			}
			for d := 0; d < 500; d++ {
				now += int64(200 * time.Millisecond)
				p.advance(t, now)
			}
			tab := &p.c.tab
			t.Logf("%d events, %d displaced, %d reopened; %d chunks at most, %d entries moved, %d chunks dropped, %d index shrinks; %d checks",
				p.got.n, p.c.Displaced(), p.c.Reopened(), p.ref.tab.chunkCount(), tab.moves, tab.chunkDrops, tab.indexShrinks, p.checks)
			if p.c.Displaced() == 0 || p.c.Reopened() == 0 || tab.moves == 0 || tab.chunkDrops == 0 || tab.indexShrinks == 0 {
				t.Error("the workload did not displace, reopen, move, drop chunks and shrink the index: the test missed its aim")
			}
			if tab.chunkCount() != 1 || len(tab.index) != minTableSlots {
				t.Errorf("at the end: %d chunks, index of %d slots; want 1, %d", tab.chunkCount(), len(tab.index), minTableSlots)
			}
			p.compare(t)
		})
	}
}

// TestSteadyLoadKeepsItsSize runs loads whose sessions in progress vary
// within a factor of two, or dip lower for less than the shrink delay, and
// checks that, once the table has grown to the peak, it neither shrinks nor
// grows again: no chunk or index comes and goes with each swing.
func TestSteadyLoadKeepsItsSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []int // unanswered SYNs a second, second after second, repeated
	}{
		// 2 s in the table (pending, then failed): 28,000 to 52,000 entries.
		{"swings within a factor of two", []int{20000, 26000, 20000, 14000}},
		// 8,000 entries for 4 s, then 60,000.
		{"dips shorter than the delay", []int{30000, 30000, 30000, 30000, 30000, 4000, 4000, 4000, 4000, 30000, 30000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{Timeout: time.Second, MaxSessions: 1 << 20})
			now := t0
			var chunks, drops, adds, shrinks int
			i := 0
			for sec := 0; sec < 60; sec++ {
				rate := tc.rates[sec%len(tc.rates)]
				for j := 0; j < rate; j++ {
					q := floodSyn(i, false)
					i++
					now += int64(time.Second) / int64(rate)
					c.Handle(&q, now)
				}
				if sec == 2*len(tc.rates) {
					chunks, drops, adds, shrinks = c.tab.chunkCount(), c.tab.chunkDrops, c.tab.chunkAdds, c.tab.indexShrinks
				}
			}
			tab := &c.tab
			if tab.chunkCount() != chunks || tab.chunkDrops != drops || tab.chunkAdds != adds || tab.indexShrinks != shrinks {
				t.Errorf("chunks %d -> %d, dropped %d -> %d, added %d -> %d, index shrinks %d -> %d: the table oscillates",
					chunks, tab.chunkCount(), drops, tab.chunkDrops, adds, tab.chunkAdds, shrinks, tab.indexShrinks)
			}
			if chunks < 10 {
				t.Errorf("%d chunks: the load is not the one meant", chunks)
			}
		})
	}
}
