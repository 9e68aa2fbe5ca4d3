// Package webtest drives tcpeek's live page in a real headless Chromium,
// for the tests of package web and the end-to-end tests of the daemon.
//
// It reads the page as a user would see it: the cells of the summary table,
// the rows of the lists of failing peers, the charts, the status line. The
// page marks them with data- attributes (data-filter, data-k, data-list,
// data-peer, data-chart, data-points), which are what this package relies
// on.
package webtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Page is the live page open in a headless Chromium.
type Page struct {
	t   testing.TB
	ctx context.Context

	mu     sync.Mutex
	errors []string // exceptions and console or browser errors, in order
}

// Open starts a headless Chromium and opens url in it (the page of a
// daemon, "http://127.0.0.1:port/"). It skips t when Chromium is not
// installed (set TCPEEK_CHROMIUM to use another binary). The browser ends
// with the test.
func Open(t testing.TB, url string) *Page {
	t.Helper()
	path := os.Getenv("TCPEEK_CHROMIUM")
	if path == "" {
		path = ChromiumPath
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("no Chromium at %s (install Debian's chromium package, or set TCPEEK_CHROMIUM): %v", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.WindowSize(1366, 900), // a laptop's screen
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses root with its sandbox
	}
	ctx, cancel := chromedp.NewContext(context.Background(),
		chromedp.WithAllocatorOptions(opts...),
		chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)

	p := &Page{t: t, ctx: ctx}
	// Subscribe before the navigation, so that no error of the first load
	// is missed.
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			p.addError(fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if e := ev.Entry; e.Level == log.EntryLevelError {
				p.addError(fmt.Sprintf("%s error: %s (%s)", e.Source, e.Text, e.URL))
			}
		}
	}()
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					if a.Description != "" {
						args = append(args, a.Description)
					} else {
						args = append(args, string(a.Value))
					}
				}
				p.addError("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		}
	}()
	nctx, ncancel := context.WithTimeout(ctx, 60*time.Second)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("Chromium cannot open %s: %v", url, err)
	}
	return p
}

func (p *Page) addError(s string) {
	p.mu.Lock()
	p.errors = append(p.errors, s)
	p.mu.Unlock()
}

// Errors returns the script exceptions, console errors and browser errors
// (a resource that did not load, a Content-Security-Policy violation) of
// the page so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// Context returns the chromedp context of the page's tab, for actions of
// one's own (chromedp.Run(p.Context(), …)). It ends with the test.
func (p *Page) Context() context.Context { return p.ctx }

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitJS waits until the JavaScript expression cond is true in the page, for
// at most timeout. On timeout it fails the test, naming what, with what the
// page shows.
func (p *Page) WaitJS(what, cond string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			err = fmt.Errorf("not within %v", timeout)
		}
		p.t.Fatalf("waiting until the page shows %s: %v\n%s", what, err, p.describe())
	}
}

// describe returns what the page shows, for a failure message.
func (p *Page) describe() string {
	text, err := Eval[string](p, `document.body ? document.body.innerText.slice(0, 4000) : ''`)
	if err != nil {
		text = "(cannot read the page: " + err.Error() + ")"
	}
	s := "The page says:\n" + text
	if errs := p.Errors(); len(errs) > 0 {
		s += "\nIts errors:\n" + strings.Join(errs, "\n")
	}
	return s
}

// js quotes s as a JavaScript string.
func js(s string) string { return strconv.Quote(s) }

// Cell returns the JavaScript expression of the text of the summary table's
// cell key (rate_attempts, rate_success, rate_timeout, …, rate_fail_pct,
// p50, p99, attempts, failures, fail_pct, displaced, episode) of filter.
func Cell(filter, key string) string {
	sel := fmt.Sprintf(`#summary tr[data-filter=%s] td[data-k=%s]`, js(filter), js(key))
	return `((document.querySelector(` + js(sel) + `) || {}).textContent || '')`
}

// PeerCell returns the JavaScript expression of the text of cell key
// (failures, timeout, reject, unreach, abort, error, last, port) of peer
// and port in filter's list (last_minute or since_start).
func PeerCell(filter, list, peer string, port uint16, key string) string {
	sel := fmt.Sprintf(`section[data-filter=%s] table[data-list=%s] tr[data-peer=%s][data-port="%d"] td[data-k=%s]`,
		js(filter), js(list), js(peer), port, js(key))
	return `((document.querySelector(` + js(sel) + `) || {}).textContent || '')`
}

// ChartPoints returns the JavaScript expression of the number of values
// drawn by filter's chart (attempts, failpct or histogram).
func ChartPoints(filter, chart string) string {
	sel := fmt.Sprintf(`section[data-filter=%s] figure[data-chart=%s] svg`, js(filter), js(chart))
	return `Number((document.querySelector(` + js(sel) + `) || {getAttribute: () => 0}).getAttribute('data-points'))`
}

// Status returns the JavaScript expression of the status line's state: ok
// (the daemon answers), down (it does not), wait (no answer yet).
const Status = `(document.getElementById('status').className.split(' ').find(c => c !== 'status') || '')`

// StatusText is the JavaScript expression of the status line's text.
const StatusText = `document.getElementById('status').textContent`

// WaitCell waits until filter's summary cell key reads want.
func (p *Page) WaitCell(filter, key, want string, timeout time.Duration) {
	p.t.Helper()
	p.WaitJS(fmt.Sprintf("%s of filter %s = %q", key, filter, want), Cell(filter, key)+` === `+js(want), timeout)
}

// WaitPeer waits until filter's list (last_minute or since_start) shows
// peer and port with failures failures.
func (p *Page) WaitPeer(filter, list, peer string, port uint16, failures uint64, timeout time.Duration) {
	p.t.Helper()
	want := strconv.FormatUint(failures, 10)
	p.WaitJS(fmt.Sprintf("%s:%d with %d failures in the %s list of %s", peer, port, failures, list, filter),
		PeerCell(filter, list, peer, port, "failures")+`.replace(/,/g, '') === `+js(want), timeout)
}

// Screenshot saves a picture of the whole page as PNG in file, and returns
// its path.
func (p *Page) Screenshot(file string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return file
}
