package web

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// fixedStats is a STATS answer with every field set, and statsJSON what
// /api/stats must send for it.
func fixedStats() *protocol.StatsAnswer {
	return &protocol.StatsAnswer{
		Version: "1.2.3",
		Start:   "2024-03-01T09:00:00.000000000Z",
		Now:     "2024-03-01T09:30:00.000000000Z",
		Filters: []protocol.Filter{{
			Name: "web", Direction: "RX", Rules: []string{"*:443"},
			Success:     protocol.Success{Total: 60, DupSYN: 1, DupSYNACK: 2},
			Failure:     protocol.Failure{Total: 40, Timeout: 1, Reject: 37, Unreach: 1, Abort: 1, DupSYN: 3, DupSYNACK: 4},
			Displaced:   5,
			HandshakeMS: protocol.Distribution{Count: 60, P50: 1.5, P90: 2, P99: 3.25, Max: 4},
			SynAckMS:    protocol.Distribution{Count: 61, P50: 1, P90: 1.5, P99: 2, Max: 3},
		}},
		Pending:  6,
		Capture:  protocol.Capture{Packets: 1000, Drops: 7, IfDrops: 8, BadChecksum: 9, Duplicates: 10, KernelFilter: "ebpf"},
		Sessions: protocol.Sessions{InProgress: 11, Max: 1048576, Overflow: 12, Displaced: 13, Evicted: 14},
	}
}

const statsJSON = `{"version":"1.2.3","start":"2024-03-01T09:00:00.000000000Z","now":"2024-03-01T09:30:00.000000000Z",` +
	`"filters":[{"name":"web","direction":"RX","rules":["*:443"],` +
	`"success":{"total":60,"dupsyn":1,"dupsynack":2},` +
	`"failure":{"total":40,"timeout":1,"reject":37,"unreach":1,"abort":1,"dupsyn":3,"dupsynack":4},` +
	`"displaced":5,"handshake_ms":{"count":60,"p50":1.5,"p90":2,"p99":3.25,"max":4},` +
	`"synack_ms":{"count":61,"p50":1,"p90":1.5,"p99":2,"max":3}}],` +
	`"pending":6,"capture":{"packets":1000,"drops":7,"ifdrops":8,"bad_checksum":9,"duplicates":10,"kernel_filter":"ebpf"},` +
	`"sessions":{"in_progress":11,"max":1048576,"overflow":12,"displaced":13,"evicted":14}}` + "\n"

func fixedTop(n int) *protocol.TopAnswer {
	return &protocol.TopAnswer{
		Now: "2024-03-01T09:30:00.000000000Z",
		Filters: []protocol.TopFilter{{
			Name: "web", Direction: "RX",
			TopLists: protocol.TopLists{
				SinceStart: []protocol.TopPeer{{Peer: "198.51.100.7", Port: 443, Failures: 40, Reject: 38, Unreach: 2,
					Last: "2024-03-01T09:29:59.000000000Z"}},
				LastMinute: []protocol.TopPeer{},
				Services:   []protocol.TopService{{Port: 443, Failures: 40}},
			},
		}},
	}
}

const topJSON = `{"now":"2024-03-01T09:30:00.000000000Z","filters":[{"name":"web","direction":"RX",` +
	`"since_start":[{"peer":"198.51.100.7","port":443,"failures":40,"timeout":0,"reject":38,"unreach":2,"abort":0,"error":0,` +
	`"last":"2024-03-01T09:29:59.000000000Z"}],"last_minute":[],"services":[{"port":443,"failures":40}]}]}` + "\n"

// topRecorder is a Top function that remembers the n it was asked for.
type topRecorder struct {
	mu sync.Mutex
	n  []int
}

func (r *topRecorder) top(n int) *protocol.TopAnswer {
	r.mu.Lock()
	r.n = append(r.n, n)
	r.mu.Unlock()
	return fixedTop(n)
}

func (r *topRecorder) last() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.n) == 0 {
		return 0
	}
	return r.n[len(r.n)-1]
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAPIBodies(t *testing.T) {
	rec := &topRecorder{}
	h := New(Config{
		Stats: fixedStats,
		Top:   rec.top,
		Histograms: func() []Histogram {
			return []Histogram{{Name: "web", Counts: []uint64{0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4}}}
		},
	})
	tests := []struct{ target, want string }{
		{"/api/stats", statsJSON},
		{"/api/top", topJSON},
		{"/api/top?n=3", topJSON},
		{"/api/histogram", `{"bounds_ms":[0.1,0.25,0.5,1,2.5,5,10,25,50,100,250,500,1000,2500,5000,10000,30000,60000],` +
			`"filters":[{"name":"web","counts":[0,0,0,1,2,0,0,0,0,0,0,0,0,3,0,0,0,0,4]}]}` + "\n"},
		{"/api/series", `{"start":"","interval_ms":1000,"history_ms":600000,"last":0,"filters":[],"points":[]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			r := get(t, h, "GET", tt.target)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d; want 200", r.StatusCode)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q; want no-store", cc)
			}
			if got := body(t, r); got != tt.want {
				t.Errorf("body\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestStatsIsSTATS checks that /api/stats sends the bytes of the socket's
// STATS answer.
func TestStatsIsSTATS(t *testing.T) {
	h := New(Config{Stats: fixedStats, Top: fixedTop})
	if got, want := body(t, get(t, h, "GET", "/api/stats")), string(protocol.Encode(fixedStats())); got != want {
		t.Errorf("/api/stats\n%s\nSTATS\n%s", got, want)
	}
}

func TestTopN(t *testing.T) {
	tests := []struct {
		query string
		n     int // 0: 400
	}{
		{"", 10},
		{"?n=1", 1},
		{"?n=25", 25},
		{"?n=1000", 1000},
		{"?n=1001", 1000},
		{"?n=99999999999999999999999", 1000},
		{"?n=007", 7},
		{"?n=", 0},
		{"?n=0", 0},
		{"?n=-1", 0},
		{"?n=%2B5", 0}, // +5
		{"?n=1.5", 0},
		{"?n=ten", 0},
		{"?n=%205", 0}, // " 5"
		{"?n=5&n=6", 5},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := &topRecorder{}
			h := New(Config{Stats: fixedStats, Top: rec.top})
			r := get(t, h, "GET", "/api/top"+tt.query)
			b := body(t, r)
			if tt.n == 0 {
				if r.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d; want 400", r.StatusCode)
				}
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(b), &e); err != nil || !strings.Contains(e.Error, "from 1 to 1000") {
					t.Errorf("body %q (%v); want a JSON error that says what n may be", b, err)
				}
				if r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q; want application/json", r.Header.Get("Content-Type"))
				}
				if rec.last() != 0 {
					t.Errorf("Top was called with %d for a bad n", rec.last())
				}
				return
			}
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", r.StatusCode, b)
			}
			if rec.last() != tt.n {
				t.Errorf("Top(%d); want Top(%d)", rec.last(), tt.n)
			}
		})
	}
}

func TestSeriesAfter(t *testing.T) {
	for _, q := range []string{"?after=x", "?after=-1", "?after=1e3"} {
		h := New(Config{Stats: fixedStats, Top: fixedTop})
		if r := get(t, h, "GET", "/api/series"+q); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d; want 400", q, r.StatusCode)
		}
	}
}

// TestNotReady checks that a daemon whose functions answer nil says so.
func TestNotReady(t *testing.T) {
	h := New(Config{
		Stats: func() *protocol.StatsAnswer { return nil },
		Top:   func(int) *protocol.TopAnswer { return nil },
	})
	for _, p := range []string{"/api/stats", "/api/top"} {
		r := get(t, h, "GET", p)
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d, %q; want 503 with JSON", p, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	h.Sample(time.Now()) // no sample, no panic
	if got := body(t, get(t, h, "GET", "/api/histogram")); got != `{"bounds_ms":[0.1,0.25,0.5,1,2.5,5,10,25,50,100,250,500,1000,2500,5000,10000,30000,60000],"filters":[]}`+"\n" {
		t.Errorf("/api/histogram without Histograms: %s", got)
	}
}

func TestRouting(t *testing.T) {
	h := New(Config{Stats: fixedStats, Top: fixedTop})
	tests := []struct {
		method, target string
		code           int
		ctype          string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/static/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/api/stats", 200, "application/json"},
		{"HEAD", "/api/stats", 200, "application/json"},
		{"GET", "/index.html", 404, ""},
		{"GET", "/static/", 404, ""},
		{"GET", "/static/index.html", 404, ""},
		{"GET", "/static/nope.js", 404, ""},
		{"GET", "/assets/app.js", 404, ""},
		{"GET", "/nope", 404, ""},
		{"GET", "/api/nope", 404, "application/json"},
		{"GET", "/api/stats/", 404, "application/json"},
		{"POST", "/", 405, ""},
		{"POST", "/api/stats", 405, "application/json"},
		{"DELETE", "/static/app.js", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := get(t, h, tt.method, tt.target)
			b := body(t, r)
			if r.StatusCode != tt.code {
				t.Fatalf("status %d; want %d", r.StatusCode, tt.code)
			}
			if tt.ctype != "" && r.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q; want %q", r.Header.Get("Content-Type"), tt.ctype)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self';") {
				t.Errorf("Content-Security-Policy %q; want default-src 'self' first", csp)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options %q; want nosniff", r.Header.Get("X-Content-Type-Options"))
			}
			if tt.code == 405 && r.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q; want GET, HEAD", r.Header.Get("Allow"))
			}
			if tt.method == "HEAD" && b != "" {
				t.Errorf("HEAD sent a body of %d bytes", len(b))
			}
			if tt.method == "GET" && tt.code == 200 && b == "" {
				t.Error("empty body")
			}
		})
	}
}

// TestAssetsRevalidate checks that an unchanged asset costs a 304.
func TestAssetsRevalidate(t *testing.T) {
	h := New(Config{Stats: fixedStats, Top: fixedTop})
	for _, p := range []string{"/", "/static/app.js", "/static/style.css"} {
		r := get(t, h, "GET", p)
		etag := r.Header.Get("ETag")
		if etag == "" || r.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q, Cache-Control %q; want an ETag and no-cache", p, etag, r.Header.Get("Cache-Control"))
		}
		if r2 := get(t, h, "GET", p, "If-None-Match", etag); r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: status %d; want 304", p, r2.StatusCode)
		}
	}
}

// TestAssetsSelfContained checks that the embedded files load nothing from
// elsewhere: no absolute URL anywhere, and in the page only relative links.
func TestAssetsSelfContained(t *testing.T) {
	absolute := regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://|(?:src|href|action)\s*=\s*["']?\s*(?:/|[a-z]+:)|url\(|@import`)
	n := 0
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := absolute.FindString(line); m != "" {
				t.Errorf("%s:%d: %q refers to something outside the daemon: %s", name, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d embedded files; want 3 (index.html, app.js, style.css): update this test", n)
	}
	// The page loads exactly its script and its style sheet.
	page, _ := assets.ReadFile("assets/index.html")
	for _, want := range []string{`<script src="static/app.js" defer></script>`, `<link rel="stylesheet" href="static/style.css">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	if strings.Contains(string(page), " style=") || strings.Contains(string(page), "<style") {
		t.Error("index.html has inline style, which the CSP forbids")
	}
	if strings.Count(string(page), "<script") != 1 {
		t.Error("index.html has inline script, which the CSP forbids")
	}
}

// TestRunSamples checks that Run samples until its context ends, while
// requests read the history (go test -race checks the locking).
func TestRunSamples(t *testing.T) {
	var mu sync.Mutex
	total := uint64(0)
	statsFn := func() *protocol.StatsAnswer {
		mu.Lock()
		defer mu.Unlock()
		total += 3
		a := fixedStats()
		a.Filters[0].Success.Total = total
		return a
	}
	h := New(Config{Stats: statsFn, Top: fixedTop, Interval: 5 * time.Millisecond, History: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var a SeriesAnswer
		if err := json.Unmarshal([]byte(body(t, get(t, h, "GET", "/api/series"))), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Points) >= 3 {
			for _, p := range a.Points {
				if p.Counts[0].Success == 0 || p.DTMS < 0 {
					t.Errorf("point %+v: want a success count and a length", p)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 points after 10 s: %+v", a)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestHandshakeHistograms(t *testing.T) {
	snap := stats.Snapshot{Filters: make([]stats.Filter, 2)}
	snap.Filters[0].Name = "RX"
	snap.Filters[1].Name = "web"
	h := &snap.Filters[1].Handshake
	for _, d := range []time.Duration{
		50 * time.Microsecond,   // bucket 0 (<= 0.1 ms)
		100 * time.Microsecond,  // bucket 0: the bound is inclusive
		101 * time.Microsecond,  // bucket 1
		3 * time.Millisecond,    // bucket 5 (<= 5 ms)
		time.Second,             // bucket 12 (<= 1 s)
		1100 * time.Millisecond, // bucket 13
		61 * time.Second,        // above 60 s
	} {
		h.Observe(int64(d))
	}
	got := HandshakeHistograms(&snap)
	want := []Histogram{
		{Name: "RX", Counts: make([]uint64, 19)},
		{Name: "web", Counts: []uint64{2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d histograms; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].Counts, want[i].Counts) {
			t.Errorf("histogram %d: %+v; want %+v", i, got[i], want[i])
		}
	}
	if len(BoundsMS) != len(stats.PrometheusBounds) || BoundsMS[0] != 0.1 || BoundsMS[len(BoundsMS)-1] != 60000 {
		t.Errorf("BoundsMS %v; want stats.PrometheusBounds in ms", BoundsMS)
	}
}
