package output

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// TimeFormat is RFC 3339 with nanoseconds, as every JSON time is written.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// JSONLines writes one JSON object per ended session. It is not safe for
// concurrent use.
type JSONLines struct {
	w     io.Writer
	names []string
	buf   []byte
}

// NewJSONLines returns a JSONLines writing to w; filters gives the names of
// the filters of an event's mask.
func NewJSONLines(w io.Writer, filters []*filter.Filter) *JSONLines {
	j := &JSONLines{w: w}
	for _, f := range filters {
		j.names = append(j.names, f.Name)
	}
	return j
}

// Event writes the object of an ended session; other events are ignored.
//
//	{"ts":"…","src":"…","sport":1,"dst":"…","dport":2,"result":"success",
//	 "icmp_code":null,"dup_syn":0,"dup_synack":0,"synack_ms":0.5,
//	 "handshake_ms":1.2,"filters":["RX"]}
//
// icmp_code is null unless the result is unreach; synack_ms is null when no
// SYN/ACK was seen.
func (j *JSONLines) Event(ev *classify.Event) error {
	if ev.Kind != classify.Ended {
		return nil
	}
	b := j.buf[:0]
	b = append(b, `{"ts":"`...)
	b = time.Unix(0, ev.Start).UTC().AppendFormat(b, TimeFormat)
	b = append(b, `","src":"`...)
	b = ev.Init.AppendTo(b)
	b = append(b, `","sport":`...)
	b = strconv.AppendUint(b, uint64(ev.InitPort), 10)
	b = append(b, `,"dst":"`...)
	b = ev.Resp.AppendTo(b)
	b = append(b, `","dport":`...)
	b = strconv.AppendUint(b, uint64(ev.RespPort), 10)
	b = append(b, `,"result":"`...)
	b = append(b, ev.Result.String()...)
	b = append(b, `","icmp_code":`...)
	if ev.Result == classify.Unreach {
		b = strconv.AppendUint(b, uint64(ev.ICMPCode), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"dup_syn":`...)
	b = strconv.AppendUint(b, uint64(ev.DupSYN), 10)
	b = append(b, `,"dup_synack":`...)
	b = strconv.AppendUint(b, uint64(ev.DupSYNACK), 10)
	b = append(b, `,"synack_ms":`...)
	if ev.SawSynAck {
		b = appendMS(b, ev.SynAck-ev.Start)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"handshake_ms":`...)
	b = appendMS(b, ev.End-ev.Start)
	b = append(b, `,"filters":[`...)
	first := true
	for m, i := ev.Filters, 0; m != 0 && i < len(j.names); m, i = m>>1, i+1 {
		if m&1 == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, j.names[i])
	}
	b = append(b, "]}\n"...)
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

// appendMS appends a duration in nanoseconds as milliseconds with three
// decimals (microsecond precision).
func appendMS(b []byte, ns int64) []byte {
	if ns < 0 {
		ns = 0
	}
	return strconv.AppendFloat(b, float64(ns/1e3)/1e3, 'f', 3, 64)
}

// ms converts nanoseconds to milliseconds rounded to the microsecond.
func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

// Distribution is a summary of a histogram in milliseconds.
type Distribution struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func distribution(h *stats.Histogram) Distribution {
	return Distribution{
		Count: h.Count,
		P50:   ms(h.Quantile(0.5)),
		P90:   ms(h.Quantile(0.9)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max),
	}
}

// StatsFilter is one filter of the STATS object.
type StatsFilter struct {
	Name        string        `json:"name"`
	Direction   string        `json:"direction"`
	Rules       []string      `json:"rules"`
	Success     stats.Success `json:"success"`
	Failure     stats.Failure `json:"failure"`
	HandshakeMS Distribution  `json:"handshake_ms"`
	SynAckMS    Distribution  `json:"synack_ms"`
}

// Stats is the STATS object of SPEC §7, also the last line of -o json.
type Stats struct {
	Version  string         `json:"version"`
	Start    string         `json:"start"`
	Now      string         `json:"now"`
	Filters  []StatsFilter  `json:"filters"`
	Pending  uint64         `json:"pending"`
	Capture  stats.Capture  `json:"capture"`
	Sessions stats.Sessions `json:"sessions"`
}

// NewStats builds the STATS object of a snapshot.
func NewStats(version string, snap *stats.Snapshot, filters []*filter.Filter) *Stats {
	s := &Stats{
		Version:  version,
		Start:    snap.Start.UTC().Format(TimeFormat),
		Now:      snap.Now.UTC().Format(TimeFormat),
		Filters:  []StatsFilter{},
		Pending:  snap.Pending,
		Capture:  snap.Capture,
		Sessions: snap.Sessions,
	}
	for i, f := range filters {
		if i >= len(snap.Filters) {
			break
		}
		c := &snap.Filters[i]
		s.Filters = append(s.Filters, StatsFilter{
			Name:        f.Name,
			Direction:   f.Dir.String(),
			Rules:       f.RuleStrings(),
			Success:     c.Success,
			Failure:     c.Failure,
			HandshakeMS: distribution(&c.Handshake),
			SynAckMS:    distribution(&c.SynAck),
		})
	}
	return s
}

// StatsJSON returns the STATS object as one line of JSON, newline included.
func StatsJSON(version string, snap *stats.Snapshot, filters []*filter.Filter) []byte {
	b, err := json.Marshal(NewStats(version, snap, filters))
	if err != nil {
		panic(err) // plain structs of numbers and strings always marshal
	}
	return append(b, '\n')
}

// GetJSON returns the answer to GET: the original tool's array, one object
// per named filter, then the capture counters.
//
//	[{"RX":{"success":{…},"failure":{…}}},…,{"pcap":{"stats":{"recv":1,"drop":0,"ifdrop":0}}}]
func GetJSON(snap *stats.Snapshot, filters []*filter.Filter) []byte {
	b := appendCounters([]byte{'['}, snap, nil, filters)
	if len(filters) > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"pcap":{"stats":{"recv":`...)
	b = strconv.AppendUint(b, snap.Capture.Packets, 10)
	b = append(b, `,"drop":`...)
	b = strconv.AppendUint(b, snap.Capture.Drops, 10)
	b = append(b, `,"ifdrop":`...)
	b = strconv.AppendUint(b, snap.Capture.IfDrops, 10)
	return append(b, "}}}]\n"...)
}

// RefreshJSON returns the answer to REFRESH: the GET array without pcap,
// each value the difference between snap and prev (an earlier snapshot of
// the same filters; nil: since the start).
func RefreshJSON(snap, prev *stats.Snapshot, filters []*filter.Filter) []byte {
	b := appendCounters([]byte{'['}, snap, prev, filters)
	return append(b, "]\n"...)
}

func appendCounters(b []byte, snap, prev *stats.Snapshot, filters []*filter.Filter) []byte {
	for i, f := range filters {
		if i >= len(snap.Filters) {
			break
		}
		c := snap.Filters[i]
		if prev != nil && i < len(prev.Filters) {
			p := &prev.Filters[i]
			c.Success = stats.Success{
				Total:     c.Success.Total - p.Success.Total,
				DupSYN:    c.Success.DupSYN - p.Success.DupSYN,
				DupSYNACK: c.Success.DupSYNACK - p.Success.DupSYNACK,
			}
			c.Failure = stats.Failure{
				Total:   c.Failure.Total - p.Failure.Total,
				Timeout: c.Failure.Timeout - p.Failure.Timeout,
				Reject:  c.Failure.Reject - p.Failure.Reject,
				Unreach: c.Failure.Unreach - p.Failure.Unreach,
				Abort:   c.Failure.Abort - p.Failure.Abort,
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, `:{"success":{"total":`...)
		b = strconv.AppendUint(b, c.Success.Total, 10)
		b = append(b, `,"dupsyn":`...)
		b = strconv.AppendUint(b, c.Success.DupSYN, 10)
		b = append(b, `,"dupsynack":`...)
		b = strconv.AppendUint(b, c.Success.DupSYNACK, 10)
		b = append(b, `},"failure":{"total":`...)
		b = strconv.AppendUint(b, c.Failure.Total, 10)
		b = append(b, `,"timeout":`...)
		b = strconv.AppendUint(b, c.Failure.Timeout, 10)
		b = append(b, `,"reject":`...)
		b = strconv.AppendUint(b, c.Failure.Reject, 10)
		b = append(b, `,"unreach":`...)
		b = strconv.AppendUint(b, c.Failure.Unreach, 10)
		b = append(b, `,"abort":`...)
		b = strconv.AppendUint(b, c.Failure.Abort, 10)
		b = append(b, "}}}"...)
	}
	return b
}
