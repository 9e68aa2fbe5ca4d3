//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests of this file run tcpeek's metrics through a real Prometheus and
// check the operator-facing files of deploy/: the alerting rules and their
// unit tests with promtool, the example Prometheus configuration, the
// Grafana dashboard's queries, the systemd unit and the Kubernetes
// DaemonSet. They need the Debian package prometheus (prometheus and
// promtool); the DaemonSet check needs python3 with its yaml module
// (python3-yaml), the unit check systemd-analyze (systemd). Each skips,
// naming what is missing, without them.

// Files of deploy/, relative to this package's directory.
const (
	promAlertsFile     = "../deploy/prometheus/alerts.yml"
	promAlertsTestFile = "../deploy/prometheus/alerts_test.yml"
	promConfigFile     = "../deploy/prometheus/prometheus.yml"
	promDashboardFile  = "../deploy/grafana/tcpeek-dashboard.json"
	promUnitFile       = "../deploy/systemd/tcpeek.service"
	promDefaultsFile   = "../deploy/systemd/tcpeek.default"
	promDaemonSetFile  = "../deploy/kubernetes/daemonset.yaml"
	promGoldenFile     = "../internal/metrics/testdata/metrics.golden"
	promExampleCapture = "../testdata/example.pcap"
)

// promTimeout bounds every wait of these tests; nothing waits that long
// unless something is wrong.
const promTimeout = 15 * time.Second

// promFilters are the filter expressions tcpeek runs with in
// TestPrometheusScrape, besides RX and TX: named filters, so that the
// filter label has user-given values.
var promFilters = []string{"web:RX@*:80:443", "db:TX@*:5432:6379"}

// TestPrometheusScrape runs tcpeek -r - with --web.listen-address and -U,
// and a real Prometheus scraping it every second with the shipped alerting
// rules. tcpeek reads the example capture from a pipe that stays open, so
// that it keeps running and serving after the last packet.
//
// First, with only the capture's file header written, every counter is 0:
// the test checks that Prometheus scrapes the target, that every series
// exists (each filter with each result, segment and histogram), that
// promtool check metrics finds nothing wrong in /metrics, that the shipped
// rules load and evaluate without errors, and that every query of the
// Grafana dashboard runs. Then (subtest counts) it writes the packets,
// waits until STATS on the socket has counted them all and a scrape has
// seen them, and compares every series with STATS, and the quantiles of
// the histograms with those of STATS.
func TestPrometheusScrape(t *testing.T) {
	prometheus, promtool := promBinaries(t)
	t.Parallel()
	capture, err := os.ReadFile(promExampleCapture)
	if err != nil {
		t.Fatal(err)
	}
	records, err := promPcapRecords(capture)
	if err != nil {
		t.Fatalf("%s: %v", promExampleCapture, err)
	}
	bin := promBuildTcpeek(t)
	dir := promShortTempDir(t)
	sock := filepath.Join(dir, "tcpeek.sock")

	// tcpeek, reading the capture from a pipe that stays open.
	tcpeekAddr := promFreeAddr(t)
	args := append([]string{"-r", "-", "-q", "--icmp",
		"--local-net", "192.0.2.0/24", "--local-net", "2001:db8::/64",
		"--web.listen-address=" + tcpeekAddr, "-U", sock}, promFilters...)
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	tcpeek := promStart(t, "tcpeek", cmd)
	t.Cleanup(func() { stdin.Close() }) // runs before the kill: EOF ends tcpeek cleanly
	// The file header only: tcpeek opens the metrics listener once it
	// knows the format, and every counter stays 0 until packets come.
	if _, err := stdin.Write(capture[:24]); err != nil {
		t.Fatalf("writing to tcpeek: %v\n%s", err, tcpeek.output())
	}
	metricsURL := "http://" + tcpeekAddr + "/metrics"
	tcpeek.waitFor(t, "serve "+metricsURL, func() (bool, string) {
		_, err := promHTTPGet(metricsURL)
		return err == nil, fmt.Sprint(err)
	})

	// Prometheus, scraping tcpeek every second, with the shipped rules.
	alertsPath, err := filepath.Abs(promAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	api := promStartPrometheus(t, prometheus, dir, alertsPath, tcpeekAddr)
	api.waitTargetUp(t)

	filters := append([]string{"RX", "TX"}, promFilterNames(promFilters)...)

	t.Run("zero", func(t *testing.T) {
		// Every series of every filter, all 0. The target's health turns
		// up before the scrape's samples are committed; up{} is committed
		// with them.
		api.waitScrapes(t, 1)
		want := promExpectedSeries(filters, promStatsObject{})
		api.checkSeries(t, want)
		got := api.query(t, `up{job="tcpeek"}`)
		if len(got) != 1 || got[0].Value != 1 {
			t.Errorf("up{job=\"tcpeek\"} = %v, want one series of value 1", got)
		}
		if got := api.query(t, `tcpeek_build_info{job="tcpeek"}`); len(got) != 1 || got[0].Value != 1 || got[0].Metric["version"] == "" {
			t.Errorf("tcpeek_build_info = %v, want one series of value 1 with a version", got)
		}
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		promCheckExposition(t, promtool, metricsURL)
	})

	t.Run("rules", func(t *testing.T) {
		api.checkRules(t, promAlertNames(t))
	})

	t.Run("dashboard queries", func(t *testing.T) {
		api.waitScrapes(t, 2) // rate() needs two samples
		api.checkDashboardQueries(t)
	})

	t.Run("counts", func(t *testing.T) {
		if _, err := stdin.Write(capture[24:]); err != nil {
			t.Fatalf("writing to tcpeek: %v\n%s", err, tcpeek.output())
		}
		// STATS, once the socket shows every packet of the capture.
		var st promStatsObject
		tcpeek.waitFor(t, fmt.Sprintf("count the %d packets of the capture in STATS on %s", records, sock), func() (bool, string) {
			var err error
			st, err = promSocketStats(sock)
			if err != nil {
				return false, err.Error()
			}
			return st.Capture.Packets == uint64(records), fmt.Sprintf("capture.packets = %d", st.Capture.Packets)
		})
		// The same counts as tcpeek -r reading the file to its end.
		ref := promFileStats(t, bin, args)
		if d := promStatsDiff(st, ref); d != "" {
			t.Errorf("STATS of tcpeek -r - (input still open) and of tcpeek -r FILE (at its end) differ:\n%s", d)
		}
		// Prometheus, once a scrape has seen every packet.
		api.waitValue(t, `tcpeek_capture_packets_total{job="tcpeek"}`, float64(records), nil)
		api.checkSeries(t, promExpectedSeries(filters, st))
		api.checkQuantiles(t, st)
		api.checkDashboardQueries(t)
		promCheckExposition(t, promtool, metricsURL) // with histograms that have observations
	})

	// The end of the input ends tcpeek cleanly.
	if err := stdin.Close(); err != nil {
		t.Error(err)
	}
	if code := tcpeek.wait(t); code != 0 {
		t.Errorf("tcpeek exited %d after the end of its input, want 0\n%s", code, tcpeek.output())
	}
}

// TestPrometheusRules checks the shipped alerting rules and their unit
// tests, and the example configuration, with promtool: CI runs these.
func TestPrometheusRules(t *testing.T) {
	_, promtool := promBinaries(t)
	t.Parallel()
	for _, args := range [][]string{
		{"check", "rules", promAlertsFile},
		{"test", "rules", promAlertsTestFile},
		{"check", "config", promConfigFile},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a unit test that fires it.
	tests, err := os.ReadFile(promAlertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range promAlertNames(t) {
		if !regexp.MustCompile(`(?s)alertname: ` + name + `\s+exp_alerts:\s+- exp_labels:`).Match(tests) {
			t.Errorf("%s: no test in %s expects %s to fire", promAlertsTestFile, promAlertsTestFile, name)
		}
	}
	// Every metric the rules use is one tcpeek exposes.
	promCheckMetricNames(t, promAlertsFile)
}

// TestDeployFiles checks the Grafana dashboard, the Kubernetes DaemonSet and
// the systemd unit: their syntax, that tcpeek accepts the options they give
// it, and that the memory limits hold --max-sessions.
func TestDeployFiles(t *testing.T) {
	t.Parallel()
	t.Run("dashboard", promCheckDashboard)
	bin := promBuildTcpeek(t)
	t.Run("daemonset", func(t *testing.T) { promCheckDaemonSet(t, bin) })
	t.Run("systemd", func(t *testing.T) { promCheckUnit(t, bin) })
}

// promCheckExposition runs promtool check metrics on what tcpeek serves at
// metricsURL: it must find no problem.
func promCheckExposition(t *testing.T, promtool, metricsURL string) {
	t.Helper()
	body, err := promHTTPGet(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s", metricsURL, err, out)
	}
}

// promBinaries returns the paths of prometheus and promtool, or skips the
// test.
func promBinaries(t *testing.T) (prometheus, promtool string) {
	t.Helper()
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := "/usr/bin/" + name; syscall.Access(p, 1) == nil { // X_OK
			return p
		}
		return ""
	}
	prometheus, promtool = find("prometheus"), find("promtool")
	if prometheus == "" || promtool == "" {
		t.Skip("needs prometheus and promtool, on PATH or in /usr/bin (Debian package prometheus)")
	}
	return prometheus, promtool
}

// promBuildTcpeek builds ./cmd/tcpeek as the Makefile does (CGO_ENABLED=0)
// into a temporary directory of the test, and returns the binary's path.
func promBuildTcpeek(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		root := os.Getenv("GOROOT")
		if root == "" {
			t.Fatal("no go command on PATH to build tcpeek with")
		}
		goCmd = filepath.Join(root, "bin", "go")
	}
	root, err := filepath.Abs("..") // go test runs in the package's directory
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "tcpeek")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/tcpeek")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tcpeek: %v\n%s", err, out)
	}
	return bin
}

// promShortTempDir returns a temporary directory with a short path, fit for
// a UNIX socket (at most 107 bytes), removed when the test ends.
func promShortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tpk-prom-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// promFreeAddr returns 127.0.0.1:PORT with a port that was free a moment
// ago.
func promFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promPcapRecords returns the number of records of a classic pcap file.
func promPcapRecords(data []byte) (int, error) {
	if len(data) < 24 {
		return 0, errors.New("shorter than a pcap file header")
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return 0, errors.New("not a classic pcap file")
	}
	n := 0
	for off := 24; off < len(data); n++ {
		if off+16 > len(data) {
			return 0, fmt.Errorf("record %d: header cut short", n)
		}
		off += 16 + int(order.Uint32(data[off+8:]))
		if off > len(data) {
			return 0, fmt.Errorf("record %d: data cut short", n)
		}
	}
	return n, nil
}

// promFilterNames returns the names of filter expressions.
func promFilterNames(exprs []string) []string {
	var names []string
	for _, e := range exprs {
		if name, _, ok := strings.Cut(e, ":"); ok && name != "" {
			names = append(names, name)
		}
	}
	return names
}

// promBuffer collects a process's output while the test reads it.
type promBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *promBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *promBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// promProc is a process a test started; the test's cleanup kills it.
type promProc struct {
	name string
	cmd  *exec.Cmd
	out  promBuffer // stdout and stderr
	done chan struct{}
	err  error // of Wait, once done is closed
}

// promStart starts cmd and registers its end with t.Cleanup: it is killed
// if still running, whatever the test's result. It also gets SIGKILL if
// the test process dies first (Pdeathsig: when the thread that started it
// ends, which in Go is the process's end but for threads locked by
// LockOSThread, which these tests do not use).
func promStart(t *testing.T, name string, cmd *exec.Cmd) *promProc {
	t.Helper()
	p := &promProc{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(promTimeout):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.output())
		}
	})
	return p
}

func (p *promProc) output() string { return p.out.String() }

// exited tells whether the process has exited.
func (p *promProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits until the process exits and returns its exit status (-1 if
// it was killed by a signal); it fails the test if that takes too long.
func (p *promProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(promTimeout):
		t.Fatalf("%s did not exit within %v", p.name, promTimeout)
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// waitFor polls cond until it holds, and fails the test if it does not
// within promTimeout or if the process exits first. cond returns whether
// it holds and, if not, what it saw, for the failure message.
func (p *promProc) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(promTimeout)
	var last string
	for {
		ok, saw := cond()
		if ok {
			return
		}
		last = saw
		if p.exited() {
			t.Fatalf("%s exited (%v) before it could %s; last seen: %s\n%s", p.name, p.err, what, last, p.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not %s within %v; last seen: %s\n%s", p.name, what, promTimeout, last, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// promHTTPGet returns the body of a successful GET.
func promHTTPGet(u string) ([]byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// promStatsObject is the part of the STATS object these tests compare.
type promStatsObject struct {
	Version string `json:"version"`
	Filters []struct {
		Name      string         `json:"name"`
		Success   successCounts  `json:"success"`
		Failure   failureCounts  `json:"failure"`
		Handshake promQuantiles  `json:"handshake_ms"`
		SynAck    *promQuantiles `json:"synack_ms"` // not in SPEC §7's list
	} `json:"filters"`
	Capture  captureCounts `json:"capture"`
	Sessions sessionCounts `json:"sessions"`
}

// promQuantiles is a histogram summary of STATS, in milliseconds.
type promQuantiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
}

// promSocketStats asks the stats socket at path for STATS.
func promSocketStats(path string) (promStatsObject, error) {
	var st promStatsObject
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return st, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("STATS\n")); err != nil {
		return st, err
	}
	answer, err := io.ReadAll(c)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(answer, &st); err != nil {
		return st, fmt.Errorf("STATS answer %q: %v", answer, err)
	}
	return st, nil
}

// promFileStats runs tcpeek -o json on the example capture file with the
// options of args (-r - and the metrics and socket options left out) and
// returns its STATS line.
func promFileStats(t *testing.T, bin string, args []string) promStatsObject {
	t.Helper()
	var fileArgs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-r" || a == "-U":
			i++
		case strings.HasPrefix(a, "--web.listen-address"):
		default:
			fileArgs = append(fileArgs, a)
		}
	}
	fileArgs = append([]string{"-r", promExampleCapture, "-o", "json"}, fileArgs...)
	out, err := exec.Command(bin, fileArgs...).Output()
	if err != nil {
		t.Fatalf("tcpeek %s: %v", strings.Join(fileArgs, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var st promStatsObject
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &st); err != nil {
		t.Fatalf("tcpeek %s: last line: %v\n%s", strings.Join(fileArgs, " "), err, out)
	}
	return st
}

// promStatsDiff tells how the handshake counters of two STATS objects
// differ.
func promStatsDiff(a, b promStatsObject) string {
	ja, _ := json.Marshal(a.Filters)
	jb, _ := json.Marshal(b.Filters)
	if !bytes.Equal(ja, jb) {
		return fmt.Sprintf("filters:\n  %s\n  %s", ja, jb)
	}
	return ""
}

// promExpectedSeries returns the value of every series of tcpeek's own
// metrics (the Go and process collectors left out) that STATS tells, by
// promKey. A zero STATS gives the series of the start, all 0, for the
// filters named.
func promExpectedSeries(filters []string, st promStatsObject) map[string]float64 {
	want := map[string]float64{}
	set := func(v uint64, name string, labels ...string) {
		want[promKey(name, labels...)] = float64(v)
	}
	for i, name := range filters {
		var f struct {
			success, timeout, reject, unreach, abort, dupSYN, dupSYNACK, handshakes, synacks uint64
		}
		if i < len(st.Filters) {
			s := st.Filters[i]
			name = s.Name
			f.success, f.timeout, f.reject, f.unreach, f.abort = s.Success.Total, s.Failure.Timeout, s.Failure.Reject, s.Failure.Unreach, s.Failure.Abort
			f.dupSYN, f.dupSYNACK = s.Success.DupSyn+s.Failure.DupSyn, s.Success.DupSynAck+s.Failure.DupSynAck
			f.handshakes = s.Handshake.Count
			if s.SynAck != nil {
				f.synacks = s.SynAck.Count
			}
		}
		for _, r := range []struct {
			result string
			v      uint64
		}{{"success", f.success}, {"timeout", f.timeout}, {"reject", f.reject}, {"unreach", f.unreach}, {"abort", f.abort}} {
			set(r.v, "tcpeek_handshakes_total", "filter", name, "result", r.result)
		}
		set(f.dupSYN, "tcpeek_handshake_retransmissions_total", "filter", name, "segment", "syn")
		set(f.dupSYNACK, "tcpeek_handshake_retransmissions_total", "filter", name, "segment", "synack")
		set(f.handshakes, "tcpeek_handshake_duration_seconds_count", "filter", name)
		set(f.handshakes, "tcpeek_handshake_duration_seconds_bucket", "filter", name, "le", "+Inf")
		if i >= len(st.Filters) || st.Filters[i].SynAck != nil {
			set(f.synacks, "tcpeek_synack_latency_seconds_count", "filter", name)
			set(f.synacks, "tcpeek_synack_latency_seconds_bucket", "filter", name, "le", "+Inf")
		}
	}
	set(st.Sessions.InProgress, "tcpeek_sessions_in_progress")
	set(st.Sessions.Overflow, "tcpeek_session_table_overflows_total")
	set(st.Capture.Packets, "tcpeek_capture_packets_total")
	set(st.Capture.Drops, "tcpeek_capture_drops_total", "by", "kernel")
	set(st.Capture.IfDrops, "tcpeek_capture_drops_total", "by", "interface")
	set(st.Capture.BadChecksum, "tcpeek_bad_checksum_total")
	set(st.Capture.Duplicates, "tcpeek_capture_duplicates_total")
	return want
}

// promKey names a series: the metric name and its labels (name, value
// pairs), sorted, the target's labels (job, instance) left out.
func promKey(name string, labels ...string) string {
	var ls []string
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// promAPI is the HTTP API of a running Prometheus.
type promAPI struct {
	base string // http://127.0.0.1:PORT
	proc *promProc
}

// promStartPrometheus starts Prometheus in dir, scraping tcpeek at
// tcpeekAddr every second as job tcpeek, with the rules of alertsPath, and
// waits until it is ready.
func promStartPrometheus(t *testing.T, prometheus, dir, alertsPath, tcpeekAddr string) *promAPI {
	t.Helper()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: tcpeek
    static_configs:
      - targets: [%q]
`, alertsPath, tcpeekAddr)
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := promFreeAddr(t)
	cmd := exec.Command(prometheus,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Dir = dir
	api := &promAPI{base: "http://" + addr}
	api.proc = promStart(t, "prometheus", cmd)
	api.proc.waitFor(t, "get ready", func() (bool, string) {
		_, err := promHTTPGet(api.base + "/-/ready")
		return err == nil, fmt.Sprint(err)
	})
	return api
}

// get calls the API at path and decodes its data into v.
func (a *promAPI) get(path string, params url.Values, v any) error {
	u := a.base + path
	if params != nil {
		u += "?" + params.Encode()
	}
	body, err := promHTTPGet(u)
	var r struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if jerr := json.Unmarshal(body, &r); jerr != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("GET %s: %v: %s", u, jerr, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", u, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string
	Value  float64
}

func (s promSample) String() string { return fmt.Sprintf("%v %v", s.Metric, s.Value) }

// key is the sample's promKey.
func (s promSample) key() string {
	var labels []string
	for k, v := range s.Metric {
		if k != "__name__" && k != "job" && k != "instance" {
			labels = append(labels, k, v)
		}
	}
	return promKey(s.Metric["__name__"], labels...)
}

// tryQuery runs an instant query and returns its vector.
func (a *promAPI) tryQuery(expr string) ([]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := a.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result of type %s, want vector", expr, data.ResultType)
	}
	var out []promSample
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %v", expr, r.Value[1], err)
		}
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// query runs an instant query, failing the test on an error.
func (a *promAPI) query(t *testing.T, expr string) []promSample {
	t.Helper()
	out, err := a.tryQuery(expr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitTargetUp waits until Prometheus has scraped its one target
// successfully.
func (a *promAPI) waitTargetUp(t *testing.T) {
	t.Helper()
	a.proc.waitFor(t, "scrape tcpeek", func() (bool, string) {
		var data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				LastError string `json:"lastError"`
				ScrapeURL string `json:"scrapeUrl"`
			} `json:"activeTargets"`
		}
		if err := a.get("/api/v1/targets", nil, &data); err != nil {
			return false, err.Error()
		}
		if len(data.ActiveTargets) != 1 {
			return false, fmt.Sprintf("%d active targets", len(data.ActiveTargets))
		}
		tg := data.ActiveTargets[0]
		return tg.Health == "up", fmt.Sprintf("%s: health %q, last error %q", tg.ScrapeURL, tg.Health, tg.LastError)
	})
}

// waitScrapes waits until Prometheus has scraped tcpeek n times.
func (a *promAPI) waitScrapes(t *testing.T, n int) {
	t.Helper()
	a.waitValue(t, fmt.Sprintf(`count_over_time(up{job="tcpeek"}[1h]) >= %d`, n), 0, func(v float64) bool { return v >= float64(n) })
}

// waitValue waits until the query returns one series, of value v, or of a
// value that ok accepts if ok is not nil.
func (a *promAPI) waitValue(t *testing.T, expr string, v float64, ok func(float64) bool) {
	t.Helper()
	if ok == nil {
		ok = func(got float64) bool { return got == v }
	}
	a.proc.waitFor(t, "return a value for "+expr, func() (bool, string) {
		got, err := a.tryQuery(expr)
		if err != nil {
			return false, err.Error()
		}
		return len(got) == 1 && ok(got[0].Value), fmt.Sprint(got)
	})
}

// checkSeries compares the series of each metric of want with Prometheus's
// latest values: the same series, none missing and none more, the same
// values.
func (a *promAPI) checkSeries(t *testing.T, want map[string]float64) {
	t.Helper()
	names := map[string]bool{}
	for k := range want {
		names[k[:strings.IndexByte(k, '{')]] = true
	}
	got := map[string]float64{}
	for name := range names {
		expr := name + `{job="tcpeek"}`
		if strings.HasSuffix(name, "_bucket") {
			expr = name + `{job="tcpeek",le="+Inf"}`
		}
		for _, s := range a.query(t, expr) {
			got[s.key()] = s.Value
		}
	}
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %v", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v: unexpected series", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("Prometheus's series of tcpeek and STATS differ (%d series compared):\n  %s", len(want), strings.Join(diffs, "\n  "))
	}
}

// checkQuantiles checks histogram_quantile over the rates of the two
// histograms against the quantiles of STATS: both interpolate within the
// same buckets (STATS within finer ones, nested in Prometheus's), so each
// Prometheus quantile must lie in the bucket that holds STATS's.
func (a *promAPI) checkQuantiles(t *testing.T, st promStatsObject) {
	t.Helper()
	bounds := a.bucketBounds(t)
	bucketOf := func(v float64) int {
		return sort.Search(len(bounds), func(i int) bool { return bounds[i] >= v*(1-1e-9) })
	}
	for _, h := range []struct {
		metric string
		stats  func(i int) *promQuantiles
	}{
		{"tcpeek_handshake_duration_seconds", func(i int) *promQuantiles { return &st.Filters[i].Handshake }},
		{"tcpeek_synack_latency_seconds", func(i int) *promQuantiles { return st.Filters[i].SynAck }},
	} {
		for _, q := range []struct {
			q  float64
			ms func(*promQuantiles) float64
		}{
			{0.5, func(p *promQuantiles) float64 { return p.P50 }},
			{0.9, func(p *promQuantiles) float64 { return p.P90 }},
			{0.99, func(p *promQuantiles) float64 { return p.P99 }},
		} {
			expr := fmt.Sprintf(`histogram_quantile(%v, sum by (le, filter) (rate(%s_bucket{job="tcpeek"}[5m])))`, q.q, h.metric)
			got := map[string]float64{}
			for _, s := range a.query(t, expr) {
				got[s.Metric["filter"]] = s.Value
			}
			if len(got) != len(st.Filters) {
				t.Errorf("%s: %d filters, want %d: %v", expr, len(got), len(st.Filters), got)
			}
			for i, f := range st.Filters {
				sq := h.stats(i)
				if sq == nil {
					continue
				}
				v, ok := got[f.Name]
				switch {
				case !ok:
				case sq.Count == 0:
					if !math.IsNaN(v) {
						t.Errorf("%s, filter %s: %v, want NaN (no observation)", expr, f.Name, v)
					}
				case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
					t.Errorf("%s, filter %s: %v, want a positive number", expr, f.Name, v)
				case bucketOf(v) != bucketOf(q.ms(sq)/1000):
					t.Errorf("%s, filter %s: %v s, not in the bucket of STATS's p%v, %v ms (bounds %v)",
						expr, f.Name, v, q.q*100, q.ms(sq), bounds)
				}
			}
		}
	}
}

// bucketBounds returns the finite le bounds of tcpeek's histograms, sorted.
func (a *promAPI) bucketBounds(t *testing.T) []float64 {
	t.Helper()
	seen := map[float64]bool{}
	for _, s := range a.query(t, `tcpeek_handshake_duration_seconds_bucket{job="tcpeek"}`) {
		v, err := strconv.ParseFloat(s.Metric["le"], 64)
		if err != nil {
			t.Fatalf("le %q: %v", s.Metric["le"], err)
		}
		if !math.IsInf(v, 1) {
			seen[v] = true
		}
	}
	var bounds []float64
	for v := range seen {
		bounds = append(bounds, v)
	}
	sort.Float64s(bounds)
	return bounds
}

// checkRules waits until Prometheus has loaded and evaluated every rule of
// the shipped alerts.yml, and checks that none failed.
func (a *promAPI) checkRules(t *testing.T, names []string) {
	t.Helper()
	var last map[string]string
	a.proc.waitFor(t, "evaluate every rule of "+promAlertsFile, func() (bool, string) {
		var data struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					Type      string `json:"type"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := a.get("/api/v1/rules", nil, &data); err != nil {
			return false, err.Error()
		}
		last = map[string]string{}
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				last[r.Name] = r.Health + " " + r.LastError
			}
		}
		for _, n := range names {
			if h, ok := last[n]; !ok || strings.HasPrefix(h, "unknown") {
				return false, fmt.Sprint(last) // not loaded, or not evaluated yet
			}
		}
		return true, ""
	})
	var bad []string
	for _, n := range names {
		if h := last[n]; h != "ok " {
			bad = append(bad, fmt.Sprintf("%s: %s", n, h))
		}
	}
	if len(bad) > 0 || len(last) != len(names) {
		t.Errorf("rules of %s in Prometheus: %v, want exactly %v, all healthy; failing: %v", promAlertsFile, last, names, bad)
	}
}

// promAlertNames returns the names of the alerts of the shipped rules.
func promAlertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(promAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)\s*$`).FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alert", promAlertsFile)
	}
	return names
}

// promDashboard is the part of a Grafana dashboard these tests read.
type promDashboard struct {
	SchemaVersion int         `json:"schemaVersion"`
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Panels        []promPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *promDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type promPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *promDatasource          `json:"datasource"`
	GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource *promDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []promPanel `json:"panels"` // of a collapsed row
}

type promDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// promReadDashboard reads the shipped dashboard.
func promReadDashboard(t *testing.T) promDashboard {
	t.Helper()
	b, err := os.ReadFile(promDashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d promDashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", promDashboardFile, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", promDashboardFile)
	}
	return d
}

// allPanels returns the panels, those of collapsed rows included.
func (d promDashboard) allPanels() []promPanel {
	var out []promPanel
	var walk func([]promPanel)
	walk = func(ps []promPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// promDashboardVars gives the dashboard's variables values that select
// everything the test's Prometheus has.
var promDashboardVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__range", "5m",
	"$__interval", "15s",
	"$job", "tcpeek",
	"$instance", ".*",
	"$filter", ".*",
)

// queries returns the PromQL of every panel target and of every query
// variable (label_values(SELECTOR, LABEL) as group by (LABEL) (SELECTOR)),
// with the variables replaced, each named for messages.
func (d promDashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = promDashboardVars.Replace(tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(SELECTOR, LABEL)", promDashboardFile, v.Name, v.Definition)
			continue
		}
		out["variable "+v.Name] = promDashboardVars.Replace(fmt.Sprintf("group by (%s) (%s)", m[2], m[1]))
	}
	return out
}

// checkDashboardQueries runs every query of the dashboard: each must run
// without error and return at least one series.
func (a *promAPI) checkDashboardQueries(t *testing.T) {
	t.Helper()
	d := promReadDashboard(t)
	qs := d.queries(t)
	if len(qs) == 0 {
		t.Fatalf("%s: no query", promDashboardFile)
	}
	names := make([]string, 0, len(qs))
	for n := range qs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, err := a.tryQuery(qs[n])
		switch {
		case err != nil:
			t.Errorf("%s: %v", n, err)
		case len(got) == 0:
			t.Errorf("%s: %s: no series", n, qs[n])
		}
	}
}

// promCheckDashboard checks the dashboard's structure, and that every
// metric it uses exists.
func promCheckDashboard(t *testing.T) {
	d := promReadDashboard(t)
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("%s: schemaVersion %d, uid %q, title %q: want a schemaVersion >= 36, a uid and a title", promDashboardFile, d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type + " " + v.Definition + " " + string(v.Query)
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("%s: variable %s does not use the datasource variable", promDashboardFile, v.Name)
		}
	}
	if !strings.HasPrefix(vars["datasource"], "datasource ") || !strings.Contains(vars["datasource"], "prometheus") {
		t.Errorf("%s: no datasource variable of type prometheus: %v", promDashboardFile, vars)
	}
	if !strings.Contains(vars["filter"], "label_values(tcpeek_handshakes_total") || !strings.Contains(vars["filter"], ", filter)") {
		t.Errorf("%s: the filter variable is not the label_values of filter in tcpeek_handshakes_total: %q", promDashboardFile, vars["filter"])
	}
	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	for _, p := range d.allPanels() {
		if other, ok := ids[p.ID]; ok {
			t.Errorf("%s: panels %q and %q have the same id %d", promDashboardFile, other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: panel %q: gridPos %+v out of the 24-column grid", promDashboardFile, p.Title, g)
		}
		for _, r := range rects {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				t.Errorf("%s: panels %q and %q overlap", promDashboardFile, r.title, p.Title)
			}
		}
		rects = append(rects, rect{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("%s: panel %q: datasource %+v, %d targets: want the datasource variable and a query", promDashboardFile, p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || (tg.Datasource != nil && tg.Datasource.UID != "${datasource}") {
				t.Errorf("%s: panel %q target %s: empty query or another datasource", promDashboardFile, p.Title, tg.RefID)
			}
		}
	}
	used := promCheckMetricNames(t, promDashboardFile)
	// Every family of tcpeek's is on the dashboard.
	for _, name := range promGoldenFamilies(t) {
		if !used[name] && !used[name+"_bucket"] && !used[name+"_sum"] && !used[name+"_count"] {
			t.Errorf("%s: no panel shows %s", promDashboardFile, name)
		}
	}
}

// promGoldenFamilies returns the metric families of tcpeek's collector, as
// the golden exposition of internal/metrics lists them.
func promGoldenFamilies(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(promGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	if len(names) == 0 {
		t.Fatalf("%s: no # TYPE line", promGoldenFile)
	}
	return names
}

// promCheckMetricNames checks that every tcpeek_ metric the file names is
// one tcpeek exposes, and returns the names it uses.
func promCheckMetricNames(t *testing.T, file string) map[string]bool {
	t.Helper()
	known := map[string]bool{"tcpeek_build_info": true}
	for _, name := range promGoldenFamilies(t) {
		known[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			known[name+suffix] = true
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\btcpeek_[a-z_]+\b`).FindAll(b, -1) {
		used[string(m)] = true
	}
	for name := range used {
		if !known[name] && !strings.HasPrefix(name, "tcpeek_e2e") {
			t.Errorf("%s: %s is not a metric of tcpeek (%s)", file, name, promGoldenFile)
		}
	}
	return used
}

// promCheckDaemonSet reads the DaemonSet (YAML, through python3's yaml
// module: the module has no YAML parser) and checks that tcpeek accepts its
// arguments, that its memory limit holds --max-sessions, and that its
// ports, probes and annotations agree.
func promCheckDaemonSet(t *testing.T, bin string) {
	// python3 on PATH, or Debian's if that one has no yaml module.
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import yaml").Run() == nil {
			python = path
			break
		}
	}
	if python == "" {
		t.Skip("needs python3 with its yaml module (Debian package python3-yaml)")
	}
	out, err := exec.Command(python, "-c",
		"import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)",
		promDaemonSetFile).CombinedOutput()
	if err != nil {
		t.Fatalf("%s does not parse as YAML: %v\n%s", promDaemonSetFile, err, out)
	}
	type container struct {
		Name  string   `json:"name"`
		Image string   `json:"image"`
		Args  []string `json:"args"`
		Env   []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				ConfigMapKeyRef *struct{ Name, Key string } `json:"configMapKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		LivenessProbe, ReadinessProbe *struct {
			HTTPGet *struct {
				Path string `json:"path"`
				Port any    `json:"port"`
			} `json:"httpGet"`
		}
		Resources struct {
			Limits, Requests map[string]string
		} `json:"resources"`
		SecurityContext struct {
			Capabilities struct{ Add, Drop []string } `json:"capabilities"`
		} `json:"securityContext"`
	}
	var docs []struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Template struct {
				Metadata struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Spec struct {
					HostNetwork bool        `json:"hostNetwork"`
					Containers  []container `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	configMaps := map[string]map[string]string{}
	daemonSets := 0
	for _, d := range docs {
		if d.APIVersion == "" || d.Kind == "" || d.Metadata.Name == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name: %+v", promDaemonSetFile, d)
		}
		if d.Kind == "ConfigMap" {
			configMaps[d.Metadata.Name] = d.Data
		}
	}
	for _, d := range docs {
		if d.Kind != "DaemonSet" {
			continue
		}
		daemonSets++
		pod := d.Spec.Template
		for k, v := range d.Spec.Selector.MatchLabels {
			if pod.Metadata.Labels[k] != v {
				t.Errorf("%s: the selector %s=%s does not select the pods", promDaemonSetFile, k, v)
			}
		}
		if !pod.Spec.HostNetwork {
			t.Errorf("%s: hostNetwork is not true: tcpeek would watch the pod's own network", promDaemonSetFile)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", promDaemonSetFile, len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		caps := c.SecurityContext.Capabilities
		if !slices.Equal(caps.Drop, []string{"ALL"}) || !slices.Contains(caps.Add, "NET_RAW") {
			t.Errorf("%s: capabilities drop %v add %v: want drop [ALL], add NET_RAW", promDaemonSetFile, caps.Drop, caps.Add)
		}
		// Kubernetes replaces $(VAR) in args with the container's
		// variables: the ConfigMap's, or the literal values.
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
				ref := e.ValueFrom.ConfigMapKeyRef
				v, ok := configMaps[ref.Name][ref.Key]
				if !ok {
					t.Errorf("%s: %s refers to key %s of ConfigMap %s, which is not in the file", promDaemonSetFile, e.Name, ref.Key, ref.Name)
				}
				env[e.Name] = v
			default:
				env[e.Name] = e.Value
			}
		}
		var args []string
		for _, a := range c.Args {
			args = append(args, regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(a, func(m string) string {
				return env[m[2:len(m)-1]]
			}))
		}
		promCheckOptions(t, bin, promDaemonSetFile, args)
		opt := promOptions(args)
		// Memory: 24 MiB and 512 bytes per --max-sessions (SPEC §11,
		// deploy/README.md) must fit in the limit.
		maxSessions := 1048576
		if v, ok := opt["--max-sessions"]; ok {
			if maxSessions, err = strconv.Atoi(v); err != nil {
				t.Errorf("%s: --max-sessions=%s", promDaemonSetFile, v)
			}
		}
		limit, err := promQuantity(c.Resources.Limits["memory"])
		if err != nil {
			t.Errorf("%s: memory limit: %v", promDaemonSetFile, err)
		}
		if need := int64(24<<20) + 512*int64(maxSessions); limit < need {
			t.Errorf("%s: memory limit %s (%d bytes) below the %d bytes --max-sessions=%d may use", promDaemonSetFile, c.Resources.Limits["memory"], limit, need, maxSessions)
		}
		if v, ok := env["GOMEMLIMIT"]; ok {
			if gl, err := promQuantity(strings.TrimSuffix(v, "B")); err != nil || gl >= limit {
				t.Errorf("%s: GOMEMLIMIT=%s not below the memory limit %s", promDaemonSetFile, v, c.Resources.Limits["memory"])
			}
		}
		// One port, everywhere.
		_, port, _ := strings.Cut(opt["--web.listen-address"], ":")
		portName := ""
		for _, p := range c.Ports {
			if strconv.Itoa(p.ContainerPort) == port {
				portName = p.Name
			}
		}
		if port == "" || portName == "" {
			t.Errorf("%s: --web.listen-address=%s: no container port for it in %+v", promDaemonSetFile, opt["--web.listen-address"], c.Ports)
		}
		if ann := pod.Metadata.Annotations; ann != nil && ann["prometheus.io/scrape"] == "true" && (ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != "/metrics") {
			t.Errorf("%s: annotations %v do not name port %s and /metrics", promDaemonSetFile, ann, port)
		}
		for _, p := range []struct {
			name  string
			probe *struct {
				HTTPGet *struct {
					Path string `json:"path"`
					Port any    `json:"port"`
				} `json:"httpGet"`
			}
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no %s with httpGet", promDaemonSetFile, p.name)
				continue
			}
			if pp := fmt.Sprint(p.probe.HTTPGet.Port); pp != port && pp != portName || (p.probe.HTTPGet.Path != "/" && p.probe.HTTPGet.Path != "/metrics") {
				t.Errorf("%s: %s on port %v path %s, want the metrics port and / or /metrics", promDaemonSetFile, p.name, p.probe.HTTPGet.Port, p.probe.HTTPGet.Path)
			}
		}
	}
	if daemonSets != 1 {
		t.Errorf("%s: %d DaemonSets, want 1", promDaemonSetFile, daemonSets)
	}
}

// promQuantity parses a Kubernetes memory quantity (binary or decimal
// suffix, or bytes).
func promQuantity(q string) (int64, error) {
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}} {
		if n, ok := strings.CutSuffix(q, s.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * s.mult, err
		}
	}
	return strconv.ParseInt(q, 10, 64)
}

// promOptions returns the long options with a value (--opt=value) of args.
func promOptions(args []string) map[string]string {
	opt := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
			opt[k] = v
		}
	}
	return opt
}

// promCheckOptions checks that tcpeek accepts args: with --help added, it
// parses them all, then prints its usage and exits 0; an unknown option or
// a bad value exits 2.
func promCheckOptions(t *testing.T, bin, file string, args []string) {
	t.Helper()
	out, err := exec.Command(bin, append(slices.Clone(args), "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("%s: tcpeek does not accept %q: %v\n%s", file, args, err, out)
	}
}

// promCheckUnit checks the systemd unit: systemd-analyze verify finds
// nothing wrong, tcpeek accepts its command line with the default
// TCPEEK_OPTS, and its memory limit holds --max-sessions.
func promCheckUnit(t *testing.T, bin string) {
	unit, err := os.ReadFile(promUnitFile)
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := os.ReadFile(promDefaultsFile)
	if err != nil {
		t.Fatal(err)
	}
	values := func(b []byte, key string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`(?m)^`+key+`=(.*)$`).FindAllSubmatch(b, -1) {
			out = append(out, strings.TrimSpace(string(m[1])))
		}
		return out
	}
	exec1 := values(unit, "ExecStart")
	if len(exec1) != 1 {
		t.Fatalf("%s: %d ExecStart lines, want 1", promUnitFile, len(exec1))
	}
	opts := values(defaults, "TCPEEK_OPTS")
	if len(opts) != 1 {
		t.Fatalf("%s: %d TCPEEK_OPTS lines, want 1", promDefaultsFile, len(opts))
	}
	argv := strings.Fields(strings.ReplaceAll(exec1[0], "$TCPEEK_OPTS", strings.Trim(opts[0], `"`)))
	if argv[0] != "/usr/local/sbin/tcpeek" {
		t.Errorf("%s: ExecStart runs %s", promUnitFile, argv[0])
	}
	promCheckOptions(t, bin, promUnitFile, argv[1:])
	for _, want := range []struct{ key, value string }{
		{"User", "tcpeek"},
		{"RuntimeDirectory", "tcpeek"},
		{"AmbientCapabilities", "CAP_NET_RAW CAP_NET_ADMIN CAP_BPF"},
		{"CapabilityBoundingSet", "CAP_NET_RAW CAP_NET_ADMIN CAP_BPF"},
		{"NoNewPrivileges", "yes"},
		{"Restart", "on-failure"},
	} {
		if got := values(unit, want.key); !slices.Equal(got, []string{want.value}) {
			t.Errorf("%s: %s=%v, want %s", promUnitFile, want.key, got, want.value)
		}
	}
	if !strings.Contains(exec1[0], "-U /run/tcpeek/") || slices.Contains(argv, "-u") {
		t.Errorf("%s: ExecStart %q: want the socket in the RuntimeDirectory and no -u (the user is the unit's)", promUnitFile, exec1[0])
	}
	maxSessions := 1048576
	for _, a := range argv {
		if v, ok := strings.CutPrefix(a, "--max-sessions="); ok {
			maxSessions, _ = strconv.Atoi(v)
		}
	}
	if mm := values(unit, "MemoryMax"); len(mm) != 1 {
		t.Errorf("%s: no MemoryMax", promUnitFile)
	} else if limit, err := promQuantity(strings.Replace(strings.Replace(mm[0], "M", "Mi", 1), "G", "Gi", 1)); err != nil || limit < int64(24<<20)+512*int64(maxSessions) {
		t.Errorf("%s: MemoryMax=%s below the %d bytes --max-sessions=%d may use", promUnitFile, mm[0], int64(24<<20)+512*int64(maxSessions), maxSessions)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze verify skipped: needs systemd-analyze (Debian package systemd)")
	}
	// verify wants the programs of ExecStart to exist: the copy runs the
	// tcpeek just built.
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "tcpeek.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(unit, []byte("/usr/local/sbin/tcpeek"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", copyPath)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	// verify exits 0 on unknown keys and bad values: it only warns. Any
	// line about the unit is a problem; lines about the host's own units
	// are not ours.
	var problems []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "tcpeek") {
			problems = append(problems, line)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", promUnitFile, err, strings.Join(problems, "\n"))
	}
}
