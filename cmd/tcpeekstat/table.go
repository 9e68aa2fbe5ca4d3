package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// loc is the time zone of the times in the table.
var loc = time.Local

// printTable asks tcpeek on path for STATS and prints it as a table.
func printTable(path string, w io.Writer) error {
	answer, err := query(path, protocol.Request{Verb: protocol.Stats})
	if err != nil {
		return err
	}
	var st protocol.StatsAnswer
	if err := json.Unmarshal(answer, &st); err != nil {
		return fmt.Errorf("tcpeek on %s: cannot read its STATS answer: %w", path, err)
	}
	_, err = io.WriteString(w, formatTable(&st))
	return err
}

// column is one column of the table.
type column struct {
	group string // the heading over a group of columns
	head  string
	left  bool // align left (names) rather than right (numbers)
}

var columns = []column{
	{"", "FILTER", true},
	{"", "DIR", true},
	{"success", "total", false},
	{"success", "dupsyn", false},
	{"success", "dupsynack", false},
	{"failure", "total", false},
	{"failure", "timeout", false},
	{"failure", "reject", false},
	{"failure", "unreach", false},
	{"failure", "abort", false},
	{"handshake ms", "p50", false},
	{"handshake ms", "p99", false},
}

// gap separates the columns.
const gap = "  "

// formatTable renders STATS: a line with the period, the filters' counters
// with a column per counter, then the capture and session-table counters.
func formatTable(st *protocol.StatsAnswer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpeek %s: %s\n\n", st.Version, period(st.Start, st.Now))

	rows := [][]string{}
	for _, f := range st.Filters {
		rows = append(rows, []string{
			f.Name, f.Direction,
			u(f.Success.Total), u(f.Success.DupSYN), u(f.Success.DupSYNACK),
			u(f.Failure.Total), u(f.Failure.Timeout), u(f.Failure.Reject), u(f.Failure.Unreach), u(f.Failure.Abort),
			ms(f.HandshakeMS.Count, f.HandshakeMS.P50), ms(f.HandshakeMS.Count, f.HandshakeMS.P99),
		})
	}
	widths := make([]int, len(columns))
	for i, c := range columns {
		widths[i] = len(c.head)
		for _, r := range rows {
			widths[i] = max(widths[i], len(r[i]))
		}
	}
	widenForGroups(widths)
	b.WriteString(groupLine(widths))
	heads := make([]string, len(columns))
	for i, c := range columns {
		heads[i] = c.head
	}
	writeRow(&b, widths, heads)
	for _, r := range rows {
		writeRow(&b, widths, r)
	}

	c := st.Capture
	fmt.Fprintf(&b, "\ncapture:  %d packets, %d dropped by the kernel, %d dropped by the interface, %d bad checksum, %d duplicates\n",
		c.Packets, c.Drops, c.IfDrops, c.BadChecksum, c.Duplicates)
	s := st.Sessions
	fmt.Fprintf(&b, "sessions: %d in progress (at most %d), %d not tracked because the table was full\n",
		s.InProgress, s.Max, s.Overflow)
	if st.Pending > 0 {
		fmt.Fprintf(&b, "pending:  %d sessions still in progress at the end of the capture file\n", st.Pending)
	}
	return b.String()
}

// period describes the time span of the counters, in loc.
func period(start, now string) string {
	t0, err0 := time.Parse(time.RFC3339Nano, start)
	t1, err1 := time.Parse(time.RFC3339Nano, now)
	if err0 != nil || err1 != nil {
		return "from " + start + " to " + now
	}
	const layout = "2006-01-02 15:04:05"
	d := t1.Sub(t0).Round(time.Second)
	return fmt.Sprintf("from %s to %s (%v)", t0.In(loc).Format(layout), t1.In(loc).Format(layout), d)
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// ms formats a duration in milliseconds, or "-" when nothing was measured.
func ms(count uint64, v float64) string {
	if count == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// groupSpans returns, for each group, the index of its first and last
// column.
func groupSpans() (spans [][2]int) {
	for i, c := range columns {
		switch {
		case c.group == "":
		case i > 0 && columns[i-1].group == c.group:
			spans[len(spans)-1][1] = i
		default:
			spans = append(spans, [2]int{i, i})
		}
	}
	return spans
}

// spanWidth is the width of columns first to last with their gaps.
func spanWidth(widths []int, first, last int) int {
	w := len(gap) * (last - first)
	for i := first; i <= last; i++ {
		w += widths[i]
	}
	return w
}

// widenForGroups widens, evenly, the columns of a group whose heading (with
// three dashes and a space each side) is wider than they are.
func widenForGroups(widths []int) {
	for _, sp := range groupSpans() {
		need := len(columns[sp[0]].group) + 8
		for i := sp[0]; spanWidth(widths, sp[0], sp[1]) < need; i++ {
			if i > sp[1] {
				i = sp[0]
			}
			widths[i]++
		}
	}
}

// groupLine returns the line of group headings, each centred in dashes
// over its columns: "--- success ---".
func groupLine(widths []int) string {
	var b strings.Builder
	col := 0
	for _, sp := range groupSpans() {
		start := spanWidth(widths, 0, sp[0]) - widths[sp[0]] // where column sp[0] begins
		b.WriteString(strings.Repeat(" ", start-col))
		w := spanWidth(widths, sp[0], sp[1])
		label := " " + columns[sp[0]].group + " "
		left := (w - len(label)) / 2
		b.WriteString(strings.Repeat("-", left) + label + strings.Repeat("-", w-left-len(label)))
		col = start + w
	}
	b.WriteByte('\n')
	return b.String()
}

// writeRow writes one row, padded to widths, without trailing spaces.
func writeRow(b *strings.Builder, widths []int, cells []string) {
	var line strings.Builder
	for i, cell := range cells {
		if i > 0 {
			line.WriteString(gap)
		}
		pad := strings.Repeat(" ", widths[i]-len(cell))
		if columns[i].left {
			line.WriteString(cell + pad)
		} else {
			line.WriteString(pad + cell)
		}
	}
	b.WriteString(strings.TrimRight(line.String(), " "))
	b.WriteByte('\n')
}
