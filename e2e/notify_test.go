//go:build linux

package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveNotify runs tcpeek as systemd runs a Type=notify service, with
// $NOTIFY_SOCKET naming a datagram socket: it must send READY=1 once its
// stats socket answers, and STOPPING=1 on SIGTERM.
func TestLiveNotify(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	dir := shortTempDir(t)
	notify := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock := filepath.Join(dir, "tcpeek.sock")
	cmd := l.tcpeekCmd("", "-U", sock, "-q")
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+notify)
	p := l.start("tcpeek with NOTIFY_SOCKET", cmd, false)

	read := func() string {
		t.Helper()
		ln.SetReadDeadline(time.Now().Add(startTimeout))
		b := make([]byte, 256)
		n, err := ln.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v (tcpeek exited: %v, stderr %q)", err, p.exited(), p.stderr.String())
		}
		return string(b[:n])
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if _, err := query(sock, "STATS"); err != nil {
		t.Fatalf("READY=1 was sent, but STATS is not answered: %v", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.HasPrefix(got, "STOPPING=1") {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	if code := waitExit(t, p); code != 0 {
		t.Errorf("exit status %d", code)
	}
}
