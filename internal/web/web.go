// Package web is tcpeek's live page, served at the metrics address: per
// filter the attempts per second, the failures by cause, the failure %, the
// handshake times, and the peers that fail most, drawn by a small script in
// the browser, and the JSON it reads (/api/stats is STATS, /api/top is TOP).
//
// The page, its script and its style sheet are embedded in the binary and
// fetch nothing from elsewhere; the Content-Security-Policy header says so
// to the browser. Every handler reads snapshots through the functions of
// Config; none touches the capture pipeline. The recent history the charts
// draw is kept in the daemon, in a bounded ring that Handler.Run samples
// once a second, so that a page opened during an incident shows since when
// it lasts.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// Config is what the page shows, as functions that the handlers call for
// each request. They are called from several goroutines at once.
type Config struct {
	// Stats returns the STATS object (SPEC §7), as the stats socket sends
	// it. Required. A nil answer means not ready: the API answers 503.
	Stats func() *protocol.StatsAnswer
	// Top returns the TOP answer for n entries (1 <= n <= 1000). Required.
	Top func(n int) *protocol.TopAnswer
	// Histograms returns the handshake-time histogram of every filter, in
	// the order of STATS (see HandshakeHistograms). Optional: without it the
	// page draws no histogram.
	Histograms func() []Histogram
	// History is how long the ring of samples reaches back (default 10
	// minutes); Interval is the time between two samples (default 1 s).
	History, Interval time.Duration
}

// Defaults of Config.
const (
	DefaultHistory  = 10 * time.Minute
	DefaultInterval = time.Second
)

// CSP is the Content-Security-Policy of every answer: the page loads its
// script, style and data from the daemon only, nothing inline, and cannot
// be framed.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed assets
var assets embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the page, its assets and its API. Mount it at the root of
// the metrics server (next to /metrics), or under a prefix with
// http.StripPrefix: the page uses relative URLs only.
type Handler struct {
	cfg    Config
	assets map[string]asset // by URL path
	series *series
}

// New returns the handler of cfg. It panics if cfg.Stats or cfg.Top is nil,
// a mistake in the program.
func New(cfg Config) *Handler {
	if cfg.Stats == nil || cfg.Top == nil {
		panic("web: Config.Stats and Config.Top are required")
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	h := &Handler{
		cfg:    cfg,
		assets: make(map[string]asset),
		series: newSeries(cfg.History, cfg.Interval),
	}
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
	}
	err := fs.WalkDir(assets, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := asset{
			body:  body,
			ctype: types[path.Ext(name)],
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		if a.ctype == "" {
			return fmt.Errorf("%s: no content type for this kind of file", name)
		}
		url := "/static/" + strings.TrimPrefix(name, "assets/")
		if name == "assets/index.html" {
			url = "/"
		}
		h.assets[url] = a
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error())
	}
	return h
}

// Run samples the counters every Config.Interval until ctx ends, to keep
// the history the charts draw. The daemon starts it next to the server.
func (h *Handler) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	h.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Sample(now)
		}
	}
}

// Sample adds the counters of one STATS answer, taken at now, to the
// history. Run calls it; tests call it with times of their own.
func (h *Handler) Sample(now time.Time) {
	if st := h.cfg.Stats(); st != nil {
		h.series.add(now, st)
	}
}

// ServeHTTP serves the page at /, its assets under /static/, and the JSON
// under /api/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeError(w, http.StatusMethodNotAllowed, "only GET and HEAD are served")
			return
		}
		http.Error(w, "only GET and HEAD are served", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; p {
	case "/api/stats":
		h.serveStats(w, r)
	case "/api/top":
		h.serveTop(w, r)
	case "/api/series":
		h.serveSeries(w, r)
	case "/api/histogram":
		h.serveHistogram(w, r)
	case "/favicon.ico":
		// Browsers ask for it; the page has none, and says so quietly.
		hd.Set("Cache-Control", "max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		if strings.HasPrefix(p, "/api/") {
			writeError(w, http.StatusNotFound, "no such API: the page reads /api/stats, /api/top, /api/series and /api/histogram")
			return
		}
		a, ok := h.assets[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hd.Set("Content-Type", a.ctype)
		// The page is small and changes with the binary: the browser asks
		// each time, and an unchanged file costs a 304.
		hd.Set("Cache-Control", "no-cache")
		hd.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	}
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	st := h.cfg.Stats()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, "tcpeek is starting: try again in a second")
		return
	}
	writeJSON(w, r, protocol.Encode(st))
}

func (h *Handler) serveTop(w http.ResponseWriter, r *http.Request) {
	n := protocol.DefaultTopN
	if q := r.URL.Query(); q.Has("n") {
		var ok bool
		if n, ok = parseTopN(q.Get("n")); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("n=%q: give a whole number from 1 to %d", q.Get("n"), protocol.MaxTopN))
			return
		}
	}
	top := h.cfg.Top(n)
	if top == nil {
		writeError(w, http.StatusServiceUnavailable, "tcpeek is starting: try again in a second")
		return
	}
	writeJSON(w, r, protocol.Encode(top))
}

// parseTopN parses the n of /api/top as the stats socket parses TOP's
// number: decimal digits only, at least 1; more than MaxTopN asks for
// MaxTopN.
func parseTopN(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), protocol.MaxTopN+1)
	}
	if n == 0 {
		return 0, false
	}
	return min(n, protocol.MaxTopN), true
}

func (h *Handler) serveSeries(w http.ResponseWriter, r *http.Request) {
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		var err error
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after=%q: give the seq of the last point you have, or 0", s))
			return
		}
	}
	writeJSON(w, r, encode(h.series.answer(after)))
}

func (h *Handler) serveHistogram(w http.ResponseWriter, r *http.Request) {
	a := HistogramAnswer{BoundsMS: BoundsMS, Filters: []Histogram{}}
	if h.cfg.Histograms != nil {
		if hs := h.cfg.Histograms(); hs != nil {
			a.Filters = hs
		}
	}
	writeJSON(w, r, encode(a))
}

// encode returns v as one line of JSON, for the types of this package,
// which always marshal.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func writeJSON(w http.ResponseWriter, r *http.Request, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body) //nolint:errcheck // the client went away: nothing to do
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(encode(struct { //nolint:errcheck // as in writeJSON
		Error string `json:"error"`
	}{msg}))
}
