package output

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
)

// TestSeedLayout checks the session lines byte for byte against the lines
// of the original tool's README, for the same sessions.
func TestSeedLayout(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	at := func(s string) int64 {
		tm, err := time.ParseInLocation("06-01-02 15:04:05.000", s, jst)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	ms := int64(time.Millisecond)
	tests := []struct {
		ev   classify.Event
		want string
	}{
		{classify.Event{Result: classify.Success, Start: at("12-07-06 16:39:02.552"), End: at("12-07-06 16:39:02.552") + 2*ms,
			Init: netip.MustParseAddr("192.168.2.227"), InitPort: 48967, Resp: netip.MustParseAddr("192.168.2.202"), RespPort: 80},
			"   0.002 | 12-07-06 16:39:02.552 |   192.168.2.227:48967   192.168.2.202:80    |      success      |       0        0 "},
		{classify.Event{Result: classify.Success, Start: at("12-07-06 16:39:11.219"), End: at("12-07-06 16:39:11.219") + 2*ms,
			Init: netip.MustParseAddr("192.168.2.227"), InitPort: 42031, Resp: netip.MustParseAddr("192.168.2.202"), RespPort: 443},
			"   0.002 | 12-07-06 16:39:11.219 |   192.168.2.227:42031   192.168.2.202:443   |      success      |       0        0 "},
		{classify.Event{Result: classify.Reject, Start: at("12-07-06 16:39:36.254"), End: at("12-07-06 16:39:36.254") + 1*ms,
			Init: netip.MustParseAddr("192.168.2.228"), InitPort: 62876, Resp: netip.MustParseAddr("192.168.2.227"), RespPort: 80},
			"   0.001 | 12-07-06 16:39:36.254 |   192.168.2.228:62876   192.168.2.227:80    | failure (reject)  |       0        0 "},
		{classify.Event{Result: classify.Timeout, Start: at("12-07-06 16:41:29.723"), End: at("12-07-06 16:41:29.723") + 39947*ms, DupSYN: 2,
			Init: netip.MustParseAddr("192.168.2.227"), InitPort: 58376, Resp: netip.MustParseAddr("192.168.2.207"), RespPort: 8080},
			"  39.947 | 12-07-06 16:41:29.723 |   192.168.2.227:58376   192.168.2.207:8080  | failure (timeout) |       2        0 "},
		{classify.Event{Result: classify.Unreach, Start: at("12-07-06 16:41:29.723"), End: at("12-07-06 16:41:29.723") + 12345678*ms, DupSYNACK: 1234567,
			Init: netip.MustParseAddr("2001:db8::1"), InitPort: 1, Resp: netip.MustParseAddr("10.0.0.1"), RespPort: 65535},
			"12345.678 | 12-07-06 16:41:29.723 |   [2001:db8::1]:1            10.0.0.1:65535 | failure (unreach) |       0  1234567 "},
		// Picked up again after it was displaced: no made-up time or counts.
		{classify.Event{Result: classify.Success, Reopened: true, Start: at("12-07-06 16:41:29.723"), End: at("12-07-06 16:41:29.723") + 3*ms, DupSYN: 1,
			Init: netip.MustParseAddr("192.168.2.227"), InitPort: 58376, Resp: netip.MustParseAddr("192.168.2.207"), RespPort: 8080},
			"       - | 12-07-06 16:41:29.723 |   192.168.2.227:58376   192.168.2.207:8080  |      success      |       -        - "},
	}
	for _, tc := range tests {
		got := string(AppendLine(nil, &tc.ev, jst))
		if got != tc.want {
			t.Errorf("got\n%q\nwant\n%q", got, tc.want)
		}
		if len(tc.want) == len(Rule) && len(got) != len(Rule) {
			t.Errorf("line is %d bytes, the rule %d", len(got), len(Rule))
		}
	}
	if len(Header) != 117 || len(Rule) != 118 {
		t.Errorf("header %d and rule %d bytes, want the seed's 117 and 118", len(Header), len(Rule))
	}
}

// TestJSONLines checks session objects against literal JSON, a session
// picked up again after it was displaced included.
func TestJSONLines(t *testing.T) {
	start := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC).UnixNano()
	ms := int64(time.Millisecond)
	cli, srv := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		ev   classify.Event
		want string
	}{
		{classify.Event{Result: classify.Success, Filters: 0b11, Start: start, SynAck: start + ms, SawSynAck: true, End: start + 2*ms, DupSYN: 1,
			Init: cli, InitPort: 50000, Resp: srv, RespPort: 80},
			`{"ts":"2024-03-01T09:30:00.000000000Z","src":"198.51.100.10","sport":50000,"dst":"192.0.2.1","dport":80,"result":"success","icmp_code":null,"dup_syn":1,"dup_synack":0,"synack_ms":1.000,"handshake_ms":2.000,"filters":["RX","web"]}`},
		{classify.Event{Result: classify.Unreach, Filters: 0b1, Start: start, End: start + 5*ms, ICMPType: 3, ICMPCode: 13,
			Init: cli, InitPort: 50000, Resp: srv, RespPort: 80},
			`{"ts":"2024-03-01T09:30:00.000000000Z","src":"198.51.100.10","sport":50000,"dst":"192.0.2.1","dport":80,"result":"unreach","icmp_code":13,"dup_syn":0,"dup_synack":0,"synack_ms":null,"handshake_ms":5.000,"filters":["RX"]}`},
		{classify.Event{Result: classify.Reject, Reopened: true, Filters: 0b1, Start: start, SynAck: start + ms, SawSynAck: true, End: start + 2*ms, DupSYN: 1,
			Init: cli, InitPort: 50000, Resp: srv, RespPort: 80},
			`{"ts":"2024-03-01T09:30:00.000000000Z","src":"198.51.100.10","sport":50000,"dst":"192.0.2.1","dport":80,"result":"reject","icmp_code":null,"dup_syn":null,"dup_synack":null,"synack_ms":null,"handshake_ms":null,"filters":["RX"]}`},
	} {
		var b strings.Builder
		if err := NewJSONLines(&b, []string{"RX", "web"}).Event(&tc.ev); err != nil {
			t.Fatal(err)
		}
		if got := b.String(); got != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
