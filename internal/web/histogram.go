package web

import "github.com/tcpeek/tcpeek/internal/stats"

// BoundsMS are the upper bounds of the histogram buckets the page draws, in
// milliseconds: stats.PrometheusBounds, so that the page and /metrics show
// the same buckets.
var BoundsMS = func() []float64 {
	b := make([]float64, len(stats.PrometheusBounds))
	for i, s := range stats.PrometheusBounds {
		b[i] = s * 1000
	}
	return b
}()

// Histogram is the handshake-time distribution of one filter since the
// start: Counts[i] durations in bucket i (not cumulative), that is, longer
// than BoundsMS[i-1] and at most BoundsMS[i]; the last of the
// len(BoundsMS)+1 counts is the durations above the last bound.
type Histogram struct {
	Name   string   `json:"name"`
	Counts []uint64 `json:"counts"`
}

// HistogramAnswer is the answer of /api/histogram.
type HistogramAnswer struct {
	BoundsMS []float64   `json:"bounds_ms"`
	Filters  []Histogram `json:"filters"`
}

// HandshakeHistograms returns the handshake-time histograms of every filter
// of s, in order. The daemon's Config.Histograms is
//
//	func() []web.Histogram { s := st.Snapshot(); return web.HandshakeHistograms(&s) }
func HandshakeHistograms(s *stats.Snapshot) []Histogram {
	out := make([]Histogram, len(s.Filters))
	for i := range s.Filters {
		h := &s.Filters[i].Handshake
		cum := h.Cumulative()
		counts := make([]uint64, len(cum)+1)
		var prev uint64
		for j, c := range cum {
			counts[j] = c - prev
			prev = c
		}
		counts[len(cum)] = h.Count - prev
		out[i] = Histogram{Name: s.Filters[i].Name, Counts: counts}
	}
	return out
}
