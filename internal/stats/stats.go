// Package stats keeps tcpeek's counters: per filter, the sessions by result
// and the handshake-time distributions, and for the whole monitor, the
// capture and session-table counters.
//
// The pipeline goroutine is the only writer. Readers (the summary, the stats
// socket, the Prometheus collector) take a Snapshot, a consistent copy, so
// that every output of one moment agrees with the others.
package stats

import (
	"math"
	"sync"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/protocol"
)

// Success and Failure are the per-filter counters of sessions by result,
// as the stats socket sends them.
type (
	Success = protocol.Success
	Failure = protocol.Failure
)

// FilterInfo describes a filter: what the outputs name and print.
type FilterInfo struct {
	Name      string
	Direction string   // RX, TX or ANY
	Rules     []string // the rules as written canonically, e.g. "10.0.0.0/8:80"
}

// Describe returns the descriptions of filters, in order.
func Describe(filters []*filter.Filter) []FilterInfo {
	out := make([]FilterInfo, len(filters))
	for i, f := range filters {
		out[i] = FilterInfo{Name: f.Name, Direction: f.Dir.String(), Rules: f.RuleStrings()}
	}
	return out
}

// Filter holds the description and counters of one named filter.
type Filter struct {
	FilterInfo
	Success Success
	Failure Failure
	// Handshake is the distribution of SYN → end of handshake of the
	// successful sessions.
	Handshake Histogram
	// SynAck is the distribution of SYN → first SYN/ACK of every session
	// that saw a SYN/ACK.
	SynAck Histogram
	// Displaced counts sessions of the filter displaced from a full
	// session table before they ended (SPEC §11).
	Displaced uint64
}

// Add counts an event of the classifier in f.
func (f *Filter) Add(ev *classify.Event) {
	if ev.Kind == classify.LateRetry {
		f.Failure.DupSYN++
		return
	}
	if ev.SawSynAck {
		f.SynAck.Observe(ev.SynAck - ev.Start)
	}
	if ev.Result == classify.Success {
		f.Success.Total++
		if ev.DupSYN > 0 {
			f.Success.DupSYN++
		}
		if ev.DupSYNACK > 0 {
			f.Success.DupSYNACK++
		}
		f.Handshake.Observe(ev.End - ev.Start)
		return
	}
	f.Failure.Total++
	switch ev.Result {
	case classify.Timeout:
		f.Failure.Timeout++
	case classify.Reject:
		f.Failure.Reject++
	case classify.Unreach:
		f.Failure.Unreach++
	case classify.Abort:
		f.Failure.Abort++
	}
	if ev.DupSYN > 0 {
		f.Failure.DupSYN++
	}
	if ev.DupSYNACK > 0 {
		f.Failure.DupSYNACK++
	}
}

// Capture and Sessions are the counters of the packet source and of the
// session table, as the stats socket sends them.
type (
	Capture  = protocol.Capture
	Sessions = protocol.Sessions
)

// Snapshot is a consistent copy of all counters at one moment.
type Snapshot struct {
	Start    time.Time // when counting began (first packet time with -r)
	Now      time.Time // the moment of the snapshot (last packet time with -r)
	Filters  []Filter  // in the order of the filter set
	Capture  Capture
	Sessions Sessions
	Pending  uint64 // sessions in progress at the end of -r input
}

// Stats is the set of counters shared by the pipeline and its readers.
type Stats struct {
	mu   sync.Mutex
	snap Snapshot
}

// New returns counters for the given filters, counting from start.
func New(filters []FilterInfo, start time.Time, maxSessions int) *Stats {
	s := &Stats{snap: Snapshot{
		Start:    start,
		Now:      start,
		Filters:  make([]Filter, len(filters)),
		Sessions: Sessions{Max: uint64(maxSessions)},
	}}
	for i, f := range filters {
		s.snap.Filters[i].FilterInfo = f
	}
	return s
}

// Apply counts events, each in every filter of its mask, under one lock: the
// pipeline hands over the events of a whole batch at once.
func (s *Stats) Apply(evs []classify.Event) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	for i := range evs {
		ev := &evs[i]
		for m, j := ev.Filters, 0; m != 0 && j < len(s.snap.Filters); m, j = m>>1, j+1 {
			if m&1 != 0 {
				s.snap.Filters[j].Add(ev)
			}
		}
	}
	s.mu.Unlock()
}

// Update sets the monitor-wide counters and the time of the snapshot.
func (s *Stats) Update(now time.Time, c Capture, ss Sessions) {
	s.mu.Lock()
	s.snap.Now = now
	s.snap.Capture = c
	max := s.snap.Sessions.Max
	s.snap.Sessions = ss
	if ss.Max == 0 {
		s.snap.Sessions.Max = max
	}
	s.mu.Unlock()
}

// SetStart sets the start time (with -r, the first packet's time).
func (s *Stats) SetStart(t time.Time) {
	s.mu.Lock()
	s.snap.Start = t
	s.mu.Unlock()
}

// SetPending records the sessions still in progress at the end of input.
func (s *Stats) SetPending(n uint64) {
	s.mu.Lock()
	s.snap.Pending = n
	s.mu.Unlock()
}

// Snapshot returns a copy of every counter.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.snap
	c.Filters = append([]Filter(nil), s.snap.Filters...)
	return c
}

// Answer returns the snapshot as the STATS object of the stats socket.
func (s *Snapshot) Answer(version string) *protocol.StatsAnswer {
	a := &protocol.StatsAnswer{
		Version:  version,
		Start:    s.Start.UTC().Format(protocol.TimeFormat),
		Now:      s.Now.UTC().Format(protocol.TimeFormat),
		Filters:  make([]protocol.Filter, len(s.Filters)),
		Pending:  s.Pending,
		Capture:  s.Capture,
		Sessions: s.Sessions,
	}
	for i := range s.Filters {
		f := &s.Filters[i]
		rules := f.Rules
		if rules == nil {
			rules = []string{}
		}
		a.Filters[i] = protocol.Filter{
			Name:        f.Name,
			Direction:   f.Direction,
			Rules:       rules,
			Success:     f.Success,
			Failure:     f.Failure,
			Displaced:   f.Displaced,
			HandshakeMS: f.Handshake.Distribution(),
			SynAckMS:    f.SynAck.Distribution(),
		}
	}
	return a
}

// Distribution summarizes the histogram in milliseconds, rounded to the
// microsecond.
func (h *Histogram) Distribution() protocol.Distribution {
	return protocol.Distribution{
		Count: h.Count,
		P50:   ms(h.Quantile(0.5)),
		P90:   ms(h.Quantile(0.9)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max),
	}
}

// ms converts nanoseconds to milliseconds rounded to the microsecond.
func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
