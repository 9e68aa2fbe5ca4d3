package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/connlimit"
)

// The bounds of the HTTP server. A scraper sends its request at once and
// reads the answer; everything else is cut short.
const (
	// MaxConns is the number of connections held at once. When that many
	// are held, a newcomer takes the place of the connection that has
	// waited longest for a request (a new one, or one kept alive between
	// scrapes), from the address that holds the most (see package
	// connlimit): connections that say nothing cannot keep a scraper out,
	// and the descriptors and memory they cost stay bounded.
	MaxConns = 64
	// MaxConnsPerAddr is the number of connections one client address may
	// have held at once.
	MaxConnsPerAddr = MaxConns / 2
	// ReadHeaderTimeout is how long a client has to send its request
	// headers (and its TLS handshake): a slow client (slowloris) is cut
	// off after it.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds the reading of a whole request.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds the writing of an answer, from the end of the
	// request's headers; gathering the metrics gets GatherTimeout of it.
	WriteTimeout = 30 * time.Second
	// GatherTimeout bounds the gathering of the metrics for one scrape.
	GatherTimeout = 10 * time.Second
	// IdleTimeout is how long a connection is kept alive between requests,
	// longer than a scrape interval of a minute.
	IdleTimeout = 90 * time.Second
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes = 16 << 10
	// maxInFlight bounds the scrapes gathered at once.
	maxInFlight = 8
	// quiet is how long a connection must have sent nothing to be idle: one
	// that sent part of a request a moment ago is not dropped for a
	// newcomer (a slow one is cut off by ReadHeaderTimeout).
	quiet = 100 * time.Millisecond
	// limitLogInterval spaces the log lines about dropped connections and
	// HTTP errors.
	limitLogInterval = 10 * time.Second
)

// Config says where to listen and what to serve.
type Config struct {
	// Addr is the address to listen on: host:port or :port
	// (--web.listen-address).
	Addr string
	// WebConfigFile is the exporter-toolkit web configuration that turns
	// on TLS and basic authentication (--web.config.file); "" serves
	// plain HTTP to everyone.
	WebConfigFile string
	// Registry is gathered at /metrics.
	Registry *prometheus.Registry
	// Handlers are served besides /metrics, by http.ServeMux pattern. A
	// handler for "/" replaces the landing page.
	Handlers map[string]http.Handler
	// Logf reports errors and warnings; Infof what is worth knowing once.
	// Either may be nil.
	Logf, Infof func(format string, args ...any)
}

// Server serves /metrics, the landing page and Config.Handlers.
type Server struct {
	cfg   Config
	srv   *http.Server
	ln    *guardListener
	guard *guard
}

// CheckWebConfig reads the web configuration file and the certificates and
// keys it names, as the server will when it serves, and reports what is
// wrong with them; "" is fine.
func CheckWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	return nil
}

// Listen checks cfg.WebConfigFile and opens the listener on cfg.Addr now,
// so that a privileged port can be bound before privileges are dropped;
// Serve answers on it.
func Listen(cfg Config) (*Server, error) {
	if cfg.Registry == nil {
		return nil, errors.New("metrics: no registry given")
	}
	if err := CheckWebConfig(cfg.WebConfigFile); err != nil {
		return nil, err
	}
	inner, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--web.listen-address %s: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:            logFunc(cfg.Logf),
		MaxRequestsInFlight: maxInFlight,
		Timeout:             GatherTimeout,
	}))
	if _, ok := cfg.Handlers["/"]; !ok {
		mux.HandleFunc("/", landingPage)
	}
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	g := newGuard(connlimit.Limits{Max: MaxConns, PerKey: MaxConnsPerAddr}, cfg.Logf)
	s := &Server{
		cfg:   cfg,
		guard: g,
		ln:    &guardListener{Listener: inner, g: g},
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ConnState:         g.connState,
			ErrorLog:          log.New(&limitedWriter{logf: cfg.Logf}, "", 0),
		},
	}
	return s, nil
}

// landingPage links to /metrics.
func landingPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!DOCTYPE html>
<html><head><title>tcpeek</title></head>
<body><h1>tcpeek</h1><p>TCP handshake monitor.</p>
<p><a href="/metrics">Metrics</a></p></body></html>
`)
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Close, with TLS and basic authentication if the web
// configuration file says so (read again for every connection and request,
// as exporter-toolkit does: certificates can be renewed in place).
func (s *Server) Serve() error {
	logger := slog.New(&logHandler{logf: s.cfg.Logf, infof: s.cfg.Infof})
	path := s.cfg.WebConfigFile
	err := web.Serve(s.ln, s.srv, &web.FlagConfig{WebConfigFile: &path}, logger)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics server on %s: %w", s.Addr(), err)
	}
	return nil
}

// Close stops the server and closes its listener and connections, also
// when Serve was never called.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.ln.Close() // already closed if Serve ran
	return err
}

// guard holds the server's connections in a connlimit.Table, by client
// address.
type guard struct {
	t    *connlimit.Table[netip.Prefix, *guardConn]
	logf func(string, ...any)

	mu                         sync.Mutex
	accepted, dropped, refused int       // since the last log line
	lastLog                    time.Time // when they were last logged
}

func newGuard(lim connlimit.Limits, logf func(string, ...any)) *guard {
	return &guard{t: connlimit.New[netip.Prefix, *guardConn](lim, nil), logf: logf}
}

// admit takes in a new connection, dropping another to make room; false
// if c must be closed instead.
func (g *guard) admit(c net.Conn) (*guardConn, bool) {
	gc := &guardConn{Conn: c, g: g}
	slot, victim, dropped := g.t.Admit(clientOf(c.RemoteAddr()), gc, idle)
	if dropped {
		victim.Close()
	}
	gc.slot = slot
	g.count(dropped, slot == nil)
	return gc, slot != nil
}

// count counts an admission and logs, at most every limitLogInterval,
// what was dropped and refused.
func (g *guard) count(dropped, refused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accepted++
	if dropped {
		g.dropped++
	}
	if refused {
		g.refused++
	}
	if g.dropped+g.refused == 0 || time.Since(g.lastLog) < limitLogInterval {
		return
	}
	if g.logf != nil {
		client, n := g.t.Heaviest()
		addr := client.Addr().String()
		if client.Bits() == 64 {
			addr = client.String()
		}
		g.logf("metrics: %d connections at once, %s has %d; since the last such line, %d connections, %d idle ones dropped for newer ones, %d refused (all busy)",
			g.t.Len(), addr, n, g.accepted, g.dropped, g.refused)
	}
	g.accepted, g.dropped, g.refused, g.lastLog = 0, 0, 0, time.Now()
}

// connState follows the connections through http.Server's states: one
// with a request being answered is busy; one waiting for a request may
// give way.
func (g *guard) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	gc, ok := c.(*guardConn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		g.t.Busy(gc.slot)
	case http.StateIdle:
		g.t.Idle(gc.slot)
	case http.StateHijacked, http.StateClosed:
		g.t.Release(gc.slot)
	}
}

// clientOf returns the client of a remote address: an IPv4 address, or
// the /64 network of an IPv6 address (one host can have them all).
func clientOf(a net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Prefix{}
	}
	addr := ap.Addr().Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// idle tells whether c has sent nothing for a moment and nothing waits to
// be read on it: one whose request has arrived, or is being read, is not
// idle.
func idle(c *guardConn) bool {
	if time.Duration(time.Now().UnixNano()-c.lastRead.Load()) < quiet {
		return false
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n == 0
}

// guardListener admits the connections it accepts into its guard.
type guardListener struct {
	net.Listener
	g *guard
}

// Accept returns the next connection admitted.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc, ok := l.g.admit(c); ok {
			return gc, nil
		}
		c.Close()
	}
}

// guardConn is a connection held in a guard; closing it frees its slot.
type guardConn struct {
	net.Conn
	g        *guard
	slot     *connlimit.Slot[netip.Prefix, *guardConn]
	lastRead atomic.Int64 // when it last read anything, in Unix nanoseconds
}

// Read reads from the connection and notes when it read something.
func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// CloseWrite shuts down the writing side, as http.Server does before
// closing a connection whose request it did not read in full.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Close closes the connection and frees its slot.
func (c *guardConn) Close() error {
	if c.slot != nil {
		c.g.t.Release(c.slot)
	}
	return c.Conn.Close()
}

// logHandler is a slog.Handler for exporter-toolkit's messages: errors and
// warnings to logf, the rest to infof.
type logHandler struct {
	logf, infof func(string, ...any)
	attrs       string
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	f := h.infof
	if r.Level >= slog.LevelWarn {
		f = h.logf
	}
	if f == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	f("metrics: %s", b.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		c.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return &c
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// limitedWriter passes http.Server's error lines (TLS handshake errors,
// accept errors: as many as clients misbehave) to logf, at most one every
// limitLogInterval, with the number left out.
type limitedWriter struct {
	logf func(string, ...any)

	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.logf == nil {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.last) < limitLogInterval {
		w.skipped++
		return len(p), nil
	}
	line := strings.TrimSuffix(string(p), "\n")
	if w.skipped > 0 {
		line += fmt.Sprintf(" (and %d more such lines in the last %v)", w.skipped, time.Since(w.last).Round(time.Second))
	}
	w.logf("metrics: %s", line)
	w.last, w.skipped = time.Now(), 0
	return len(p), nil
}

// logFunc is a promhttp.Logger that writes to a log function.
type logFunc func(string, ...any)

func (f logFunc) Println(v ...any) {
	if f != nil {
		f("metrics: %s", fmt.Sprint(v...))
	}
}
