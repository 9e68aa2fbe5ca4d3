//go:build linux

package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLiveInterfaceGone deletes the monitored interface under a running
// tcpeek. The kernel reports it on the capture socket (POLLERR, SO_ERROR
// ENETDOWN), and the capture can never deliver anything again, even if an
// interface of that name comes back: tcpeek must say so and exit 1 (SPEC
// §1: runtime failures exit 1 with a message naming the cause; §10: a
// monitor that silently loses packets is wrong).
func TestLiveInterfaceGone(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, "-q")
	l.ip("-n", l.a, "link", "del", "veth-a")
	code := waitExit(t, d.process)
	if code != 1 || !strings.Contains(d.stderr.String(), "veth-a") {
		t.Errorf("after veth-a was deleted: exit %d, stderr:\n%s\nwant exit 1 and a message that names veth-a", code, d.stderr.String())
	}
}

// TestLiveDropPrivilegesExistingDir runs tcpeek -u nobody with a socket in
// a directory that exists and belongs to root, as /var/run/tcpeek does
// after a run without -u: SPEC §7 says the socket is removed at exit.
func TestLiveDropPrivilegesExistingDir(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock") // the directory: root's, 0755
	d := l.startDaemon(sock, "-q", "-u", "nobody")
	d.stop(syscall.SIGTERM)
	sockGone(t, sock)
}
