package web

import (
	"slices"
	"sync"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// Counts are the changes of one filter's counters over one interval.
// Zeros are left out of the JSON: most intervals of most filters are quiet.
type Counts struct {
	Success   uint64 `json:"success,omitempty"`
	Timeout   uint64 `json:"timeout,omitempty"`
	Reject    uint64 `json:"reject,omitempty"`
	Unreach   uint64 `json:"unreach,omitempty"`
	Abort     uint64 `json:"abort,omitempty"`
	Displaced uint64 `json:"displaced,omitempty"`
}

// Point is one interval of the history: what every filter counted in the
// DTMS milliseconds that end at TMS.
type Point struct {
	Seq    uint64   `json:"seq"`    // numbers the points, 1 up, of one daemon
	TMS    int64    `json:"t"`      // end of the interval, Unix milliseconds
	DTMS   int64    `json:"dt"`     // length of the interval, milliseconds
	Counts []Counts `json:"counts"` // per filter, in the order of Filters
}

// SeriesAnswer is the answer of /api/series: the points of the history
// after a given seq (all of them for 0).
type SeriesAnswer struct {
	Start      string   `json:"start"` // the daemon's start, as in STATS: another one means a restart
	IntervalMS int64    `json:"interval_ms"`
	HistoryMS  int64    `json:"history_ms"`
	Last       uint64   `json:"last"` // seq of the newest point (0: none yet)
	Filters    []string `json:"filters"`
	Points     []Point  `json:"points"`
}

// sample is the cumulative counters of one moment.
type sample struct {
	at     time.Time
	counts []Counts // per filter; cumulative
}

// series is the bounded ring of recent samples. Its memory is set when the
// first sample shows how many filters there are: history/interval+1
// samples of 48 bytes per filter.
type series struct {
	history, interval time.Duration

	mu      sync.Mutex
	start   string
	filters []string
	ring    []sample // ring[seq % len(ring)] holds sample seq
	seq     uint64   // the newest sample; 0: none
	held    int      // samples in the ring
}

func newSeries(history, interval time.Duration) *series {
	return &series{history: history, interval: interval}
}

// size is the number of samples kept: one more than the points served.
func (s *series) size() int {
	return max(int(s.history/s.interval), 1) + 1
}

// add records the counters of st, taken at now. Another start or another
// set of filters (a restart) starts the history afresh; a sample no later
// than the previous one (the clock went back) is dropped.
func (s *series) add(now time.Time, st *protocol.StatsAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Start != s.start || !sameFilters(s.filters, st.Filters) {
		s.start = st.Start
		s.filters = make([]string, len(st.Filters))
		for i := range st.Filters {
			s.filters[i] = st.Filters[i].Name
		}
		s.ring = make([]sample, s.size())
		flat := make([]Counts, len(s.ring)*len(s.filters))
		for i := range s.ring {
			s.ring[i].counts = flat[i*len(s.filters) : (i+1)*len(s.filters) : (i+1)*len(s.filters)]
		}
		s.held = 0
		// s.seq goes on from where it was, so that a page that asks for
		// points after an old seq never misses the new ones.
	}
	if s.held > 0 && !now.After(s.ring[s.seq%uint64(len(s.ring))].at) {
		return
	}
	s.seq++
	slot := &s.ring[s.seq%uint64(len(s.ring))]
	slot.at = now
	for i := range st.Filters {
		f := &st.Filters[i]
		slot.counts[i] = Counts{
			Success:   f.Success.Total,
			Timeout:   f.Failure.Timeout,
			Reject:    f.Failure.Reject,
			Unreach:   f.Failure.Unreach,
			Abort:     f.Failure.Abort,
			Displaced: f.Displaced,
		}
	}
	s.held = min(s.held+1, len(s.ring))
}

func sameFilters(names []string, fs []protocol.Filter) bool {
	return slices.EqualFunc(names, fs, func(n string, f protocol.Filter) bool { return n == f.Name })
}

// answer returns the points after seq after. A seq after the newest one
// (a page that knew another daemon) gets every point.
func (s *series) answer(after uint64) *SeriesAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &SeriesAnswer{
		Start:      s.start,
		IntervalMS: s.interval.Milliseconds(),
		HistoryMS:  s.history.Milliseconds(),
		Last:       s.seq,
		Filters:    slices.Clone(s.filters),
		Points:     []Point{},
	}
	if a.Filters == nil {
		a.Filters = []string{}
	}
	if s.held < 2 {
		return a
	}
	if after > s.seq {
		after = 0
	}
	oldest := s.seq - uint64(s.held) + 1
	first := max(after, oldest) + 1 // a point needs the sample before it
	n := uint64(len(s.ring))
	for q := first; q <= s.seq; q++ {
		cur, prev := &s.ring[q%n], &s.ring[(q-1)%n]
		p := Point{
			Seq:    q,
			TMS:    cur.at.UnixMilli(),
			DTMS:   cur.at.Sub(prev.at).Milliseconds(),
			Counts: make([]Counts, len(cur.counts)),
		}
		for i := range cur.counts {
			c, o := &cur.counts[i], &prev.counts[i]
			p.Counts[i] = Counts{
				Success:   delta(c.Success, o.Success),
				Timeout:   delta(c.Timeout, o.Timeout),
				Reject:    delta(c.Reject, o.Reject),
				Unreach:   delta(c.Unreach, o.Unreach),
				Abort:     delta(c.Abort, o.Abort),
				Displaced: delta(c.Displaced, o.Displaced),
			}
		}
		a.Points = append(a.Points, p)
	}
	return a
}

// delta is the change of a counter from prev to cur; a counter that went
// back was reset, and counted cur since.
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}
