package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/connlimit"
	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
	"github.com/tcpeek/tcpeek/internal/testutil"
)

// fakeStats is a Snapshot source whose counters the tests change.
type fakeStats struct {
	mu    sync.Mutex
	snap  stats.Snapshot
	calls int
	// each, if set, changes the counters before every snapshot.
	each func(*stats.Snapshot)
}

// testFilters describes the filters of the fake counters.
var testFilters = []stats.FilterInfo{
	{Name: "RX", Direction: "RX", Rules: []string{"*:*"}},
	{Name: "TX", Direction: "TX", Rules: []string{"*:*"}},
	{Name: "web", Direction: "RX", Rules: []string{"*:80", "*:443"}},
}

func newFakeStats(n int) *fakeStats {
	start := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	f := &fakeStats{snap: stats.Snapshot{
		Start:    start,
		Now:      start.Add(90 * time.Second),
		Filters:  make([]stats.Filter, n),
		Sessions: stats.Sessions{Max: 1 << 20},
	}}
	for i := range f.snap.Filters {
		f.snap.Filters[i].FilterInfo = testFilters[i%len(testFilters)]
	}
	return f
}

// Snapshot returns a copy of the counters, as stats.Stats.Snapshot does.
func (f *fakeStats) Snapshot() stats.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.each != nil {
		f.each(&f.snap)
	}
	c := f.snap
	c.Filters = append([]stats.Filter(nil), f.snap.Filters...)
	return c
}

func (f *fakeStats) update(fn func(*stats.Snapshot)) {
	f.mu.Lock()
	fn(&f.snap)
	f.mu.Unlock()
}

// tempDir returns a short temporary directory (socket paths are limited to
// 107 bytes, and t.TempDir holds the test's name).
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tcpeek-srv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testConfig returns a Config for a socket in a new temporary directory.
func testConfig(t testing.TB, src *fakeStats) Config {
	return Config{
		Path:     filepath.Join(tempDir(t), "tcpeek.sock"),
		UID:      -1,
		GID:      -1,
		Snapshot: src.Snapshot,
		Top:      fakeTop,
		Version:  "1.0.0",
		Logf:     t.Logf,
	}
}

// start listens with cfg, lets tune change the server before Serve, and
// serves until the test ends.
func start(t testing.TB, cfg Config, tune func(*Server)) *Server {
	t.Helper()
	s, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if tune != nil {
		tune(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// ask sends req on a new connection and reads the answer until EOF.
func ask(path, req string) (string, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func mustAsk(t testing.TB, path, req string) string {
	t.Helper()
	got, err := ask(path, req)
	if err != nil {
		t.Fatalf("request %q: %v", req, err)
	}
	return got
}

const unknown = `{"error":"unknown request"}` + "\n"

// fakeTop answers TOP with one fixed peer, and a service whose failures
// are the n it was asked for, so that the tests see how the server parsed
// the request.
func fakeTop(n int) *protocol.TopAnswer {
	return &protocol.TopAnswer{
		Now: "2024-05-06T07:09:39.000000000Z",
		Filters: []protocol.TopFilter{{Name: "RX", Direction: "RX", TopLists: protocol.TopLists{
			SinceStart: []protocol.TopPeer{{Peer: "192.0.2.7", Port: 80, Failures: 3, Timeout: 1, Reject: 2, Last: "2024-05-06T07:09:00.000000000Z"}},
			LastMinute: []protocol.TopPeer{},
			Services:   []protocol.TopService{{Port: 80, Failures: uint64(n)}},
		}}},
	}
}

// setCounters gives every counter of every filter a distinct value.
func setCounters(s *stats.Snapshot, base uint64) {
	for i := range s.Filters {
		f := &s.Filters[i]
		v := base + uint64(i)*100
		f.Success = stats.Success{Total: v + 1, DupSYN: v + 2, DupSYNACK: v + 3}
		f.Failure = stats.Failure{Total: v + 4, Timeout: v + 5, Reject: v + 6, Unreach: v + 7, Abort: v + 8, DupSYN: v + 9, DupSYNACK: v + 10}
		f.Handshake.Observe(int64(v+1) * int64(time.Millisecond))
	}
	s.Capture = stats.Capture{Packets: base + 1000, Drops: base + 2, IfDrops: base + 3, BadChecksum: base + 4, Duplicates: base + 5}
	s.Sessions.InProgress = base + 6
}

func TestRequests(t *testing.T) {
	src := newFakeStats(3)
	src.update(func(s *stats.Snapshot) { setCounters(s, 10) })
	// Literal answers, so that a renamed or swapped key fails.
	counters := func(name string, v int) string {
		return fmt.Sprintf(`{"%s":{"success":{"total":%d,"dupsyn":%d,"dupsynack":%d},"failure":{"total":%d,"timeout":%d,"reject":%d,"unreach":%d,"abort":%d}}}`,
			name, v+1, v+2, v+3, v+4, v+5, v+6, v+7, v+8)
	}
	all := counters("RX", 10) + "," + counters("TX", 110) + "," + counters("web", 210)
	get := "[" + all + `,{"pcap":{"stats":{"recv":1010,"drop":12,"ifdrop":13}}}]` + "\n"
	refresh := "[" + all + "]\n"
	filterStats := func(name, rules string, v int, hs string) string {
		return fmt.Sprintf(`{"name":"%s","direction":"%s","rules":[%s],`+
			`"success":{"total":%d,"dupsyn":%d,"dupsynack":%d},`+
			`"failure":{"total":%d,"timeout":%d,"reject":%d,"unreach":%d,"abort":%d,"dupsyn":%d,"dupsynack":%d},`+
			`"displaced":0,"handshake_ms":%s,"synack_ms":{"count":0,"p50":0,"p90":0,"p99":0,"max":0}}`,
			name, name[:2], rules, v+1, v+2, v+3, v+4, v+5, v+6, v+7, v+8, v+9, v+10, hs)
	}
	statsAnswer := `{"version":"1.0.0","start":"2024-05-06T07:08:09.000000000Z","now":"2024-05-06T07:09:39.000000000Z","filters":[` +
		filterStats("RX", `"*:*"`, 10, `{"count":1,"p50":10.5,"p90":10.9,"p99":10.99,"max":11}`) + "," +
		filterStats("TX", `"*:*"`, 110, `{"count":1,"p50":110.5,"p90":110.9,"p99":110.99,"max":111}`) + "," +
		strings.Replace(filterStats("web", `"*:80","*:443"`, 210, `{"count":1,"p50":205.5,"p90":209.9,"p99":210.89,"max":211}`), `"direction":"we"`, `"direction":"RX"`, 1) +
		`],"pending":0,"capture":{"packets":1010,"drops":12,"ifdrops":13,"bad_checksum":14,"duplicates":15,"kernel_filter":"none"},` +
		`"sessions":{"in_progress":16,"max":1048576,"overflow":0,"displaced":0,"evicted":0}}` + "\n"
	top := `{"now":"2024-05-06T07:09:39.000000000Z","filters":[{"name":"RX","direction":"RX","since_start":[{"peer":"192.0.2.7","port":80,"failures":3,"timeout":1,"reject":2,"unreach":0,"abort":0,"error":0,"last":"2024-05-06T07:09:00.000000000Z"}],"last_minute":[],"services":[{"port":80,"failures":%d}]}]}` + "\n"

	tests := []struct {
		name, req, want string
	}{
		{"GET LF", "GET\n", get},
		{"GET CRLF", "GET\r\n", get},
		{"GET blanks", " GET \r\n", get},
		{"GET then EOF", "GET", get}, // the client shuts down its side (see halfClose)
		{"GET then more", "GET\nSTATS\n", get},
		{"REFRESH LF", "REFRESH\n", refresh},
		{"REFRESH CRLF", "REFRESH\r\n", refresh},
		{"STATS LF", "STATS\n", statsAnswer},
		{"STATS CRLF", "STATS\r\n", statsAnswer},
		{"TOP", "TOP\n", fmt.Sprintf(top, 10)},
		{"TOP 3", "TOP 3\r\n", fmt.Sprintf(top, 3)},
		{"TOP 5000", "TOP 5000\n", fmt.Sprintf(top, 1000)},
		{"TOP 0", "TOP 0\n", unknown},
		{"lower case", "get\n", unknown},
		{"unknown word", "HELLO\n", unknown},
		{"empty line", "\n", unknown},
		{"CR only", "\r\n", unknown},
		{"NUL", "GET\x00\n", unknown},
		{"UTF-8", "ＧＥＴ\n", unknown},
		{"overlong", strings.Repeat("A", 5000) + "\n", unknown},
		{"overlong without LF", strings.Repeat("GET ", 2000), unknown},
		{"overlong blanks", "GET" + strings.Repeat(" ", protocol.MaxRequestLen) + "\n", unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, testConfig(t, src), nil)
			got, err := askHalfClose(s.Path(), tt.req)
			if err != nil {
				t.Fatalf("request %q: %v", tt.req, err)
			}
			if got != tt.want {
				t.Errorf("request %q:\n got %q\nwant %q", tt.req, got, tt.want)
			}
		})
	}
}

// askHalfClose is ask, but shuts down the writing side after the request
// when it has no LF (a client like `printf GET | nc -U -N`).
func askHalfClose(path, req string) (string, error) {
	if strings.HasSuffix(req, "\n") {
		return ask(path, req)
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// refreshAnswer is the decoded answer to REFRESH.
type refreshAnswer []map[string]struct {
	Success map[string]uint64 `json:"success"`
	Failure map[string]uint64 `json:"failure"`
}

func decodeRefresh(t testing.TB, s string) refreshAnswer {
	t.Helper()
	var a refreshAnswer
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Fatalf("REFRESH answer %q: %v", s, err)
	}
	return a
}

func TestRefreshDeltas(t *testing.T) {
	src := newFakeStats(3)
	src.update(func(s *stats.Snapshot) {
		s.Filters[0].Success.Total = 5
		s.Filters[0].Failure.Total = 2
		s.Filters[0].Failure.Reject = 2
		s.Filters[2].Failure.Abort = 1
	})
	s := start(t, testConfig(t, src), nil)
	path := s.Path()

	// The first REFRESH reports the counts since the start.
	a := decodeRefresh(t, mustAsk(t, path, "REFRESH\n"))
	if len(a) != 3 {
		t.Fatalf("REFRESH answer has %d filters, want 3", len(a))
	}
	if got := a[0]["RX"].Success["total"]; got != 5 {
		t.Errorf("first REFRESH: RX success.total = %d, want 5", got)
	}
	if got := a[0]["RX"].Failure["reject"]; got != 2 {
		t.Errorf("first REFRESH: RX failure.reject = %d, want 2", got)
	}
	if got := a[2]["web"].Failure["abort"]; got != 1 {
		t.Errorf("first REFRESH: web failure.abort = %d, want 1", got)
	}

	// GET does not move the baseline.
	mustAsk(t, path, "GET\n")
	src.update(func(s *stats.Snapshot) {
		s.Filters[0].Success.Total = 8
		s.Filters[0].Failure.Unreach = 4
		s.Filters[1].Failure.Timeout = 7
	})
	mustAsk(t, path, "STATS\n")
	a = decodeRefresh(t, mustAsk(t, path, "REFRESH\r\n"))
	want := map[string]uint64{"RX.success.total": 3, "RX.failure.unreach": 4, "TX.failure.timeout": 7}
	for i, name := range []string{"RX", "TX", "web"} {
		f, ok := a[i][name]
		if !ok {
			t.Fatalf("second REFRESH: element %d has no %q: %v", i, name, a[i])
		}
		for section, m := range map[string]map[string]uint64{"success": f.Success, "failure": f.Failure} {
			for item, v := range m {
				if key := name + "." + section + "." + item; v != want[key] {
					t.Errorf("second REFRESH: %s = %d, want %d", key, v, want[key])
				}
			}
		}
	}

	// Nothing changed: zeros.
	if got, want := mustAsk(t, path, "REFRESH\n"), `[{"RX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0}}},`+
		`{"TX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0}}},`+
		`{"web":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0}}}]`+"\n"; got != want {
		t.Errorf("third REFRESH:\n got %s\nwant %s", got, want)
	}
}

// TestConcurrentRefresh checks that concurrent REFRESH answers cover
// disjoint intervals: each snapshot adds one session, so every answer must
// report exactly one, none twice and none lost.
func TestConcurrentRefresh(t *testing.T) {
	src := newFakeStats(3)
	src.each = func(s *stats.Snapshot) { s.Filters[0].Success.Total++ }
	s := start(t, testConfig(t, src), nil)
	const n = 50
	answers := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := ask(s.Path(), "REFRESH\n")
			if err != nil {
				errs <- err
				return
			}
			answers <- got
		}()
	}
	wg.Wait()
	close(answers)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := 0
	for got := range answers {
		count++
		if v := decodeRefresh(t, got)[0]["RX"].Success["total"]; v != 1 {
			t.Errorf("a REFRESH reported %d sessions, want 1: %s", v, got)
		}
	}
	if count != n {
		t.Errorf("%d REFRESH answers, want %d", count, n)
	}
}

func TestConcurrentClients(t *testing.T) {
	src := newFakeStats(3)
	src.update(func(s *stats.Snapshot) { setCounters(s, 1) })
	cfg := testConfig(t, src)
	s := start(t, cfg, nil)
	snap := src.Snapshot()
	want := map[string]string{
		"GET\n":   string(protocol.GetAnswer(snap.Answer(cfg.Version))),
		"STATS\n": string(protocol.Encode(snap.Answer(cfg.Version))),
		"HUH\n":   unknown,
	}
	reqs := []string{"GET\n", "STATS\n", "HUH\n"}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := reqs[i%len(reqs)]
			got, err := ask(s.Path(), req)
			switch {
			case err != nil:
				errs <- fmt.Errorf("client %d: %w", i, err)
			case got != want[req]:
				errs <- fmt.Errorf("client %d: %q answered %q, want %q", i, req, got, want[req])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSilentClient checks that a client that sends no full line is dropped
// after RequestTimeout, and that others are served meanwhile.
func TestSilentClient(t *testing.T) {
	src := newFakeStats(3)
	cfg := testConfig(t, src)
	s := start(t, cfg, nil)
	for _, partial := range []string{"", "GE"} {
		t.Run(fmt.Sprintf("sent %q", partial), func(t *testing.T) {
			silent, err := net.Dial("unix", s.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			began := time.Now()
			if _, err := io.WriteString(silent, partial); err != nil {
				t.Fatal(err)
			}
			dropped := make(chan time.Duration, 1)
			var got []byte
			var readErr error
			go func() {
				silent.SetReadDeadline(time.Now().Add(10 * time.Second))
				got, readErr = io.ReadAll(silent)
				dropped <- time.Since(began)
			}()

			if got := mustAsk(t, s.Path(), "STATS\n"); !strings.HasPrefix(got, `{"version":"1.0.0"`) {
				t.Errorf("STATS while a client is silent: %q", got)
			}
			answered := time.Since(began)
			select {
			case d := <-dropped:
				t.Fatalf("silent client dropped after %v, before the other was answered (%v)", d, answered)
			default:
			}

			d := <-dropped
			if readErr != nil {
				t.Errorf("silent client: %v", readErr)
			}
			if len(got) != 0 {
				t.Errorf("silent client got %q, want nothing", got)
			}
			if d < RequestTimeout-50*time.Millisecond || d > RequestTimeout+2*time.Second {
				t.Errorf("silent client dropped after %v, want about %v", d, RequestTimeout)
			}
			if answered >= d {
				t.Errorf("other client answered after %v, not before the silent one was dropped (%v)", answered, d)
			}
		})
	}
}

// TestClientLimit checks that a newcomer to a full server takes the place
// of the client that has waited longest without a request, which is
// disconnected without an answer, and that a client with a request is
// never dropped.
func TestClientLimit(t *testing.T) {
	src := newFakeStats(3)
	s := start(t, testConfig(t, src), func(s *Server) {
		s.clients = newTable(connlimit.Limits{Max: 2})
		s.requestTimeout = time.Minute // the silent clients keep waiting
	})
	var silent []net.Conn
	for i := range 2 {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
		// Accepted in order: the first is the oldest.
		if !testutil.WaitFor(10*time.Second, func() bool { return s.clients.Len() == i+1 }) {
			t.Fatalf("silent client %d not taken in within 10 s", i)
		}
	}
	if got := mustAsk(t, s.Path(), "GET\n"); !strings.HasPrefix(got, `[{"RX"`) {
		t.Fatalf("a client of a full server: %q, want the answer to GET", got)
	}
	silent[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(silent[0]); len(b) != 0 || err != nil {
		t.Errorf("the oldest silent client: read %q, %v; want EOF without an answer", b, err)
	}
	silent[1].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := silent[1].Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the younger silent client: %v; want it still connected", err)
	}
}

func TestReadLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		err  error
	}{
		{"GET\r\n", "GET\r\n", nil},
		{"GET\nREST", "GET\n", nil},
		{"GET", "GET", nil},
		{"", "", nil},
		{strings.Repeat("x", 10), strings.Repeat("x", 8), errTooLong},
		{strings.Repeat("x", 7) + "\n", strings.Repeat("x", 7) + "\n", nil},
	} {
		// One byte per Read, as a slow client sends it.
		got, err := readLine(&oneByteReader{s: tt.in}, make([]byte, 8), 0, false)
		if string(got) != tt.want || !errors.Is(err, tt.err) && err != tt.err {
			t.Errorf("readLine(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestReadLineAfterAccept checks readLine with what was read at accept.
func TestReadLineAfterAccept(t *testing.T) {
	for _, tt := range []struct {
		before, rest string
		eof          bool
		want         string
		err          error
	}{
		{"GE", "T\n", false, "GET\n", nil},
		{"GET\n", "", false, "GET\n", nil},
		{"GET\nSTATS\n", "", false, "GET\n", nil},
		{"GET", "", true, "GET", nil},
		{"", "", true, "", nil},
		{"xxxx", "xxxxxxx", false, "xxxxxxxx", errTooLong},
		{"xxxxxxxx", "", false, "xxxxxxxx", errTooLong},
	} {
		buf := make([]byte, 8)
		n := copy(buf, tt.before)
		got, err := readLine(&oneByteReader{s: tt.rest}, buf, n, tt.eof)
		if string(got) != tt.want || !errors.Is(err, tt.err) && err != tt.err {
			t.Errorf("readLine(%q then %q, eof %v) = %q, %v; want %q, %v", tt.before, tt.rest, tt.eof, got, err, tt.want, tt.err)
		}
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestListenStaleSocket(t *testing.T) {
	src := newFakeStats(3)
	cfg := testConfig(t, src)
	// A socket file that nobody listens on, as a crashed tcpeek leaves it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(cfg.Path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket not in place: %v, %v", fi, err)
	}
	var logged []string
	cfg.Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	s := start(t, cfg, nil)
	if got := mustAsk(t, s.Path(), "GET\n"); !strings.HasPrefix(got, `[{"RX"`) {
		t.Errorf("GET after replacing a stale socket: %q", got)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "stale") {
		t.Errorf("logged %q, want one line about the stale socket", logged)
	}
}

func TestListenAlreadyRunning(t *testing.T) {
	src := newFakeStats(3)
	cfg := testConfig(t, src)
	first := start(t, cfg, nil)
	_, err := Listen(cfg)
	if err == nil || !strings.Contains(err.Error(), "already running on "+cfg.Path) {
		t.Fatalf("second Listen: %v; want an error saying tcpeek is already running on %s", err, cfg.Path)
	}
	if got := mustAsk(t, first.Path(), "GET\n"); !strings.HasPrefix(got, `[{"RX"`) {
		t.Errorf("the first server no longer answers: %q", got)
	}
}

func TestListenNotASocket(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(path string) error
		what string
	}{
		{"regular file", func(p string) error { return os.WriteFile(p, []byte("precious\n"), 0o644) }, "a regular file"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "a directory"},
		{"symlink", func(p string) error { return os.Symlink("/etc/passwd", p) }, "a symbolic link"},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }, "a named pipe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, newFakeStats(3))
			if err := tt.make(cfg.Path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(cfg.Path)
			s, err := Listen(cfg)
			if err == nil {
				s.Close()
				t.Fatal("Listen succeeded")
			}
			for _, want := range []string{cfg.Path, "not a socket", tt.what, "-U"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			after, err := os.Lstat(cfg.Path)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("the file was touched: %v", err)
			}
			if tt.name == "regular file" {
				if b, _ := os.ReadFile(cfg.Path); string(b) != "precious\n" {
					t.Errorf("file content now %q", b)
				}
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	src := newFakeStats(1)
	dir := tempDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path string
		want       []string
	}{
		{"empty", "", []string{"empty path", "-U"}},
		{"too long", "/tmp/" + strings.Repeat("x", 120), []string{"too long", "-U"}},
		{"parent is a file", filepath.Join(file, "tcpeek.sock"), []string{filepath.Join(file, "tcpeek.sock"), "not a directory"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Listen(Config{Path: tt.path, UID: -1, GID: -1, Snapshot: src.Snapshot})
			if err == nil {
				s.Close()
				t.Fatal("Listen succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := Listen(Config{Path: filepath.Join(dir, "s"), UID: -1, GID: -1}); err == nil {
		t.Error("Listen without a Snapshot function succeeded")
	}
}

// TestListenModes checks the modes of the directories and the socket that
// Listen creates, whatever the umask.
func TestListenModes(t *testing.T) {
	for _, mask := range []int{0o000, 0o022, 0o077} {
		t.Run(fmt.Sprintf("umask %03o", mask), func(t *testing.T) {
			old := unix.Umask(mask)
			defer unix.Umask(old)
			cfg := testConfig(t, newFakeStats(3))
			top := filepath.Join(filepath.Dir(cfg.Path), "run")
			cfg.Path = filepath.Join(top, "tcpeek", "tcpeek.sock")
			s := start(t, cfg, nil)
			for _, d := range []string{top, filepath.Dir(cfg.Path)} {
				fi, err := os.Stat(d)
				if err != nil {
					t.Fatal(err)
				}
				if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: mode %v, want a directory with 0755", d, fi.Mode())
				}
			}
			fi, err := os.Lstat(cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
				t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
			}
			if got := unix.Umask(mask); got != mask {
				t.Errorf("umask after Listen is %03o, want %03o", got, mask)
			}
			if got := mustAsk(t, s.Path(), "GET\n"); !strings.HasPrefix(got, `[{"RX"`) {
				t.Errorf("GET: %q", got)
			}
		})
	}
}

func TestListenOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the socket to another user needs root")
	}
	const uid, gid = 4242, 4343
	cfg := testConfig(t, newFakeStats(3))
	cfg.Path = filepath.Join(filepath.Dir(cfg.Path), "new", "tcpeek.sock")
	cfg.UID, cfg.GID = uid, gid
	start(t, cfg, nil)
	for _, p := range []string{cfg.Path, filepath.Dir(cfg.Path)} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
	}

	// An existing directory that holds other files is left to its owner.
	cfg2 := testConfig(t, newFakeStats(3))
	cfg2.UID, cfg2.GID = uid, gid
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg2.Path), "other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, cfg2, nil)
	fi, _ := os.Lstat(filepath.Dir(cfg2.Path))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("existing directory given to %d", st.Uid)
	}
	fi, _ = os.Lstat(cfg2.Path)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
		t.Errorf("socket in an existing directory: owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	// So is an empty one (as an earlier run as root leaves it): tcpeek
	// gives away only a directory it creates (SPEC §11), and says that the
	// user will not be able to remove the socket.
	cfg3 := testConfig(t, newFakeStats(3))
	cfg3.UID, cfg3.GID = uid, gid
	var logged []string
	cfg3.Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	s3 := start(t, cfg3, nil)
	fi, _ = os.Lstat(filepath.Dir(cfg3.Path))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("empty existing directory: owner %d:%d, want it left to 0:0", st.Uid, st.Gid)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "cannot remove it") {
		t.Errorf("logged %q, want one line saying uid %d cannot remove the socket", logged, uid)
	}
	s3.Close() // as root, it can
	if _, err := os.Lstat(cfg3.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}

// TestListenRefusedChangesNothing checks that a start refused because
// something else is at the socket's path changes the owner of nothing, and
// that a refused start leaves no directory behind.
func TestListenRefusedChangesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the socket to another user needs root")
	}
	// The directory holds only a regular file at the socket's path: a
	// directory "of the socket's own" that an earlier tcpeek gave away.
	cfg := testConfig(t, newFakeStats(3))
	cfg.UID, cfg.GID = 4242, 4343
	if err := os.WriteFile(cfg.Path, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cfg.Path)
	before, _ := os.Lstat(dir)
	if s, err := Listen(cfg); err == nil {
		s.Close()
		t.Fatal("Listen succeeded")
	}
	after, _ := os.Lstat(dir)
	b, a := before.Sys().(*syscall.Stat_t), after.Sys().(*syscall.Stat_t)
	if a.Uid != b.Uid || a.Gid != b.Gid || after.Mode() != before.Mode() {
		t.Errorf("%s: %v %d:%d after a refused start, was %v %d:%d", dir, after.Mode(), a.Uid, a.Gid, before.Mode(), b.Uid, b.Gid)
	}
	fi, _ := os.Lstat(cfg.Path)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode() != 0o600 {
		t.Errorf("%s: %v uid %d after a refused start, want 0600 uid 0", cfg.Path, fi.Mode(), st.Uid)
	}
}

func TestListenOwnOwner(t *testing.T) {
	// Asking for the owner the file already has works without privileges.
	cfg := testConfig(t, newFakeStats(3))
	cfg.UID, cfg.GID = os.Geteuid(), os.Getegid()
	start(t, cfg, nil)
}

func TestCloseRemovesSocket(t *testing.T) {
	cfg := testConfig(t, newFakeStats(3))
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	mustAsk(t, cfg.Path, "GET\n")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Lstat(cfg.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ask(cfg.Path, "GET\n"); err == nil {
		t.Error("a client was answered after Close")
	}
}

func TestCloseLeavesReplacedSocket(t *testing.T) {
	for _, replacement := range []string{"socket", "file"} {
		t.Run(replacement, func(t *testing.T) {
			cfg := testConfig(t, newFakeStats(3))
			s, err := Listen(cfg)
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve()
			// Someone removes our socket and puts their own in its place.
			if err := os.Remove(cfg.Path); err != nil {
				t.Fatal(err)
			}
			if replacement == "socket" {
				other, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			} else if err := os.WriteFile(cfg.Path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(cfg.Path)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			after, err := os.Lstat(cfg.Path)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("Close removed a file that was not its own: %v", err)
			}
		})
	}
}

func TestCloseDisconnectsClients(t *testing.T) {
	cfg := testConfig(t, newFakeStats(3))
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.requestTimeout = time.Hour
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	silent, err := net.Dial("unix", cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Wait until the server has taken the client in.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client was not accepted within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	silent.SetReadDeadline(time.Now().Add(closeTimeout))
	if b, err := io.ReadAll(silent); err != nil || len(b) != 0 {
		t.Errorf("silent client at Close: %q, %v; want EOF", b, err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(closeTimeout + 5*time.Second):
		t.Fatal("Close did not return")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestCloseBeforeServe checks that closing a server that never served (a
// refused start) removes the socket and the directories made for it.
func TestCloseBeforeServe(t *testing.T) {
	cfg := testConfig(t, newFakeStats(3))
	top := filepath.Join(filepath.Dir(cfg.Path), "run")
	cfg.Path = filepath.Join(top, "tcpeek", "tcpeek.sock")
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := os.Lstat(top); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directories made for the socket are still there after Close: %v", err)
	}
}

// TestAnswerLines checks that every answer is one line of valid JSON.
func TestAnswerLines(t *testing.T) {
	src := newFakeStats(3)
	src.update(func(s *stats.Snapshot) { setCounters(s, 7) })
	s := start(t, testConfig(t, src), nil)
	for _, req := range []string{"GET\n", "REFRESH\n", "STATS\n", "NOPE\n"} {
		got := mustAsk(t, s.Path(), req)
		if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
			t.Errorf("%q: answer is not one line: %q", req, got)
		}
		if !json.Valid(bytes.TrimSpace([]byte(got))) {
			t.Errorf("%q: answer is not JSON: %q", req, got)
		}
	}
}
