package top_test

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/tcpeek/tcpeek/internal/top"
)

// pair is a (peer, port) pair of the exact model.
type pair struct {
	addr netip.Addr
	port uint16
}

// exactEvent is one failure as the exact model keeps it.
type exactEvent struct {
	p  pair
	r  top.Result
	at int64
}

// exactCounts counts events exactly: failures, per result, and the latest
// time of each pair, for the events that keep returns true.
type exactCount struct {
	failures uint64
	res      [4]uint64
	last     int64
}

func exactOf(evs []exactEvent, keep func(int64) bool) (map[pair]*exactCount, map[uint16]uint64, uint64) {
	pairs := map[pair]*exactCount{}
	ports := map[uint16]uint64{}
	var total uint64
	for _, e := range evs {
		if !keep(e.at) {
			continue
		}
		c := pairs[e.p]
		if c == nil {
			c = &exactCount{}
			pairs[e.p] = c
		}
		c.failures++
		c.res[e.r]++
		c.last = max(c.last, e.at)
		ports[e.p.port]++
		total++
	}
	return pairs, ports, total
}

// checkBounds checks an answer's rows against exact counts: the bounds of
// every row, rows sorted as SPEC §7 says, and every pair with more than
// floor failures present (floor is total/capacity, or for a merged window
// its total/window capacity). It returns the largest error seen.
func checkBounds(t *testing.T, what string, rows []top.Peer, exact map[pair]*exactCount, floor float64, lastExact bool) uint64 {
	t.Helper()
	var maxErr uint64
	seen := map[pair]bool{}
	for i, r := range rows {
		p := pair{r.Addr, r.Port}
		seen[p] = true
		maxErr = max(maxErr, r.Error)
		var c exactCount
		if e := exact[p]; e != nil {
			c = *e
		}
		if r.Failures < r.Error || r.Failures-r.Error > c.failures || c.failures > r.Failures {
			t.Fatalf("%s: %v:%d reports %d failures, error %d; true %d", what, r.Addr, r.Port, r.Failures, r.Error, c.failures)
		}
		if r.Timeout+r.Reject+r.Unreach+r.Abort+r.Error != r.Failures {
			t.Fatalf("%s: %+v: results and error do not sum to failures", what, r)
		}
		for j, got := range []uint64{r.Timeout, r.Reject, r.Unreach, r.Abort} {
			if got > c.res[j] || c.res[j] > got+r.Error {
				t.Fatalf("%s: %v:%d reports %d %v, error %d; true %d", what, r.Addr, r.Port, got, top.Result(j), r.Error, c.res[j])
			}
		}
		if r.Last > c.last || (lastExact && r.Last != c.last) {
			t.Fatalf("%s: %v:%d last %d, true %d", what, r.Addr, r.Port, r.Last, c.last)
		}
		if i > 0 {
			q := rows[i-1]
			if c := cmp.Or(cmp.Compare(r.Failures, q.Failures), q.Addr.Compare(r.Addr), cmp.Compare(q.Port, r.Port)); c >= 0 {
				t.Fatalf("%s: rows %d and %d out of order: %+v, %+v", what, i-1, i, q, r)
			}
		}
	}
	for p, c := range exact {
		if float64(c.failures) > floor && !seen[p] {
			t.Fatalf("%s: %v:%d has %d failures, more than %.1f, and is missing", what, p.addr, p.port, c.failures, floor)
		}
	}
	return maxErr
}

func checkServices(t *testing.T, what string, got []top.Service, exact map[uint16]uint64) {
	t.Helper()
	want := []top.Service{}
	for p, n := range exact {
		want = append(want, top.Service{Port: p, Failures: n})
	}
	slices.SortFunc(want, func(a, b top.Service) int {
		return cmp.Or(cmp.Compare(b.Failures, a.Failures), cmp.Compare(a.Port, b.Port))
	})
	if !slices.Equal(got, want[:min(len(want), top.MaxN)]) {
		t.Fatalf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// TestErrorBounds feeds random Zipf-distributed streams to small sketches
// and checks every answer, taken at many times, against exact counts:
// since start, every pair's failures lie within [failures - error,
// failures] and every pair with more than total/capacity failures is
// listed; in the last minute likewise against the failures of the periods
// the window covers, with total/window capacity; services are exact.
// Capacities are below MaxN, so an answer lists every tracked pair.
func TestErrorBounds(t *testing.T) {
	for _, tc := range []struct {
		name          string
		capacity, win int
		keys          uint64
		zipf          float64
		events        int
		step          int64 // mean time between failures
		jitter        int64 // failures come up to this much out of order
		seed          uint64
	}{
		{"capacity 1", 1, 1, 20, 1.5, 3000, 50e6, 0, 1},
		{"skewed", 50, 20, 500, 1.3, 20000, 20e6, 0, 2},
		{"flat", 50, 20, 2000, 1.01, 20000, 20e6, 0, 3},
		{"out of order", 64, 16, 1000, 1.2, 20000, 20e6, 5e9, 4},
		{"sparse in time", 30, 10, 300, 1.4, 5000, 200e6, 30e9, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(tc.seed, 7))
			z := rand.NewZipf(r, tc.zipf, 1, tc.keys-1)
			tp := top.New(top.Config{Filters: 1, Capacity: tc.capacity, WindowCapacity: tc.win, Seed: tc.seed})
			var evs []exactEvent
			clock, latest := t0, int64(0)
			var maxSince, maxWin uint64
			for i := range tc.events {
				k := z.Uint64()
				p := pair{netip.AddrFrom4([4]byte{10, 0, byte(k >> 8), byte(k)}), uint16(80 + k%3)}
				if k%2 == 1 {
					p.addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(k >> 8), 15: byte(k)})
				}
				clock += r.Int64N(2 * tc.step)
				at := clock
				if tc.jitter > 0 {
					at -= r.Int64N(tc.jitter)
				}
				latest = max(latest, at)
				e := exactEvent{p, top.Result(r.IntN(4)), at}
				evs = append(evs, e)
				tp.Add(0, p.addr, p.port, e.r, at)
				if i%997 != 0 && i != tc.events-1 {
					continue
				}
				now := clock + r.Int64N(15e9) - 5e9
				f := tp.Snapshot(top.MaxN, now)[0]

				exact, ports, total := exactOf(evs, func(int64) bool { return true })
				maxSince = max(maxSince, checkBounds(t, "since_start", f.SinceStart, exact, float64(total)/float64(tc.capacity), tc.jitter == 0))
				var sum uint64
				for _, row := range f.SinceStart {
					sum += row.Failures
				}
				if want := min(uint64(tc.capacity), uint64(len(exact))); uint64(len(f.SinceStart)) != want || sum != total {
					t.Fatalf("since_start: %d rows, failures sum to %d; want %d rows, %d", len(f.SinceStart), sum, want, total)
				}
				checkServices(t, "services", f.Services, ports)

				// The window holds the periods q-6 to q, q being that of
				// now or of the latest failure if later.
				q := floorDiv(max(now, latest), top.Granularity)
				inWindow := func(at int64) bool { return floorDiv(at, top.Granularity) > q-7 }
				exactW, portsW, totalW := exactOf(evs, inWindow)
				maxWin = max(maxWin, checkBounds(t, "last_minute", f.LastMinute, exactW, float64(totalW)/float64(tc.win), false))
				checkServices(t, "services_last_minute", f.ServicesLastMinute, portsW)

				// A shorter answer is the start of the full one: the
				// merge may stop early, but never too early.
				for _, n := range []int{1, 2, 5, 10} {
					g := tp.Snapshot(n, now)[0]
					for _, l := range []struct {
						what      string
						got, full []top.Peer
					}{{"since_start", g.SinceStart, f.SinceStart}, {"last_minute", g.LastMinute, f.LastMinute}} {
						if want := l.full[:min(n, len(l.full))]; !slices.Equal(l.got, want) {
							t.Fatalf("%s, n=%d:\ngot:%s\nwant:%s", l.what, n, fmtPeers(l.got), fmtPeers(want))
						}
					}
					if want := f.Services[:min(n, len(f.Services))]; !slices.Equal(g.Services, want) {
						t.Fatalf("services, n=%d: got %v, want %v", n, g.Services, want)
					}
					if want := f.ServicesLastMinute[:min(n, len(f.ServicesLastMinute))]; !slices.Equal(g.ServicesLastMinute, want) {
						t.Fatalf("services_last_minute, n=%d: got %v, want %v", n, g.ServicesLastMinute, want)
					}
				}
			}
			t.Logf("largest error: since start %d, last minute %d", maxSince, maxWin)
		})
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
