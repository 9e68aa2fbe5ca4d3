package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/stats"

	"github.com/tcpeek/tcpeek/internal/gmondtest"
)

// The Ganglia programs of Debian's ganglia-monitor package.
const (
	gmondPath   = "/usr/sbin/gmond"
	gmetricPath = "/usr/bin/gmetric"
)

// TestGmond sends tcpeekstat -g's metrics through the real gmetric to a
// real gmond, and reads them back from gmond's XML.
func TestGmond(t *testing.T) {
	for _, p := range []string{gmondPath, gmetricPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not found (install Debian's ganglia-monitor to run this test): %v", p, err)
		}
	}
	dir := tempDir(t)
	udpPort, tcpPort := freeUDPPort(t), freeTCPPort(t)
	conf := filepath.Join(dir, "gmond.conf")
	if err := os.WriteFile(conf, []byte(gmondtest.Config(udpPort, tcpPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	xmlAddr := startGmond(t, conf, tcpPort)

	d := startTcpeek(t, "web-1.example:RX@*:80")
	d.update(func(s *stats.Snapshot) {
		s.Filters[0].Success = stats.Success{Total: 20, DupSYN: 1, DupSYNACK: 2}
		s.Filters[0].Failure = stats.Failure{Total: 18, Timeout: 3, Reject: 4, Unreach: 5, Abort: 6}
		s.Filters[1].Failure = stats.Failure{Total: 7, Reject: 7}
		s.Filters[2].Success = stats.Success{Total: 100, DupSYN: 11}
		s.Filters[2].Failure = stats.Failure{Total: 12, Abort: 12}
	})
	names := []string{"RX", "TX", "web-1.example"}

	// gmetric reads gmond's configuration from --gmetric-conf.
	if code, stdout, stderr := tcpeekstat("-g", "--gmetric-path", gmetricPath, "--gmetric-conf", conf, "-U", d.path); code != 0 {
		t.Fatalf("tcpeekstat -g: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	waitMetrics(t, xmlAddr, names, [][8]uint64{{20, 1, 2, 18, 3, 4, 5, 6}, {0, 0, 0, 7, 0, 7, 0, 0}, {100, 11, 0, 12, 0, 0, 0, 12}})

	// The next -g sends the changes since this one.
	d.update(func(s *stats.Snapshot) {
		s.Filters[0].Failure.Reject += 40
		s.Filters[0].Failure.Total += 40
		s.Filters[1].Success.DupSYNACK += 3
		s.Filters[1].Success.Total += 3
	})
	if code, stdout, stderr := tcpeekstat("-g", "--gmetric-path", gmetricPath, "--gmetric-conf="+conf, "-U", d.path); code != 0 {
		t.Fatalf("second tcpeekstat -g: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	waitMetrics(t, xmlAddr, names, [][8]uint64{{0, 0, 0, 40, 0, 40, 0, 0}, {3, 0, 3, 0, 0, 0, 0, 0}, {}})
}

// startGmond runs gmond in the foreground until the test ends and returns
// the address of its XML port once it accepts connections.
func startGmond(t *testing.T, conf string, tcpPort int) string {
	t.Helper()
	var out lockedBuffer
	cmd := exec.Command(gmondPath, "-f", "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting gmond: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("gmond's output:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("gmond exited at start (%v):\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gmond does not accept on %s after 10 s: %v\n%s", addr, err, out.String())
		}
	}
}

// gmondMetrics reads gmond's XML and returns "VAL TYPE UNITS" by metric name.
func gmondMetrics(addr string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	return gmondtest.Metrics(b)
}

// waitMetrics polls gmond until it reports every metric of the filters
// names with values (in the order of gmetricItems), or fails after 15 s.
func waitMetrics(t *testing.T, addr string, names []string, values [][8]uint64) {
	t.Helper()
	want := make(map[string]string)
	for i, n := range names {
		for j, it := range gmetricItems {
			want["tcpeek_"+n+"_"+it.section+"_"+it.item] = u(values[i][j]) + " uint32 sessions"
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := gmondMetrics(addr)
		diff := gmondtest.Diff(got, want)
		if err != nil {
			diff = append(diff, err.Error())
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gmond's metrics after 15 s:\n%s", strings.Join(diff, "\n"))
		}
		time.Sleep(50 * time.Millisecond) // gmond's next XML dump
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer is a bytes.Buffer safe for the writes of a child's output
// copier and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
