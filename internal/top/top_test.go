package top_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/tcpeek/tcpeek/internal/top"
)

// t0 is 3 s into a Granularity period, so that window edges and period
// edges differ.
const t0 = int64(1_704_067_203e9)

// ev is one failure for a test: filters as a bit set, time in seconds
// after t0.
type ev struct {
	filters uint64
	peer    string
	port    uint16
	r       top.Result
	at      float64
}

func (e ev) time() int64 { return t0 + int64(e.at*1e9) }

// row builds an expected Peer; last is in seconds after t0.
func row(peer string, port uint16, failures, timeout, reject, unreach, abort, err uint64, last float64) top.Peer {
	return top.Peer{
		Addr: netip.MustParseAddr(peer), Port: port, Failures: failures,
		Timeout: timeout, Reject: reject, Unreach: unreach, Abort: abort,
		Error: err, Last: t0 + int64(last*1e9),
	}
}

func svc(port uint16, failures uint64) top.Service {
	return top.Service{Port: port, Failures: failures}
}

func feed(tp *top.Top, evs []ev) {
	for _, e := range evs {
		if e.filters == 1 {
			tp.Add(0, netip.MustParseAddr(e.peer), e.port, e.r, e.time())
		} else {
			tp.AddSet(e.filters, netip.MustParseAddr(e.peer), e.port, e.r, e.time())
		}
	}
}

func fmtPeers(ps []top.Peer) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n\t%s:%d f=%d t=%d r=%d u=%d a=%d err=%d last=%+.3fs", p.Addr, p.Port, p.Failures,
			p.Timeout, p.Reject, p.Unreach, p.Abort, p.Error, float64(p.Last-t0)/1e9)
	}
	return b.String()
}

func comparePeers(t *testing.T, what string, got, want []top.Peer) {
	t.Helper()
	if got == nil {
		t.Errorf("%s is nil, want an empty list", what)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:%s\nwant:%s", what, fmtPeers(got), fmtPeers(want))
	}
}

func compareServices(t *testing.T, what string, got, want []top.Service) {
	t.Helper()
	if got == nil {
		t.Errorf("%s is nil, want an empty list", what)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// want is the expected answer for one filter.
type want struct {
	since, minute       []top.Peer
	services, svcMinute []top.Service
}

// TestSnapshotExact checks whole answers where the sketches hold every pair
// (exact, error 0) and a few where they must replace some (error > 0).
func TestSnapshotExact(t *testing.T) {
	// Failures at t0 (3 s into its period) show in the last minute until
	// the query's period is 6 after theirs: a query 66 s later still
	// shows them, 67 s later no longer (SPEC: granularity <= 10 s).
	old := []ev{
		{1, "192.0.2.9", 22, top.Reject, 0},
		{1, "192.0.2.9", 22, top.Timeout, 0.5},
	}
	old22 := []top.Peer{row("192.0.2.9", 22, 2, 1, 1, 0, 0, 0, 0.5)}
	for _, tc := range []struct {
		name     string
		cfg      top.Config
		evs      []ev
		n        int
		now      float64 // seconds after t0
		want     []want  // per filter
		wantRows int     // if want is nil: the number of rows of filter 0
	}{
		{
			name: "empty",
			cfg:  top.Config{Filters: 2},
			want: []want{{}, {}},
		},
		{
			name: "ordering: failures, then IPv4 before IPv6 and address, then port",
			cfg:  top.Config{Filters: 1},
			evs: []ev{
				{1, "2001:db8::1", 443, top.Timeout, 1},
				{1, "198.51.100.7", 443, top.Reject, 2},
				{1, "2001:db8::1", 443, top.Timeout, 3},
				{1, "198.51.100.7", 80, top.Abort, 4},
				{1, "192.0.2.1", 22, top.Unreach, 5},
				{1, "198.51.100.7", 443, top.Unreach, 6},
				{1, "198.51.100.7", 80, top.Abort, 7},
				{1, "10.0.0.1", 443, top.Reject, 8},
				{1, "198.51.100.7", 443, top.Reject, 9},
				{1, "2001:db8::1", 443, top.Timeout, 10},
				{1, "198.51.100.7", 80, top.Abort, 11},
				{1, "::ffff:10.0.0.1", 443, top.Reject, 12},
			},
			n: 10, now: 12,
			want: same([]want{{
				since: []top.Peer{
					row("198.51.100.7", 80, 3, 0, 0, 0, 3, 0, 11),
					row("198.51.100.7", 443, 3, 0, 2, 1, 0, 0, 9),
					row("2001:db8::1", 443, 3, 3, 0, 0, 0, 0, 10),
					row("10.0.0.1", 443, 1, 0, 1, 0, 0, 0, 8),
					row("192.0.2.1", 22, 1, 0, 0, 1, 0, 0, 5),
					row("::ffff:10.0.0.1", 443, 1, 0, 1, 0, 0, 0, 12),
				},
				services: []top.Service{svc(443, 8), svc(80, 3), svc(22, 1)},
			}}),
		},
		{
			name: "N limits every list; ties at the cut are decided by address",
			cfg:  top.Config{Filters: 1},
			evs: []ev{
				{1, "192.0.2.3", 80, top.Reject, 1},
				{1, "192.0.2.2", 81, top.Reject, 1},
				{1, "192.0.2.1", 82, top.Reject, 1},
				{1, "192.0.2.4", 80, top.Reject, 2},
			},
			n: 2, now: 2,
			want: same([]want{{
				since: []top.Peer{
					row("192.0.2.1", 82, 1, 0, 1, 0, 0, 0, 1),
					row("192.0.2.2", 81, 1, 0, 1, 0, 0, 0, 1),
				},
				services: []top.Service{svc(80, 2), svc(81, 1)},
			}}),
		},
		{
			name: "N below 1 means the default",
			cfg:  top.Config{Filters: 1},
			evs:  manyPeers(25),
			n:    0, wantRows: top.DefaultN,
		},
		{
			name: "N above the maximum gives the maximum",
			cfg:  top.Config{Filters: 1, Capacity: 2000, WindowCapacity: 2000},
			evs:  manyPeers(1500),
			n:    5000, wantRows: top.MaxN,
		},
		{
			name: "filters count apart; a set counts in each",
			cfg:  top.Config{Filters: 3},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 1},
				{0b110, "192.0.2.2", 443, top.Timeout, 2},
				{0b100, "192.0.2.2", 443, top.Abort, 3},
			},
			n: 10, now: 3,
			want: same([]want{
				{since: []top.Peer{row("192.0.2.1", 80, 1, 0, 1, 0, 0, 0, 1)}, services: []top.Service{svc(80, 1)}},
				{since: []top.Peer{row("192.0.2.2", 443, 1, 1, 0, 0, 0, 0, 2)}, services: []top.Service{svc(443, 1)}},
				{since: []top.Peer{row("192.0.2.2", 443, 2, 1, 0, 0, 1, 0, 3)}, services: []top.Service{svc(443, 2)}},
			}),
		},
		{
			name: "last is the latest failure even when failures come out of order",
			cfg:  top.Config{Filters: 1},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 5},
				{1, "192.0.2.1", 80, top.Timeout, 2}, // a timeout ends at its deadline, before later rejects
			},
			n: 10, now: 5,
			want: same([]want{{
				since:    []top.Peer{row("192.0.2.1", 80, 2, 1, 1, 0, 0, 0, 5)},
				services: []top.Service{svc(80, 2)},
			}}),
		},
		{
			name: "window: 59 s later the failures are in the last minute",
			cfg:  top.Config{Filters: 1},
			evs:  old, n: 10, now: 59,
			want: []want{{since: old22, minute: old22, services: []top.Service{svc(22, 2)}, svcMinute: []top.Service{svc(22, 2)}}},
		},
		{
			name: "window: 66 s later they still are (granularity)",
			cfg:  top.Config{Filters: 1},
			evs:  old, n: 10, now: 66,
			want: []want{{since: old22, minute: old22, services: []top.Service{svc(22, 2)}, svcMinute: []top.Service{svc(22, 2)}}},
		},
		{
			name: "window: 67 s later they are not",
			cfg:  top.Config{Filters: 1},
			evs:  old, n: 10, now: 67,
			want: []want{{since: old22, services: []top.Service{svc(22, 2)}}},
		},
		{
			name: "window: nor 71 s later",
			cfg:  top.Config{Filters: 1},
			evs:  old, n: 10, now: 71,
			want: []want{{since: old22, services: []top.Service{svc(22, 2)}}},
		},
		{
			name: "window: a query before the latest failure is taken at the latest failure",
			cfg:  top.Config{Filters: 1},
			evs:  append(slices.Clone(old), ev{1, "192.0.2.8", 23, top.Abort, 100}),
			n:    10, now: -1000,
			want: []want{{
				since:     append(slices.Clone(old22), row("192.0.2.8", 23, 1, 0, 0, 0, 1, 0, 100)),
				minute:    []top.Peer{row("192.0.2.8", 23, 1, 0, 0, 0, 1, 0, 100)},
				services:  []top.Service{svc(22, 2), svc(23, 1)},
				svcMinute: []top.Service{svc(23, 1)},
			}},
		},
		{
			name: "window: the span of a period that left is reused, and spans add up",
			cfg:  top.Config{Filters: 1},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 0},
				{1, "192.0.2.2", 80, top.Reject, 20},
				{1, "192.0.2.3", 443, top.Timeout, 70}, // the span of t0's period
				{1, "192.0.2.2", 80, top.Unreach, 75},
			},
			n: 10, now: 75,
			want: []want{{
				since: []top.Peer{
					row("192.0.2.2", 80, 2, 0, 1, 1, 0, 0, 75),
					row("192.0.2.1", 80, 1, 0, 1, 0, 0, 0, 0),
					row("192.0.2.3", 443, 1, 1, 0, 0, 0, 0, 70),
				},
				minute: []top.Peer{
					row("192.0.2.2", 80, 2, 0, 1, 1, 0, 0, 75),
					row("192.0.2.3", 443, 1, 1, 0, 0, 0, 0, 70),
				},
				services:  []top.Service{svc(80, 3), svc(443, 1)},
				svcMinute: []top.Service{svc(80, 2), svc(443, 1)},
			}},
		},
		{
			name: "window: a failure already out of the window counts since start only",
			cfg:  top.Config{Filters: 1},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 100},
				{1, "192.0.2.2", 81, top.Reject, 29}, // period 7 before 100's
			},
			n: 10, now: 100,
			want: []want{{
				since: []top.Peer{
					row("192.0.2.1", 80, 1, 0, 1, 0, 0, 0, 100),
					row("192.0.2.2", 81, 1, 0, 1, 0, 0, 0, 29),
				},
				minute:    []top.Peer{row("192.0.2.1", 80, 1, 0, 1, 0, 0, 0, 100)},
				services:  []top.Service{svc(80, 1), svc(81, 1)},
				svcMinute: []top.Service{svc(80, 1)},
			}},
		},
		{
			name: "results out of range are ignored",
			cfg:  top.Config{Filters: 1},
			evs:  []ev{{1, "192.0.2.1", 80, top.Result(9), 1}, {3, "192.0.2.1", 80, top.Result(4), 1}},
			n:    10, now: 1,
			want: []want{{}},
		},
		{
			// Capacity 2: the third pair takes over the entry with the
			// smallest count (the last one inserted), inheriting its
			// count 1 as error. True counts: .1 = 2, .2 = 1, .3 = 1.
			name: "full sketch: a new pair replaces the smallest and inherits its count as error",
			cfg:  top.Config{Filters: 1, Capacity: 2, WindowCapacity: 2},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 1},
				{1, "192.0.2.1", 80, top.Reject, 2},
				{1, "192.0.2.2", 80, top.Reject, 3},
				{1, "192.0.2.3", 80, top.Timeout, 4},
			},
			n: 10, now: 4,
			want: []want{{
				since: []top.Peer{
					row("192.0.2.1", 80, 2, 0, 2, 0, 0, 0, 2),
					row("192.0.2.3", 80, 2, 1, 0, 0, 0, 1, 4),
				},
				minute: []top.Peer{
					row("192.0.2.1", 80, 2, 0, 2, 0, 0, 0, 2),
					row("192.0.2.3", 80, 2, 1, 0, 0, 0, 1, 4),
				},
				services:  []top.Service{svc(80, 4)},
				svcMinute: []top.Service{svc(80, 4)},
			}},
		},
		{
			// Window capacity 1. Period of t0: .1 then .2, which takes
			// over with error 1 (missing = 2). Next period: .1 alone
			// (nothing replaced, missing = 0). Merged: .2 = 2 + 0, error
			// 1; .1 = 1 + 2 (it may hide in the first span), error 2.
			// True counts: 2 and 1, within both bounds.
			name: "window merge: a pair missing from a full span may have had its smallest count",
			cfg:  top.Config{Filters: 1, Capacity: 10, WindowCapacity: 1},
			evs: []ev{
				{1, "192.0.2.1", 80, top.Reject, 0},
				{1, "192.0.2.2", 80, top.Reject, 1},
				{1, "192.0.2.1", 80, top.Unreach, 10},
			},
			n: 10, now: 10,
			want: []want{{
				since: []top.Peer{
					row("192.0.2.1", 80, 2, 0, 1, 1, 0, 0, 10),
					row("192.0.2.2", 80, 1, 0, 1, 0, 0, 0, 1),
				},
				minute: []top.Peer{
					row("192.0.2.1", 80, 3, 0, 0, 1, 0, 2, 10),
					row("192.0.2.2", 80, 2, 0, 1, 0, 0, 1, 1),
				},
				services:  []top.Service{svc(80, 3)},
				svcMinute: []top.Service{svc(80, 3)},
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := top.New(tc.cfg)
			feed(tp, tc.evs)
			got := tp.Snapshot(tc.n, t0+int64(tc.now*1e9))
			if len(got) != tc.cfg.Filters {
				t.Fatalf("%d filters in the answer, want %d", len(got), tc.cfg.Filters)
			}
			if tc.want == nil {
				f := got[0]
				for what, n := range map[string]int{"since_start": len(f.SinceStart), "last_minute": len(f.LastMinute)} {
					if n != tc.wantRows {
						t.Errorf("%s has %d rows, want %d", what, n, tc.wantRows)
					}
				}
				return
			}
			for i, w := range tc.want {
				f := got[i]
				comparePeers(t, fmt.Sprintf("filter %d since_start", i), f.SinceStart, w.since)
				comparePeers(t, fmt.Sprintf("filter %d last_minute", i), f.LastMinute, w.minute)
				compareServices(t, fmt.Sprintf("filter %d services", i), f.Services, w.services)
				compareServices(t, fmt.Sprintf("filter %d services_last_minute", i), f.ServicesLastMinute, w.svcMinute)
			}
		})
	}
}

// same returns ws with the last-minute lists equal to the since-start
// ones, for failures that all lie in the last minute.
func same(ws []want) []want {
	for i := range ws {
		ws[i].minute, ws[i].svcMinute = ws[i].since, ws[i].services
	}
	return ws
}

// TestRebase checks that after packet time steps back, the last minute
// follows the new time and since start keeps everything.
func TestRebase(t *testing.T) {
	tp := top.New(top.Config{Filters: 1})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	tp.Add(0, a, 80, top.Reject, t0+1000*1e9)
	tp.Add(0, a, 80, top.Reject, t0+1005*1e9)
	tp.Rebase(t0)
	tp.Add(0, b, 80, top.Timeout, t0+5e9)
	f := tp.Snapshot(10, t0+5e9)[0]
	comparePeers(t, "since_start", f.SinceStart, []top.Peer{row("192.0.2.1", 80, 2, 0, 2, 0, 0, 0, 1005), row("192.0.2.2", 80, 1, 1, 0, 0, 0, 0, 5)})
	comparePeers(t, "last_minute", f.LastMinute, []top.Peer{row("192.0.2.2", 80, 1, 1, 0, 0, 0, 0, 5)})
	compareServices(t, "services_last_minute", f.ServicesLastMinute, []top.Service{svc(80, 1)})
	// Time goes on to where it was before the step: the old periods'
	// spans have been reused or left the window.
	tp.Add(0, b, 80, top.Timeout, t0+1001e9)
	f = tp.Snapshot(10, t0+1001e9)[0]
	comparePeers(t, "last_minute later", f.LastMinute, []top.Peer{row("192.0.2.2", 80, 1, 1, 0, 0, 0, 0, 1001)})
	compareServices(t, "services_last_minute later", f.ServicesLastMinute, []top.Service{svc(80, 1)})
}

// manyPeers returns one failure for each of n peers, all in one second.
func manyPeers(n int) []ev {
	evs := make([]ev, n)
	for i := range evs {
		evs[i] = ev{1, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String(), uint16(1 + i%7), top.Reject, 1}
	}
	return evs
}

// TestSnapshotJSON checks the field names of the answer against SPEC §7.
func TestSnapshotJSON(t *testing.T) {
	tp := top.New(top.Config{Filters: 1})
	tp.Add(0, netip.MustParseAddr("198.51.100.7"), 443, top.Reject, t0)
	b, err := json.Marshal(tp.Snapshot(10, t0)[0])
	if err != nil {
		t.Fatal(err)
	}
	row := `{"peer":"198.51.100.7","port":443,"failures":1,"timeout":0,"reject":1,"unreach":0,"abort":0,"error":0}`
	want := `{"since_start":[` + row + `],"last_minute":[` + row + `],"services":[{"port":443,"failures":1}],"services_last_minute":[{"port":443,"failures":1}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(top.New(top.Config{Filters: 1}).Snapshot(10, t0)[0])
	if want := `{"since_start":[],"last_minute":[],"services":[],"services_last_minute":[]}`; string(b) != want {
		t.Errorf("empty: got %s, want %s", b, want)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[top.Result]string{top.Timeout: "timeout", top.Reject: "reject", top.Unreach: "unreach", top.Abort: "abort", 9: "unknown"} {
		if got := r.String(); got != want {
			t.Errorf("Result(%d) = %q, want %q", r, got, want)
		}
	}
}

// TestConcurrentSnapshots backs the promise that Snapshot only reads:
// several at once, under a read lock, race with nothing (go test -race).
func TestConcurrentSnapshots(t *testing.T) {
	tp := top.New(top.Config{Filters: 2, Capacity: 64, WindowCapacity: 16})
	for i := range uint64(5000) {
		tp.AddSet(3, peerN(i%300), services[i%6], top.Result(i%4), t0+int64(i)*20e6)
	}
	want := tp.Snapshot(50, t0+100e9)
	done := make(chan []top.FilterTop)
	for range 4 {
		go func() { done <- tp.Snapshot(50, t0+100e9) }()
	}
	for range 4 {
		got := <-done
		for i := range want {
			comparePeers(t, "since_start", got[i].SinceStart, want[i].SinceStart)
			comparePeers(t, "last_minute", got[i].LastMinute, want[i].LastMinute)
		}
	}
}
