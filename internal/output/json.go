package output

import (
	"io"
	"strconv"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/protocol"
)

// JSONLines writes one JSON object per ended session. It is not safe for
// concurrent use.
type JSONLines struct {
	w     io.Writer
	names []string
	buf   []byte
}

// NewJSONLines returns a JSONLines writing to w; names are the names of the
// filters of an event's mask, in order.
func NewJSONLines(w io.Writer, names []string) *JSONLines {
	return &JSONLines{w: w, names: names}
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
	b = time.Unix(0, ev.Start).UTC().AppendFormat(b, protocol.TimeFormat)
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
	// A session picked up again after it was displaced: its first SYN,
	// and so its times and retransmissions, were forgotten.
	known := !ev.Reopened
	b = append(b, `,"dup_syn":`...)
	b = appendUintOrNull(b, uint64(ev.DupSYN), known)
	b = append(b, `,"dup_synack":`...)
	b = appendUintOrNull(b, uint64(ev.DupSYNACK), known)
	b = append(b, `,"synack_ms":`...)
	if ev.SawSynAck && known {
		b = appendMS(b, ev.SynAck-ev.Start)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"handshake_ms":`...)
	if known {
		b = appendMS(b, ev.End-ev.Start)
	} else {
		b = append(b, "null"...)
	}
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

// appendUintOrNull appends v, or null if it is not known.
func appendUintOrNull(b []byte, v uint64, known bool) []byte {
	if !known {
		return append(b, "null"...)
	}
	return strconv.AppendUint(b, v, 10)
}

// appendMS appends a duration in nanoseconds as milliseconds with three
// decimals (microsecond precision).
func appendMS(b []byte, ns int64) []byte {
	if ns < 0 {
		ns = 0
	}
	return strconv.AppendFloat(b, float64(ns/1e3)/1e3, 'f', 3, 64)
}
