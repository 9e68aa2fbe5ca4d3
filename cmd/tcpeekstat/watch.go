package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// fetchStats asks tcpeek on path for STATS.
func fetchStats(path string) (*protocol.StatsAnswer, error) {
	answer, err := query(path, protocol.Request{Verb: protocol.Stats})
	if err != nil {
		return nil, err
	}
	var st protocol.StatsAnswer
	if err := json.Unmarshal(answer, &st); err != nil {
		return nil, fmt.Errorf("tcpeek on %s: cannot read its STATS answer: %w", path, err)
	}
	return &st, nil
}

// runWatch is --watch: it shows the rates of tcpeek on path, refreshed
// every interval, until q, Ctrl+C, SIGTERM or SIGHUP, or until stdout
// closes. On a terminal it redraws one screen in place; otherwise it
// prints one table per interval. A daemon that does not answer the first
// STATS is an error; later it is shown as such, and asked again every
// interval.
func runWatch(path string, interval time.Duration, stdout io.Writer) error {
	first, err := fetchStats(path)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 8)
	// With SIGPIPE caught, writing to a closed pipe fails with EPIPE
	// instead of killing tcpeekstat: it ends quietly.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)

	w := &watcher{
		fetch:    func() (*protocol.StatsAnswer, error) { return fetchStats(path) },
		now:      time.Now,
		interval: interval,
		sigs:     sigs,
	}
	var keys <-chan byte
	if f, ok := stdout.(*os.File); ok {
		if t := openTerminal(os.Stdin, f); t != nil {
			// Caught before the terminal changes, so that Ctrl+Z never
			// stops tcpeekstat with the terminal in its modes.
			signal.Notify(sigs, syscall.SIGWINCH, syscall.SIGTSTP)
			if err := t.enter(); err != nil {
				return fmt.Errorf("cannot set up the terminal: %w (redirect the output to get one table per interval)", err)
			}
			defer t.leave()
			var stopKeys func()
			keys, stopKeys = t.readKeys()
			defer stopKeys()
			w.screen = t
		}
	}
	if w.screen == nil {
		w.screen = &plainScreen{w: stdout}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	err = w.loop(first, ticker.C, keys)
	if errors.Is(err, syscall.EPIPE) {
		return nil // the reader went away: a normal end, as for a pipe to head
	}
	return err
}

// screen is where --watch shows its frames.
type screen interface {
	// size returns the number of columns and lines to fit; 0 means no bound.
	size() (cols, lines int)
	// draw shows a frame (clear: redraw the whole screen).
	draw(lines []string, clear bool) error
	// suspend gives the terminal back and stops the process (SIGTSTP);
	// it returns once the process continues, with the screen set up again.
	suspend() error
}

// plainScreen prints each frame after the previous one, separated by a
// blank line: for a pipe or a file.
type plainScreen struct {
	w      io.Writer
	frames int
}

func (p *plainScreen) size() (int, int) { return 0, 0 }

func (p *plainScreen) draw(lines []string, _ bool) error {
	var b strings.Builder
	if p.frames > 0 {
		b.WriteByte('\n')
	}
	p.frames++
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

func (p *plainScreen) suspend() error { return nil }

// watcher is the loop of --watch: it asks for STATS on every tick, and
// draws the view on every answer, key or change of the terminal's size.
type watcher struct {
	fetch    func() (*protocol.StatsAnswer, error)
	now      func() time.Time
	interval time.Duration
	sigs     <-chan os.Signal
	screen   screen
	view     view
}

// fetched is the outcome of one STATS request.
type fetched struct {
	st  *protocol.StatsAnswer
	err error
	at  time.Time
}

// loop shows first, then a new answer after each tick, until a key or a
// signal says to stop (nil) or the screen fails (its error). A request
// still under way when a tick comes is not doubled; keys and signals are
// handled while it is.
func (w *watcher) loop(first *protocol.StatsAnswer, tick <-chan time.Time, keys <-chan byte) error {
	w.view.interval = w.interval
	w.view.update(first, w.now())
	if err := w.draw(false); err != nil {
		return err
	}
	results := make(chan fetched, 1)
	busy := false
	for {
		select {
		case <-tick:
			if busy {
				continue
			}
			busy = true
			go func() {
				st, err := w.fetch()
				results <- fetched{st, err, w.now()}
			}()
		case r := <-results:
			busy = false
			if r.err != nil {
				w.view.fail(r.err, r.at)
			} else {
				w.view.update(r.st, r.at)
			}
			if err := w.draw(false); err != nil {
				return err
			}
		case k, ok := <-keys:
			switch {
			case !ok, k == 'q', k == 'Q', k == 0x03, k == 0x04: // EOF (a hang-up), q, Ctrl+C, Ctrl+D
				return nil
			case k == 0x0c: // Ctrl+L: redraw everything
				if err := w.draw(true); err != nil {
					return err
				}
			}
		case sig := <-w.sigs:
			switch sig {
			case syscall.SIGWINCH:
				if err := w.draw(true); err != nil {
					return err
				}
			case syscall.SIGTSTP:
				if err := w.screen.suspend(); err != nil {
					return err
				}
				if err := w.draw(true); err != nil {
					return err
				}
			case syscall.SIGPIPE:
				// The write that failed reports it.
			default:
				return nil
			}
		}
	}
}

// draw shows the view, fitted to the screen.
func (w *watcher) draw(clear bool) error {
	cols, lines := w.screen.size()
	_, plain := w.screen.(*plainScreen)
	return w.screen.draw(w.view.frame(cols, lines, !plain), clear)
}

// view is what --watch shows: the last answer, the rates since the one
// before, or the last error.
type view struct {
	interval time.Duration
	cur      *protocol.StatsAnswer
	curAt    time.Time     // when cur arrived (local clock)
	rates    []rates       // per filter of cur; nil when there are none
	elapsed  time.Duration // the time the rates are over
	note     string        // why there are no rates
	err      error         // the last request failed
	errAt    time.Time
}

// rates are one filter's changes per second over an interval.
type rates struct {
	attempts, success, timeout, reject, unreach, abort float64
	failed                                             uint64 // failures in the interval
	tries                                              uint64 // attempts in the interval
}

// update makes st, which arrived at at, the view's answer, with the rates
// since the previous answer.
//
// The rates are over the time between the two answers as tcpeek measured
// it (the "now" of STATS, taken with the counters), or, when that did not
// advance, as the local clock did. A tcpeek that restarted (another start
// time, other filters, or a counter that went back) gives no rates until
// its next answer.
func (v *view) update(st *protocol.StatsAnswer, at time.Time) {
	prev, prevAt := v.cur, v.curAt
	v.cur, v.curAt, v.err = st, at, nil
	v.rates, v.note = nil, ""
	switch {
	case prev == nil:
		v.note = "rates from the next answer on"
		return
	case restarted(prev, st):
		v.note = "tcpeek restarted at " + localTime(st.Start, dateTime) + ": rates from the next answer on"
		return
	}
	v.elapsed = sinceNow(prev.Now, st.Now)
	if v.elapsed <= 0 {
		v.elapsed = at.Sub(prevAt)
	}
	if v.elapsed <= 0 {
		v.note = "no time passed since the previous answer: rates from the next answer on"
		return
	}
	secs := v.elapsed.Seconds()
	per := func(a, b uint64) float64 { return float64(a-b) / secs }
	v.rates = make([]rates, len(st.Filters))
	for i := range st.Filters {
		c, p := &st.Filters[i], &prev.Filters[i]
		r := &v.rates[i]
		r.failed = c.Failure.Total - p.Failure.Total
		r.tries = c.Success.Total - p.Success.Total + r.failed
		r.attempts = float64(r.tries) / secs
		r.success = per(c.Success.Total, p.Success.Total)
		r.timeout = per(c.Failure.Timeout, p.Failure.Timeout)
		r.reject = per(c.Failure.Reject, p.Failure.Reject)
		r.unreach = per(c.Failure.Unreach, p.Failure.Unreach)
		r.abort = per(c.Failure.Abort, p.Failure.Abort)
	}
}

// fail records a request that failed at at; the last answer is kept, so
// that the rates after the daemon answers again cover the whole gap.
func (v *view) fail(err error, at time.Time) {
	v.err, v.errAt = err, at
}

// restarted reports whether cur comes from another run of tcpeek than
// prev: another start, other filters, or a counter lower than before.
func restarted(prev, cur *protocol.StatsAnswer) bool {
	if prev.Start != cur.Start || len(prev.Filters) != len(cur.Filters) {
		return true
	}
	for i := range cur.Filters {
		p, c := &prev.Filters[i], &cur.Filters[i]
		if p.Name != c.Name || p.Direction != c.Direction ||
			c.Success.Total < p.Success.Total || c.Failure.Total < p.Failure.Total ||
			c.Failure.Timeout < p.Failure.Timeout || c.Failure.Reject < p.Failure.Reject ||
			c.Failure.Unreach < p.Failure.Unreach || c.Failure.Abort < p.Failure.Abort {
			return true
		}
	}
	return false
}

// sinceNow returns the time from the RFC 3339 time a to b; 0 if either
// does not parse.
func sinceNow(a, b string) time.Duration {
	t0, err0 := time.Parse(time.RFC3339Nano, a)
	t1, err1 := time.Parse(time.RFC3339Nano, b)
	if err0 != nil || err1 != nil {
		return 0
	}
	return t1.Sub(t0)
}

// rateColumns are the columns of --watch's table of filters. 80 columns
// hold them all for filter names of up to 7 characters; a narrower terminal
// gives up first the median, then what can be told otherwise (success is
// attempts less failures) or is seldom not 0 (unreach needs tcpeek --icmp).
var rateColumns = []column{
	{head: "FILTER", left: true},
	{group: "per second", head: "attempts"},
	{group: "per second", head: "success", drop: 4},
	{group: "per second", head: "timeout", drop: 1},
	{group: "per second", head: "reject"},
	{group: "per second", head: "unreach", drop: 5},
	{group: "per second", head: "abort", drop: 3},
	{head: "fail%"},
	{head: "p50ms", drop: 6},
	{head: "p99ms", drop: 2},
}

// timeOfDay is the layout of the times of --watch's peers.
const timeOfDay = "15:04:05"

// frame returns the lines to show, fitted into cols columns and rows
// lines (0: no bound). When the lines must be cut, the filters keep theirs
// first, then the peers. interactive adds how to quit.
func (v *view) frame(cols, rows int, interactive bool) []string {
	stamp := dateTime // a log of frames needs the date, a screen does not
	if interactive {
		stamp = timeOfDay
	}
	title := v.curAt.In(loc).Format(stamp) + "  tcpeek " + v.cur.Version
	if d := sinceNow(v.cur.Start, v.cur.Now); d > 0 {
		title += ", up " + d.Round(time.Second).String()
	}
	if v.rates != nil {
		title += "; rates over " + strconv.FormatFloat(v.elapsed.Seconds(), 'f', 1, 64) + " s"
	}
	if interactive {
		title += "  (q quits)"
	}
	note := v.note
	if v.err != nil {
		title = fmt.Sprintf("%s  tcpeek does not answer; asking again every %v; below, its answer of %s",
			v.errAt.In(loc).Format(stamp), v.interval, v.curAt.In(loc).Format(timeOfDay))
		if interactive {
			title += "  (q quits)"
		}
		note = "tcpeekstat: " + v.err.Error()
	}
	head := []string{title}
	if note != "" {
		head = append(head, note)
	}
	head = append(head, "")

	filters := v.filterGrid().lines(cols)
	peers := []string{"", "failing peers of the last minute:"}
	if g, ok := v.peerGrid(); !ok {
		peers[1] += " not in this tcpeek's STATS (an older tcpeek?)"
	} else if len(g.rows) == 0 {
		peers[1] += " none"
	} else {
		peers = append(peers, g.lines(cols)...)
	}
	if rows <= 0 {
		return append(append(head, filters...), peers...)
	}
	out := head
	f := fit(filters, rows-len(out), 2, "filters")
	out = append(out, f...)
	if len(f) == len(filters) {
		out = append(out, fit(peers, rows-len(out), 4, "failing peers")...)
	}
	for i, l := range out {
		if cols > 0 {
			out[i] = truncate(l, cols)
		}
	}
	if len(out) > rows {
		out = out[:rows] // a terminal too small for even the title
	}
	return out
}

// fit returns lines cut to room lines: the first fixed lines are headings,
// the others rows; when they do not all fit, the last line shown says how
// many rows (of what) are not.
func fit(lines []string, room, fixed int, what string) []string {
	switch {
	case len(lines) <= room:
		return lines
	case room <= 0:
		return nil
	case room <= fixed+1: // headings without a row say nothing
		return []string{fmt.Sprintf("... %d %s not shown: enlarge the terminal", len(lines)-fixed, what)}
	}
	shown := room - 1 // and a line saying how many more
	return append(lines[:shown:shown], fmt.Sprintf("... %d more %s not shown: enlarge the terminal", len(lines)-shown, what))
}

// filterGrid is the table of the filters' rates.
func (v *view) filterGrid() *grid {
	g := &grid{cols: rateColumns}
	for i, f := range v.cur.Filters {
		cells := []string{f.Name, "-", "-", "-", "-", "-", "-", "-",
			shortMS(f.HandshakeMS.Count, f.HandshakeMS.P50), shortMS(f.HandshakeMS.Count, f.HandshakeMS.P99)}
		if v.rates != nil && v.err == nil {
			r := v.rates[i]
			for j, x := range []float64{r.attempts, r.success, r.timeout, r.reject, r.unreach, r.abort} {
				cells[1+j] = strconv.FormatFloat(x, 'f', 1, 64)
			}
			if r.tries > 0 {
				cells[7] = strconv.FormatFloat(100*float64(r.failed)/float64(r.tries), 'f', 1, 64)
			}
		}
		g.rows = append(g.rows, cells)
	}
	return g
}

// peerGrid is the table of the failing peers of the last minute, of every
// filter in turn; ok is false when STATS has no top key at all.
func (v *view) peerGrid() (g *grid, ok bool) {
	g = &grid{cols: peerColumns}
	for _, f := range v.cur.Filters {
		if f.Top == nil {
			continue
		}
		ok = true
		for _, p := range f.Top.LastMinute {
			cells := peerCells(p, timeOfDay)
			cells[0] = f.Name
			g.rows = append(g.rows, cells)
		}
	}
	return g, ok
}

// shortMS formats milliseconds with three significant digits (but every
// digit before the point): 0.288, 2.38, 44.7, 1011; "-" when nothing was
// measured.
func shortMS(count uint64, v float64) string {
	if count == 0 {
		return "-"
	}
	prec := 0
	switch {
	case v < 1:
		prec = 3
	case v < 10:
		prec = 2
	case v < 100:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
