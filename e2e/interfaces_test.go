//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// link adds a veth pair between the lab's namespaces, aDev in A with
// address a4/24 and bDev in B with b4/24, and waits until it is up.
func (l *lab) link(aDev, bDev, a4, b4 string) {
	l.t.Helper()
	l.ip("-n", l.a, "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", l.b)
	l.ip("-n", l.a, "addr", "add", a4+"/24", "dev", aDev)
	l.ip("-n", l.b, "addr", "add", b4+"/24", "dev", bDev)
	l.ip("-n", l.a, "link", "set", aDev, "up")
	l.ip("-n", l.b, "link", "set", bDev, "up")
	l.waitUp(l.a, aDev)
}

// waitUp waits until dev in namespace ns is up with its peer.
func (l *lab) waitUp(ns, dev string) {
	l.t.Helper()
	if !waitFor(10*time.Second, func() bool {
		out, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", dev).Output()
		return bytes.Contains(out, []byte("state UP"))
	}) {
		l.t.Fatalf("%s in %s did not come up", dev, ns)
	}
}

// refuseFrom makes n refused connections from namespace ns to addr:7999,
// where nothing listens.
func (l *lab) refuseFrom(ns, addr string, n int) {
	l.t.Helper()
	server := netip.AddrPortFrom(netip.MustParseAddr(addr), 7999)
	if out, err := l.helperCmd(ns, "refused", server.String(), strconv.Itoa(n)).CombinedOutput(); err != nil {
		l.t.Fatalf("connecting %d times from %s to %v: %v\n%s", n, ns, server, err, out)
	}
}

// waitRejectsRXTX waits until the daemon's RX and TX filters count rx and
// tx rejects.
func (d *daemon) waitRejectsRXTX(rx, tx uint64) {
	d.l.t.Helper()
	d.waitStats(fmt.Sprintf("%d RX and %d TX rejects", rx, tx), func(st liveStats) (bool, string) {
		r, t := st.Filters[0].Failure.Reject, st.Filters[1].Failure.Reject
		return r == rx && t == tx, fmt.Sprintf("RX %d, TX %d rejects", r, t)
	})
}

// TestLiveInterfaceChanges changes the captured interface under a running
// daemon as hosts and operators do (SPEC §3): an address added is local for
// the next connection, one removed is no longer local, a rename changes
// nothing, and a deleted interface pauses the capture, which resumes with
// the counters kept when an interface of that name comes back.
func TestLiveInterfaceChanges(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "-l", "info")

	// An address added: the very next connection to it is served locally.
	l.ip("-n", l.a, "addr", "add", "10.99.0.11/24", "dev", "veth-a")
	l.refuseFrom(l.b, "10.99.0.11", 1)
	d.waitRejectsRXTX(1, 0)

	// Removed (and given to B): a connection from A to it goes out (TX);
	// were it still local, it would count in RX too.
	l.ip("-n", l.a, "addr", "del", "10.99.0.11/24", "dev", "veth-a")
	l.ip("-n", l.b, "addr", "add", "10.99.0.11/24", "dev", "veth-b")
	l.refuseFrom(l.a, "10.99.0.11", 1)
	d.waitRejectsRXTX(1, 1)

	// Renamed: still captured, and its new addresses are local.
	l.ip("-n", l.a, "link", "set", "veth-a", "down")
	l.ip("-n", l.a, "link", "set", "veth-a", "name", "veth-x")
	l.ip("-n", l.a, "link", "set", "veth-x", "up")
	l.waitUp(l.a, "veth-x")
	l.ip("-n", l.a, "addr", "add", "10.99.0.12/24", "dev", "veth-x")
	l.refuseFrom(l.b, "10.99.0.12", 2)
	d.waitRejectsRXTX(3, 1)

	// Deleted: the daemon goes on, counters kept.
	l.ip("-n", l.a, "link", "del", "veth-x")
	if !waitFor(countTimeout, func() bool { return strings.Contains(d.stderr.String(), "deleted") }) {
		t.Fatalf("the deletion was not logged:\n%s", d.stderr.String())
	}
	if d.exited() {
		t.Fatalf("the daemon exited when its interface was deleted: %v\n%s", d.err, d.stderr.String())
	}
	d.waitRejectsRXTX(3, 1)

	// An interface of the name given comes back: captured again.
	l.link("veth-a", "veth-b", addrA4.String(), addrB4.String())
	l.refuseFrom(l.b, addrA4.String(), 4)
	d.waitRejectsRXTX(7, 1)

	stderr := d.stop(syscall.SIGTERM)
	for _, want := range []string{"renamed veth-x", "deleted", "is back"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
}

// TestLiveSeveralInterfaces captures on several interfaces at once: named
// twice, every interface (-i any, lo included, each of its frames counted
// once), and a glob that takes interfaces created later too. A second
// link joins the lab's namespaces: veth-c (10.98.0.1) in A, veth-d in B.
func TestLiveSeveralInterfaces(t *testing.T) {
	t.Parallel()
	requireLab(t)
	for _, tc := range []struct {
		name   string
		args   []string
		lo     bool // lo is captured
		later  bool // an interface created after the start is captured
		rx, tx uint64
	}{
		{"-i twice", []string{"-i", "veth-a", "-i", "veth-c"}, false, false, 5 + 1, 0},
		{"-i any", []string{"-i", "any"}, true, true, 5 + 4 + 6 + 1, 4},
		{"-i glob", []string{"-i", "veth-*"}, false, true, 5 + 6 + 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			l.link("veth-c", "veth-d", "10.98.0.1", "10.98.0.2")
			sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
			bin := requireTools(t).tcpeek
			cmd := exec.Command("ip", append([]string{"netns", "exec", l.a, bin, "-U", sock, "-q"}, tc.args...)...)
			d := l.startDaemonCmd(sock, cmd)

			l.refuseFrom(l.b, addrA4.String(), 2)
			l.refuseFrom(l.b, "10.98.0.1", 3)
			l.refuseFrom(l.a, "127.0.0.1", 4)
			var rx, tx uint64 = 5, 0
			if tc.lo {
				rx, tx = rx+4, tx+4 // both ends local: RX and TX
			}
			d.waitRejectsRXTX(rx, tx)
			l.link("veth-e", "veth-f", "10.97.0.1", "10.97.0.2")
			l.refuseFrom(l.b, "10.97.0.1", 6)
			if tc.later {
				rx += 6
			}
			// A last one where it is always captured: once it is
			// counted, anything miscounted before it is too.
			l.refuseFrom(l.b, addrA4.String(), 1)
			rx++
			d.waitRejectsRXTX(rx, tx)
			if rx != tc.rx || tx != tc.tx {
				t.Fatalf("test table: %d, %d", rx, tx)
			}
			if st := d.stats(); st.Capture.Duplicates != 0 {
				t.Errorf("%d capture copies: a frame was seen twice", st.Capture.Duplicates)
			}
			d.stop(syscall.SIGTERM)
		})
	}
}
