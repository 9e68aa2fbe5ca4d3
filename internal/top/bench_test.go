package top_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/tcpeek/tcpeek/internal/top"
)

// scramble maps i to a pseudo-random value below d, so that benchmarks
// visit d distinct peers in no particular order.
func scramble(i, d uint64) uint64 {
	i *= 0x9e3779b97f4a7c15
	i ^= i >> 29
	return i % d
}

// BenchmarkAdd adds failures of peers drawn uniformly from d distinct
// ones, one a microsecond of packet time (the window turns over every
// 10000 failures). With d above the capacity nearly every failure is of
// an untracked peer and replaces the smallest entry: the worst case.
// BenchmarkMapBaseline/peers=* below is the exact, unbounded alternative,
// a map increment per failure, on the same stream.
func BenchmarkAdd(b *testing.B) {
	for _, d := range []uint64{1e3, 1e5, 1e7} {
		b.Run(fmt.Sprintf("peers=%d", d), func(b *testing.B) {
			tp := top.New(top.Config{Filters: 1, Seed: 1})
			const fill = 200000 // over 80 s: fills every sketch of the window
			for i := range uint64(fill) {
				n := scramble(i, d)
				tp.Add(0, peerN(n), services[n%6], top.Result(n%4), t0+int64(i)*400e3)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range uint64(b.N) {
				n := scramble(fill+i, d)
				tp.Add(0, peerN(n), services[n%6], top.Result(n%4), t0+fill*400e3+int64(i)*1e3)
			}
		})
	}
}

// BenchmarkMapBaseline is the baseline of BenchmarkAdd: exact counts in
// a map, whose memory grows with the peers (so not run at 10^7).
func BenchmarkMapBaseline(b *testing.B) {
	type pk struct {
		a    netip.Addr
		port uint16
	}
	for _, d := range []uint64{1e3, 1e5} {
		b.Run(fmt.Sprintf("peers=%d", d), func(b *testing.B) {
			m := map[pk]uint64{}
			for i := range d * 2 {
				n := scramble(i, d)
				m[pk{peerN(n), services[n%6]}]++
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range uint64(b.N) {
				n := scramble(i, d)
				m[pk{peerN(n), services[n%6]}]++
			}
		})
	}
}

// BenchmarkSnapshot takes answers from a Top whose sketches are all full,
// as STATS (N = 10) and TOP 1000 do, under the caller's lock: with peers
// drawn uniformly from 10^5 (the worst case, where every count is tied
// with many others and the merge of the window must look at every entry)
// and Zipf-distributed (exponent 1.2, the usual few heavy hitters).
func BenchmarkSnapshot(b *testing.B) {
	for _, dist := range []string{"uniform", "zipf"} {
		tp := top.New(top.Config{Filters: 1, Seed: 1})
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(r, 1.2, 1, 1e5-1)
		var i uint64
		for ; i < 200000; i++ {
			n := scramble(i, 1e5)
			if dist == "zipf" {
				n = z.Uint64()
			}
			tp.Add(0, peerN(n), services[n%6], top.Result(n%4), t0+int64(i)*500e3)
		}
		now := t0 + int64(i)*500e3
		for _, n := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/n=%d", dist, n), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					tp.Snapshot(n, now)
				}
			})
		}
	}
}
