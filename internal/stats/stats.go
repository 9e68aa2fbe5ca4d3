// Package stats keeps tcpeek's counters: per filter, the sessions by result
// and the handshake-time distributions, and for the whole monitor, the
// capture and session-table counters.
//
// The pipeline goroutine is the only writer. Readers (the summary, the stats
// socket, the Prometheus collector) take a Snapshot, a consistent copy, so
// that every output of one moment agrees with the others.
package stats

import (
	"sync"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
)

// Success counts the sessions of a filter that completed their handshake.
type Success struct {
	Total     uint64 `json:"total"`
	DupSYN    uint64 `json:"dupsyn"`    // sessions with at least one retransmitted SYN
	DupSYNACK uint64 `json:"dupsynack"` // sessions with at least one retransmitted SYN/ACK
}

// Failure counts the sessions of a filter that failed, by cause.
type Failure struct {
	Total     uint64 `json:"total"`
	Timeout   uint64 `json:"timeout"`
	Reject    uint64 `json:"reject"`
	Unreach   uint64 `json:"unreach"`
	Abort     uint64 `json:"abort"`
	DupSYN    uint64 `json:"dupsyn"`
	DupSYNACK uint64 `json:"dupsynack"`
}

// Filter holds the counters of one named filter.
type Filter struct {
	Success Success
	Failure Failure
	// Handshake is the distribution of SYN → end of handshake of the
	// successful sessions.
	Handshake Histogram
	// SynAck is the distribution of SYN → first SYN/ACK of every session
	// that saw a SYN/ACK.
	SynAck Histogram
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

// Capture holds the counters of the packet source and the decoder.
type Capture struct {
	Packets     uint64 `json:"packets"`      // frames received
	Drops       uint64 `json:"drops"`        // dropped by the kernel (buffer full)
	IfDrops     uint64 `json:"ifdrops"`      // dropped by the interface or its driver
	BadChecksum uint64 `json:"bad_checksum"` // dropped for a wrong checksum (-c)
	Duplicates  uint64 `json:"duplicates"`   // SYN and SYN/ACK capture copies
}

// Sessions holds the counters of the session table.
type Sessions struct {
	InProgress uint64 `json:"in_progress"`
	Max        uint64 `json:"max"`
	Overflow   uint64 `json:"overflow"`
	// Evicted counts ended sessions forgotten before their time because
	// the memory of failed or completed sessions was full (a retry of one
	// then counts as a new attempt).
	Evicted uint64 `json:"evicted"`
}

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

// New returns counters for n filters, counting from start.
func New(n int, start time.Time, maxSessions int) *Stats {
	return &Stats{snap: Snapshot{
		Start:    start,
		Now:      start,
		Filters:  make([]Filter, n),
		Sessions: Sessions{Max: uint64(maxSessions)},
	}}
}

// Add counts an event in every filter of its mask.
func (s *Stats) Add(ev *classify.Event) {
	s.mu.Lock()
	for m, i := ev.Filters, 0; m != 0 && i < len(s.snap.Filters); m, i = m>>1, i+1 {
		if m&1 != 0 {
			s.snap.Filters[i].Add(ev)
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
