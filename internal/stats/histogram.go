package stats

import (
	"math"
	"math/bits"
	"sort"
	"time"
)

// Bounds are the upper bounds of the fine buckets of a Histogram, in
// nanoseconds: from 10 µs to 100 s, 19 per decade (mantissas 1, 1.1, 1.2,
// 1.3, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9), so a
// quantile read from them is within about 10% of the true value. A last
// bucket holds everything longer.
var Bounds = func() []int64 {
	mantissas := []float64{1, 1.1, 1.2, 1.3, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9}
	var b []int64
	for scale := int64(10 * time.Microsecond); scale < int64(100*time.Second); scale *= 10 {
		for _, m := range mantissas {
			b = append(b, int64(math.Round(m*float64(scale))))
		}
	}
	return append(b, int64(100*time.Second))
}()

// firstBucket[n] is the first bucket that can hold a duration of n
// significant bits, so that Observe scans a handful of bounds at most.
var firstBucket = func() (f [65]uint8) {
	for n := 1; n <= 64; n++ {
		lo := int64(1) << (n - 1) // the smallest duration of n bits
		if n == 64 {
			lo = math.MaxInt64
		}
		f[n] = uint8(sort.Search(len(Bounds), func(i int) bool { return Bounds[i] >= lo }))
	}
	return f
}()

// PrometheusBounds are the bucket bounds tcpeek exposes to Prometheus, in
// seconds: 100 µs to 60 s, in steps that separate local and remote round
// trips and the SYN retransmissions of Linux (1, 3, 7, 15, 31 s). Each is
// one of Bounds, so the exposed buckets are sums of fine buckets.
var PrometheusBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// numBuckets is the number of fine buckets, the overflow bucket included.
const numBuckets = 7*19 + 2

// Histogram is a distribution of durations in fine buckets, from which both
// quantiles and Prometheus histograms are read.
type Histogram struct {
	Buckets [numBuckets]uint64 // Buckets[i]: durations <= Bounds[i] (and > Bounds[i-1])
	Count   uint64
	Sum     int64 // nanoseconds
	Max     int64 // nanoseconds
}

// Observe adds one duration d (nanoseconds; negative counts as 0).
func (h *Histogram) Observe(d int64) {
	if d < 0 {
		d = 0
	}
	i := int(firstBucket[bits.Len64(uint64(d))])
	for i < len(Bounds) && Bounds[i] < d {
		i++
	}
	h.Buckets[i]++
	h.Count++
	h.Sum += d
	if d > h.Max {
		h.Max = d
	}
}

// Quantile returns the q-quantile (0 < q <= 1) in nanoseconds, interpolated
// linearly within its fine bucket and never above the maximum; 0 when the
// histogram is empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var cum uint64
	for i, n := range h.Buckets {
		if n == 0 || float64(cum+n) < rank {
			cum += n
			continue
		}
		lo, hi := int64(0), h.Max
		if i > 0 {
			lo = Bounds[i-1]
		}
		if i < len(Bounds) && Bounds[i] < hi {
			hi = Bounds[i]
		}
		if hi < lo {
			return hi
		}
		frac := (rank - float64(cum)) / float64(n)
		return lo + int64(frac*float64(hi-lo))
	}
	return h.Max
}

// promIndex[j] is the index in Bounds of PrometheusBounds[j].
var promIndex = func() []int {
	idx := make([]int, len(PrometheusBounds))
	for j, b := range PrometheusBounds {
		ns := int64(math.Round(b * 1e9))
		k := sort.Search(len(Bounds), func(i int) bool { return Bounds[i] >= ns })
		if k == len(Bounds) || Bounds[k] != ns {
			panic("stats: a Prometheus bound is not a fine bucket bound")
		}
		idx[j] = k
	}
	return idx
}()

// Cumulative returns, for each bound of PrometheusBounds, how many durations
// are at most that long.
func (h *Histogram) Cumulative() []uint64 {
	out := make([]uint64, len(PrometheusBounds))
	var cum uint64
	i := 0
	for j, k := range promIndex {
		for ; i <= k; i++ {
			cum += h.Buckets[i]
		}
		out[j] = cum
	}
	return out
}
