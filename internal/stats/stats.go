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
	"github.com/tcpeek/tcpeek/internal/top"
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
//
// A session picked up again after it was displaced (Reopened) counts its
// result and its retransmissions (it had one at least), but stays out of
// the time distributions: its first SYN's time was forgotten.
func (f *Filter) Add(ev *classify.Event) {
	switch ev.Kind {
	case classify.LateRetry:
		f.Failure.DupSYN++
		return
	case classify.Displaced:
		f.Displaced++
		return
	}
	if ev.SawSynAck && !ev.Reopened {
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
		if !ev.Reopened {
			f.Handshake.Observe(ev.End - ev.Start)
		}
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

// Stats is the set of counters shared by the pipeline and its readers, and
// the failing peers of each filter.
type Stats struct {
	mu     sync.RWMutex
	snap   Snapshot
	top    *top.Top
	topGen uint64 // counts the failures added to top
	rxMask uint64 // the filters whose peer is the initiator (RX); the others' is the responder

	cacheMu  sync.Mutex
	cacheAt  time.Time // when cached was computed
	cacheGen uint64    // topGen then
	cacheNow time.Time // the snapshot time it was computed for
	cached   []protocol.TopLists
}

// topCacheFor is how long the top lists of STATS may be reused while
// failures keep coming: a client that polls STATS in a loop during a flood
// must not keep the pipeline waiting for the lock while they are computed
// again and again (a few milliseconds when every peer fails once).
const topCacheFor = 100 * time.Millisecond

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
		if f.Direction == "RX" {
			s.rxMask |= 1 << i
		}
	}
	s.top = top.New(top.Config{Filters: len(filters)})
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
		if r, ok := topResult(ev); ok {
			// The peer is the remote end: the client of RX filters, the
			// server of TX and ANY ones.
			s.top.AddSet(ev.Filters&s.rxMask, ev.Init, ev.RespPort, r, ev.End)
			s.top.AddSet(ev.Filters&^s.rxMask, ev.Resp, ev.RespPort, r, ev.End)
			s.topGen++
		}
	}
	s.mu.Unlock()
}

// topResult returns how a failed session ended, for the top peers.
func topResult(ev *classify.Event) (top.Result, bool) {
	if ev.Kind != classify.Ended {
		return 0, false
	}
	switch ev.Result {
	case classify.Timeout:
		return top.Timeout, true
	case classify.Reject:
		return top.Reject, true
	case classify.Unreach:
		return top.Unreach, true
	case classify.Abort:
		return top.Abort, true
	}
	return 0, false
}

// RebaseTop tells the top peers that packet time went back to now: their
// last minute starts again empty.
func (s *Stats) RebaseTop(now time.Time) {
	s.mu.Lock()
	s.top.Rebase(now.UnixNano())
	s.mu.Unlock()
}

// TopAnswer returns the answer to TOP n: per filter, the n peers with the
// most failures since start and in the last minute before the counters'
// time, and the n services.
func (s *Stats) TopAnswer(n int) *protocol.TopAnswer {
	s.mu.RLock()
	now := s.snap.Now
	lists := topLists(s.top.Snapshot(n, now.UnixNano()))
	infos := make([]FilterInfo, len(s.snap.Filters))
	for i := range s.snap.Filters {
		infos[i] = s.snap.Filters[i].FilterInfo
	}
	s.mu.RUnlock()
	a := &protocol.TopAnswer{Now: now.UTC().Format(protocol.TimeFormat), Filters: make([]protocol.TopFilter, len(infos))}
	for i, f := range infos {
		a.Filters[i] = protocol.TopFilter{Name: f.Name, Direction: f.Direction, TopLists: lists[i]}
	}
	return a
}

// Answer returns the STATS object: the snapshot's counters, and each
// filter's top lists of protocol.DefaultTopN entries (those of a previous
// answer when no failure came since, or when they are less than
// topCacheFor old).
func (s *Stats) Answer(version string) *protocol.StatsAnswer {
	snap := s.Snapshot()
	a := snap.Answer(version)
	lists := s.defaultTop(snap.Now)
	for i := range a.Filters {
		if i < len(lists) {
			a.Filters[i].Top = &lists[i]
		}
	}
	return a
}

// defaultTop returns the top lists of STATS for the counters' time now.
// Lists computed for the same failures within the same granularity of the
// last minute are reused, and so are lists less than topCacheFor old.
func (s *Stats) defaultTop(now time.Time) []protocol.TopLists {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	same := s.cacheGen == s.topGen && now.UnixNano()/top.Granularity == s.cacheNow.UnixNano()/top.Granularity
	fresh := time.Since(s.cacheAt) < topCacheFor && !now.Before(s.cacheNow)
	if s.cached != nil && (same || fresh) {
		return s.cached
	}
	lists := topLists(s.top.Snapshot(protocol.DefaultTopN, now.UnixNano()))
	s.cached, s.cacheAt, s.cacheGen, s.cacheNow = lists, time.Now(), s.topGen, now
	return lists
}

// topLists converts the top package's lists to the protocol's.
func topLists(fs []top.FilterTop) []protocol.TopLists {
	out := make([]protocol.TopLists, len(fs))
	for i := range fs {
		out[i] = protocol.TopLists{
			SinceStart: topPeers(fs[i].SinceStart),
			LastMinute: topPeers(fs[i].LastMinute),
			Services:   make([]protocol.TopService, len(fs[i].Services)),
		}
		for j, sv := range fs[i].Services {
			out[i].Services[j] = protocol.TopService{Port: sv.Port, Failures: sv.Failures}
		}
	}
	return out
}

func topPeers(ps []top.Peer) []protocol.TopPeer {
	out := make([]protocol.TopPeer, len(ps))
	for i, p := range ps {
		out[i] = protocol.TopPeer{
			Peer: p.Addr.String(), Port: p.Port, Failures: p.Failures,
			Timeout: p.Timeout, Reject: p.Reject, Unreach: p.Unreach, Abort: p.Abort, Error: p.Error,
			Last: time.Unix(0, p.Last).UTC().Format(protocol.TimeFormat),
		}
	}
	return out
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

// SetKernelFilter records the name of the live kernel filter, for the
// counters read before the first update.
func (s *Stats) SetKernelFilter(name string) {
	s.mu.Lock()
	s.snap.Capture.KernelFilter = name
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
	s.mu.RLock()
	defer s.mu.RUnlock()
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
	if a.Capture.KernelFilter == "" {
		a.Capture.KernelFilter = "none" // reading a file
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
