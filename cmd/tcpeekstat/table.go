package main

import (
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
	st, err := fetchStats(path)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, formatTable(st))
	return err
}

// statsColumns are the columns of the STATS table.
var statsColumns = []column{
	{head: "FILTER", left: true},
	{head: "DIR", left: true},
	{group: "success", head: "total"},
	{group: "success", head: "dupsyn"},
	{group: "success", head: "dupsynack"},
	{group: "failure", head: "total"},
	{group: "failure", head: "timeout"},
	{group: "failure", head: "reject"},
	{group: "failure", head: "unreach"},
	{group: "failure", head: "abort"},
	{group: "handshake ms", head: "p50"},
	{group: "handshake ms", head: "p99"},
}

// formatTable renders STATS: a line with the period, the filters' counters
// with a column per counter, then the capture and session-table counters.
func formatTable(st *protocol.StatsAnswer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpeek %s: %s\n\n", st.Version, period(st.Start, st.Now))

	g := grid{cols: statsColumns}
	for _, f := range st.Filters {
		g.rows = append(g.rows, []string{
			f.Name, f.Direction,
			u(f.Success.Total), u(f.Success.DupSYN), u(f.Success.DupSYNACK),
			u(f.Failure.Total), u(f.Failure.Timeout), u(f.Failure.Reject), u(f.Failure.Unreach), u(f.Failure.Abort),
			ms(f.HandshakeMS.Count, f.HandshakeMS.P50), ms(f.HandshakeMS.Count, f.HandshakeMS.P99),
		})
	}
	b.WriteString(g.String())

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
