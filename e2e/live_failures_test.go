//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLiveDropPrivilegesExistingDir runs tcpeek -u nobody with a socket in
// a directory that exists and belongs to root, as /var/run/tcpeek does
// after a run without -u. tcpeek never gives away a directory it did not
// create (SPEC §11): the directory stays root's; tcpeek says at start that
// nobody will not be able to remove the socket, and at exit that it could
// not; the next tcpeek replaces the stale socket.
func TestLiveDropPrivilegesExistingDir(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	dir := shortTempDir(t) // root's, 0755
	sock := filepath.Join(dir, "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "-u", "nobody")
	if _, st := statOf(t, dir); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s: owner %d:%d, want it left to 0:0", dir, st.Uid, st.Gid)
	}
	stderr := d.stop(syscall.SIGTERM)
	for _, want := range []string{"cannot remove it from " + dir + " at exit", sock + ": cannot remove it: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	d2 := l.startDaemon(sock, "-q")
	d2.stop(syscall.SIGTERM)
	sockGone(t, sock)
}

// TestLiveOutputNotRead gives tcpeek a stderr that nobody reads, a pipe of
// one page, and makes more rejected connections than its queue of session
// lines holds. The capture must not wait for the reader: STATS counts
// every session while the pipe stays full. Once the pipe is read, every
// session is either on a line or in the count of dropped lines that
// tcpeek reports, and the summary follows.
func TestLiveOutputNotRead(t *testing.T) {
	t.Parallel()
	requireLab(t)
	const n = 15000 // lines of about 120 bytes: more than the 1 MiB queue
	l := newLab(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatalf("shrinking the pipe: %v", err)
	}
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	cmd := l.tcpeekCmd("", "-U", sock)
	cmd.Stderr = w
	d := l.startDaemonCmd(sock, cmd)
	w.Close() // tcpeek holds the write end

	server := netip.AddrPortFrom(addrA4, 7999)
	if out, err := l.helperCmd(l.b, "refused", server.String(), strconv.Itoa(n)).CombinedOutput(); err != nil {
		t.Fatalf("connecting %d times to %v: %v\n%s", n, server, err, out)
	}
	d.waitStats(fmt.Sprintf("%d rejected sessions", n), func(st liveStats) (bool, string) {
		got := st.Filters[0].Failure.Reject
		return got == n, fmt.Sprintf("RX reject %d, want %d (the capture waits for the output?)", got, n)
	})

	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		read <- b
	}()
	d.stop(syscall.SIGTERM)
	var out []byte
	select {
	case out = <-read:
	case <-time.After(stopTimeout):
		t.Fatal("stderr did not reach its end")
	}
	stderr := string(out)
	lines := strings.Count(stderr, "failure (reject)")
	var dropped int
	for _, m := range regexp.MustCompile(`(\d+) session lines dropped`).FindAllStringSubmatch(stderr, -1) {
		k, _ := strconv.Atoi(m[1])
		dropped += k
	}
	if dropped == 0 || lines+dropped != n {
		t.Errorf("%d session lines and %d reported dropped, want some dropped and %d in all", lines, dropped, n)
	}
	if want := fmt.Sprintf("Connection Rejected   : %6d", n); !strings.Contains(stderr, want) {
		t.Errorf("the summary does not say %q; the end of stderr:\n%s", want, stderr[max(0, len(stderr)-2000):])
	}
}
