package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/server"
	"github.com/tcpeek/tcpeek/internal/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// mainEnv, set in the environment, makes the test binary run tcpeekstat's
// main instead of the tests: the tests that need tcpeekstat as a process of
// its own (its own terminal, signals, a closed pipe) run it so.
const mainEnv = "TCPEEKSTAT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		return
	}
	loc = time.UTC
	os.Exit(m.Run())
}

// fakeTcpeek is a running stats socket whose counters the tests change.
type fakeTcpeek struct {
	path string
	mu   sync.Mutex
	snap stats.Snapshot
	stop func() // closes the socket; safe to call more than once
}

// Snapshot returns a copy of the counters, as stats.Stats.Snapshot does.
func (f *fakeTcpeek) Snapshot() stats.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.snap
	c.Filters = append([]stats.Filter(nil), f.snap.Filters...)
	return c
}

func (f *fakeTcpeek) update(fn func(s *stats.Snapshot)) {
	f.mu.Lock()
	fn(&f.snap)
	f.mu.Unlock()
}

// tempDir returns a short temporary directory (socket paths are limited to
// 107 bytes, and t.TempDir holds the test's name).
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tcpeekstat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startTcpeek serves a stats socket with the filters of exprs (the default
// RX and TX first) and zero counters until the test ends.
func startTcpeek(t testing.TB, exprs ...string) *fakeTcpeek {
	t.Helper()
	set, err := filter.NewSet(exprs, true)
	if err != nil {
		t.Fatal(err)
	}
	return startTcpeekFilters(t, stats.Describe(set.Filters()))
}

// startTcpeekFilters serves a stats socket with filters and zero counters
// until the test ends; each of configure may change the server's
// configuration first (to serve TOP, say).
func startTcpeekFilters(t testing.TB, filters []stats.FilterInfo, configure ...func(*server.Config)) *fakeTcpeek {
	t.Helper()
	return startTcpeekAt(t, filepath.Join(tempDir(t), "tcpeek.sock"), filters, configure...)
}

// startTcpeekAt is startTcpeekFilters with the socket at path.
func startTcpeekAt(t testing.TB, path string, filters []stats.FilterInfo, configure ...func(*server.Config)) *fakeTcpeek {
	t.Helper()
	start := time.Date(2024, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	f := &fakeTcpeek{
		path: path,
		snap: stats.Snapshot{
			Start:    start,
			Now:      start.Add(3*time.Hour + 25*time.Minute + 7*time.Second),
			Filters:  make([]stats.Filter, len(filters)),
			Sessions: stats.Sessions{Max: 1048576},
		},
	}
	for i := range filters {
		f.snap.Filters[i].FilterInfo = filters[i]
	}
	cfg := server.Config{
		Path: f.path, UID: -1, GID: -1,
		Snapshot: f.Snapshot, Version: "1.0.0", Logf: t.Logf,
	}
	for _, c := range configure {
		c(&cfg)
	}
	s, err := server.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	f.stop = sync.OnceFunc(func() {
		s.Close()
		<-served
	})
	t.Cleanup(f.stop)
	return f
}

// tcpeekstat runs the program in-process.
func tcpeekstat(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// observe adds durations in milliseconds to a histogram.
func observe(h *stats.Histogram, msecs ...float64) {
	for _, m := range msecs {
		h.Observe(int64(m * float64(time.Millisecond)))
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name   string
		exprs  []string
		golden string
		set    func(*stats.Snapshot)
	}{
		{
			name:   "live",
			exprs:  []string{"http-rx:RX@*:80:443", "db:TX@10.0.0.0/8:5432"},
			golden: "table.golden",
			set: func(s *stats.Snapshot) {
				s.Filters[0] = stats.Filter{FilterInfo: s.Filters[0].FilterInfo,
					Success: stats.Success{Total: 5, DupSYN: 1},
					Failure: stats.Failure{Total: 10, Reject: 10},
				}
				observe(&s.Filters[0].Handshake, 0.2, 0.25, 0.3, 0.4, 1012)
				s.Filters[1] = stats.Filter{FilterInfo: s.Filters[1].FilterInfo,
					Success: stats.Success{Total: 783, DupSYNACK: 2},
					Failure: stats.Failure{Total: 4, Timeout: 1, Unreach: 2, Abort: 1},
				}
				observe(&s.Filters[1].Handshake, 1, 1.5, 2, 2.5, 3, 30, 45)
				s.Filters[2] = stats.Filter{FilterInfo: s.Filters[2].FilterInfo, Failure: stats.Failure{Total: 10, Reject: 10}}
				s.Filters[3] = stats.Filter{FilterInfo: s.Filters[3].FilterInfo, Success: stats.Success{Total: 767}}
				observe(&s.Filters[3].Handshake, 0.9)
				s.Capture = stats.Capture{Packets: 123456, Drops: 7, IfDrops: 1, BadChecksum: 2, Duplicates: 3}
				s.Sessions = stats.Sessions{InProgress: 12, Max: 1048576, Overflow: 0}
			},
		},
		{
			name:   "wide",
			exprs:  []string{"a-rather-long-filter-name.example:ANY@*:*"},
			golden: "table-wide.golden",
			set: func(s *stats.Snapshot) {
				s.Filters[0].Success.Total = 18446744073709551615
				s.Filters[2].Failure = stats.Failure{Total: 1234567890123, Timeout: 1234567890123}
				observe(&s.Filters[2].Handshake, 98765.4)
				s.Pending = 3
				s.Sessions = stats.Sessions{InProgress: 0, Max: 16, Overflow: 99}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startTcpeek(t, tt.exprs...)
			d.update(tt.set)
			code, stdout, stderr := tcpeekstat("-U", d.path)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			checkGolden(t, tt.golden, stdout)
		})
	}
}

func TestJSON(t *testing.T) {
	d := startTcpeek(t, "web:RX@*:80")
	d.update(func(s *stats.Snapshot) {
		s.Filters[2].Success.Total = 42
		s.Filters[0].Failure = stats.Failure{Total: 3, Reject: 1, Abort: 2}
		s.Capture.Packets, s.Capture.Drops, s.Capture.IfDrops = 999, 7, 8
	})
	want := `[{"RX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"failure":{"total":3,"timeout":0,"reject":1,"unreach":0,"abort":2}}},` +
		`{"TX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0}}},` +
		`{"web":{"success":{"total":42,"dupsyn":0,"dupsynack":0},"failure":{"total":0,"timeout":0,"reject":0,"unreach":0,"abort":0}}},` +
		`{"pcap":{"stats":{"recv":999,"drop":7,"ifdrop":8}}}]` + "\n"
	for _, args := range [][]string{{"-j", "-U", d.path}, {"--json", "--socket=" + d.path}, {"-jU" + d.path}} {
		code, stdout, stderr := tcpeekstat(args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, stderr)
		}
		if stdout != want {
			t.Errorf("%q printed\n%s\nwant\n%s", args, stdout, want)
		}
	}
	// -j does not move the REFRESH baseline: -g afterwards still reports
	// the counts since the start (checked in TestGmetric too).
}

// fakeGmetric writes a gmetric stand-in that appends its arguments, one
// call per line and separated by "|", to a log file, and fails for the
// metric named fail (if any). It returns the script and the log.
func fakeGmetric(t *testing.T, fail string) (script, log string) {
	t.Helper()
	dir := tempDir(t)
	script = filepath.Join(dir, "gmetric")
	log = filepath.Join(dir, "calls")
	body := "#!/bin/sh\n" +
		"sep=\n" +
		"for a in \"$@\"; do printf '%s%s' \"$sep\" \"$a\" >> '" + log + "'; sep='|'; done\n" +
		"printf '\\n' >> '" + log + "'\n"
	if fail != "" {
		body += "prev=\nfor a in \"$@\"; do\n" +
			"  if [ \"$prev\" = -n ] && [ \"$a\" = '" + fail + "' ]; then echo 'gmetric: cannot send' >&2; exit 3; fi\n" +
			"  prev=$a\ndone\n"
	}
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

// calls returns the calls logged by fakeGmetric and empties the log.
func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(log)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// wantCalls returns the expected gmetric calls without -c: values gives,
// for each filter, its eight values in the order of gmetricItems.
func wantCalls(names []string, values [][8]uint64) []string {
	return wantCallsConf("", names, values)
}

// wantCallsConf returns the expected gmetric calls, with "-c conf" first
// when conf is not empty.
func wantCallsConf(conf string, names []string, values [][8]uint64) []string {
	var out []string
	for i, n := range names {
		for j, it := range gmetricItems {
			args := []string{
				"-n", "tcpeek_" + n + "_" + it.section + "_" + it.item,
				"-v", u(values[i][j]), "-t", "uint32", "-u", "sessions",
			}
			if conf != "" {
				args = append([]string{"-c", conf}, args...)
			}
			out = append(out, strings.Join(args, "|"))
		}
	}
	return out
}

func equalCalls(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: gmetric calls\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGmetric(t *testing.T) {
	d := startTcpeek(t, "web:RX@*:80")
	script, log := fakeGmetric(t, "")
	d.update(func(s *stats.Snapshot) {
		s.Filters[0].Success = stats.Success{Total: 9, DupSYN: 1, DupSYNACK: 2}
		s.Filters[0].Failure = stats.Failure{Total: 18, Timeout: 3, Reject: 4, Unreach: 5, Abort: 6}
		s.Filters[2].Failure = stats.Failure{Total: 7, Reject: 7}
	})
	names := []string{"RX", "TX", "web"}

	// -j and the table do not move the baseline.
	tcpeekstat("-j", "-U", d.path)
	tcpeekstat("-U", d.path)

	code, stdout, stderr := tcpeekstat("-g", "--gmetric-path", script, "-U", d.path)
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("first -g: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	equalCalls(t, "first -g (since the start)", calls(t, log), wantCalls(names, [][8]uint64{
		{9, 1, 2, 18, 3, 4, 5, 6}, {}, {0, 0, 0, 7, 0, 7, 0, 0},
	}))

	d.update(func(s *stats.Snapshot) {
		s.Filters[0].Failure.Reject += 10
		s.Filters[0].Failure.Total += 10
		s.Filters[1].Success.DupSYN += 2
		s.Filters[1].Success.Total += 5
		s.Filters[2].Failure.Abort += 1
		s.Filters[2].Failure.Total += 1
	})
	if code, _, stderr := tcpeekstat("--gmetric", "--gmetric-path="+script, "--socket", d.path); code != 0 {
		t.Fatalf("second -g: exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "second -g (the changes)", calls(t, log), wantCalls(names, [][8]uint64{
		{0, 0, 0, 10, 0, 10, 0, 0}, {5, 2, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 0, 0, 0, 1},
	}))

	if code, _, stderr := tcpeekstat("-g", "--gmetric-path="+script, "-U", d.path); code != 0 {
		t.Fatalf("third -g: exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "third -g (no change)", calls(t, log), wantCalls(names, make([][8]uint64, 3)))
}

// TestGmetricOnPath checks that gmetric is found on PATH by default.
func TestGmetricOnPath(t *testing.T) {
	d := startTcpeek(t)
	script, log := fakeGmetric(t, "")
	t.Setenv("PATH", filepath.Dir(script)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if code, _, stderr := tcpeekstat("-g", "-U", d.path); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "-g", calls(t, log), wantCalls([]string{"RX", "TX"}, make([][8]uint64, 2)))
}

// TestGmetricConf checks that --gmetric-conf reaches every gmetric as
// "-c FILE", as one argument, and that a configuration that cannot be read
// is reported before REFRESH, losing no change.
func TestGmetricConf(t *testing.T) {
	d := startTcpeek(t)
	d.update(func(s *stats.Snapshot) { s.Filters[0].Failure = stats.Failure{Total: 3, Unreach: 3} })
	script, log := fakeGmetric(t, "")
	dir := tempDir(t)
	conf := filepath.Join(dir, "gmond $(touch x).conf")
	missing := filepath.Join(dir, "missing.conf")

	code, stdout, stderr := tcpeekstat("-g", "--gmetric-path", script, "--gmetric-conf", missing, "-U", d.path)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "tcpeekstat: cannot read gmetric's configuration: open "+missing+": no such file or directory") {
		t.Errorf("missing configuration: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if c := calls(t, log); c != nil {
		t.Errorf("gmetric ran without its configuration: %q", c)
	}

	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := tcpeekstat("-g", "--gmetric-path", script, "--gmetric-conf="+conf, "-U", d.path); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "-g --gmetric-conf", calls(t, log), wantCallsConf(conf, []string{"RX", "TX"}, [][8]uint64{{0, 0, 0, 3, 0, 0, 3, 0}, {}}))
}

// TestGmetricNoShell checks that a filter name reaches gmetric as it is,
// as one argument, without a shell to interpret it.
func TestGmetricNoShell(t *testing.T) {
	dir := tempDir(t)
	pwned := filepath.Join(dir, "pwned")
	name := "x;touch " + pwned + ";$(touch " + pwned + ")`touch " + pwned + "` -v 9 && touch " + pwned + " *"
	d := startTcpeekFilters(t, []stats.FilterInfo{{Name: name, Direction: "RX"}})
	d.update(func(s *stats.Snapshot) { s.Filters[0].Failure = stats.Failure{Total: 1, Reject: 1} })
	script, log := fakeGmetric(t, "")
	if code, _, stderr := tcpeekstat("-g", "--gmetric-path", script, "-U", d.path); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "-g", calls(t, log), wantCalls([]string{name}, [][8]uint64{{0, 0, 0, 1, 0, 1, 0, 0}}))
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a filter name ran a command")
	}
}

func TestGmetricFailure(t *testing.T) {
	d := startTcpeek(t)
	d.update(func(s *stats.Snapshot) { s.Filters[1].Failure = stats.Failure{Total: 4, Reject: 4} })
	script, log := fakeGmetric(t, "tcpeek_TX_failure_reject")
	code, _, stderr := tcpeekstat("-g", "--gmetric-path", script, "-U", d.path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "gmetric: cannot send\ntcpeekstat: gmetric for tcpeek_TX_failure_reject (value 4) failed: exit status 3\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	// Every metric was tried, the failing one included.
	equalCalls(t, "-g", calls(t, log), wantCalls([]string{"RX", "TX"}, [][8]uint64{{}, {0, 0, 0, 4, 0, 4, 0, 0}}))
}

// TestGmetricMissing checks that a missing gmetric is reported before
// REFRESH is sent, so that the changes are not lost.
func TestGmetricMissing(t *testing.T) {
	d := startTcpeek(t)
	d.update(func(s *stats.Snapshot) { s.Filters[0].Failure = stats.Failure{Total: 2, Timeout: 2} })
	missing := filepath.Join(tempDir(t), "no-gmetric")
	code, stdout, stderr := tcpeekstat("-g", "--gmetric-path", missing, "-U", d.path)
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	for _, w := range []string{"tcpeekstat: cannot run gmetric", missing, "--gmetric-path"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not say %q", stderr, w)
		}
	}
	t.Setenv("PATH", tempDir(t))
	if code, _, stderr := tcpeekstat("-g", "-U", d.path); code != 1 || !strings.Contains(stderr, "install ganglia-monitor") {
		t.Errorf("no gmetric on PATH: exit %d, stderr %q", code, stderr)
	}

	script, log := fakeGmetric(t, "")
	if code, _, stderr := tcpeekstat("-g", "--gmetric-path", script, "-U", d.path); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	equalCalls(t, "-g after the failures", calls(t, log), wantCalls([]string{"RX", "TX"}, [][8]uint64{{0, 0, 0, 2, 2, 0, 0, 0}, {}}))
}

func TestParseRefresh(t *testing.T) {
	for _, tt := range []struct {
		name, answer string
		want         []metric
		err          bool
	}{
		{"empty", "[]\n", nil, false},
		{"older tcpeek without unreach and abort",
			`[{"RX":{"success":{"total":1,"dupsyn":2,"dupsynack":3},"failure":{"total":4,"timeout":5,"reject":6}}}]`,
			[]metric{{"tcpeek_RX_success_total", 1}, {"tcpeek_RX_success_dupsyn", 2}, {"tcpeek_RX_success_dupsynack", 3},
				{"tcpeek_RX_failure_total", 4}, {"tcpeek_RX_failure_timeout", 5}, {"tcpeek_RX_failure_reject", 6}},
			false},
		{"pcap object", `[{"pcap":{"stats":{"recv":1,"drop":0,"ifdrop":0}}}]`, nil, false},
		{"filter named pcap", `[{"pcap":{"success":{"dupsyn":1}}}]`, []metric{{"tcpeek_pcap_success_dupsyn", 1}}, false},
		{"not JSON", `nope`, nil, true},
		{"not an array", `{"RX":{}}`, nil, true},
		{"negative", `[{"RX":{"success":{"dupsyn":-1}}}]`, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRefresh([]byte(tt.answer))
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error: %v", err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("metric %d: %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	dir := tempDir(t)
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o644)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no socket", []string{"-U", missing},
			"tcpeekstat: no tcpeek answers on " + missing + ": no such file or directory (is tcpeek running? use -U PATH)\n"},
		{"stale socket", []string{"-U", stale},
			"tcpeekstat: no tcpeek answers on " + stale + ": connection refused (is tcpeek running? use -U PATH)\n"},
		{"regular file", []string{"-j", "-U", regular},
			"tcpeekstat: no tcpeek answers on " + regular + ": connection refused (is tcpeek running? use -U PATH)\n"},
		{"gmetric", []string{"-g", "--gmetric-path", "/bin/true", "-U", missing},
			"tcpeekstat: no tcpeek answers on " + missing + ": no such file or directory (is tcpeek running? use -U PATH)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tcpeekstat(tt.args...)
			if code != 1 || stdout != "" || stderr != tt.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

// TestBadDaemon covers a peer that is not a working tcpeek.
func TestBadDaemon(t *testing.T) {
	old := timeout
	timeout = 300 * time.Millisecond
	defer func() { timeout = old }()
	tests := []struct {
		name   string
		answer string // what the peer writes; "hang": nothing, and it keeps the connection
		args   []string
		want   string
	}{
		{"silent", "hang", nil, "did not answer STATS: i/o timeout after 300ms"},
		{"closes", "", nil, "closed the connection without answering STATS"},
		{"refuses", `{"error":"unknown request"}` + "\n", []string{"-j"}, "refused GET: unknown request"},
		{"garbage", "hello\n", nil, "cannot read its STATS answer"},
		{"garbage -g", "hello\n", []string{"-g", "--gmetric-path", "/bin/true"}, "cannot read its REFRESH answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tempDir(t), "s")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			defer close(done)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.Read(make([]byte, 100))
				if tt.answer == "hang" {
					<-done
					return
				}
				c.Write([]byte(tt.answer))
			}()
			code, _, stderr := tcpeekstat(append(tt.args, "-U", path)...)
			if code != 1 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, path) {
				t.Errorf("exit %d, stderr %q; want 1 and a line naming %s and saying %q", code, stderr, path, tt.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	hint := "Try 'tcpeekstat --help' for more information.\n"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "tcpeekstat: unknown flag: --bogus\n" + hint},
		{[]string{"-x"}, "tcpeekstat: unknown shorthand flag: 'x' in -x\n" + hint},
		{[]string{"-U"}, "tcpeekstat: flag needs an argument: 'U' in -U\n" + hint},
		{[]string{"--socket="}, "tcpeekstat: --socket needs a path\n" + hint},
		{[]string{"-j", "-g"}, "tcpeekstat: -j and -g cannot be used together\n" + hint},
		{[]string{"-g", "--gmetric-path="}, "tcpeekstat: --gmetric-path needs a path\n" + hint},
		{[]string{"stats"}, "tcpeekstat: unexpected argument \"stats\"\n" + hint},
		{[]string{"--json=maybe"}, "tcpeekstat: invalid argument \"maybe\" for \"-j, --json\" flag: must be true or false\n" + hint},
	} {
		code, stdout, stderr := tcpeekstat(tt.args...)
		if code != 2 || stdout != "" || stderr != tt.want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing, %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestHelpVersion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, usageText},
		{[]string{"--help"}, usageText},
		{[]string{"-g", "--help"}, usageText},
		{[]string{"-v"}, "tcpeekstat " + version + "\n"},
		{[]string{"--version"}, "tcpeekstat " + version + "\n"},
	} {
		code, stdout, stderr := tcpeekstat(tt.args...)
		if code != 0 || stdout != tt.want || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tt.args, code, stdout, stderr)
		}
	}
	for _, line := range strings.Split(usageText, "\n") {
		if len(line) > 79 {
			t.Errorf("help line longer than 79 columns: %q", line)
		}
	}
}

func TestDialError(t *testing.T) {
	const path = "/run/x.sock"
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{opErr(syscall.ENOENT), "no tcpeek answers on /run/x.sock: no such file or directory (is tcpeek running? use -U PATH)"},
		{opErr(syscall.ECONNREFUSED), "no tcpeek answers on /run/x.sock: connection refused (is tcpeek running? use -U PATH)"},
		{opErr(syscall.EACCES), "cannot connect to tcpeek on /run/x.sock: permission denied (run as root or as a member of the socket's group)"},
		{opErr(syscall.EAGAIN), "tcpeek on /run/x.sock accepts no more connections for now: resource temporarily unavailable (try again)"},
		{&net.OpError{Op: "dial", Net: "unix", Err: os.ErrDeadlineExceeded}, "no tcpeek answers on /run/x.sock: i/o timeout after 5s (is tcpeek running? use -U PATH)"},
	} {
		err := dialError(path, tt.err)
		if err.Error() != tt.want {
			t.Errorf("dialError(%v) = %q, want %q", tt.err, err, tt.want)
		}
		var errno syscall.Errno
		if errors.As(tt.err, &errno) && !errors.Is(err, errno) {
			t.Errorf("dialError(%v) does not wrap %v", tt.err, errno)
		}
	}
}
