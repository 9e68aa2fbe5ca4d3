// Package protocol is the stats socket protocol of tcpeek (SPEC §7): the
// requests a client sends, the shapes of the answers and their encoding.
// The daemon's server and tcpeekstat both use it; it depends on nothing else
// of tcpeek, so the client links no part of the monitor.
//
// A client connects to the UNIX stream socket, sends one request line (GET,
// REFRESH, STATS or TOP [N], ended by LF or CRLF) and reads one line of JSON
// until EOF. Anything else is answered with UnknownAnswer.
package protocol

import (
	"encoding/json"
	"strconv"
)

// DefaultSocketPath is where tcpeek listens, and tcpeekstat connects,
// unless -U says otherwise.
const DefaultSocketPath = "/var/run/tcpeek/tcpeek.sock"

// TimeFormat is RFC 3339 with nanoseconds, as every JSON time is written.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// UnknownAnswer is the answer to a line that is not a request.
var UnknownAnswer = []byte(`{"error":"unknown request"}` + "\n")

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

// Distribution summarizes a distribution of durations in milliseconds.
// The quantiles are read from fine buckets (within about 10%); Max is exact.
type Distribution struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Filter is one filter of the STATS object: its description and counters.
type Filter struct {
	Name        string       `json:"name"`
	Direction   string       `json:"direction"` // RX, TX or ANY
	Rules       []string     `json:"rules"`
	Success     Success      `json:"success"`
	Failure     Failure      `json:"failure"`
	Displaced   uint64       `json:"displaced"`    // sessions displaced from a full table, never ended
	HandshakeMS Distribution `json:"handshake_ms"` // SYN → end of handshake, successful sessions
	SynAckMS    Distribution `json:"synack_ms"`    // SYN → first SYN/ACK
	Top         *TopLists    `json:"top,omitempty"`
}

// Capture holds the counters of the packet source and the decoder.
type Capture struct {
	Packets      uint64 `json:"packets"`       // frames received
	Drops        uint64 `json:"drops"`         // dropped by the kernel (buffer full)
	IfDrops      uint64 `json:"ifdrops"`       // dropped by the interface or its driver
	BadChecksum  uint64 `json:"bad_checksum"`  // dropped for a wrong checksum (-c)
	Duplicates   uint64 `json:"duplicates"`    // SYN and SYN/ACK capture copies
	KernelFilter string `json:"kernel_filter"` // ebpf or classic; none when reading a file
}

// Sessions holds the counters of the session table.
type Sessions struct {
	InProgress uint64 `json:"in_progress"`
	Max        uint64 `json:"max"`
	Overflow   uint64 `json:"overflow"`
	// Displaced counts sessions in progress displaced by a new SYN when
	// the table was full (SPEC §11).
	Displaced uint64 `json:"displaced"`
	// Evicted counts ended sessions forgotten before their time because
	// the memory of failed or completed sessions was full (a retry of one
	// then counts as a new attempt).
	Evicted uint64 `json:"evicted"`
}

// StatsAnswer is the STATS object, also the last line of tcpeek -o json.
type StatsAnswer struct {
	Version  string   `json:"version"`
	Start    string   `json:"start"`
	Now      string   `json:"now"`
	Filters  []Filter `json:"filters"`
	Pending  uint64   `json:"pending"`
	Capture  Capture  `json:"capture"`
	Sessions Sessions `json:"sessions"`
}

// TopPeer is one entry of a list of failing peers.
type TopPeer struct {
	Peer     string `json:"peer"` // the remote end: RX the initiator, TX and ANY the responder
	Port     uint16 `json:"port"` // the responder's port
	Failures uint64 `json:"failures"`
	Timeout  uint64 `json:"timeout"`
	Reject   uint64 `json:"reject"`
	Unreach  uint64 `json:"unreach"`
	Abort    uint64 `json:"abort"`
	// Error bounds how much Failures may overcount (0 when exact).
	Error uint64 `json:"error"`
	Last  string `json:"last"` // time of the last failure
}

// TopService is the failures of one service port.
type TopService struct {
	Port     uint16 `json:"port"`
	Failures uint64 `json:"failures"`
}

// TopLists are the failing peers and services of one filter.
type TopLists struct {
	SinceStart []TopPeer    `json:"since_start"`
	LastMinute []TopPeer    `json:"last_minute"`
	Services   []TopService `json:"services"`
}

// TopFilter is one filter of the TOP answer.
type TopFilter struct {
	Name      string `json:"name"`
	Direction string `json:"direction"`
	TopLists
}

// TopAnswer is the answer to TOP.
type TopAnswer struct {
	Now     string      `json:"now"`
	Filters []TopFilter `json:"filters"`
}

// Encode returns v as one line of JSON, newline included. It is for the
// answer types of this package, which always marshal.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of numbers and strings
	}
	return append(b, '\n')
}

// GetAnswer returns the answer to GET: the original tool's array, one object
// per filter, then the capture counters.
//
//	[{"RX":{"success":{…},"failure":{…}}},…,{"pcap":{"stats":{"recv":1,"drop":0,"ifdrop":0}}}]
//
// Consumers of the original parse it, so its keys and their order are
// fixed; abort is appended inside failure.
func GetAnswer(s *StatsAnswer) []byte {
	b := appendCounters([]byte{'['}, s, nil)
	if len(s.Filters) > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"pcap":{"stats":{"recv":`...)
	b = strconv.AppendUint(b, s.Capture.Packets, 10)
	b = append(b, `,"drop":`...)
	b = strconv.AppendUint(b, s.Capture.Drops, 10)
	b = append(b, `,"ifdrop":`...)
	b = strconv.AppendUint(b, s.Capture.IfDrops, 10)
	return append(b, "}}}]\n"...)
}

// RefreshAnswer returns the answer to REFRESH: the GET array without pcap,
// each value the difference between cur and prev (an earlier answer of the
// same daemon; nil: since the start).
func RefreshAnswer(cur, prev *StatsAnswer) []byte {
	b := appendCounters([]byte{'['}, cur, prev)
	return append(b, "]\n"...)
}

func appendCounters(b []byte, s, prev *StatsAnswer) []byte {
	for i := range s.Filters {
		f := &s.Filters[i]
		su, fa := f.Success, f.Failure
		if prev != nil && i < len(prev.Filters) {
			p := &prev.Filters[i]
			su = Success{
				Total:     su.Total - p.Success.Total,
				DupSYN:    su.DupSYN - p.Success.DupSYN,
				DupSYNACK: su.DupSYNACK - p.Success.DupSYNACK,
			}
			fa = Failure{
				Total:   fa.Total - p.Failure.Total,
				Timeout: fa.Timeout - p.Failure.Timeout,
				Reject:  fa.Reject - p.Failure.Reject,
				Unreach: fa.Unreach - p.Failure.Unreach,
				Abort:   fa.Abort - p.Failure.Abort,
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, `:{"success":{"total":`...)
		b = strconv.AppendUint(b, su.Total, 10)
		b = append(b, `,"dupsyn":`...)
		b = strconv.AppendUint(b, su.DupSYN, 10)
		b = append(b, `,"dupsynack":`...)
		b = strconv.AppendUint(b, su.DupSYNACK, 10)
		b = append(b, `},"failure":{"total":`...)
		b = strconv.AppendUint(b, fa.Total, 10)
		b = append(b, `,"timeout":`...)
		b = strconv.AppendUint(b, fa.Timeout, 10)
		b = append(b, `,"reject":`...)
		b = strconv.AppendUint(b, fa.Reject, 10)
		b = append(b, `,"unreach":`...)
		b = strconv.AppendUint(b, fa.Unreach, 10)
		b = append(b, `,"abort":`...)
		b = strconv.AppendUint(b, fa.Abort, 10)
		b = append(b, "}}}"...)
	}
	return b
}
