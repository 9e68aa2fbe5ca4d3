package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// watchRun drives watcher.loop: the test decides when each tick comes,
// what each STATS request gets, and what the clock says; the screen hands
// over each frame as it is drawn. No step waits on the wall clock.
type watchRun struct {
	t       *testing.T
	tick    chan time.Time
	keys    chan byte
	sigs    chan os.Signal
	answers chan fetched // what the next STATS request gets
	frames  chan string
	done    chan error

	mu  sync.Mutex
	now time.Time
}

// frameWriter hands over each write (plainScreen writes a frame at once).
type frameWriter chan string

func (w frameWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// recScreen is a screen of a fixed size that hands over each frame.
type recScreen struct {
	cols, rows int
	frames     chan string
}

func (s *recScreen) size() (int, int) { return s.cols, s.rows }
func (s *recScreen) draw(lines []string, _ bool) error {
	s.frames <- strings.Join(lines, "\n") + "\n"
	return nil
}
func (s *recScreen) suspend() error { return nil }

// startWatch runs the loop on scr (nil: a plainScreen) with first, which
// arrived at at, and returns once the first frame is drawn.
func startWatch(t *testing.T, scr screen, fetch func() (*protocol.StatsAnswer, error), first *protocol.StatsAnswer, at time.Time) (*watchRun, string) {
	t.Helper()
	r := &watchRun{
		t:       t,
		tick:    make(chan time.Time),
		keys:    make(chan byte),
		sigs:    make(chan os.Signal, 1),
		answers: make(chan fetched),
		frames:  make(chan string, 1),
		done:    make(chan error, 1),
		now:     at,
	}
	switch s := scr.(type) {
	case nil:
		scr = &plainScreen{w: frameWriter(r.frames)}
	case *recScreen:
		s.frames = r.frames
	}
	if fetch == nil {
		fetch = func() (*protocol.StatsAnswer, error) {
			a := <-r.answers
			r.mu.Lock()
			r.now = a.at
			r.mu.Unlock()
			return a.st, a.err
		}
	}
	w := &watcher{
		fetch: fetch,
		now: func() time.Time {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.now
		},
		interval: time.Second,
		sigs:     r.sigs,
		screen:   scr,
	}
	go func() { r.done <- w.loop(first, r.tick, r.keys) }()
	t.Cleanup(func() {
		select {
		case r.keys <- 'q':
			<-r.done
		case <-r.done:
		}
	})
	return r, r.frame()
}

// frame waits for the next frame.
func (r *watchRun) frame() string {
	r.t.Helper()
	select {
	case f := <-r.frames:
		return f
	case err := <-r.done:
		r.done <- err
		r.t.Fatalf("the loop ended (%v) instead of drawing", err)
	case <-time.After(10 * time.Second):
		r.t.Fatal("no frame drawn after 10 s")
	}
	return ""
}

// step ticks, answers the request with st or err at the local time at,
// and returns the frame drawn.
func (r *watchRun) step(st *protocol.StatsAnswer, err error, at time.Time) string {
	r.t.Helper()
	r.tick <- at
	r.answers <- fetched{st: st, err: err, at: at}
	return r.frame()
}

// stop quits with q and checks that the loop ends without error.
func (r *watchRun) stop() {
	r.t.Helper()
	r.keys <- 'q'
	if err := <-r.done; err != nil {
		r.t.Errorf("the loop ended with %v, want nil", err)
	}
	r.done <- nil // for the cleanup
}

// counters adds successes and failures by cause to filter i of a.
func counters(a *protocol.StatsAnswer, i int, ok, timeout, reject, unreach, abort uint64) {
	f := &a.Filters[i]
	f.Success.Total += ok
	f.Failure.Timeout += timeout
	f.Failure.Reject += reject
	f.Failure.Unreach += unreach
	f.Failure.Abort += abort
	f.Failure.Total += timeout + reject + unreach + abort
}

// clone returns a deep enough copy of a for the tests to change: its
// filters and their top lists.
func clone(a *protocol.StatsAnswer, now string) *protocol.StatsAnswer {
	c := *a
	c.Now = now
	c.Filters = append([]protocol.Filter(nil), a.Filters...)
	for i := range c.Filters {
		if t := c.Filters[i].Top; t != nil {
			tc := *t
			c.Filters[i].Top = &tc
		}
	}
	return &c
}

// watchFixture is the first answer of the --watch tests: RX with the
// failures of web, TX with its own, and top lists for all three.
func watchFixture() *protocol.StatsAnswer {
	a := &protocol.StatsAnswer{
		Version: "1.0.0",
		Start:   "2024-05-06T07:08:09.500000000Z",
		Now:     "2024-05-06T10:33:16.000000000Z",
		Filters: []protocol.Filter{
			{Name: "RX", Direction: "RX", Rules: []string{"*:*"},
				HandshakeMS: protocol.Distribution{Count: 5000, P50: 0.288, P90: 3.1, P99: 1011.4, Max: 3001}},
			{Name: "TX", Direction: "TX", Rules: []string{"*:*"},
				HandshakeMS: protocol.Distribution{Count: 783, P50: 2.375, P90: 30, P99: 44.65, Max: 45}},
			{Name: "web", Direction: "RX", Rules: []string{"*:80", "*:443"},
				HandshakeMS: protocol.Distribution{Count: 4000, P50: 0.301, P90: 2.9, P99: 1009.9, Max: 3001}},
		},
	}
	counters(a, 0, 5000, 10, 800, 5, 5)
	counters(a, 1, 783, 1, 0, 2, 1)
	counters(a, 2, 4000, 10, 800, 5, 5)
	peers := []protocol.TopPeer{
		{Peer: "198.51.100.7", Port: 443, Failures: 38, Reject: 37, Unreach: 1, Last: "2024-05-06T10:33:15.100000000Z"},
		{Peer: "2001:db8:4006:812::200e", Port: 80, Failures: 7, Reject: 5, Abort: 2, Error: 2, Last: "2024-05-06T10:32:40.000000000Z"},
	}
	a.Filters[0].Top = &protocol.TopLists{LastMinute: peers}
	a.Filters[1].Top = &protocol.TopLists{LastMinute: []protocol.TopPeer{
		{Peer: "10.1.2.3", Port: 5432, Failures: 1, Timeout: 1, Last: "2024-05-06T10:32:59.900000000Z"},
	}}
	a.Filters[2].Top = &protocol.TopLists{LastMinute: peers}
	return a
}

var watchStart = time.Date(2024, 5, 6, 10, 33, 16, 3_000_000, time.UTC)

// at returns the local time d after watchStart.
func at(d time.Duration) time.Time { return watchStart.Add(d) }

// TestWatchFrames checks the frames of a sequence of answers: rates over
// tcpeek's time, a daemon that goes away and comes back (rates over the
// whole gap), one that restarts (no negative rates), and one whose time
// did not advance (rates over the local clock).
func TestWatchFrames(t *testing.T) {
	refused := dialError("/run/tcpeek/tcpeek.sock", syscall.ECONNREFUSED)

	s0 := watchFixture()
	s1 := clone(s0, "2024-05-06T10:33:17.000000000Z")
	counters(s1, 0, 372, 0, 38, 2, 0)
	counters(s1, 1, 3, 0, 0, 0, 0)
	counters(s1, 2, 372, 0, 38, 2, 0)
	s2 := clone(s1, "2024-05-06T10:33:18.000000000Z")
	counters(s2, 0, 400, 1, 0, 0, 0)
	counters(s2, 2, 400, 0, 0, 0, 0)
	s2.Filters[1].Top = &protocol.TopLists{LastMinute: []protocol.TopPeer{}}
	s3 := clone(s2, "2024-05-06T10:33:21.000000000Z") // back after two failures
	counters(s3, 0, 1200, 0, 0, 0, 3)
	counters(s3, 2, 1200, 0, 0, 0, 3)
	s4 := clone(s3, "2024-05-06T10:33:22.000000000Z") // restarted: lower counters
	s4.Start = "2024-05-06T10:33:21.500000000Z"
	for i := range s4.Filters {
		s4.Filters[i].Success, s4.Filters[i].Failure = protocol.Success{}, protocol.Failure{}
		s4.Filters[i].Top = &protocol.TopLists{}
	}
	counters(s4, 0, 10, 0, 0, 0, 0)
	counters(s4, 2, 10, 0, 0, 0, 0)
	s5 := clone(s4, "2024-05-06T10:33:23.000000000Z")
	counters(s5, 0, 20, 0, 5, 0, 0)
	counters(s5, 2, 20, 0, 5, 0, 0)
	s6 := clone(s5, s5.Now) // tcpeek's time did not advance
	counters(s6, 0, 2, 0, 0, 0, 0)

	r, f := startWatch(t, nil, nil, s0, at(0))
	frames := []string{f}
	for _, s := range []struct {
		st  *protocol.StatsAnswer
		err error
		at  time.Duration
	}{
		{s1, nil, time.Second},
		{s2, nil, 2 * time.Second},
		{nil, refused, 3 * time.Second},
		{nil, refused, 4 * time.Second},
		{s3, nil, 5 * time.Second},
		{s4, nil, 6 * time.Second},
		{s5, nil, 7 * time.Second},
		{s6, nil, 7*time.Second + 500*time.Millisecond},
	} {
		frames = append(frames, r.step(s.st, s.err, at(s.at)))
	}
	r.stop()
	out := strings.Join(frames, "")
	if strings.Contains(out, "\x1b") {
		t.Error("a frame for a pipe holds escape sequences")
	}
	// A counter that went back, taken for a change, would wrap around to
	// an absurd rate.
	if huge := regexp.MustCompile(`[0-9]{7,}\.[0-9]`).FindString(out); huge != "" {
		t.Errorf("an absurd rate: %s", huge)
	}
	checkGolden(t, "watch-plain.golden", out)
}

// TestWatchFit checks that a frame fits terminals of every size: the
// filters keep their lines before the peers, columns are given up before
// lines are cut.
func TestWatchFit(t *testing.T) {
	s0 := watchFixture()
	s1 := clone(s0, "2024-05-06T10:33:17.000000000Z")
	counters(s1, 0, 372, 0, 38, 2, 0)
	counters(s1, 2, 372, 0, 38, 2, 0)
	var v view
	v.interval = time.Second
	v.update(s0, at(0))
	v.update(s1, at(time.Second))

	many := clone(s1, s1.Now)
	for i := range 20 {
		many.Filters = append(many.Filters, protocol.Filter{Name: fmt.Sprintf("f%02d", i), Direction: "ANY"})
	}
	var vm view
	vm.update(s1, at(0))
	vm.update(many, at(time.Second)) // other filters: a restart

	var out strings.Builder
	for _, tt := range []struct {
		v          *view
		cols, rows int
	}{
		{&v, 120, 40}, {&v, 80, 24}, {&v, 80, 13}, {&v, 80, 11}, {&v, 60, 15},
		{&v, 50, 12}, {&v, 40, 8}, {&v, 30, 4}, {&v, 20, 2}, {&vm, 80, 24},
	} {
		lines := tt.v.frame(tt.cols, tt.rows, true)
		fmt.Fprintf(&out, "=== %dx%d\n", tt.cols, tt.rows)
		for _, l := range lines {
			out.WriteString(l + "\n")
			if width(l) > tt.cols {
				t.Errorf("%dx%d: line of %d columns: %q", tt.cols, tt.rows, width(l), l)
			}
		}
		if len(lines) > tt.rows {
			t.Errorf("%dx%d: %d lines", tt.cols, tt.rows, len(lines))
		}
	}
	checkGolden(t, "watch-fit.golden", out.String())
}

// TestWatchDaemon runs the loop against a real socket: tcpeek goes away,
// a new one (counting from zero) comes back at the same path.
func TestWatchDaemon(t *testing.T) {
	d := startTcpeek(t, "web:RX@*:80")
	set := func(d *fakeTcpeek, now time.Duration, fn func(*stats.Snapshot)) {
		d.update(func(s *stats.Snapshot) {
			s.Now = s.Start.Add(now)
			fn(s)
		})
	}
	set(d, time.Hour, func(s *stats.Snapshot) {
		s.Filters[0].Success.Total = 100
		s.Filters[0].Failure = stats.Failure{Total: 10, Reject: 10}
	})
	path := d.path
	fetch := func() (*protocol.StatsAnswer, error) { return fetchStats(path) }
	first, err := fetchStats(path)
	if err != nil {
		t.Fatal(err)
	}
	r, f := startWatch(t, &recScreen{cols: 100, rows: 30}, fetch, first, at(0))
	want := func(f string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(f, w) {
				t.Errorf("frame does not say %q:\n%s", w, f)
			}
		}
	}
	want(f, "tcpeek 1.0.0, up 1h0m0s", "rates from the next answer on", "not in this tcpeek's STATS")

	set(d, time.Hour+2*time.Second, func(s *stats.Snapshot) {
		s.Filters[0].Success.Total += 30
		s.Filters[0].Failure.Total += 10
		s.Filters[0].Failure.Timeout += 10
	})
	r.tick <- at(time.Second)
	want(r.frame(), "rates over 2.0 s", "RX          20.0     15.0      5.0     0.0      0.0    0.0   25.0")

	d.stop()
	r.tick <- at(2 * time.Second)
	want(r.frame(), "tcpeek does not answer; asking again every 1s; below, its answer of 10:33:16",
		"tcpeekstat: no tcpeek answers on "+path+": no such file or directory", "RX             -        -")

	d2 := startTcpeekAt(t, path, []stats.FilterInfo{{Name: "RX", Direction: "RX"}, {Name: "TX", Direction: "TX"}, {Name: "web", Direction: "RX"}})
	set(d2, time.Second, func(s *stats.Snapshot) { s.Filters[0].Success.Total = 5 })
	r.tick <- at(3 * time.Second)
	want(r.frame(), "tcpeek restarted at 2024-05-06 07:08:09: rates from the next answer on", "RX             -        -")

	set(d2, 3*time.Second, func(s *stats.Snapshot) { s.Filters[0].Success.Total += 8 })
	r.tick <- at(4 * time.Second)
	want(r.frame(), "rates over 2.0 s", "RX           4.0      4.0      0.0     0.0      0.0    0.0    0.0")
	r.stop()
}

// TestWatchKeys checks the keys that quit, and that a signal other than
// SIGWINCH quits too while SIGWINCH redraws.
func TestWatchKeys(t *testing.T) {
	for _, k := range []byte{'q', 'Q', 0x03, 0x04} {
		r, _ := startWatch(t, nil, nil, watchFixture(), at(0))
		r.keys <- 'x' // ignored
		r.keys <- k
		if err := <-r.done; err != nil {
			t.Errorf("key %q: %v", k, err)
		}
		r.done <- nil
	}
	r, first := startWatch(t, &recScreen{cols: 80, rows: 24}, nil, watchFixture(), at(0))
	r.sigs <- syscall.SIGWINCH
	if f := r.frame(); f != first {
		t.Errorf("SIGWINCH drew\n%s\nwant the same frame again\n%s", f, first)
	}
	r.sigs <- syscall.SIGTERM
	if err := <-r.done; err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	r.done <- nil
}

// epipeWriter takes n writes, then fails as a closed pipe does.
type epipeWriter struct {
	mu sync.Mutex
	n  int
	b  bytes.Buffer
}

func (w *epipeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
	}
	w.n--
	return w.b.Write(p)
}

// TestWatchPipe runs tcpeekstat -w with its output a pipe that closes
// after two frames: two plain tables, then a quiet end with status 0.
func TestWatchPipe(t *testing.T) {
	d := startTcpeek(t, "web:RX@*:80")
	w := &epipeWriter{n: 2}
	var stderr bytes.Buffer
	code := run([]string{"-w", "--interval", "0.1", "-U", d.path}, w, &stderr)
	if code != 0 || stderr.Len() > 0 {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
	}
	out := w.b.String()
	frames := strings.Split(out, "\n\n20")
	if len(frames) != 2 || strings.Contains(out, "\x1b") {
		t.Errorf("want two plain tables separated by a blank line, got:\n%s", out)
	}
	for _, f := range frames {
		if !strings.Contains(f, "FILTER") || !strings.Contains(f, "web") {
			t.Errorf("frame without the table of filters:\n%s", f)
		}
	}
}

func TestWatchNoDaemon(t *testing.T) {
	missing := tempDir(t) + "/missing.sock"
	code, stdout, stderr := tcpeekstat("-w", "-U", missing)
	want := "tcpeekstat: no tcpeek answers on " + missing + ": no such file or directory (is tcpeek running? use -U PATH)\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, want)
	}
}

func TestRestarted(t *testing.T) {
	base := watchFixture()
	for _, tt := range []struct {
		name   string
		change func(a *protocol.StatsAnswer)
		want   bool
	}{
		{"same", func(a *protocol.StatsAnswer) {}, false},
		{"more", func(a *protocol.StatsAnswer) { counters(a, 1, 1, 1, 1, 1, 1) }, false},
		{"other start", func(a *protocol.StatsAnswer) { a.Start = a.Now }, true},
		{"fewer filters", func(a *protocol.StatsAnswer) { a.Filters = a.Filters[:2] }, true},
		{"renamed filter", func(a *protocol.StatsAnswer) { a.Filters[2].Name = "www" }, true},
		{"success back", func(a *protocol.StatsAnswer) { a.Filters[1].Success.Total-- }, true},
		{"failure back", func(a *protocol.StatsAnswer) { a.Filters[1].Failure.Total-- }, true},
		{"one cause back", func(a *protocol.StatsAnswer) { a.Filters[0].Failure.Reject--; a.Filters[0].Failure.Timeout++ }, true},
	} {
		cur := clone(base, base.Now)
		tt.change(cur)
		if got := restarted(base, cur); got != tt.want {
			t.Errorf("%s: restarted = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestGridFit(t *testing.T) {
	g := grid{cols: []column{
		{head: "NAME", left: true},
		{head: "a"},
		{head: "b", drop: 1},
		{head: "c", drop: 2},
	}, rows: [][]string{{"a-long-name", "1", "22", "333"}}}
	for _, tt := range []struct {
		width int
		want  string
	}{
		{0, "NAME         a   b    c\na-long-name  1  22  333\n"},
		{23, "NAME         a   b    c\na-long-name  1  22  333\n"},
		{22, "NAME         a   b\na-long-name  1  22\n"},
		{18, "NAME         a   b\na-long-name  1  22\n"},
		{17, "NAME         a\na-long-name  1\n"},
		{14, "NAME         a\na-long-name  1\n"},
		{13, "NAME        a\na-long-na~  1\n"},
		{8, "NAME   a\na-lo~  1\n"},
		// Shortened as far as its heading, NAME still does not fit: the
		// lines are cut.
		{5, "NAME\na-l~\n"},
	} {
		got := strings.Join(g.lines(tt.width), "\n") + "\n"
		if got != tt.want {
			t.Errorf("width %d:\n%s\nwant\n%s", tt.width, got, tt.want)
		}
	}
}
