// Package output renders what tcpeek prints and serves: the real-time
// session lines and the summary in the original tool's layout, JSON Lines,
// the JSON Lines of -o json. The stats socket's answers are in package
// protocol.
package output

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// Header and Rule are the two lines printed before the first session line,
// as the original tool printed them.
const (
	Header = " TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     |      RESULTS      | DUP SYN  DUP S/A"
	Rule   = "----------------------------------------------------------------------------------------------------------------------"
)

// ResultText returns the RESULTS column of a result, 17 characters wide.
func ResultText(r classify.Result) string {
	switch r {
	case classify.Success:
		return "     success     "
	case classify.Timeout:
		return "failure (timeout)"
	case classify.Reject:
		return "failure (reject) "
	case classify.Unreach:
		return "failure (unreach)"
	case classify.Abort:
		return "failure (abort)  "
	}
	return fmt.Sprintf("%-17s", r.String())
}

// Text writes real-time session lines in the original tool's layout. It is
// not safe for concurrent use.
type Text struct {
	w      io.Writer
	loc    *time.Location
	header bool
	buf    []byte
}

// NewText returns a Text writing to w, with timestamps in loc (nil: local
// time).
func NewText(w io.Writer, loc *time.Location) *Text {
	if loc == nil {
		loc = time.Local
	}
	return &Text{w: w, loc: loc}
}

// Event writes the line of an ended session, after the header if it is the
// first. Other events are ignored.
func (t *Text) Event(ev *classify.Event) error {
	if ev.Kind != classify.Ended {
		return nil
	}
	b := t.buf[:0]
	if !t.header {
		t.header = true
		b = append(b, Header...)
		b = append(b, '\n')
		b = append(b, Rule...)
		b = append(b, '\n')
	}
	b = AppendLine(b, ev, t.loc)
	b = append(b, '\n')
	t.buf = b
	_, err := t.w.Write(b)
	return err
}

// AppendLine appends the session line of ev (without newline) to b:
//
//	%4d.%03d | %y-%m-%d %H:%M:%S.%03d | %15s:%-5u %15s:%-5u | %-17s | %7u  %7u
//
// IPv6 addresses are written in brackets and widen their column.
//
// A session picked up again after it was displaced from a full table has
// "-" for its time and retransmission counts, which were forgotten.
func AppendLine(b []byte, ev *classify.Event, loc *time.Location) []byte {
	d := ev.End - ev.Start
	if d < 0 {
		d = 0
	}
	ms := d / 1e6
	var tmp [20]byte
	if ev.Reopened {
		b = append(b, "       -"...)
	} else {
		b = pad(b, strconv.AppendInt(tmp[:0], ms/1000, 10), 4, true)
		b = append(b, '.')
		b = append3(b, int(ms%1000))
	}
	b = append(b, " | "...)
	start := time.Unix(0, ev.Start).In(loc)
	b = start.AppendFormat(b, "06-01-02 15:04:05")
	b = append(b, '.')
	b = append3(b, start.Nanosecond()/1e6)
	b = append(b, " | "...)
	b = appendEndpoint(b, ev.Init, ev.InitPort)
	b = append(b, ' ')
	b = appendEndpoint(b, ev.Resp, ev.RespPort)
	b = append(b, " | "...)
	b = append(b, ResultText(ev.Result)...)
	b = append(b, " | "...)
	if ev.Reopened {
		return append(b, "      -        - "...)
	}
	b = pad(b, strconv.AppendUint(tmp[:0], uint64(ev.DupSYN), 10), 7, true)
	b = append(b, "  "...)
	b = pad(b, strconv.AppendUint(tmp[:0], uint64(ev.DupSYNACK), 10), 7, true)
	return append(b, ' ')
}

// appendEndpoint appends "%15s:%-5u" of an address and port.
func appendEndpoint(b []byte, a netip.Addr, port uint16) []byte {
	var tmp [48]byte
	ab := tmp[:0]
	if a.Is6() {
		ab = append(ab, '[')
		ab = a.AppendTo(ab)
		ab = append(ab, ']')
	} else {
		ab = a.AppendTo(ab)
	}
	b = pad(b, ab, 15, true)
	b = append(b, ':')
	return pad(b, strconv.AppendUint(tmp[:0], uint64(port), 10), 5, false)
}

// pad appends s padded with spaces to width, on the left (right-aligned) or
// on the right.
func pad(b, s []byte, width int, right bool) []byte {
	if right {
		for i := len(s); i < width; i++ {
			b = append(b, ' ')
		}
		return append(b, s...)
	}
	b = append(b, s...)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return b
}

// appendTopPeers appends the summary's list of failing peers, if any:
//
//	Top failing peers:
//	  198.51.100.7:443       40  reject 38, unreach 2
//	  [2001:db8::7]:8443  ±2 12  timeout 12
func appendTopPeers(b []byte, peers []protocol.TopPeer) []byte {
	if len(peers) == 0 {
		return b
	}
	b = append(b, "   Top failing peers:\n"...)
	width := 0
	for _, p := range peers {
		width = max(width, len(peerText(p)))
	}
	for _, p := range peers {
		b = fmt.Appendf(b, "     %-*s %6d", width, peerText(p), p.Failures)
		if p.Error > 0 {
			b = fmt.Appendf(b, " (up to %d fewer)", p.Error)
		}
		sep := "  "
		for _, c := range []struct {
			name string
			n    uint64
		}{{"timeout", p.Timeout}, {"reject", p.Reject}, {"unreach", p.Unreach}, {"abort", p.Abort}} {
			if c.n > 0 {
				b = fmt.Appendf(b, "%s%s %d", sep, c.name, c.n)
				sep = ", "
			}
		}
		b = append(b, '\n')
	}
	return b
}

// peerText is a peer and port as address:port, IPv6 in brackets.
func peerText(p protocol.TopPeer) string {
	if strings.Contains(p.Peer, ":") {
		return "[" + p.Peer + "]:" + strconv.Itoa(int(p.Port))
	}
	return p.Peer + ":" + strconv.Itoa(int(p.Port))
}

func append3(b []byte, n int) []byte {
	return append(b, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
}

// SummaryOptions says what the summary shows.
type SummaryOptions struct {
	ICMP bool           // show the ICMP Unreachable line (--icmp)
	Live bool           // a live capture: show the sessions still in progress
	Loc  *time.Location // time zone of from/to (nil: local time)
	// Top, if not nil, lists under each filter its peers with the most
	// failed attempts since the start (its filters in the snapshot's order).
	Top *protocol.TopAnswer
}

// WriteSummary writes the summary in the original tool's layout, with the
// lines tcpeek adds: Aborted per filter, the bad-checksum and copy counts,
// session-table overflow and pending sessions when there are any.
func WriteSummary(w io.Writer, snap *stats.Snapshot, o SummaryOptions) error {
	_, err := w.Write(AppendSummary(nil, snap, o))
	return err
}

// AppendSummary appends the summary that WriteSummary writes to b.
func AppendSummary(b []byte, snap *stats.Snapshot, o SummaryOptions) []byte {
	loc := o.Loc
	if loc == nil {
		loc = time.Local
	}
	b = append(b, "\n========== TCPEEK SUMMARY ==========\n"...)
	from, to := "-", "-" // a capture without packets has no times
	if snap.Capture.Packets > 0 || o.Live {
		from = snap.Start.In(loc).Format("2006-01-02 15:04:05")
		to = snap.Now.In(loc).Format("2006-01-02 15:04:05")
	}
	b = fmt.Appendf(b, "     from : %s\n", from)
	b = fmt.Appendf(b, "       to : %s\n", to)
	d := snap.Now.Sub(snap.Start)
	if d < 0 {
		d = 0
	}
	b = fmt.Appendf(b, "     time : %9d.%03d (sec)\n", int64(d/time.Second), int64(d%time.Second/time.Millisecond))
	for i := range snap.Filters {
		c := &snap.Filters[i]
		b = append(b, "------------------------------------\n"...)
		b = fmt.Appendf(b, " %s\n", c.Name)
		b = fmt.Appendf(b, "   Success: %d session\n", c.Success.Total)
		b = fmt.Appendf(b, "     SYN Segment Duplicate : %6d\n", c.Success.DupSYN)
		b = fmt.Appendf(b, "     S/A Segment Duplicate : %6d\n", c.Success.DupSYNACK)
		b = fmt.Appendf(b, "   Failure: %d session\n", c.Failure.Total)
		b = fmt.Appendf(b, "     Connection Timed Out  : %6d\n", c.Failure.Timeout)
		b = fmt.Appendf(b, "     Connection Rejected   : %6d\n", c.Failure.Reject)
		if o.ICMP {
			b = fmt.Appendf(b, "     ICMP Unreachable      : %6d\n", c.Failure.Unreach)
		}
		b = fmt.Appendf(b, "     Connection Aborted    : %6d\n", c.Failure.Abort)
		if o.Top != nil && i < len(o.Top.Filters) {
			b = appendTopPeers(b, o.Top.Filters[i].SinceStart)
		}
	}
	b = append(b, "------------------------------------\n"...)
	b = append(b, " pcap stats\n"...)
	b = fmt.Appendf(b, "   recv   : %d\n", snap.Capture.Packets)
	b = fmt.Appendf(b, "   drop   : %d\n", snap.Capture.Drops)
	b = fmt.Appendf(b, "   ifdrop : %d\n", snap.Capture.IfDrops)
	b = fmt.Appendf(b, "   badsum : %d\n", snap.Capture.BadChecksum)
	b = fmt.Appendf(b, "   copies : %d\n", snap.Capture.Duplicates)
	inProgress := o.Live && snap.Sessions.InProgress > 0
	if snap.Sessions.Overflow > 0 || snap.Pending > 0 || inProgress {
		b = append(b, "------------------------------------\n"...)
		if snap.Sessions.Overflow > 0 {
			b = fmt.Appendf(b, " Untracked (table full): %d SYN\n", snap.Sessions.Overflow)
		}
		if snap.Pending > 0 {
			b = fmt.Appendf(b, " Pending: %d session\n", snap.Pending)
		}
		if inProgress {
			b = fmt.Appendf(b, " In progress: %d session\n", snap.Sessions.InProgress)
		}
	}
	return append(b, "====================================\n"...)
}
