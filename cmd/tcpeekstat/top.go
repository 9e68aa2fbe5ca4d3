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

// printTop asks tcpeek on path for TOP n and prints it as tables.
func printTop(path string, n int, w io.Writer) error {
	answer, err := query(path, protocol.Request{Verb: protocol.Top, N: n})
	if err != nil {
		return err
	}
	var top protocol.TopAnswer
	if err := json.Unmarshal(answer, &top); err != nil {
		return fmt.Errorf("tcpeek on %s: cannot read its TOP answer: %w", path, err)
	}
	_, err = io.WriteString(w, formatTop(&top))
	return err
}

// peerColumns are the columns of a list of failing peers; the first,
// FILTER, is only in --watch.
var peerColumns = []column{
	{head: "FILTER", left: true},
	{head: "PEER", left: true},
	{head: "PORT"},
	{group: "failures", head: "total"},
	{group: "failures", head: "timeout", drop: 2},
	{group: "failures", head: "reject", drop: 1},
	{group: "failures", head: "unreach", drop: 5},
	{group: "failures", head: "abort", drop: 3},
	{head: "LAST", left: true, drop: 4},
}

// serviceColumns are the columns of the list of failing services.
var serviceColumns = []column{
	{head: "PORT"},
	{head: "FAILURES"},
}

// dateTime is the layout of the times of --top.
const dateTime = "2006-01-02 15:04:05"

// formatTop renders a TOP answer: for each filter, its failing peers since
// the start and in the last minute, and its failing services.
func formatTop(top *protocol.TopAnswer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpeek: the peers with the most failed attempts, at %s\n", localTime(top.Now, dateTime))
	approx := false
	for _, f := range top.Filters {
		name := f.Name + " (" + f.Direction + ")"
		if len(f.SinceStart) == 0 && len(f.LastMinute) == 0 && len(f.Services) == 0 {
			fmt.Fprintf(&b, "\n%s: no failed attempts\n", name)
			continue
		}
		for _, l := range []struct {
			title string
			peers []protocol.TopPeer
		}{{"since the start", f.SinceStart}, {"in the last minute", f.LastMinute}} {
			fmt.Fprintf(&b, "\n%s, failing peers %s:\n", name, l.title)
			if len(l.peers) == 0 {
				b.WriteString("  none\n")
				continue
			}
			g := grid{cols: peerColumns[1:]}
			for _, p := range l.peers {
				g.rows = append(g.rows, peerCells(p, dateTime)[1:])
				approx = approx || p.Error > 0
			}
			b.WriteString(g.String())
		}
		fmt.Fprintf(&b, "\n%s, failing services:\n", name)
		if len(f.Services) == 0 {
			b.WriteString("  none\n")
			continue
		}
		g := grid{cols: serviceColumns}
		for _, s := range f.Services {
			g.rows = append(g.rows, []string{strconv.Itoa(int(s.Port)), u(s.Failures)})
		}
		b.WriteString(g.String())
	}
	if approx {
		b.WriteString(approxNote + "\n")
	}
	return b.String()
}

// approxNote explains the "±E" after a count of failures.
const approxNote = "\nN±E: the count N may be up to E too high (tcpeek's summary of the peers is bounded)."

// peerCells returns a row of peerColumns for p (FILTER left empty), with
// the time of its last failure in layout.
func peerCells(p protocol.TopPeer, layout string) []string {
	failures := u(p.Failures)
	if p.Error > 0 {
		failures += "±" + u(p.Error)
	}
	return []string{"", p.Peer, strconv.Itoa(int(p.Port)), failures,
		u(p.Timeout), u(p.Reject), u(p.Unreach), u(p.Abort), localTime(p.Last, layout)}
}

// localTime formats an RFC 3339 time of tcpeek in loc, or returns it as it
// is if it does not parse.
func localTime(s, layout string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.In(loc).Format(layout)
}
