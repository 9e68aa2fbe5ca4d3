//go:build linux

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tcpeek/tcpeek/internal/metrics"
	"github.com/tcpeek/tcpeek/internal/testutil"
)

// startMetricsDaemon runs tcpeek -r - with args, its input a pipe that
// holds a pcap file header and stays open, so that it serves on
// --web.listen-address until the test ends. It returns the process and
// the address.
func startMetricsDaemon(t *testing.T, args ...string) (*promProc, string) {
	t.Helper()
	bins := requireTools(t)
	header, err := os.ReadFile("../testdata/example.pcap")
	if err != nil {
		t.Fatal(err)
	}
	addr := promFreeAddr(t)
	cmd := exec.Command(bins.tcpeek, append([]string{"-r", "-", "-q", "--web.listen-address=" + addr}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := promStart(t, "tcpeek", cmd)
	t.Cleanup(func() { stdin.Close() })
	if _, err := stdin.Write(header[:24]); err != nil {
		t.Fatalf("writing to tcpeek: %v\n%s", err, p.output())
	}
	return p, addr
}

// scraper returns an HTTP client that connects from 127.0.0.2: another
// address than the test's other clients, as Prometheus's would be.
func scraper(tlsConfig *tls.Config) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: tlsConfig, DisableKeepAlives: true,
	}}
}

// scrape gets /metrics at url and returns the status and the body.
func scrape(c *http.Client, url string, user, pass string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestMetricsIdleConnections holds 10,000 idle TCP connections to tcpeek's
// /metrics from another process (issue 8: 19,000 took it to 16k open files
// and +157 MB) and scrapes meanwhile: every scrape succeeds, tcpeek's file
// descriptors stay within metrics.MaxConns of where they were, and its
// memory within a few MB.
func TestMetricsIdleConnections(t *testing.T) {
	t.Parallel()
	const idlers = 10000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Max < idlers+100 {
		t.Skipf("needs a hard RLIMIT_NOFILE of %d for the idle connections, have %d (%v)", idlers+100, rl.Max, err)
	}
	d, addr := startMetricsDaemon(t)
	url := "http://" + addr + "/metrics"
	c := scraper(nil)
	d.waitFor(t, "serve "+url, func() (bool, string) {
		code, _, err := scrape(c, url, "", "")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	pid := d.cmd.Process.Pid
	baseFDs, baseRSS := testutil.OpenFDs(pid), testutil.RSSKiB(pid)

	began := time.Now()
	startHardenHelper(t, nil, "idlers", addr, strconv.Itoa(idlers))
	t.Logf("%d idle connections made in %v", idlers, time.Since(began).Round(time.Millisecond))
	var times []time.Duration
	maxFDs, maxRSS := 0, 0
	for i := range 50 {
		began := time.Now()
		code, body, err := scrape(c, url, "", "")
		times = append(times, time.Since(began))
		if err != nil || code != 200 || !strings.Contains(body, "tcpeek_handshakes_total") {
			t.Errorf("scrape %d with %d idle connections held: %d, %v", i, idlers, code, err)
		}
		maxFDs, maxRSS = max(maxFDs, testutil.OpenFDs(pid)), max(maxRSS, testutil.RSSKiB(pid))
	}
	slices.Sort(times)
	t.Logf("%d idle connections held: %d scrapes, p50 %v, max %v; tcpeek: at most %d file descriptors (%d before), RSS at most %d KiB (%d before)",
		idlers, len(times), times[len(times)/2].Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond),
		maxFDs, baseFDs, maxRSS, baseRSS)
	if limit := baseFDs + metrics.MaxConns + 1; maxFDs > limit {
		t.Errorf("tcpeek had %d file descriptors open, want at most %d", maxFDs, limit)
	}
	if grew := maxRSS - baseRSS; grew > 16<<10 {
		t.Errorf("tcpeek's RSS grew by %d KiB, want at most 16 MiB", grew)
	}
}

// TestMetricsSlowloris sends a request's headers one byte at a time to
// tcpeek's /metrics: it is cut off after metrics.ReadHeaderTimeout, and
// scrapes succeed meanwhile.
func TestMetricsSlowloris(t *testing.T) {
	t.Parallel()
	d, addr := startMetricsDaemon(t)
	url := "http://" + addr + "/metrics"
	c := scraper(nil)
	d.waitFor(t, "serve "+url, func() (bool, string) {
		code, _, err := scrape(c, url, "", "")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	began := time.Now()
	go func() {
		for _, b := range []byte("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 10000)) {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the slow client's pace
		}
	}()
	for i := range 10 {
		if code, _, err := scrape(c, url, "", ""); err != nil || code != 200 {
			t.Errorf("scrape %d during the slowloris: %d, %v", i, code, err)
		}
	}
	slow.SetReadDeadline(time.Now().Add(metrics.ReadHeaderTimeout + 10*time.Second))
	io.Copy(io.Discard, slow)
	cut := time.Since(began)
	t.Logf("the slow client was cut off after %v", cut.Round(time.Millisecond))
	if cut < metrics.ReadHeaderTimeout-100*time.Millisecond || cut > metrics.ReadHeaderTimeout+3*time.Second {
		t.Errorf("the slow client was cut off after %v, want about %v", cut, metrics.ReadHeaderTimeout)
	}
}

// TestMetricsTLSBasicAuth runs tcpeek with a --web.config.file that asks
// for TLS and basic authentication (exporter-toolkit's format, a
// certificate made here, a bcrypt hash), and scrapes with and without the
// password; a file that cannot be used stops tcpeek at start.
func TestMetricsTLSBasicAuth(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	pool := testutil.WriteCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"web.yml": fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: %s\n", hash),
		"bad.yml": []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: nokey.pem\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	d, addr := startMetricsDaemon(t, "--web.config.file", filepath.Join(dir, "web.yml"))
	url := "https://" + addr + "/metrics"
	c := scraper(&tls.Config{RootCAs: pool})
	d.waitFor(t, "serve "+url, func() (bool, string) {
		code, _, err := scrape(c, url, "prometheus", "s3cret")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	for _, tt := range []struct {
		user, pass string
		want       int
	}{
		{"prometheus", "s3cret", 200},
		{"", "", 401},
		{"prometheus", "guess", 401},
	} {
		code, body, err := scrape(c, url, tt.user, tt.pass)
		if err != nil || code != tt.want || strings.Contains(body, "tcpeek_handshakes_total") != (tt.want == 200) {
			t.Errorf("scrape as %q/%q: %d, %v; want %d", tt.user, tt.pass, code, err, tt.want)
		}
	}
	if code, body, err := scrape(scraper(nil), "http://"+addr+"/metrics", "prometheus", "s3cret"); err == nil && strings.Contains(body, "tcpeek_handshakes_total") {
		t.Errorf("plain HTTP was served the metrics (%d)", code)
	}

	// With -u, the file is read again as the user: one only root can read
	// stops tcpeek at start.
	if os.Geteuid() == 0 {
		nobody(t)
		conf := filepath.Join(dir, "web.yml") // 0600, root's
		cmd := exec.Command(requireTools(t).tcpeek, "-r", "../testdata/example.pcap", "-q", "-u", "nobody", "--web.listen-address="+promFreeAddr(t), "--web.config.file", conf)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--web.config.file "+conf) || !strings.Contains(string(out), "after dropping privileges") {
			t.Errorf("tcpeek -u nobody --web.config.file %s (readable by root only): %v, %q; want exit 1 and a message saying nobody cannot read it", conf, err, out)
		}
	}

	// A web configuration that names a missing key: exit 1 at start,
	// naming the file and the problem.
	bad := filepath.Join(dir, "bad.yml")
	cmd := exec.Command(requireTools(t).tcpeek, "-r", "../testdata/example.pcap", "-q", "--web.listen-address="+promFreeAddr(t), "--web.config.file", bad)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--web.config.file "+bad) || !strings.Contains(string(out), "nokey.pem") {
		t.Errorf("tcpeek --web.config.file %s: %v, %q; want exit 1 and a message naming the file and nokey.pem", bad, err, out)
	}
}
