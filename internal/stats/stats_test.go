package stats

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/protocol"
)

func TestBounds(t *testing.T) {
	if len(Bounds)+1 != numBuckets {
		t.Fatalf("%d bounds, %d buckets", len(Bounds), numBuckets)
	}
	for i := 1; i < len(Bounds); i++ {
		if Bounds[i] <= Bounds[i-1] {
			t.Fatalf("bounds not increasing at %d: %d, %d", i, Bounds[i-1], Bounds[i])
		}
		if r := float64(Bounds[i]) / float64(Bounds[i-1]); r > 1.21 {
			t.Errorf("bucket %d is %.2f times the previous one; quantiles would be coarse", i, r)
		}
	}
	if len(promIndex) != len(PrometheusBounds) {
		t.Fatal("promIndex incomplete")
	}
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		name    string
		obs     []time.Duration
		q       float64
		want    time.Duration
		tolPct  float64
		cumAt1s uint64
	}{
		{"empty", nil, 0.5, 0, 0, 0},
		{"one", []time.Duration{3 * time.Millisecond}, 0.5, 3 * time.Millisecond, 12, 1},
		{"max caps", []time.Duration{1234 * time.Microsecond}, 1, 1234 * time.Microsecond, 0.001, 1},
		{"p90 of 1..100 ms", msRange(1, 100), 0.9, 90 * time.Millisecond, 10, 100},
		{"p50 of 1..100 ms", msRange(1, 100), 0.5, 50 * time.Millisecond, 10, 100},
		{"beyond 100 s: interpolated up to the max", []time.Duration{200 * time.Second}, 0.5, 150 * time.Second, 0.001, 0},
		{"negative is 0", []time.Duration{-5}, 0.5, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tc.obs {
				h.Observe(int64(d))
			}
			got := time.Duration(h.Quantile(tc.q))
			if diff := math.Abs(float64(got - tc.want)); diff > float64(tc.want)*tc.tolPct/100 {
				t.Errorf("Quantile(%v) = %v, want %v ±%v%%", tc.q, got, tc.want, tc.tolPct)
			}
			cum := h.Cumulative()
			for j, b := range PrometheusBounds {
				if b == 1 && cum[j] != tc.cumAt1s {
					t.Errorf("cumulative at 1 s = %d, want %d", cum[j], tc.cumAt1s)
				}
				if j > 0 && cum[j] < cum[j-1] {
					t.Errorf("cumulative decreases at %v", b)
				}
			}
		})
	}
}

func TestHistogramBucketEdges(t *testing.T) {
	var h Histogram
	h.Observe(int64(time.Second))     // exactly on a bound: in the bucket "<= 1 s"
	h.Observe(int64(time.Second) + 1) // just above
	cum := h.Cumulative()
	for j, b := range PrometheusBounds {
		switch b {
		case 1:
			if cum[j] != 1 {
				t.Errorf("le=1: %d, want 1", cum[j])
			}
		case 2.5:
			if cum[j] != 2 {
				t.Errorf("le=2.5: %d, want 2", cum[j])
			}
		}
	}
}

func msRange(from, to int) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i)*time.Millisecond)
	}
	return out
}

func TestApply(t *testing.T) {
	s := New(make([]FilterInfo, 3), time.Unix(0, 0), 10)
	evs := []classify.Event{
		{Result: classify.Success, Filters: 0b011, Start: 0, End: 2e6, SynAck: 1e6, SawSynAck: true, DupSYN: 2},
		{Result: classify.Success, Filters: 0b001, Start: 0, End: 1e6, DupSYNACK: 1},
		{Result: classify.Timeout, Filters: 0b100, DupSYN: 3},
		{Result: classify.Reject, Filters: 0b100},
		{Result: classify.Unreach, Filters: 0b100},
		{Result: classify.Abort, Filters: 0b100, SynAck: 5, SawSynAck: true, DupSYNACK: 1},
		{Kind: classify.LateRetry, Filters: 0b110},
	}
	s.Apply(evs)
	snap := s.Snapshot()
	want := []struct {
		succ Success
		fail Failure
	}{
		{Success{Total: 2, DupSYN: 1, DupSYNACK: 1}, Failure{}},
		{Success{Total: 1, DupSYN: 1}, Failure{DupSYN: 1}},
		{Success{}, Failure{Total: 4, Timeout: 1, Reject: 1, Unreach: 1, Abort: 1, DupSYN: 2, DupSYNACK: 1}},
	}
	for i, w := range want {
		f := snap.Filters[i]
		if f.Success != w.succ || f.Failure != w.fail {
			t.Errorf("filter %d: %+v %+v, want %+v %+v", i, f.Success, f.Failure, w.succ, w.fail)
		}
	}
	if snap.Filters[0].Handshake.Count != 2 || snap.Filters[0].SynAck.Count != 1 || snap.Filters[2].SynAck.Count != 1 {
		t.Errorf("histogram counts wrong: %d %d %d", snap.Filters[0].Handshake.Count, snap.Filters[0].SynAck.Count, snap.Filters[2].SynAck.Count)
	}
	// The snapshot is a copy.
	s.Apply(evs[:1])
	if snap.Filters[0].Success.Total != 2 {
		t.Error("snapshot changed after Apply")
	}
}

// TestObserveBucket checks Observe's bucket search against a plain search.
func TestObserveBucket(t *testing.T) {
	for _, d := range []int64{0, 1, 9999, 10000, 10001, 11000, 123456, 999999999, 1e9, 1e9 + 1, 99e9, 100e9, 100e9 + 1, math.MaxInt64} {
		var h Histogram
		h.Observe(d)
		want := len(Bounds)
		for i, b := range Bounds {
			if b >= d {
				want = i
				break
			}
		}
		if h.Buckets[want] != 1 {
			t.Errorf("Observe(%d): not in bucket %d", d, want)
		}
	}
}

// TestAnswer checks the STATS object of a snapshot against literal JSON, so
// that a renamed or swapped key fails.
func TestAnswer(t *testing.T) {
	s := New([]FilterInfo{
		{Name: "RX", Direction: "RX", Rules: []string{"*:*"}},
		{Name: "web", Direction: "ANY", Rules: []string{"10.0.0.0/8:80", "[2001:db8::/32]:443-444"}},
	}, time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC), 1000)
	s.Apply([]classify.Event{
		{Result: classify.Success, Filters: 0b11, Start: 0, End: 2e6, SynAck: 1e6, SawSynAck: true, DupSYN: 1},
		{Result: classify.Reject, Filters: 0b10, DupSYNACK: 2},
	})
	s.Update(time.Date(2024, 3, 1, 9, 31, 0, 5, time.UTC),
		Capture{Packets: 1, Drops: 2, IfDrops: 3, BadChecksum: 4, Duplicates: 5, KernelFilter: "ebpf"},
		Sessions{InProgress: 6, Overflow: 7, Displaced: 8, Evicted: 9})
	s.SetPending(10)
	snap := s.Snapshot()
	got := string(protocol.Encode(snap.Answer("9.9.9")))
	want := `{"version":"9.9.9","start":"2024-03-01T09:30:00.000000000Z","now":"2024-03-01T09:31:00.000000005Z",` +
		`"filters":[{"name":"RX","direction":"RX","rules":["*:*"],` +
		`"success":{"total":1,"dupsyn":1,"dupsynack":0},` +
		`"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0,"dupsyn":0,"dupsynack":0},"displaced":0,` +
		`"handshake_ms":{"count":1,"p50":1.875,"p90":1.975,"p99":1.998,"max":2},"synack_ms":{"count":1,"p50":0.95,"p90":0.99,"p99":0.999,"max":1}},` +
		`{"name":"web","direction":"ANY","rules":["10.0.0.0/8:80","[2001:db8::/32]:443-444"],` +
		`"success":{"total":1,"dupsyn":1,"dupsynack":0},` +
		`"failure":{"total":1,"timeout":0,"reject":1,"unreach":0,"abort":0,"dupsyn":0,"dupsynack":1},"displaced":0,` +
		`"handshake_ms":{"count":1,"p50":1.875,"p90":1.975,"p99":1.998,"max":2},"synack_ms":{"count":1,"p50":0.95,"p90":0.99,"p99":0.999,"max":1}}],` +
		`"pending":10,` +
		`"capture":{"packets":1,"drops":2,"ifdrops":3,"bad_checksum":4,"duplicates":5,"kernel_filter":"ebpf"},` +
		`"sessions":{"in_progress":6,"max":1000,"overflow":7,"displaced":8,"evicted":9}}` + "\n"
	if got != want {
		t.Errorf("STATS\n got %s\nwant %s", got, want)
	}
}

// TestTopAnswer checks the TOP answer against literal JSON: the peer of an
// RX filter is the initiator, that of a TX or ANY filter the responder;
// successes and other events are not failures.
func TestTopAnswer(t *testing.T) {
	s := New([]FilterInfo{
		{Name: "RX", Direction: "RX"},
		{Name: "TX", Direction: "TX"},
		{Name: "all", Direction: "ANY"},
	}, time.Unix(0, 0), 1000)
	at := time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC).UnixNano()
	client, server := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("192.0.2.1")
	s.Apply([]classify.Event{
		{Result: classify.Reject, Filters: 0b101, Init: client, Resp: server, RespPort: 443, End: at},
		{Result: classify.Reject, Filters: 0b101, Init: client, Resp: server, RespPort: 443, End: at + 1e9},
		{Result: classify.Timeout, Filters: 0b110, Init: server, Resp: netip.MustParseAddr("2001:db8::5"), RespPort: 5432, End: at + 2e9},
		{Result: classify.Success, Filters: 0b111, Init: client, Resp: server, RespPort: 443, End: at},
		{Kind: classify.LateRetry, Filters: 0b111},
	})
	s.Update(time.Unix(0, at+3e9), Capture{}, Sessions{})
	got := string(protocol.Encode(s.TopAnswer(10)))
	peer := func(p string, port, fails, timeout, reject int, last string) string {
		return fmt.Sprintf(`{"peer":"%s","port":%d,"failures":%d,"timeout":%d,"reject":%d,"unreach":0,"abort":0,"error":0,"last":"2024-03-01T09:30:0%s.000000000Z"}`,
			p, port, fails, timeout, reject, last)
	}
	rx := peer("198.51.100.7", 443, 2, 0, 2, "1")
	tx := peer("2001:db8::5", 5432, 1, 1, 0, "2")
	all := peer("192.0.2.1", 443, 2, 0, 2, "1")
	want := `{"now":"2024-03-01T09:30:03.000000000Z","filters":[` +
		`{"name":"RX","direction":"RX","since_start":[` + rx + `],"last_minute":[` + rx + `],"services":[{"port":443,"failures":2}]},` +
		`{"name":"TX","direction":"TX","since_start":[` + tx + `],"last_minute":[` + tx + `],"services":[{"port":5432,"failures":1}]},` +
		`{"name":"all","direction":"ANY","since_start":[` + all + `,` + tx + `],"last_minute":[` + all + `,` + tx + `],"services":[{"port":443,"failures":2},{"port":5432,"failures":1}]}]}` + "\n"
	if got != want {
		t.Errorf("TOP\n got %s\nwant %s", got, want)
	}
	// STATS holds the same lists under each filter's top key.
	a := s.Answer("x")
	if a.Filters[0].Top == nil || len(a.Filters[0].Top.SinceStart) != 1 || a.Filters[0].Top.SinceStart[0].Peer != "198.51.100.7" {
		t.Errorf("STATS top of RX: %+v", a.Filters[0].Top)
	}
}

// TestApplyDisplaced counts displaced sessions apart, never as failures,
// and keeps those picked up again after their displacement out of the time
// distributions while counting their result.
func TestApplyDisplaced(t *testing.T) {
	s := New(make([]FilterInfo, 1), time.Unix(0, 0), 10)
	s.Apply([]classify.Event{
		{Kind: classify.Displaced, Filters: 1, Start: 0, End: 5e6},
		{Kind: classify.Displaced, Filters: 1, Reopened: true},
		{Result: classify.Success, Filters: 1, Reopened: true, Start: 1e9, SynAck: 1e9 + 1e6, SawSynAck: true, End: 1e9 + 2e6, DupSYN: 1},
		{Result: classify.Timeout, Filters: 1, Reopened: true, Start: 1e9, End: 61e9, DupSYN: 1},
	})
	f := s.Snapshot().Filters[0]
	if f.Displaced != 2 || f.Success != (Success{Total: 1, DupSYN: 1}) || f.Failure != (Failure{Total: 1, Timeout: 1, DupSYN: 1}) {
		t.Errorf("displaced %d, success %+v, failure %+v", f.Displaced, f.Success, f.Failure)
	}
	if f.Handshake.Count != 0 || f.SynAck.Count != 0 {
		t.Errorf("a reopened session's times were observed: handshake %d, synack %d", f.Handshake.Count, f.SynAck.Count)
	}
}
