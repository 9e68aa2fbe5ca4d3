package web_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
	"github.com/tcpeek/tcpeek/internal/web"
	"github.com/tcpeek/tcpeek/internal/web/webtest"
)

var screenshots = flag.String("screenshots", "", "keep the screenshots of the browser test in this directory (default: a temporary one)")

// failure is one failed attempt the fake daemon counted.
type failure struct {
	filters []int // indexes of the filters that count it
	peer    string
	port    uint16
	cause   string // timeout, reject
	at      time.Time
}

// fakeDaemon plays a tcpeek whose counters change as time goes on: every
// step, successes on every filter; on request, rejects from one peer.
type fakeDaemon struct {
	mu       sync.Mutex
	start    time.Time
	now      time.Time
	filters  []stats.Filter // RX, TX, web (RX *:443), db (TX *:5432)
	failures []failure
	step     int
	failWeb  int       // rejects still to come from 198.51.100.7:443, 10 a step
	failFrom time.Time // the step before the first reject: where the episode begins
}

const (
	fRX = iota
	fTX
	fWeb
	fDB
)

func newFakeDaemon(start time.Time) *fakeDaemon {
	d := &fakeDaemon{start: start, now: start}
	d.filters = []stats.Filter{
		{FilterInfo: stats.FilterInfo{Name: "RX", Direction: "RX", Rules: []string{"*:*"}}},
		{FilterInfo: stats.FilterInfo{Name: "TX", Direction: "TX", Rules: []string{"*:*"}}},
		{FilterInfo: stats.FilterInfo{Name: "web", Direction: "RX", Rules: []string{"*:443"}}},
		{FilterInfo: stats.FilterInfo{Name: "db", Direction: "TX", Rules: []string{"10.0.0.0/8:5432"}}},
	}
	return d
}

// advance counts one second of traffic ending at now.
func (d *fakeDaemon) advance(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWeb > 0 && d.failFrom.IsZero() {
		d.failFrom = d.now
	}
	d.now = now
	d.step++
	ms := int64(time.Millisecond)
	success := func(n int, hs ...int64) {
		for i := range 5 {
			f := &d.filters[n]
			f.Success.Total++
			f.Handshake.Observe(hs[i%len(hs)])
		}
	}
	if d.failWeb > 0 {
		// The web service is down: its clients get rejects, no successes.
		for range 10 {
			d.addFailure(failure{filters: []int{fRX, fWeb}, peer: "198.51.100.7", port: 443, cause: "reject", at: now})
		}
		d.failWeb -= 10
	} else {
		hs := []int64{1200 * ms / 1000, 1800 * ms / 1000, 2500 * ms / 1000, 3 * ms, 900 * ms / 1000}
		if d.step%7 == 0 {
			hs[4] = 1003 * ms // a SYN retransmitted
		}
		success(fWeb, hs...)
		success(fRX, hs...)
	}
	success(fRX, 400*ms/1000, 600*ms/1000) // other local services
	success(fTX, 20*ms, 25*ms, 40*ms)
	success(fDB, 300*ms/1000, 500*ms/1000)
	success(fTX, 300*ms/1000, 500*ms/1000)
	if d.step >= 100 && d.step < 120 {
		// An old episode: the database did not answer for 20 s.
		d.addFailure(failure{filters: []int{fTX, fDB}, peer: "10.1.2.3", port: 5432, cause: "timeout", at: now})
	}
}

func (d *fakeDaemon) addFailure(f failure) {
	d.failures = append(d.failures, f)
	for _, i := range f.filters {
		fl := &d.filters[i].Failure
		fl.Total++
		switch f.cause {
		case "timeout":
			fl.Timeout++
		case "reject":
			fl.Reject++
		}
	}
}

// restart plays a daemon that started again at now: every counter back to 0.
func (d *fakeDaemon) restart(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.start, d.now = now, now
	for i := range d.filters {
		d.filters[i] = stats.Filter{FilterInfo: d.filters[i].FilterInfo}
	}
	d.failures = nil
	d.failWeb = 0
}

func (d *fakeDaemon) snapshot() stats.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return stats.Snapshot{
		Start:    d.start,
		Now:      d.now,
		Filters:  slices.Clone(d.filters),
		Capture:  stats.Capture{Packets: 123456, KernelFilter: "ebpf"},
		Sessions: stats.Sessions{InProgress: 3, Max: 1048576},
	}
}

func (d *fakeDaemon) stats() *protocol.StatsAnswer {
	s := d.snapshot()
	return s.Answer("1.0.0-test")
}

func (d *fakeDaemon) histograms() []web.Histogram {
	s := d.snapshot()
	return web.HandshakeHistograms(&s)
}

func (d *fakeDaemon) top(n int) *protocol.TopAnswer {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := &protocol.TopAnswer{Now: d.now.UTC().Format(protocol.TimeFormat)}
	list := func(fi int, since time.Time) []protocol.TopPeer {
		byPeer := map[string]*protocol.TopPeer{}
		for _, f := range d.failures {
			if !slices.Contains(f.filters, fi) || !f.at.After(since) {
				continue
			}
			key := fmt.Sprintf("%s %d", f.peer, f.port)
			p := byPeer[key]
			if p == nil {
				p = &protocol.TopPeer{Peer: f.peer, Port: f.port}
				byPeer[key] = p
			}
			p.Failures++
			switch f.cause {
			case "timeout":
				p.Timeout++
			case "reject":
				p.Reject++
			}
			p.Last = f.at.UTC().Format(protocol.TimeFormat)
		}
		out := []protocol.TopPeer{}
		for _, p := range byPeer {
			out = append(out, *p)
		}
		slices.SortFunc(out, func(a, b protocol.TopPeer) int {
			return cmp.Or(cmp.Compare(b.Failures, a.Failures), cmp.Compare(a.Peer, b.Peer))
		})
		return out[:min(n, len(out))]
	}
	for i, f := range d.filters {
		since := list(i, time.Time{})
		services := []protocol.TopService{}
		for _, p := range since {
			services = append(services, protocol.TopService{Port: p.Port, Failures: p.Failures})
		}
		a.Filters = append(a.Filters, protocol.TopFilter{
			Name: f.Name, Direction: f.Direction,
			TopLists: protocol.TopLists{
				SinceStart: since,
				LastMinute: list(i, d.now.Add(-time.Minute)),
				Services:   services,
			},
		})
	}
	return a
}

// TestPageInChromium opens the page in a real headless Chromium, makes
// the web filter fail, and checks that the page shows it: the failure
// count and %, since when, the failing peer, the charts; then that it
// follows a restart of the daemon, and says so when the daemon stops
// answering.
func TestPageInChromium(t *testing.T) {
	now := time.Now()
	d := newFakeDaemon(now.Add(-5 * time.Minute))
	h := web.New(web.Config{Stats: d.stats, Top: d.top, Histograms: d.histograms})
	// Five minutes of history before the page opens.
	for i := 300; i > 0; i-- {
		at := now.Add(-time.Duration(i) * time.Second)
		d.advance(at)
		h.Sample(at)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)

	// The daemon's clock: a step of traffic and a sample every second.
	ctx, cancel := context.WithCancel(context.Background())
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				d.advance(at)
				h.Sample(at)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-ticking })

	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}

	p := webtest.Open(t, ts.URL+"/")
	const wait = 20 * time.Second
	p.WaitJS("the status: live", webtest.Status+` === 'ok'`, wait)
	p.WaitCell("web", "failures", "0", wait)
	p.WaitCell("db", "failures", "20", wait)
	p.WaitJS("the old failures of db, and no failure of web", webtest.Cell("db", "episode")+`.startsWith('last ') && `+webtest.Cell("web", "episode")+` === '–'`, wait)

	// The web service goes down: 40 rejects from one client, 10 a second.
	d.mu.Lock()
	d.failWeb = 40
	d.mu.Unlock()
	p.WaitCell("web", "failures", "40", wait)
	d.mu.Lock()
	success := d.filters[fWeb].Success.Total
	d.mu.Unlock()
	p.WaitCell("web", "fail_pct", fmt.Sprintf("%.1f", 100*40/float64(success+40)), wait)
	p.WaitPeer("web", "last_minute", "198.51.100.7", 443, 40, wait)
	p.WaitPeer("web", "since_start", "198.51.100.7", 443, 40, wait)
	p.WaitJS("the rejects of the peer", webtest.PeerCell("web", "last_minute", "198.51.100.7", 443, "reject")+` === '40'`, wait)
	d.mu.Lock()
	since := d.failFrom.Format("15:04:05") // the page shows local times, as Go does
	d.mu.Unlock()
	p.WaitJS("since when web fails", webtest.Cell("web", "episode")+`.startsWith(`+strconv.Quote(since)+`) && `+
		`/^fail(ing since|ed from) `+since+`/.test(document.querySelector('section[data-filter="web"] h2 [data-k="episode"]').textContent)`, wait)
	p.WaitJS("the rejects in the table's rates", webtest.Cell("web", "rate_reject")+` !== '0' && `+webtest.Cell("web", "rate_reject")+` !== '–'`, wait)
	p.WaitJS("the attempts chart with 5 minutes of points", webtest.ChartPoints("web", "attempts")+` >= 2 * 290`, wait)
	p.WaitJS("the failure % chart with points", webtest.ChartPoints("web", "failpct")+` > 0`, wait)
	p.WaitJS("the histogram", webtest.ChartPoints("web", "histogram")+` === 19`, wait)
	p.WaitJS("db's peer since start", webtest.PeerCell("db", "since_start", "10.1.2.3", 5432, "timeout")+` === '20'`, wait)
	p.WaitJS("no failing peer of db in the last minute", `document.querySelector('section[data-filter="db"] table[data-list="last_minute"] tbody').textContent === 'No failures in the last minute.'`, wait)
	p.WaitJS("the title", `document.title === 'tcpeek: RX, web failing'`, wait)
	// The redraw every second keeps what did not change, so that an
	// operator can select and copy an address.
	if _, err := webtest.Eval[bool](p, `(window.peerCell = document.querySelector('section[data-filter="web"] tr[data-peer="198.51.100.7"] th'), `+
		`window.meta = document.getElementById('meta').textContent, true)`); err != nil {
		t.Fatal(err)
	}
	p.WaitJS("a redraw that kept the peer's cell", `document.getElementById('meta').textContent !== window.meta && window.peerCell.isConnected`, wait)
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("the page had errors:\n%v", errs)
	}
	t.Logf("screenshot of the failing web filter: %s", p.Screenshot(filepath.Join(dir, "failing.png")))

	// tcpeek restarts: its counters begin again from 0.
	d.restart(time.Now())
	p.WaitJS("the restart", webtest.StatusText+`.includes('restarted')`, wait)
	p.WaitCell("web", "failures", "0", wait)
	p.WaitJS("no old peers after the restart", `!document.querySelector('tr[data-peer="198.51.100.7"]')`, wait)
	p.WaitJS("no old history after the restart", webtest.Cell("web", "episode")+` === '–' && `+webtest.Cell("web", "rate_reject")+` !== '4.0' && `+
		webtest.ChartPoints("web", "attempts")+` < 2 * 60`, wait)
	p.WaitJS("new history after the restart", webtest.ChartPoints("web", "attempts")+` > 0`, wait)
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("the page had errors:\n%v", errs)
	}

	// tcpeek stops answering.
	ts.Close()
	p.WaitJS("that tcpeek does not answer", webtest.Status+` === 'down' && `+webtest.StatusText+`.includes('not answering')`, wait)
	p.WaitJS("the figures greyed out", `document.body.classList.contains('down')`, wait)
	t.Logf("screenshot of a daemon that does not answer: %s", p.Screenshot(filepath.Join(dir, "down.png")))
}

// TestPageEpisodes checks, in Chromium, how the page tells since when a
// filter fails, from a history of samples taken before it opens.
func TestPageEpisodes(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	names := []string{"always", "ended", "old", "quiet"}
	// failing tells whether filter i failed in the second ending s seconds
	// before now.
	failing := func(i, s int) bool {
		switch names[i] {
		case "always":
			return true
		case "ended":
			return s >= 20 && s <= 40
		case "old":
			return s >= 190 && s <= 200
		}
		return false
	}
	var mu sync.Mutex
	a := &protocol.StatsAnswer{Version: "test", Start: now.Add(-701 * time.Second).UTC().Format(protocol.TimeFormat)}
	for _, n := range names {
		a.Filters = append(a.Filters, protocol.Filter{Name: n, Direction: "ANY", Rules: []string{"*:*"}})
	}
	statsFn := func() *protocol.StatsAnswer {
		mu.Lock()
		defer mu.Unlock()
		c := *a
		c.Filters = slices.Clone(a.Filters)
		return &c
	}
	h := web.New(web.Config{Stats: statsFn, Top: func(int) *protocol.TopAnswer { return &protocol.TopAnswer{Filters: []protocol.TopFilter{}} }})
	for s := 700; s >= 0; s-- {
		at := now.Add(-time.Duration(s) * time.Second)
		mu.Lock()
		a.Now = at.UTC().Format(protocol.TimeFormat)
		for i := range a.Filters {
			f := &a.Filters[i]
			f.Success.Total += 3
			if failing(i, s) {
				f.Failure.Total++
				f.Failure.Reject++
			}
		}
		mu.Unlock()
		h.Sample(at)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	p := webtest.Open(t, ts.URL+"/")

	clock := func(s int) string { return now.Add(-time.Duration(s) * time.Second).Format("15:04:05") }
	tests := []struct{ filter, badge, cell string }{
		{"always", "failing since before " + clock(600) + " (for more than 10 min)", "before " + clock(600)},
		{"ended", "failed from " + clock(41) + " to " + clock(20) + " (21 s), 20 s ago", clock(41) + " to " + clock(20)},
		{"old", "last failure at " + clock(190) + " (3 min 10 s ago)", "last " + clock(190)},
		{"quiet", "no failures in the last 10 min", "–"},
	}
	for _, tt := range tests {
		p.WaitCell(tt.filter, "episode", tt.cell, 20*time.Second)
		p.WaitJS(fmt.Sprintf("%s: %q", tt.filter, tt.badge),
			`document.querySelector('section[data-filter=`+strconv.Quote(tt.filter)+`] h2 [data-k="episode"]').textContent === `+strconv.Quote(tt.badge), 5*time.Second)
	}
	p.WaitJS("the title", `document.title === 'tcpeek: always, ended failing'`, 5*time.Second)
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("the page had errors:\n%v", errs)
	}
}
