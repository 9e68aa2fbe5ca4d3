package web

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// counters returns a STATS answer of daemon start with one filter per
// name, each with the same counters.
func counters(start string, names []string, success, reject, displaced uint64) *protocol.StatsAnswer {
	a := &protocol.StatsAnswer{Start: start}
	for _, n := range names {
		a.Filters = append(a.Filters, protocol.Filter{
			Name:      n,
			Success:   protocol.Success{Total: success},
			Failure:   protocol.Failure{Total: reject, Reject: reject},
			Displaced: displaced,
		})
	}
	return a
}

func seriesJSON(t *testing.T, s *series, after uint64) string {
	t.Helper()
	b, err := json.Marshal(s.answer(after))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSeries(t *testing.T) {
	t0 := time.UnixMilli(1709283600000) // 2024-03-01T09:00:00Z
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	web := []string{"web"}

	s := newSeries(3*time.Second, time.Second) // 4 samples: 3 points
	if got, want := seriesJSON(t, s, 0), `{"start":"","interval_ms":1000,"history_ms":3000,"last":0,"filters":[],"points":[]}`; got != want {
		t.Errorf("empty:\n%s\nwant\n%s", got, want)
	}
	s.add(at(0), counters("A", web, 10, 0, 0))
	if got, want := seriesJSON(t, s, 0), `{"start":"A","interval_ms":1000,"history_ms":3000,"last":1,"filters":["web"],"points":[]}`; got != want {
		t.Errorf("one sample, no interval yet:\n%s\nwant\n%s", got, want)
	}
	s.add(at(1000), counters("A", web, 12, 0, 0))
	s.add(at(2000), counters("A", web, 12, 40, 1))
	s.add(at(3500), counters("A", web, 15, 40, 1)) // a late tick: a longer interval
	want := `{"start":"A","interval_ms":1000,"history_ms":3000,"last":4,"filters":["web"],"points":[` +
		`{"seq":2,"t":1709283601000,"dt":1000,"counts":[{"success":2}]},` +
		`{"seq":3,"t":1709283602000,"dt":1000,"counts":[{"reject":40,"displaced":1}]},` +
		`{"seq":4,"t":1709283603500,"dt":1500,"counts":[{"success":3}]}]}`
	if got := seriesJSON(t, s, 0); got != want {
		t.Errorf("three points:\n%s\nwant\n%s", got, want)
	}

	// The ring holds 4 samples: the fifth drops the first, and with it the
	// point that needed it.
	s.add(at(4500), counters("A", web, 15, 41, 1))
	want = `{"start":"A","interval_ms":1000,"history_ms":3000,"last":5,"filters":["web"],"points":[` +
		`{"seq":3,"t":1709283602000,"dt":1000,"counts":[{"reject":40,"displaced":1}]},` +
		`{"seq":4,"t":1709283603500,"dt":1500,"counts":[{"success":3}]},` +
		`{"seq":5,"t":1709283604500,"dt":1000,"counts":[{"reject":1}]}]}`
	if got := seriesJSON(t, s, 0); got != want {
		t.Errorf("after wrapping:\n%s\nwant\n%s", got, want)
	}

	// after: only newer points; an after from the future (another daemon):
	// every point.
	for _, tt := range []struct {
		after uint64
		seqs  []uint64
	}{{0, []uint64{3, 4, 5}}, {3, []uint64{4, 5}}, {4, []uint64{5}}, {5, nil}, {6, []uint64{3, 4, 5}}, {1 << 60, []uint64{3, 4, 5}}} {
		var got []uint64
		for _, p := range s.answer(tt.after).Points {
			got = append(got, p.Seq)
		}
		if !slices.Equal(got, tt.seqs) {
			t.Errorf("after %d: points %v; want %v", tt.after, got, tt.seqs)
		}
	}

	// A sample no later than the newest is dropped.
	s.add(at(4500), counters("A", web, 99, 99, 9))
	s.add(at(4000), counters("A", web, 99, 99, 9))
	if a := s.answer(0); a.Last != 5 {
		t.Errorf("samples at or before the newest time were kept: last %d; want 5", a.Last)
	}

	// A counter that goes back was reset: the interval counts its value.
	s.add(at(5500), counters("A", web, 2, 41, 1))
	if got, want := s.answer(5).Points[0].Counts[0], (Counts{Success: 2}); got != want {
		t.Errorf("after a reset: %+v; want %+v", got, want)
	}

	// A restart (another start) begins a new history; seq goes on, so a
	// page that asks after its last seq gets the new points.
	s.add(at(6500), counters("B", web, 0, 0, 0))
	if a := s.answer(0); a.Start != "B" || a.Last != 7 || len(a.Points) != 0 {
		t.Errorf("after a restart: %+v; want start B, last 7, no points", a)
	}
	s.add(at(7500), counters("B", web, 5, 0, 0))
	if a := s.answer(6); len(a.Points) != 1 || a.Points[0].Seq != 8 || a.Points[0].Counts[0].Success != 5 {
		t.Errorf("after a restart, the next point: %+v", a)
	}

	// Other filters are another daemon too.
	s.add(at(8500), counters("B", []string{"web", "db"}, 5, 0, 0))
	if a := s.answer(0); len(a.Points) != 0 || len(a.Filters) != 2 {
		t.Errorf("after a change of filters: %+v; want no points, 2 filters", a)
	}
}

// TestSeriesBounded checks that memory does not grow with time.
func TestSeriesBounded(t *testing.T) {
	s := newSeries(10*time.Minute, time.Second)
	names := []string{"RX", "TX", "web"}
	t0 := time.Unix(1700000000, 0)
	for i := range 2000 {
		s.add(t0.Add(time.Duration(i)*time.Second), counters("A", names, uint64(i), uint64(i/2), 0))
	}
	if len(s.ring) != 601 || s.held != 601 {
		t.Errorf("ring of %d, %d held; want 601 (10 min at 1 s, and one before)", len(s.ring), s.held)
	}
	if a := s.answer(0); len(a.Points) != 600 || a.Points[0].Seq != 1401 || a.Last != 2000 {
		t.Errorf("%d points from seq %d to %d; want 600 from 1401 to 2000", len(a.Points), a.Points[0].Seq, a.Last)
	}
	allocs := testing.AllocsPerRun(100, func() {
		t0 = t0.Add(time.Second)
		s.add(t0, counters("A", names, 1, 1, 0))
	})
	// counters itself allocates its answer; add must not add more.
	base := testing.AllocsPerRun(100, func() { _ = counters("A", names, 1, 1, 0) })
	if allocs > base {
		t.Errorf("add allocates %.0f times per sample beyond its input; want 0", allocs-base)
	}
}
