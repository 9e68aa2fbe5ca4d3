package classify

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/decode"
)

// TestDisplacementOrder fills a table of n sessions with n+k SYNs and checks
// that the k oldest sessions are displaced, in order, each reported with its
// filters and numbers, and that nothing is refused.
func TestDisplacementOrder(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{1, 1}, {2, 3}, {8, 8}, {100, 250}, {1000, 10}} {
		t.Run(fmt.Sprintf("%d+%d", tc.n, tc.k), func(t *testing.T) {
			var evs []Event
			c := New(Config{Timeout: time.Minute, MaxSessions: tc.n,
				Match: func(_, _ netip.Addr, port uint16) uint64 { return 1 << (port % 64) },
				Emit:  func(e *Event) { evs = append(evs, *e) }})
			syns := make([]decode.Packet, tc.n+tc.k)
			for i := range syns {
				syns[i] = floodSyn(i, false)
				syns[i].DstPort = uint16(1000 + i)
				c.Handle(&syns[i], t0+int64(i)*1000)
			}
			if len(evs) != tc.k {
				t.Fatalf("%d events, want %d displaced", len(evs), tc.k)
			}
			for j, e := range evs {
				p := &syns[j]
				want := Event{Kind: Displaced, Filters: 1 << (p.DstPort % 64), Start: t0 + int64(j)*1000,
					End: t0 + int64(tc.n+j)*1000, Init: p.Src, Resp: p.Dst, InitPort: p.SrcPort, RespPort: p.DstPort}
				if e != want {
					t.Errorf("event %d:\n got  %+v\n want %+v", j, e, want)
				}
			}
			if c.Displaced() != uint64(tc.k) || c.InProgress() != tc.n || c.Overflow() != 0 || c.Reopened() != 0 {
				t.Errorf("displaced %d, in progress %d, overflow %d, reopened %d; want %d, %d, 0, 0",
					c.Displaced(), c.InProgress(), c.Overflow(), c.Reopened(), tc.k, tc.n)
			}
			if err := c.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDisplacementRoundTrip starts a real handshake during a SYN flood
// larger than the table (n sessions) and checks that it completes exactly
// when fewer than n flood SYNs arrive between its SYN and its SYN/ACK, and
// between its SYN/ACK and its ACK: each of its packets moves it to the back
// of the line.
func TestDisplacementRoundTrip(t *testing.T) {
	for _, n := range []int{4, 100} {
		for _, tc := range []struct{ k1, k2 int }{{0, 0}, {n - 1, n - 1}, {n, 0}, {0, n}, {n - 1, n}, {3 * n, 0}} {
			for _, v6 := range []bool{false, true} {
				t.Run(fmt.Sprintf("table %d, %d then %d flood SYNs, IPv6 %v", n, tc.k1, tc.k2, v6), func(t *testing.T) {
					var real []Event
					c := New(Config{Timeout: time.Minute, MaxSessions: n,
						Match: func(_, _ netip.Addr, port uint16) uint64 {
							if port == sport {
								return 2
							}
							return 1
						},
						Emit: func(e *Event) {
							if e.Filters == 2 {
								real = append(real, *e)
							}
						}})
					now, f := t0, 0
					flood := func(k int) {
						for ; k > 0; k-- {
							p := floodSyn(f, v6)
							f++
							now += 1000
							c.Handle(&p, now)
						}
					}
					d := newDriver(c, v6)
					flood(2 * n)
					start := now + 1000
					d.send(start, d.syn(isn, 1, 100))
					now = start
					flood(tc.k1)
					synack := now + 1000
					d.send(synack, d.synAck(isn, 0, 500))
					now = synack
					flood(tc.k2)
					end := now + 1000
					d.send(end, d.ack(isn))
					want := []Event{{Kind: Ended, Result: Success, Start: start, End: end, SynAck: synack, SawSynAck: true}}
					if tc.k1 >= n {
						want = []Event{{Kind: Displaced, Start: start, End: start + int64(n)*1000}}
					} else if tc.k2 >= n {
						want = []Event{{Kind: Displaced, Start: start, End: synack + int64(n)*1000, SynAck: synack, SawSynAck: true}}
					}
					checkEvents(t, real, want, 2)
					if got, want := c.Displaced(), uint64(n+1+tc.k1+tc.k2); got != want {
						t.Errorf("displaced %d, want %d", got, want)
					}
					if err := c.checkInvariants(); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// driver sends the segments of the test session (cli:cport > srv:sport)
// through a classifier.
type driver struct {
	c        *Classifier
	cli, srv netip.Addr
	v6       bool
}

func newDriver(c *Classifier, v6 bool) *driver {
	if v6 {
		return &driver{c: c, cli: cli6, srv: srv6, v6: true}
	}
	return &driver{c: c, cli: cli4, srv: srv4}
}

func (d *driver) seg(fromClient bool, flags uint8, seq, ack uint32, id uint16, ts uint32) decode.Packet {
	p := decode.Packet{Kind: decode.KindTCP, Src: d.cli, Dst: d.srv, SrcPort: cport, DstPort: sport,
		Flags: flags, Seq: seq, Ack: ack, HasTS: ts != 0, TSVal: ts}
	if !fromClient {
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
	}
	if !d.v6 {
		p.IPID = id
	}
	return p
}

func (d *driver) syn(iisn uint32, id uint16, ts uint32) decode.Packet {
	return d.seg(true, decode.SYN, iisn, 0, id, ts)
}
func (d *driver) synAck(iisn uint32, id uint16, ts uint32) decode.Packet {
	return d.seg(false, decode.SYN|decode.ACK, risn, iisn+1, id, ts)
}
func (d *driver) ack(iisn uint32) decode.Packet {
	return d.seg(true, decode.ACK, iisn+1, risn+1, 9, 0)
}
func (d *driver) rst() decode.Packet {
	return d.seg(false, decode.RST|decode.ACK, 0, isn+1, 0, 0)
}

func (d *driver) send(at int64, p decode.Packet) { d.c.Handle(&p, at) }

// checkEvents compares events with the wanted ones, ignoring endpoints and
// filters (which must be filters).
func checkEvents(t *testing.T, got, want []Event, filters uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n got  %+v\n want %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g := got[i]
		if g.Filters != filters {
			t.Errorf("event %d: filters %b, want %b", i, g.Filters, filters)
		}
		g.Filters, g.Init, g.Resp, g.InitPort, g.RespPort = 0, netip.Addr{}, netip.Addr{}, 0, 0
		if g != want[i] {
			t.Errorf("event %d:\n got  %+v\n want %+v", i, g, want[i])
		}
	}
}

// TestReopen displaces the test session with a flood, then sends more of its
// segments: a retransmitted SYN opens it again (Reopened, numbers counted
// from there), a capture copy of its SYN does not, nor does a SYN after the
// attempt would have been forgotten anyway, and a new ISN is a new attempt.
func TestReopen(t *testing.T) {
	const n = 4
	const timeout = 30 * time.Second
	type pkt struct {
		at    time.Duration
		flood int // > 0: that many flood SYNs, 1 µs apart, instead of a segment
		seg   func(d *driver) decode.Packet
	}
	flood := func(at time.Duration, k int) pkt { return pkt{at: at, flood: k} }
	seg := func(at time.Duration, f func(d *driver) decode.Packet) pkt { return pkt{at: at, seg: f} }
	syn := func(id uint16, ts uint32) func(d *driver) decode.Packet {
		return func(d *driver) decode.Packet { return d.syn(isn, id, ts) }
	}
	synAck := func(d *driver) decode.Packet { return d.synAck(isn, 0, 500) }
	ack := func(d *driver) decode.Packet { return d.ack(isn) }
	at := func(d time.Duration) int64 { return t0 + int64(d) }
	success := func(start, synack, end time.Duration, dupSyn uint32) Event {
		return Event{Kind: Ended, Result: Success, Start: at(start), SynAck: at(synack), SawSynAck: true, End: at(end),
			DupSYN: dupSyn, Reopened: true}
	}
	displaced := func(start, end time.Duration) Event {
		return Event{Kind: Displaced, Start: at(start), End: at(end)}
	}
	for _, tc := range []struct {
		name      string
		pkts      []pkt
		want      []Event
		dups      uint64
		reopened  uint64
		remaining int // the test session is in progress at the end
	}{
		{
			name:     "a retransmitted SYN reopens the session",
			pkts:     []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(1*s1, syn(2, 1100)), seg(1*s1+1*ms, synAck), seg(1*s1+2*ms, ack)},
			want:     []Event{displaced(0, 1*ms+(n-1)*us), success(1*s1, 1*s1+1*ms, 1*s1+2*ms, 1)},
			reopened: 1,
		},
		{
			name:     "a reopened session is rejected",
			pkts:     []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(1*s1, syn(2, 1100)), seg(1*s1+1*ms, func(d *driver) decode.Packet { return d.rst() })},
			want:     []Event{displaced(0, 1*ms+(n-1)*us), {Kind: Ended, Result: Reject, Start: at(1 * s1), End: at(1*s1 + 1*ms), DupSYN: 1, Reopened: true}},
			reopened: 1,
		},
		{
			name: "retransmissions after reopening count on it",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(1*s1, syn(2, 1100)), seg(3*s1, syn(3, 3100)),
				seg(3*s1+1*ms, synAck), seg(3*s1+2*ms, ack)},
			want:     []Event{displaced(0, 1*ms+(n-1)*us), success(1*s1, 3*s1+1*ms, 3*s1+2*ms, 2)},
			reopened: 1,
		},
		{
			name: "displaced again after reopening, reopened again",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(1*s1, syn(2, 1100)), flood(1*s1+1*ms, n),
				seg(3*s1, syn(3, 3100)), seg(3*s1+1*ms, synAck), seg(3*s1+2*ms, ack)},
			want: []Event{displaced(0, 1*ms+(n-1)*us),
				{Kind: Displaced, Start: at(1 * s1), End: at(1*s1 + 1*ms + (n-1)*us), DupSYN: 1, Reopened: true},
				success(3*s1, 3*s1+1*ms, 3*s1+2*ms, 1)},
			reopened: 2,
		},
		{
			name: "a new ISN on a displaced tuple is a new attempt",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*ms, n),
				seg(1*s1, func(d *driver) decode.Packet { return d.syn(isn+777, 2, 1100) }),
				seg(1*s1+1*ms, func(d *driver) decode.Packet { return d.synAck(isn+777, 0, 500) }),
				seg(1*s1+2*ms, func(d *driver) decode.Packet { return d.ack(isn + 777) })},
			want: []Event{displaced(0, 1*ms+(n-1)*us),
				{Kind: Ended, Result: Success, Start: at(1 * s1), SynAck: at(1*s1 + 1*ms), SawSynAck: true, End: at(1*s1 + 2*ms)}},
		},
		{
			name: "a capture copy of the displaced SYN is a copy and opens nothing",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*us, n), seg(50*us, syn(1, 100)), seg(100*us, synAck), seg(200*us, ack),
				seg(1*s1, syn(2, 1100)), seg(1*s1+1*ms, synAck), seg(1*s1+2*ms, ack)},
			want:     []Event{displaced(0, 1*us+(n-1)*us), success(1*s1, 1*s1+1*ms, 1*s1+2*ms, 1)},
			dups:     1,
			reopened: 1,
		},
		{
			name: "a copy without ID or timestamp is told by time",
			pkts: []pkt{seg(0, syn(0, 0)), flood(1*us, n), seg(5*ms, syn(0, 0)), seg(1*s1, syn(0, 0)),
				seg(1*s1+1*ms, synAck), seg(1*s1+2*ms, ack)},
			want:     []Event{displaced(0, 1*us+(n-1)*us), success(1*s1, 1*s1+1*ms, 1*s1+2*ms, 1)},
			dups:     1,
			reopened: 1,
		},
		{
			name:     "a retransmission within twice the timeout reopens",
			pkts:     []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(59*s1, syn(2, 59100)), seg(59*s1+1*ms, synAck), seg(59*s1+2*ms, ack)},
			want:     []Event{displaced(0, 1*ms+(n-1)*us), success(59*s1, 59*s1+1*ms, 59*s1+2*ms, 1)},
			reopened: 1,
		},
		{
			name: "a SYN after twice the timeout is a new attempt",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(61*s1, syn(2, 61100)), seg(61*s1+1*ms, synAck), seg(61*s1+2*ms, ack)},
			want: []Event{displaced(0, 1*ms+(n-1)*us),
				{Kind: Ended, Result: Success, Start: at(61 * s1), SynAck: at(61*s1 + 1*ms), SawSynAck: true, End: at(61*s1 + 2*ms)}},
		},
		{
			name: "a SYN after twice the timeout is a new attempt, while the memory holds later ones",
			pkts: []pkt{seg(0, syn(1, 100)), flood(1*ms, n), flood(50*s1, n+1), seg(61*s1, syn(2, 61100)), seg(61*s1+1*ms, synAck), seg(61*s1+2*ms, ack)},
			want: []Event{displaced(0, 1*ms+(n-1)*us),
				{Kind: Ended, Result: Success, Start: at(61 * s1), SynAck: at(61*s1 + 1*ms), SawSynAck: true, End: at(61*s1 + 2*ms)}},
		},
		{
			name:      "a reopened session is pending at the end",
			pkts:      []pkt{seg(0, syn(1, 100)), flood(1*ms, n), seg(1*s1, syn(2, 1100))},
			want:      []Event{displaced(0, 1*ms+(n-1)*us)},
			reopened:  1,
			remaining: 1,
		},
	} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/IPv6 %v", tc.name, v6), func(t *testing.T) {
				var real []Event
				c := New(Config{Timeout: timeout, MaxSessions: n,
					Match: func(_, _ netip.Addr, port uint16) uint64 {
						if port == sport {
							return 2
						}
						return 1
					},
					Emit: func(e *Event) {
						if e.Filters == 2 {
							real = append(real, *e)
						}
					}})
				d := newDriver(c, v6)
				f := 0
				for _, p := range tc.pkts {
					if p.flood > 0 {
						for j := 0; j < p.flood; j++ {
							q := floodSyn(f, v6)
							f++
							c.Handle(&q, at(p.at+time.Duration(j)*us))
						}
						continue
					}
					d.send(at(p.at), p.seg(d))
				}
				checkEvents(t, real, tc.want, 2)
				if c.Duplicates() != tc.dups || c.Reopened() != tc.reopened {
					t.Errorf("duplicates %d, reopened %d; want %d, %d", c.Duplicates(), c.Reopened(), tc.dups, tc.reopened)
				}
				if i, _ := c.tab.lookup(c.tab.hashOf(addrOf(d.cli), cport, addrOf(d.srv), sport), addrOf(d.cli), cport, addrOf(d.srv), sport); (i >= 0 && c.tab.at(i).state == statePending) != (tc.remaining == 1) {
					t.Errorf("test session in progress: %v, want %v", i >= 0, tc.remaining == 1)
				}
				if err := c.checkInvariants(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestGhostsForgotten checks that the memory of displaced attempts is
// dropped twice the timeout after the last displacement, and not before.
func TestGhostsForgotten(t *testing.T) {
	c := New(Config{Timeout: 10 * time.Second, MaxSessions: 100})
	for i := 0; i < 300; i++ {
		p := floodSyn(i, false)
		c.Handle(&p, t0+int64(i))
	}
	last := t0 + 299
	if !c.ghosts.live || c.ghosts.bytes() == 0 {
		t.Fatal("no memory of displaced attempts after a flood")
	}
	c.Advance(last + int64(20*time.Second) - int64(2*time.Millisecond))
	if !c.ghosts.live {
		t.Fatal("memory of displaced attempts dropped before twice the timeout")
	}
	c.Advance(last + int64(20*time.Second) + int64(2*time.Millisecond))
	if c.ghosts.live || c.ghosts.bytes() != 0 {
		t.Fatal("memory of displaced attempts kept after twice the timeout")
	}
}
