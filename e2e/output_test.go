//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/fixture"
)

// The tests of this file check that the output never decides whether
// tcpeek lives (SPEC §11): a reader that stops reading cannot delay SIGINT
// or SIGTERM by more than 2 s, one that goes away (EPIPE) leaves a live
// daemon counting, and -r ... | head ends quietly.

// stopLimit is how long after SIGTERM a daemon with a stuck reader may take
// to exit (SPEC §11).
const stopLimit = 2 * time.Second

// stuckPipe returns a pipe of one page whose read end nobody reads; both
// ends are closed when the test ends.
func stuckPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatalf("shrinking the pipe: %v", err)
	}
	return r, w
}

// refuse makes n refused connections from namespace B to A, one after the
// other.
func (l *lab) refuse(n int) {
	l.t.Helper()
	server := netip.AddrPortFrom(addrA4, 7999)
	if out, err := l.helperCmd(l.b, "refused", server.String(), strconv.Itoa(n)).CombinedOutput(); err != nil {
		l.t.Fatalf("connecting %d times to %v: %v\n%s", n, server, err, out)
	}
}

// waitRejects waits until the daemon's RX filter counts n rejects.
func (d *daemon) waitRejects(n uint64) {
	d.l.t.Helper()
	d.waitStats(fmt.Sprintf("%d rejected sessions", n), func(st liveStats) (bool, string) {
		got := st.Filters[0].Failure.Reject
		return got == n, fmt.Sprintf("RX reject %d, want %d", got, n)
	})
}

// stopWithin sends SIGTERM and fails the test unless the daemon exits 0
// within limit and removes its socket.
func (d *daemon) stopWithin(limit time.Duration) {
	d.l.t.Helper()
	t := d.l.t
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not exit within %v of SIGTERM", d.name, stopTimeout)
	}
	if took := time.Since(start); took > limit {
		t.Errorf("%s took %v to exit after SIGTERM, want at most %v", d.name, took.Round(time.Millisecond), limit)
	}
	if d.err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0", d.name, d.err)
	}
	sockGone(t, d.sock)
}

// TestLiveStopStuckReader gives a daemon an output that nobody reads, fills
// it, and stops the daemon: it must exit within 2 s, with status 0, and
// remove its socket, for session lines on stderr (text) and on stdout
// (JSON), and for the summary alone (-q).
func TestLiveStopStuckReader(t *testing.T) {
	t.Parallel()
	requireLab(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stdout bool // the stuck pipe is stdout, not stderr
		n      int
	}{
		{"text lines on stderr", nil, false, 3000},
		{"json lines on stdout", []string{"-o", "json"}, true, 3000},
		// -q: only diagnostics and the summary, which a page holds:
		// a SIGSTOPped reader that never takes them.
		{"quiet", []string{"-q", "-l", "debug"}, false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			_, w := stuckPipe(t)
			if tc.name == "quiet" {
				// Fill the page first: nothing more fits.
				w.Write(make([]byte, 4096))
			}
			sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
			cmd := l.tcpeekCmd("", append([]string{"-U", sock}, tc.args...)...)
			if tc.stdout {
				cmd.Stdout = w
			} else {
				cmd.Stderr = w
			}
			d := l.startDaemonCmd(sock, cmd)
			l.refuse(tc.n)
			d.waitRejects(uint64(tc.n))
			d.stopWithin(stopLimit)
		})
	}
}

// TestLiveReaderGone closes the read end of the daemon's stderr after two
// lines, as `tcpeek -i IF 2>&1 | head -2` does: the daemon must not die of
// SIGPIPE, must keep counting (the socket answers with every session), and
// must still exit 0 on SIGTERM and remove its socket.
func TestLiveReaderGone(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	cmd := l.tcpeekCmd("", "-U", sock)
	cmd.Stderr = w
	d := l.startDaemonCmd(sock, cmd)
	w.Close() // the daemon holds the write end

	got := make(chan error, 1)
	go func() {
		br := bufio.NewReader(r)
		for i := 0; i < 2; i++ {
			if _, err := br.ReadString('\n'); err != nil {
				got <- err
				return
			}
		}
		got <- r.Close() // head -2 exits
	}()
	l.refuse(5)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading two lines of stderr: %v", err)
		}
	case <-time.After(countTimeout):
		t.Fatal("no two lines on stderr")
	}
	l.refuse(500)
	d.waitRejects(505)
	if d.exited() {
		t.Fatalf("the daemon exited after its reader went away: %v", d.err)
	}
	d.stopWithin(stopLimit)
}

// TestOfflineHead reads a capture with more sessions than a pipe holds and
// closes the output after one line, as `tcpeek -r F -o json | head -1` and
// `tcpeek -r F 2>&1 | head -1` do: tcpeek must end quietly (status 0, no
// error message, not killed by SIGPIPE) and at once, without reading the
// rest of the capture.
func TestOfflineHead(t *testing.T) {
	t.Parallel()
	bins := requireTools(t)
	path := filepath.Join(t.TempDir(), "refused.pcap")
	if err := writeRefused(path, 50000); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		json bool
	}{
		{"json on stdout", []string{"-o", "json"}, true},
		{"text on stderr", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bins.tcpeek, append([]string{"-r", path, "--local-net", "192.0.2.0/24"}, tc.args...)...)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			var errOut syncBuffer
			if tc.json {
				cmd.Stdout, cmd.Stderr = w, &errOut
			} else {
				cmd.Stdout, cmd.Stderr = nil, w
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			line, err := bufio.NewReader(r).ReadString('\n')
			r.Close()
			if err != nil {
				t.Fatalf("reading the first line: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(countTimeout):
				cmd.Process.Kill()
				t.Fatal("tcpeek went on after its reader went away")
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					t.Fatalf("tcpeek was killed by %v", ws.Signal())
				}
				t.Fatalf("tcpeek exited %d, want 0 (stderr %q)", ee.ExitCode(), errOut.String())
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.json && !strings.HasPrefix(line, `{"ts":`) {
				t.Errorf("first line %q, want a session", line)
			}
			if s := errOut.String(); strings.Contains(s, "error") || strings.Contains(s, "broken pipe") {
				t.Errorf("stderr %q, want nothing but the notice", s)
			}
		})
	}
}

// writeRefused writes a capture of n refused connection attempts (SYN,
// RST+ACK) to path.
func writeRefused(path string, n int) error {
	start := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	server := netip.MustParseAddrPort("192.0.2.1:80")
	var pkts []fixture.Packet
	for i := range n {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)}), uint16(10000+i%50000))
		at := start.Add(time.Duration(i) * time.Millisecond)
		for j, s := range []fixture.Seg{
			{Src: cli, Dst: server, Flags: "S", Seq: uint32(i)},
			{Src: server, Dst: cli, Flags: "RA", Ack: uint32(i) + 1},
		} {
			b, err := s.Frame()
			if err != nil {
				return err
			}
			pkts = append(pkts, fixture.Packet{Time: at.Add(time.Duration(j) * time.Microsecond), Data: b})
		}
	}
	return fixture.WritePcap(path, pkts, false)
}
