package stats

import (
	"math"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
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
		{"p90 of 1..100 ms", ms(1, 100), 0.9, 90 * time.Millisecond, 10, 100},
		{"p50 of 1..100 ms", ms(1, 100), 0.5, 50 * time.Millisecond, 10, 100},
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

func ms(from, to int) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i)*time.Millisecond)
	}
	return out
}

func TestAdd(t *testing.T) {
	s := New(3, time.Unix(0, 0), 10)
	evs := []classify.Event{
		{Result: classify.Success, Filters: 0b011, Start: 0, End: 2e6, SynAck: 1e6, SawSynAck: true, DupSYN: 2},
		{Result: classify.Success, Filters: 0b001, Start: 0, End: 1e6, DupSYNACK: 1},
		{Result: classify.Timeout, Filters: 0b100, DupSYN: 3},
		{Result: classify.Reject, Filters: 0b100},
		{Result: classify.Unreach, Filters: 0b100},
		{Result: classify.Abort, Filters: 0b100, SynAck: 5, SawSynAck: true, DupSYNACK: 1},
		{Kind: classify.LateRetry, Filters: 0b110},
	}
	for i := range evs {
		s.Add(&evs[i])
	}
	snap := s.Snapshot()
	want := []struct {
		succ Success
		fail Failure
	}{
		{Success{2, 1, 1}, Failure{}},
		{Success{1, 1, 0}, Failure{DupSYN: 1}},
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
	s.Add(&evs[0])
	if snap.Filters[0].Success.Total != 2 {
		t.Error("snapshot changed after Add")
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
