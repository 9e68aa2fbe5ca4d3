package classify

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/fixture"
)

// The test network: a client and a server of each family.
var (
	cli4 = netip.MustParseAddr("192.0.2.10")
	srv4 = netip.MustParseAddr("198.51.100.20")
	cli6 = netip.MustParseAddr("2001:db8::10")
	srv6 = netip.MustParseAddr("2001:db8:1::20")
)

const (
	cport = 40000
	sport = 80
	isn   = 1000  // the client's ISN
	risn  = 50000 // the server's ISN
)

// t0 is the time of the first packet of every scenario.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// step is one packet of a scenario (or, with advance, only the passing of
// time). Segments go from the client ('c') or the server ('s').
type step struct {
	at      time.Duration
	dir     byte   // 'c' or 's'
	flags   string // S, A, R, F, P, E (ECE), W (CWR)
	seq     uint32
	ack     uint32
	id      uint16 // IPv4 ID (ignored for IPv6)
	ts      uint32 // TCP timestamp value; 0: no timestamp option
	data    int    // payload bytes
	vlan    uint16 // 802.1Q tag; 0: none
	icmp    int    // >0: an ICMP unreachable with code icmp-1, quoting a segment sent in direction dir with seq
	advance bool   // only Advance the clock to at
}

// icmpCode returns the step field value for an ICMP message of code c.
func icmpCode(c int) int { return c + 1 }

// portUnreach is the code of port unreachable in the scenario's family: 3 in
// ICMPv4, 4 in ICMPv6 (where 4 is not "fragmentation needed").
const portUnreach = 100

// want is an expected event.
type want struct {
	kind      EventKind
	result    Result
	reversed  bool          // the server initiated
	start     time.Duration // offsets from t0
	end       time.Duration
	synack    time.Duration // -1: no SYN/ACK
	dupSyn    uint32
	dupSynAck uint32
	icmpCode  uint8
}

func ended(r Result, start, end, synack time.Duration, dupSyn, dupSynAck uint32) want {
	return want{kind: Ended, result: r, start: start, end: end, synack: synack, dupSyn: dupSyn, dupSynAck: dupSynAck}
}

// frame serializes a step of the given family as an Ethernet frame.
func frame(t testing.TB, v6 bool, s step) []byte {
	t.Helper()
	src, dst := cli4, srv4
	if v6 {
		src, dst = cli6, srv6
	}
	sp, dp := uint16(cport), uint16(sport)
	if s.dir == 's' {
		src, dst = dst, src
		sp, dp = dp, sp
	}
	seg := fixture.Seg{
		Src: netip.AddrPortFrom(src, sp), Dst: netip.AddrPortFrom(dst, dp),
		Flags: s.flags, Seq: s.seq, Ack: s.ack, ID: s.id, TS: s.ts, Data: s.data, VLAN: s.vlan,
	}
	if v6 {
		seg.ID = 0
	}
	if s.icmp == 0 {
		f, err := seg.Frame()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// The ICMP error goes back to the segment's sender, from its
	// destination (a router would do as well).
	code := uint8(s.icmp - 1)
	if s.icmp == icmpCode(portUnreach) {
		code = 3
		if v6 {
			code = 4
		}
	}
	ip, err := seg.IP()
	if err != nil {
		t.Fatal(err)
	}
	f, err := fixture.Unreach(dst, code, ip)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run feeds the steps of a scenario through a classifier, in the given
// family, and returns the events.
func run(t testing.TB, v6 bool, cfg Config, steps []step) (*Classifier, []Event) {
	t.Helper()
	var events []Event
	cfg.Emit = func(e *Event) { events = append(events, *e) }
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 1000
	}
	c := New(cfg)
	var d decode.Decoder
	d.Checksum = decode.CheckAll
	for _, s := range steps {
		now := t0 + int64(s.at)
		if s.advance {
			c.Advance(now)
			continue
		}
		var p decode.Packet
		if st := d.Decode(&p, decode.LinkEthernet, frame(t, v6, s), false); st != decode.OK {
			t.Fatalf("step %+v: decode: %v", s, st)
		}
		c.Handle(&p, now)
	}
	return c, events
}

func (w want) String() string {
	return fmt.Sprintf("{kind %d %v rev=%v start=%v end=%v synack=%v dup=%d/%d icmp=%d}",
		w.kind, w.result, w.reversed, w.start, w.end, w.synack, w.dupSyn, w.dupSynAck, w.icmpCode)
}

// check compares the events with the wanted ones.
func check(t *testing.T, v6 bool, got []Event, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("got %d events, want %d:\n got  %s\n want %v", len(got), len(wants), eventsString(got), wants)
		return
	}
	for i, w := range wants {
		g := got[i]
		if g.Kind != w.kind {
			t.Errorf("event %d: kind %d, want %d", i, g.Kind, w.kind)
			continue
		}
		if w.kind == LateRetry {
			if g.Filters != 1 {
				t.Errorf("event %d: filters %b, want 1", i, g.Filters)
			}
			continue
		}
		ci, si := cli4, srv4
		if v6 {
			ci, si = cli6, srv6
		}
		cp, sp := uint16(cport), uint16(sport)
		if w.reversed {
			ci, si, cp, sp = si, ci, sp, cp
		}
		synack := int64(0)
		if w.synack >= 0 {
			synack = t0 + int64(w.synack)
		}
		gw := want{kind: g.Kind, result: g.Result, reversed: w.reversed,
			start: time.Duration(g.Start - t0), end: time.Duration(g.End - t0), synack: w.synack,
			dupSyn: g.DupSYN, dupSynAck: g.DupSYNACK, icmpCode: g.ICMPCode}
		if g.SynAck != synack || g.SawSynAck != (w.synack >= 0) {
			gw.synack = time.Duration(g.SynAck - t0)
			if !g.SawSynAck {
				gw.synack = -1
			}
		}
		if w.icmpCode == portUnreach {
			w.icmpCode = 3
			if v6 {
				w.icmpCode = 4
			}
		}
		if gw != w {
			t.Errorf("event %d:\n got  %v\n want %v", i, gw, w)
		}
		if g.Init != ci || g.Resp != si || g.InitPort != cp || g.RespPort != sp {
			t.Errorf("event %d: endpoints %v:%d > %v:%d, want %v:%d > %v:%d", i, g.Init, g.InitPort, g.Resp, g.RespPort, ci, cp, si, sp)
		}
		if g.Filters != 1 {
			t.Errorf("event %d: filters %b, want 1", i, g.Filters)
		}
		if g.Reopened {
			t.Errorf("event %d: reopened", i)
		}
	}
}

func eventsString(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "{kind %d %v start=%v end=%v dup=%d/%d icmp=%d/%d} ", e.Kind, e.Result,
			time.Duration(e.Start-t0), time.Duration(e.End-t0), e.DupSYN, e.DupSYNACK, e.ICMPType, e.ICMPCode)
	}
	return b.String()
}

const (
	ms = time.Millisecond
	us = time.Microsecond
	s1 = time.Second
)

// Shorthands for the common segments.
func syn(at time.Duration, id uint16, ts uint32) step {
	return step{at: at, dir: 'c', flags: "S", seq: isn, id: id, ts: ts}
}
func synAck(at time.Duration, id uint16, ts uint32) step {
	return step{at: at, dir: 's', flags: "SA", seq: risn, ack: isn + 1, id: id, ts: ts}
}
func ack(at time.Duration) step {
	return step{at: at, dir: 'c', flags: "A", seq: isn + 1, ack: risn + 1, id: 9}
}

type scenario struct {
	name  string
	cfg   Config
	steps []step
	want  []want
	want6 []want // for IPv6, if it differs
	// Counters after the last step.
	dups       uint64
	inProgress int
	overflow   uint64
}

func scenarios() []scenario {
	return []scenario{
		{
			name:  "rule 1+3+4: SYN, SYN/ACK, ACK",
			steps: []step{syn(0, 1, 100), synAck(2*ms, 0, 500), ack(3 * ms)},
			want:  []want{ended(Success, 0, 3*ms, 2*ms, 0, 0)},
		},
		{
			name: "rule 2: SYN x3 then success",
			steps: []step{syn(0, 1, 100), syn(1*s1, 2, 1100), syn(3*s1, 3, 3100),
				synAck(3*s1+2*ms, 0, 500), ack(3*s1 + 3*ms)},
			want: []want{ended(Success, 0, 3*s1+3*ms, 3*s1+2*ms, 2, 0)},
		},
		{
			name: "rule 2: retransmitted SYN without timestamps (IPv6: told by time)",
			steps: []step{syn(0, 1, 0), syn(1*s1, 2, 0),
				synAck(1*s1+2*ms, 0, 0), ack(1*s1 + 3*ms)},
			want: []want{ended(Success, 0, 1*s1+3*ms, 1*s1+2*ms, 1, 0)},
		},
		{
			name: "rule 3: SYN/ACK retransmitted (Linux: ID 0, timestamp differs)",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500), synAck(1*s1+1*ms, 0, 1500),
				ack(1*s1 + 2*ms)},
			want: []want{ended(Success, 0, 1*s1+2*ms, 1*ms, 0, 1)},
		},
		{
			name: "rule 3: SYN/ACK with another ack number is ignored",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 7, ts: 500},
				{at: 2 * ms, dir: 'c', flags: "A", seq: isn + 1, ack: risn + 1}, {at: 40 * s1, advance: true}},
			// The ACK then matches the one-way rule (seq = ISN+1).
			want: []want{ended(Success, 0, 2*ms, -1, 0, 0)},
		},
		{
			name:  "rule 5: RST+ACK answering the SYN",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", seq: 0, ack: isn + 1}},
			want:  []want{ended(Reject, 0, 1*ms, -1, 0, 0)},
		},
		{
			name: "rule 5: RST from the responder after its SYN/ACK",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500),
				{at: 5 * ms, dir: 's', flags: "R", seq: risn + 1}},
			want: []want{ended(Reject, 0, 5*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 6: RST from the initiator after the SYN/ACK (abort)",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500),
				{at: 2 * ms, dir: 'c', flags: "R", seq: isn + 1}},
			want: []want{ended(Abort, 0, 2*ms, 1*ms, 0, 0)},
		},
		{
			name:  "rule 6: RST from the initiator before any answer (abort)",
			steps: []step{syn(0, 1, 100), {at: 2 * s1, dir: 'c', flags: "RA", seq: isn, ack: 0}},
			want:  []want{ended(Abort, 0, 2*s1, -1, 0, 0)},
		},
		{
			name: "rule 10: RSTs whose numbers fit nothing change nothing",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", seq: 0, ack: isn + 99},
				{at: 2 * ms, dir: 'c', flags: "R", seq: isn + 99}, {at: 3 * ms, dir: 's', flags: "R", seq: 77},
				synAck(4*ms, 0, 500), ack(5 * ms)},
			want: []want{ended(Success, 0, 5*ms, 4*ms, 0, 0)},
		},
		{
			name:  "rule 7: ICMP port unreachable quoting the SYN, with --icmp",
			cfg:   Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(3)}},
			want:  []want{{kind: Ended, result: Unreach, end: 1 * ms, synack: -1, icmpCode: 3}},
		},
		{
			name:  "rule 7: ICMP host unreachable",
			cfg:   Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 3 * s1, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(1)}},
			want:  []want{{kind: Ended, result: Unreach, end: 3 * s1, synack: -1, icmpCode: 1}},
		},
		{
			name:  "rule 7: ICMP administratively prohibited",
			cfg:   Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(13)}},
			want:  []want{{kind: Ended, result: Unreach, end: 1 * ms, synack: -1, icmpCode: 13}},
		},
		{
			name: "rule 7: ICMPv4 fragmentation needed is not unreachability",
			cfg:  Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(4)},
				{at: 31 * s1, advance: true}},
			want: []want{ended(Timeout, 0, 30*s1, -1, 0, 0)},
			// In ICMPv6, type 1 code 4 is port unreachable.
			want6: []want{{kind: Ended, result: Unreach, end: 1 * ms, synack: -1, icmpCode: 4}},
		},
		{
			name: "rule 7: ICMP without --icmp is ignored: timeout",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(3)},
				{at: 31 * s1, advance: true}},
			want: []want{ended(Timeout, 0, 30*s1, -1, 0, 0)},
		},
		{
			name: "rule 7: ICMP quoting another sequence number is ignored",
			cfg:  Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn + 5000, icmp: icmpCode(3)},
				{at: 31 * s1, advance: true}},
			want: []want{ended(Timeout, 0, 30*s1, -1, 0, 0)},
		},
		{
			name: "rule 7: ICMP quoting an unknown flow is ignored",
			cfg:  Config{ICMP: true},
			steps: []step{{at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(3)},
				{at: 31 * s1, advance: true}},
		},
		{
			name: "rule 7: ICMP after a reject changes nothing (first answer wins)",
			cfg:  Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 70 * us, dir: 's', flags: "RA", ack: isn + 1},
				{at: 7 * s1, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(0)}},
			want: []want{ended(Reject, 0, 70*us, -1, 0, 0)},
		},
		{
			name: "rule 7: ICMP quoting the responder's SYN/ACK",
			cfg:  Config{ICMP: true},
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500),
				{at: 2 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 1, icmp: icmpCode(1)}},
			want: []want{{kind: Ended, result: Unreach, end: 2 * ms, synack: 1 * ms, icmpCode: 1}},
		},
		{
			name: "rule 8: SYN then silence past the timeout ends at exactly last packet + timeout",
			steps: []step{syn(0, 1, 100), syn(1*s1, 2, 1100), {at: 31 * s1, advance: true},
				{at: 31*s1 + 1, advance: true}},
			want: []want{ended(Timeout, 0, 31*s1, -1, 1, 0)},
		},
		{
			name:  "rule 8: a packet after the deadline sees the session expired first",
			steps: []step{syn(0, 1, 100), synAck(31*s1, 0, 500), ack(31*s1 + 1*ms)},
			want:  []want{ended(Timeout, 0, 30*s1, -1, 0, 0)},
		},
		{
			name: "rule 8: a SYN/ACK refreshes the deadline",
			steps: []step{syn(0, 1, 100), synAck(20*s1, 0, 500), {at: 49 * s1, advance: true},
				ack(49 * s1)},
			want: []want{ended(Success, 0, 49*s1, 20*s1, 0, 0)},
		},
		{
			name: "rule 8: a timed-out session stays a timeout when its handshake completes late",
			steps: []step{syn(0, 1, 100), {at: 30*s1 + 1, advance: true}, synAck(35*s1, 0, 500),
				ack(35*s1 + 1*ms)},
			want: []want{ended(Timeout, 0, 30*s1, -1, 0, 0)},
		},
		{
			name: "rule 9: SYN retried after RST with the same ISN: one session",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", ack: isn + 1},
				syn(500*ms, 2, 600), {at: 501 * ms, dir: 's', flags: "RA", ack: isn + 1},
				syn(1*s1, 3, 1100), {at: 1*s1 + 1*ms, dir: 's', flags: "RA", ack: isn + 1},
				{at: 100 * s1, advance: true}},
			want: []want{ended(Reject, 0, 1*ms, -1, 0, 0), {kind: LateRetry}},
		},
		{
			name: "rule 9: a SYN with a new ISN after a failure opens a new session",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", ack: isn + 1},
				{at: 1 * s1, dir: 'c', flags: "S", seq: isn + 100000, id: 2, ts: 1100},
				{at: 1*s1 + 1*ms, dir: 's', flags: "RA", ack: isn + 100001}},
			want: []want{ended(Reject, 0, 1*ms, -1, 0, 0), ended(Reject, 1*s1, 1*s1+1*ms, -1, 0, 0)},
		},
		{
			name: "rule 9: the memory of a failure lasts the timeout",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", ack: isn + 1},
				syn(31*s1, 2, 31100), {at: 31*s1 + 1*ms, dir: 's', flags: "RA", ack: isn + 1}},
			want: []want{ended(Reject, 0, 1*ms, -1, 0, 0), ended(Reject, 31*s1, 31*s1+1*ms, -1, 0, 0)},
		},
		{
			name: "rule 9: Linux retries the SYN after ICMPv6 port unreachable: one session",
			cfg:  Config{ICMP: true},
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(portUnreach)},
				syn(1*s1, 2, 1100), {at: 1*s1 + 1*ms, dir: 'c', flags: "S", seq: isn, icmp: icmpCode(portUnreach)}},
			want: []want{{kind: Ended, result: Unreach, end: 1 * ms, synack: -1, icmpCode: portUnreach}, {kind: LateRetry}},
		},
		{
			name: "rule 2: ISN change ends the first attempt as timeout",
			steps: []step{syn(0, 1, 100), {at: 5 * s1, dir: 'c', flags: "S", seq: 777, id: 2, ts: 5100},
				{at: 5*s1 + 1*ms, dir: 's', flags: "SA", seq: risn, ack: 778}, {at: 5*s1 + 2*ms, dir: 'c', flags: "A", seq: 778, ack: risn + 1}},
			want: []want{ended(Timeout, 0, 5*s1, -1, 0, 0), ended(Success, 5*s1, 5*s1+2*ms, 5*s1+1*ms, 0, 0)},
		},
		{
			name:  "rule 4: one-way capture (no SYN/ACK seen)",
			steps: []step{syn(0, 1, 100), {at: 10 * ms, dir: 'c', flags: "PA", seq: isn + 1, ack: 123456, data: 100}},
			want:  []want{ended(Success, 0, 10*ms, -1, 0, 0)},
		},
		{
			name:  "rule 4+10: SYN/ACK captured before its SYN",
			steps: []step{synAck(0, 0, 500), syn(10*us, 1, 100), ack(1 * ms)},
			want:  []want{ended(Success, 10*us, 1*ms, -1, 0, 0)},
		},
		{
			name: "rule 4: the first acknowledgement not seen: a later ACK beyond ISN+1 completes",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500),
				{at: 5 * ms, dir: 'c', flags: "A", seq: isn + 301, ack: risn + 1 + 1448}},
			want: []want{ended(Success, 0, 5*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 4: an ACK beyond ISN+1 whose sequence number does not fit is not success",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500),
				{at: 5 * ms, dir: 'c', flags: "A", seq: isn + 3000000000, ack: risn + 1 + 1448}, {at: 31 * s1, advance: true}},
			want: []want{ended(Timeout, 0, 30*s1+1*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 4: an ACK that acknowledges something else is not success",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500), {at: 2 * ms, dir: 'c', flags: "A", seq: isn + 1, ack: risn},
				{at: 31 * s1, advance: true}},
			want: []want{ended(Timeout, 0, 30*s1+1*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 2+4: copies on two VLANs are copies, also after success",
			steps: []step{
				{at: 0, dir: 'c', flags: "S", seq: isn, id: 1, ts: 100, vlan: 10},
				{at: 50 * us, dir: 'c', flags: "S", seq: isn, id: 1, ts: 100, vlan: 20},
				{at: 1 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 1, id: 0, ts: 500, vlan: 20},
				{at: 1*ms + 50*us, dir: 's', flags: "SA", seq: risn, ack: isn + 1, id: 0, ts: 500, vlan: 10},
				{at: 2 * ms, dir: 'c', flags: "A", seq: isn + 1, ack: risn + 1, vlan: 10},
				// The whole handshake mirrored again 50 ms later.
				{at: 50 * ms, dir: 'c', flags: "S", seq: isn, id: 1, ts: 100, vlan: 30},
				{at: 51 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 1, id: 0, ts: 500, vlan: 30},
				{at: 52 * ms, dir: 'c', flags: "A", seq: isn + 1, ack: risn + 1, vlan: 30},
			},
			want: []want{ended(Success, 0, 2*ms, 1*ms, 0, 0)},
			dups: 4,
		},
		{
			name: "rule 2: IPv6-like copies without IDs or timestamps are told by time",
			steps: []step{syn(0, 0, 0), syn(5*ms, 0, 0), syn(500*ms, 0, 0),
				{at: 501 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 1}, {at: 505 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 1},
				ack(506 * ms)},
			want: []want{ended(Success, 0, 506*ms, 501*ms, 1, 0)},
			dups: 2,
		},
		{
			name:  "rule 1: ECN SYN (ECE, CWR) opens a session",
			steps: []step{{at: 0, dir: 'c', flags: "SEW", seq: isn, id: 1, ts: 100}, {at: 1 * ms, dir: 's', flags: "SAE", seq: risn, ack: isn + 1, ts: 500}, ack(2 * ms)},
			want:  []want{ended(Success, 0, 2*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 1: TCP Fast Open SYN with data, data accepted",
			steps: []step{{at: 0, dir: 'c', flags: "S", seq: isn, id: 1, ts: 100, data: 200},
				{at: 1 * ms, dir: 's', flags: "SA", seq: risn, ack: isn + 201, ts: 500},
				{at: 2 * ms, dir: 'c', flags: "A", seq: isn + 201, ack: risn + 1}},
			want: []want{ended(Success, 0, 2*ms, 1*ms, 0, 0)},
		},
		{
			name: "rule 1: TCP Fast Open SYN with data, cookie refused",
			steps: []step{{at: 0, dir: 'c', flags: "S", seq: isn, id: 1, ts: 100, data: 200},
				synAck(1*ms, 0, 500), {at: 2 * ms, dir: 'c', flags: "PA", seq: isn + 1, ack: risn + 1, data: 200}},
			want: []want{ended(Success, 0, 2*ms, 1*ms, 0, 0)},
		},
		{
			name:       "rule 11: a lone SYN is pending at the end",
			steps:      []step{syn(0, 1, 100)},
			inProgress: 1,
		},
		{
			name: "a new attempt the other way round after a failure",
			steps: []step{syn(0, 1, 100), {at: 1 * ms, dir: 's', flags: "RA", ack: isn + 1},
				{at: 2 * ms, dir: 's', flags: "S", seq: 9, id: 5}, {at: 3 * ms, dir: 'c', flags: "RA", ack: 10}},
			want: []want{ended(Reject, 0, 1*ms, -1, 0, 0), {kind: Ended, result: Reject, reversed: true, start: 2 * ms, end: 3 * ms, synack: -1}},
		},
		{
			name: "a session is forgotten a second after success: the same ISN opens anew",
			steps: []step{syn(0, 1, 100), synAck(1*ms, 0, 500), ack(2 * ms),
				syn(1*s1+3*ms, 2, 1103), synAck(1*s1+4*ms, 0, 1504), ack(1*s1 + 5*ms)},
			want: []want{ended(Success, 0, 2*ms, 1*ms, 0, 0), ended(Success, 1*s1+3*ms, 1*s1+5*ms, 1*s1+4*ms, 0, 0)},
		},
	}
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios() {
		for _, v6 := range []bool{false, true} {
			name := sc.name + "/IPv4"
			if v6 {
				name = sc.name + "/IPv6"
			}
			t.Run(name, func(t *testing.T) {
				c, events := run(t, v6, sc.cfg, sc.steps)
				w := sc.want
				if v6 && sc.want6 != nil {
					w = sc.want6
				}
				check(t, v6, events, w)
				if c.Duplicates() != sc.dups {
					t.Errorf("duplicates = %d, want %d", c.Duplicates(), sc.dups)
				}
				if c.InProgress() != sc.inProgress {
					t.Errorf("in progress = %d, want %d", c.InProgress(), sc.inProgress)
				}
				if c.Overflow() != sc.overflow {
					t.Errorf("overflow = %d, want %d", c.Overflow(), sc.overflow)
				}

				// NoEndpoints changes nothing but the addresses.
				cfg := sc.cfg
				cfg.NoEndpoints = true
				_, bare := run(t, v6, cfg, sc.steps)
				for i := range events {
					events[i].Init, events[i].Resp = netip.Addr{}, netip.Addr{}
				}
				if !slices.Equal(bare, events) {
					t.Errorf("with NoEndpoints:\n%s\nwant\n%s", eventsString(bare), eventsString(events))
				}
			})
		}
	}
}

// TestFilterMask checks that sessions no filter counts are not tracked and
// that the mask travels with the session.
func TestFilterMask(t *testing.T) {
	var events []Event
	c := New(Config{Timeout: time.Minute, MaxSessions: 10,
		Match: func(init, resp netip.Addr, port uint16) uint64 {
			if port == 22 {
				return 0
			}
			return 0b101
		},
		Emit: func(e *Event) { events = append(events, *e) }})
	for _, port := range []uint16{22, 80} {
		c.Handle(&decode.Packet{Kind: decode.KindTCP, Src: cli4, Dst: srv4, SrcPort: 1, DstPort: port, Flags: decode.SYN, Seq: 1}, t0)
		c.Handle(&decode.Packet{Kind: decode.KindTCP, Src: srv4, Dst: cli4, SrcPort: port, DstPort: 1, Flags: decode.RST | decode.ACK, Ack: 2}, t0+1)
	}
	if len(events) != 1 || events[0].RespPort != 80 || events[0].Filters != 0b101 {
		t.Fatalf("events %+v; want one for port 80 with filters 101", events)
	}
}

// TestMemoryBounded checks that the memories of ended sessions are bounded
// by MaxSessions under a flood of rejected SYNs.
func TestMemoryBounded(t *testing.T) {
	c := New(Config{Timeout: time.Minute, MaxSessions: 100})
	for i := 0; i < 10000; i++ {
		port := uint16(1024 + i%60000)
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		c.Handle(&decode.Packet{Kind: decode.KindTCP, Src: src, Dst: srv4, SrcPort: port, DstPort: 80, Flags: decode.SYN, Seq: 1}, t0+int64(i))
		c.Handle(&decode.Packet{Kind: decode.KindTCP, Src: srv4, Dst: src, SrcPort: 80, DstPort: port, Flags: decode.RST | decode.ACK, Ack: 2}, t0+int64(i))
	}
	if n := c.tab.used; n > 3*100 {
		t.Fatalf("table holds %d entries; want at most 300", n)
	}
	if n := handedOut(&c.tab); n > 3*100+1 {
		t.Fatalf("slab grew to %d entries; want at most 301", n)
	}
}

// TestTableChurn inserts and removes many entries in random order and checks
// that every remaining one is still found (backward-shift deletion).
func TestTableChurn(t *testing.T) {
	tab := newTable(12345)
	live := map[int32]addr{}
	var seq uint64 = 1
	next := func() uint64 { seq = seq*6364136223846793005 + 1442695040888963407; return seq }
	for round := 0; round < 200000; round++ {
		if len(live) < 3000 && next()%3 != 0 {
			a := addr{next(), next()}
			i := tab.alloc()
			e := tab.at(i)
			e.ia, e.ra, e.iport, e.rport = a, addr{1, 2}, 7, 9
			tab.insert(i, tab.hashOf(a, 7, addr{1, 2}, 9))
			live[i] = a
		} else {
			for i := range live {
				tab.remove(i)
				delete(live, i)
				break
			}
		}
	}
	for i, a := range live {
		got, fromInit := tab.lookup(tab.hashOf(addr{1, 2}, 9, a, 7), addr{1, 2}, 9, a, 7)
		if got != i || fromInit {
			t.Fatalf("entry %d: lookup from the responder gave %d, %v", i, got, fromInit)
		}
	}
	if tab.used != len(live) {
		t.Fatalf("used %d, want %d", tab.used, len(live))
	}
}

// TestTableGrowsIncrementally inserts and removes entries at random while
// the index doubles several times, and looks entries up in both directions
// all along: with the old index half moved, live entries are found, and
// removed ones are not, wherever their slot was (moved, tombstoned, or
// still to move). It also checks that growth is spread over insertions.
func TestTableGrowsIncrementally(t *testing.T) {
	tab := newTable(777)
	var seq uint64 = 99
	next := func() uint64 { seq = seq*6364136223846793005 + 1442695040888963407; return seq >> 11 }
	resp := addr{3, 4}
	live := map[int32]addr{}
	var order []int32 // live entries, for picking one at random
	var gone []addr   // removed initiators
	migrating := 0    // insertions that found the old index still there
	find := func(a addr) int32 {
		i, fromInit := tab.lookup(tab.hashOf(a, 1, resp, 2), a, 1, resp, 2)
		j, fromResp := tab.lookup(tab.hashOf(resp, 2, a, 1), resp, 2, a, 1)
		if i != j || (i >= 0 && (!fromInit || fromResp)) {
			t.Fatalf("%v: lookups %d (%v) and %d (%v) disagree", a, i, fromInit, j, fromResp)
		}
		return i
	}
	for op := 0; op < 300000; op++ {
		if len(order) == 0 || next()%10 < 7 {
			a := addr{next(), next()}
			i := tab.alloc()
			e := tab.at(i)
			e.ia, e.ra, e.iport, e.rport = a, resp, 1, 2
			if tab.old != nil {
				migrating++
			}
			tab.insert(i, tab.hashOf(a, 1, resp, 2))
			live[i] = a
			order = append(order, i)
		} else {
			k := int(next() % uint64(len(order)))
			i := order[k]
			order[k] = order[len(order)-1]
			order = order[:len(order)-1]
			a := live[i]
			gone = append(gone, a)
			tab.remove(i)
			delete(live, i)
			if got := find(a); got >= 0 {
				t.Fatalf("op %d: entry %d, just removed, found as %d (old index: %v)", op, i, got, tab.old != nil)
			}
		}
		if op%97 == 0 {
			for n := 0; n < 4 && len(order) > 0; n++ {
				i := order[next()%uint64(len(order))]
				if got := find(live[i]); got != i {
					t.Fatalf("op %d: entry %d found as %d (old index: %v)", op, i, got, tab.old != nil)
				}
			}
			if len(gone) > 0 {
				if got := find(gone[next()%uint64(len(gone))]); got >= 0 {
					t.Fatalf("op %d: a removed entry was found as %d (old index: %v)", op, got, tab.old != nil)
				}
			}
		}
	}
	for i, a := range live {
		if got := find(a); got != i {
			t.Fatalf("entry %d found as %d", i, got)
		}
	}
	for _, a := range gone {
		if got := find(a); got >= 0 {
			t.Fatalf("removed %v found as %d", a, got)
		}
	}
	slots := 0
	for _, s := range tab.index {
		if s != 0 {
			slots++
		}
	}
	for pos, s := range tab.old {
		if s != 0 && s != tombstone && pos >= tab.migrated {
			slots++
		}
	}
	if slots != len(live) || tab.used != len(live) {
		t.Errorf("%d slots in use, used %d, want %d", slots, tab.used, len(live))
	}
	if migrating == 0 || len(tab.index) < 1<<18 {
		t.Errorf("%d insertions while an old index was being moved, index of %d slots: the test did not grow the table as meant", migrating, len(tab.index))
	}
}

// TestHashSpreadsTuples inserts tuples whose address and port bits cancel
// each other when combined carelessly, and checks that the table's
// clusters stay short: a SYN flood of such tuples must not turn lookups
// into scans.
func TestHashSpreadsTuples(t *testing.T) {
	for _, seed := range []uint64{1, 0xdeadbeef} {
		tab := newTable(seed)
		for i := 0; i < 100000; i++ {
			src := addrOf(netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)}))
			dst := addrOf(netip.AddrFrom4([4]byte{10, 2, 0, 1}))
			j := tab.alloc()
			e := tab.at(j)
			e.ia, e.ra, e.iport, e.rport = src, dst, uint16(i), 443
			tab.insert(j, tab.hashOf(src, uint16(i), dst, 443))
		}
		longest, run := 0, 0
		for _, s := range tab.index {
			if s == 0 {
				run = 0
				continue
			}
			run++
			longest = max(longest, run)
		}
		if longest > 100 {
			t.Errorf("seed %x: a cluster of %d slots", seed, longest)
		}
	}
}

// TestEntryLayout checks that an entry is two cache lines, with the fields
// lookups and lists touch in the first.
func TestEntryLayout(t *testing.T) {
	var e entry
	if s := unsafe.Sizeof(e); s != 128 {
		t.Errorf("entry is %d bytes, want 128", s)
	}
	if o := unsafe.Offsetof(e.next) + unsafe.Sizeof(e.next); o > 64 {
		t.Errorf("the first cache line's fields end at %d", o)
	}
}

// TestHashAdversarial checks that addresses chosen to cancel one factor of
// the hash's multiplications (low 64 bits fixed, to 0 or to constants of
// the code) still spread over the table whatever their prefix.
func TestHashAdversarial(t *testing.T) {
	for _, low := range []uint64{0, 0xe7037ed1a0b428db, 0xa0761d6478bd642f, ^uint64(0)} {
		tab := newTable(42)
		seen := map[uint32]bool{}
		const n = 20000
		for i := uint64(0); i < n; i++ {
			src := addr{0x20010db8<<32 | i, low}
			seen[tab.hashOf(src, 40000, addr{1, 2}, 443)] = true
		}
		if len(seen) < n*99/100 {
			t.Errorf("low bits %#x: %d distinct hashes of %d", low, len(seen), n)
		}
	}
}

// TestTimeEdges checks timestamps that could overflow or jump: a capture
// dated near the end of int64, all at time 0, and a packet stamped decades
// ahead in the middle of a capture.
func TestTimeEdges(t *testing.T) {
	type pkt struct {
		at    int64
		flags uint8
		seq   uint32
		ack   uint32
		sport uint16
		fromS bool
	}
	hs := func(base int64, sport uint16) []pkt {
		return []pkt{
			{base, decode.SYN, 1, 0, sport, false},
			{base + 1e6, decode.SYN | decode.ACK, 9, 2, sport, true},
			{base + 2e6, decode.ACK, 2, 10, sport, false},
		}
	}
	feed := func(ps []pkt) (*Classifier, []Event) {
		var evs []Event
		c := New(Config{Timeout: time.Minute, MaxSessions: 100, Emit: func(e *Event) { evs = append(evs, *e) }})
		for _, q := range ps {
			p := decode.Packet{Kind: decode.KindTCP, Src: cli4, Dst: srv4, SrcPort: q.sport, DstPort: 80, Flags: q.flags, Seq: q.seq, Ack: q.ack}
			if q.fromS {
				p.Src, p.Dst, p.SrcPort, p.DstPort = srv4, cli4, 80, q.sport
			}
			c.Handle(&p, q.at)
		}
		return c, evs
	}
	t.Run("near the end of int64", func(t *testing.T) {
		_, evs := feed(hs(math.MaxInt64-5e6, 1000))
		if len(evs) != 1 || evs[0].Result != Success || evs[0].End-evs[0].Start != 2e6 {
			t.Errorf("events %+v, want one success of 2 ms", evs)
		}
	})
	t.Run("time 0", func(t *testing.T) {
		_, evs := feed(hs(0, 1000))
		if len(evs) != 1 || evs[0].Result != Success || !evs[0].SawSynAck {
			t.Errorf("events %+v, want one success that saw its SYN/ACK", evs)
		}
	})
	t.Run("a packet from the future", func(t *testing.T) {
		ps := hs(t0, 1000)
		ps = append(ps, pkt{t0 + int64(80*365*24*time.Hour), decode.ACK, 5, 5, 999, false}) // matches nothing
		ps = append(ps, hs(t0+int64(time.Second), 1001)...)
		ps = append(ps, pkt{t0 + int64(2*time.Second), decode.SYN, 7, 0, 1002, false})
		ps = append(ps, pkt{t0 + int64(100*time.Second), decode.SYN, 70, 0, 1003, false})
		c, evs := feed(ps)
		if len(evs) != 3 {
			t.Fatalf("events %+v, want 2 successes and a timeout", evs)
		}
		if e := evs[1]; e.Result != Success || e.End-e.Start != 2e6 || e.Start != t0+int64(time.Second) {
			t.Errorf("session after the step: %+v, want a success of 2 ms at t0+1s", e)
		}
		if e := evs[2]; e.Result != Timeout || e.End != t0+int64(62*time.Second) {
			t.Errorf("unanswered SYN after the step: %+v, want a timeout at its SYN + 60 s", e)
		}
		if c.ClockSteps() != 1 || c.InProgress() != 1 {
			t.Errorf("clock steps %d, in progress %d; want 1, 1", c.ClockSteps(), c.InProgress())
		}
	})
}
