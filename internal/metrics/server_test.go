package metrics

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tcpeek/tcpeek/internal/connlimit"
	"github.com/tcpeek/tcpeek/internal/testutil"
)

// idlersEnv makes the test binary a process that holds idle connections
// to a server instead of a test run (see holdIdle): "ADDR N".
const idlersEnv = "TCPEEK_METRICS_IDLERS"

// TestMain runs the tests, or holds idle connections when idlersEnv says
// so.
func TestMain(m *testing.M) {
	if spec := os.Getenv(idlersEnv); spec != "" {
		if err := holdIdle(spec); err != nil {
			fmt.Fprintf(os.Stderr, "idlers: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdIdle opens N TCP connections to ADDR that send nothing, prints
// "connected N" once they are all open (those the server closed at once
// included), and holds them until its standard input ends.
func holdIdle(spec string) error {
	addr, ns, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(ns)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	sem := make(chan struct{}, 256) // dials at once
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%d of %d connected: %w", len(conns), n, firstErr)
	}
	fmt.Printf("connected %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// startServer serves fixed counters with cfg (Addr, Registry and Logf
// filled in if empty), lets tune change the server before Serve, and
// serves until the test ends.
func startServer(t *testing.T, cfg Config, tune func(*Server)) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Registry == nil {
		st := fixedStats(t)
		cfg.Registry = NewRegistry(NewCollector(st.Snapshot), "9.9.9")
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// get gets url with client and returns the status and the body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// TestServer checks /metrics, the landing page and extra handlers over
// HTTP.
func TestServer(t *testing.T) {
	srv := startServer(t, Config{Handlers: map[string]http.Handler{
		"/extra": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "extra\n") }),
	}}, nil)
	c := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + srv.Addr()
	code, body := get(t, c, base+"/metrics")
	for _, want := range []string{
		`tcpeek_handshakes_total{filter="web",result="success"} 2`,
		`tcpeek_build_info{goversion="`,
		`version="9.9.9"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
		`tcpeek_capture_drops_total{by="kernel"} 3`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics: status %d, no %q", code, want)
		}
	}
	if code, body := get(t, c, base+"/"); code != 200 || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("/: status %d, body %q", code, body)
	}
	if code, _ := get(t, c, base+"/nothing"); code != 404 {
		t.Errorf("/nothing: status %d", code)
	}
	if code, body := get(t, c, base+"/extra"); code != 200 || body != "extra\n" {
		t.Errorf("/extra: status %d, body %q", code, body)
	}

	// A handler for "/" replaces the landing page.
	srv2 := startServer(t, Config{Handlers: map[string]http.Handler{
		"/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "live\n") }),
	}}, nil)
	if code, body := get(t, c, "http://"+srv2.Addr()+"/"); code != 200 || body != "live\n" {
		t.Errorf("/ replaced: status %d, body %q", code, body)
	}
}

// TestIdleConnections holds 10,000 idle TCP connections to the server,
// from another process, and scrapes meanwhile: every scrape succeeds, and
// the server's file descriptors and memory stay bounded.
func TestIdleConnections(t *testing.T) {
	const idlers = 10000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Max < idlers+100 {
		t.Skipf("needs a hard RLIMIT_NOFILE of %d for the idle connections, have %d (%v)", idlers+100, rl.Max, err)
	}
	srv := startServer(t, Config{}, nil)
	// The scraper comes from another address than the idlers, as
	// Prometheus does: the idlers' address, holding the most, gives way.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	url := "http://" + srv.Addr() + "/metrics"
	get(t, c, url) // the first scrape's allocations are not the idlers'
	c.CloseIdleConnections()
	baseFDs, baseRSS := testutil.OpenFDs(0), testutil.RSSKiB(0)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), idlersEnv+"="+srv.Addr()+" "+strconv.Itoa(idlers), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	// Scrape while the connections are being made, and once they are all
	// there.
	connected := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		connected <- line
	}()
	var times []time.Duration
	maxFDs, maxRSS := 0, 0
	scrape := func() {
		began := time.Now()
		if code, body := get(t, c, url); code != 200 || !strings.Contains(body, "tcpeek_handshakes_total") {
			t.Fatalf("scrape with idle connections held: status %d, %d bytes", code, len(body))
		}
		times = append(times, time.Since(began))
		c.CloseIdleConnections()
		maxFDs, maxRSS = max(maxFDs, testutil.OpenFDs(0)), max(maxRSS, testutil.RSSKiB(0))
	}
	for done := false; !done; {
		select {
		case line := <-connected:
			if line != fmt.Sprintf("connected %d\n", idlers) {
				t.Fatalf("idlers: %q", line)
			}
			done = true
		default:
			scrape()
		}
	}
	for range 20 {
		scrape()
	}
	slices.Sort(times)
	t.Logf("%d idle connections: %d scrapes, p50 %v, max %v; server: at most %d file descriptors (%d before), RSS %d KiB (%d before)",
		idlers, len(times), times[len(times)/2].Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond),
		maxFDs, baseFDs, maxRSS, baseRSS)
	// The connections held and the scraper's own; the dropped ones whose
	// goroutine has not run yet: a few more.
	if limit := baseFDs + MaxConns + 1 + 32; maxFDs > limit {
		t.Errorf("%d file descriptors open with idle connections held, want at most %d", maxFDs, limit)
	}
	// The race detector keeps state for every goroutine that ever ran:
	// each connection's, here ten thousand.
	limitKB := 32 << 10
	if raceEnabled {
		limitKB = 128 << 10
	}
	if grew := maxRSS - baseRSS; grew > limitKB {
		t.Errorf("RSS grew by %d KiB with idle connections held, want at most %d KiB", grew, limitKB)
	}
}

// TestSlowloris checks that a client that sends its headers slowly is cut
// off after ReadHeaderTimeout, and that scrapes succeed meanwhile.
func TestSlowloris(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := startServer(t, Config{}, func(s *Server) { s.srv.ReadHeaderTimeout = timeout })
	slow, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	began := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		defer close(cut)
		for _, b := range []byte("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)) {
			if _, err := slow.Write([]byte{b}); err != nil {
				cut <- time.Since(began)
				return
			}
			time.Sleep(20 * time.Millisecond) // the client's pace, not a wait for the server
		}
	}()
	c := &http.Client{Timeout: 10 * time.Second}
	for range 5 {
		if code, _ := get(t, c, "http://"+srv.Addr()+"/metrics"); code != 200 {
			t.Errorf("scrape during a slowloris: status %d", code)
		}
	}
	// The server answers the slow client 408 or closes: its writes fail
	// once the connection is gone.
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, slow)
	gone := time.Since(began)
	// The server's deadline starts at its accept, which may come a few
	// milliseconds before Dial returned here.
	if gone < timeout-50*time.Millisecond || gone > timeout+5*time.Second {
		t.Errorf("slow client cut off after %v, want about %v", gone, timeout)
	}
	slow.Close()
	<-cut
}

// TestNewcomerTakesIdlePlace checks that a connection to a full server
// takes the place of the one idle longest, even when a busy one is older.
func TestNewcomerTakesIdlePlace(t *testing.T) {
	block := make(chan struct{})
	srv := startServer(t, Config{Handlers: map[string]http.Handler{
		"/block": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }),
	}}, func(s *Server) { s.guard.t = connlimit.New[netip.Prefix, *guardConn](connlimit.Limits{Max: 2}, nil) })
	defer close(block)
	// A busy connection, then an idle one.
	busy, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	if !testutil.WaitFor(10*time.Second, func() bool { return srv.guard.t.Len() == 1 && srv.guard.t.IdleLen() == 0 }) {
		t.Fatal("the blocked request is not being served")
	}
	idle, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if !testutil.WaitFor(10*time.Second, func() bool { return srv.guard.t.Len() == 2 }) {
		t.Fatal("the idle connection was not taken in")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if code, _ := get(t, c, "http://"+srv.Addr()+"/metrics"); code != 200 {
		t.Errorf("scrape of a full server: status %d", code)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(idle); len(b) != 0 || err != nil {
		t.Errorf("the idle connection: read %q, %v; want it closed without a word", b, err)
	}
	busy.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := busy.Read(make([]byte, 1)); !os.IsTimeout(err) {
		t.Errorf("the busy connection: %v; want it still waiting for its answer", err)
	}
}

// TestTLSBasicAuth serves with a web configuration file that asks for TLS
// and basic authentication, in exporter-toolkit's format, and scrapes with
// and without the password.
func TestTLSBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := testutil.WriteCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tls_server_config:
  cert_file: cert.pem
  key_file: key.pem
basic_auth_users:
  prometheus: %s
`, hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	var infos []string
	var mu sync.Mutex
	srv := startServer(t, Config{WebConfigFile: conf, Infof: func(f string, a ...any) {
		mu.Lock()
		infos = append(infos, fmt.Sprintf(f, a...))
		mu.Unlock()
	}}, nil)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + srv.Addr()
	for _, tt := range []struct {
		name, user, pass string
		want             int
	}{
		{"right password", "prometheus", "s3cret", 200},
		{"no password", "", "", 401},
		{"wrong password", "prometheus", "guess", 401},
		{"unknown user", "root", "s3cret", 401},
	} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if tt.user != "" {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		resp, err := tlsClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if got := strings.Contains(string(b), "tcpeek_handshakes_total"); got != (tt.want == 200) {
			t.Errorf("%s: metrics in the body: %v", tt.name, got)
		}
	}
	// Plain HTTP is not served.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + srv.Addr() + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "tcpeek_handshakes_total") {
			t.Error("plain HTTP got the metrics")
		}
	}
	// An untrusted certificate is refused by the client: TLS is real.
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(base + "/metrics"); err == nil {
		t.Error("a client that does not trust the certificate connected")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(infos, func(s string) bool { return strings.Contains(s, "TLS is enabled") }) {
		t.Errorf("no line says TLS is enabled: %q", infos)
	}
}

// TestBadWebConfig checks that Listen refuses a web configuration file it
// cannot use, naming the file and the problem, before it listens.
func TestBadWebConfig(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteCert(t, dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.yml"), "no such file"},
		{"not YAML", write("bad.yml", "tls_server_config: [\n"), "yaml"},
		{"unknown key", write("key.yml", "tls_server_cfg:\n  cert_file: cert.pem\n"), "tls_server_cfg"},
		{"missing key file", write("nokey.yml", "tls_server_config:\n  cert_file: cert.pem\n  key_file: none.pem\n"), "none.pem"},
		{"key without cert", write("nocert.yml", "tls_server_config:\n  key_file: key.pem\n"), "cert"},
		{"not a bcrypt hash", write("hash.yml", "basic_auth_users:\n  prometheus: s3cret\n"), "hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := fixedStats(t)
			srv, err := Listen(Config{Addr: "127.0.0.1:0", WebConfigFile: tt.path, Registry: NewRegistry(NewCollector(st.Snapshot), "9.9.9")})
			if err == nil {
				srv.Close()
				t.Fatal("Listen succeeded")
			}
			for _, w := range []string{"--web.config.file " + tt.path, tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if err := CheckWebConfig(""); err != nil {
		t.Errorf("no web configuration: %v", err)
	}
}
