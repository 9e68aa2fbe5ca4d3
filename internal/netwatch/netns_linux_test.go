package netwatch

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests run watchers in a network namespace of their own and change
// its interfaces and addresses with ip(8), as an operator would.

// netnsDir is where ip netns keeps the namespaces it names.
const netnsDir = "/var/run/netns"

// stepTimeout bounds the wait for the kernel's notifications of one step;
// they take milliseconds, the bound is for a loaded machine.
const stepTimeout = 10 * time.Second

var nsSeq atomic.Int32

// record makes TestRecordKernelFixtures record the fixtures again.
var record = flag.Bool("record", false, "record testdata/kernel/*.hex from the kernel again (root, ip)")

// at returns when the i-th State was handed out.
func (r *recorder) at(i int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.times[i]
}

// requireNetns skips the test unless it runs as root with ip(8).
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates a network namespace and interfaces in it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip on PATH (Debian package iproute2)")
	}
}

// nsName matches the names of the namespaces these tests make, with the
// PID of the test process that made them.
var nsName = regexp.MustCompile(`^tpk-nw-([0-9]+)-[0-9]+$`)

// newNetns creates a network namespace with lo up. Its deletion is
// registered with t.Cleanup before it is created, so it goes whatever the
// test's result. Namespaces left by a killed test process are deleted.
func newNetns(t *testing.T) string {
	t.Helper()
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if m := nsName.FindStringSubmatch(e.Name()); m != nil {
			if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
				if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
					t.Logf("deleting stale namespace %s: %v: %s", e.Name(), err, out)
				}
			}
		}
	}
	ns := fmt.Sprintf("tpk-nw-%d-%d", os.Getpid(), nsSeq.Add(1))
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			return // never created
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("Operation not permitted")) {
			t.Skipf("cannot create network namespaces here: %s", bytes.TrimSpace(out))
		}
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	ipIn(t, ns, "link", "set", "lo", "up")
	return ns
}

// ipIn runs ip -n ns args and fails the test if it fails.
func ipIn(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// ifindex returns the index of interface name in ns.
func ifindex(t *testing.T, ns, name string) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "link", "show", "dev", name).Output()
	if err != nil {
		t.Fatalf("ip -n %s link show dev %s: %v", ns, name, err)
	}
	var links []struct {
		Index int `json:"ifindex"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show dev %s: %v: %s", name, err, out)
	}
	return links[0].Index
}

// inNetns runs fn on an OS thread that has entered the namespace ns. The
// thread is never given back to the runtime (the goroutine ends locked to
// it), so no other goroutine runs in the namespace by accident. Sockets fn
// opens stay in the namespace.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join(netnsDir, ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// openIn opens a Watcher in namespace ns, with the -i values given, closed
// at the end of the test, and starts it with a recorder.
func openIn(t *testing.T, ns string, values ...string) (*Watcher, *recorder) {
	t.Helper()
	sel, err := ParseSelector(values)
	if err != nil {
		t.Fatal(err)
	}
	var w *Watcher
	if err := inNetns(ns, func() (err error) { w, err = Open(sel); return err }); err != nil {
		t.Fatalf("Open(%v) in %s: %v", sel, ns, err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	r := newRecorder()
	w.Start(r.add)
	return w, r
}

// follower waits for the States of one watcher, step after step.
type follower struct {
	t    *testing.T
	name string
	r    *recorder
	next int // the first State of the next step
}

// expect waits until a State satisfies ok and the changes handed out
// since the previous step include want, in that order (other changes may
// come between them: the kernel adds IPv6 link-local addresses on its
// own), and none of the changes has a forbidden part. It returns the
// State and the index at which it was handed out.
func (f *follower) expect(what string, ok func(State) bool, want []string, forbid ...string) (State, int) {
	f.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	timer := time.AfterFunc(stepTimeout, f.r.cond.Broadcast)
	defer timer.Stop()
	r := f.r
	r.mu.Lock()
	defer r.mu.Unlock()
	var msgs []string
	for i := f.next; ; {
		for ; i < len(r.states); i++ {
			msgs = append(msgs, changeMsgs(r.states[i].Changes)...)
			if ok(r.states[i]) && subsequence(msgs, want) {
				for _, m := range msgs {
					for _, bad := range forbid {
						if strings.Contains(m, bad) {
							f.t.Errorf("%s, %s: change %q, which should not be", f.name, what, m)
						}
					}
				}
				f.next = i + 1
				return r.states[i], i
			}
		}
		if !time.Now().Before(deadline) {
			var last State
			if len(r.states) > 0 {
				last = r.states[len(r.states)-1]
			}
			f.t.Fatalf("%s, %s: not within %v\nchanges:\n%s\nwanted:\n%s\nlast state: %+v",
				f.name, what, stepTimeout, strings.Join(msgs, "\n"), strings.Join(want, "\n"), last)
		}
		r.cond.Wait()
	}
}

// subsequence reports whether want appears in msgs in order.
func subsequence(msgs, want []string) bool {
	i := 0
	for _, m := range msgs {
		if i < len(want) && m == want[i] {
			i++
		}
	}
	return i == len(want)
}

// hasIf returns a condition: an interface with that name and index is
// selected (index 0: any index).
func hasIf(name string, index int) func(State) bool {
	return func(st State) bool {
		return slices.ContainsFunc(st.Interfaces, func(i Interface) bool { return i.Name == name && (index == 0 || i.Index == index) })
	}
}

// hasLocal returns a condition: every address of in is local, none of out.
func hasLocal(in []string, out ...string) func(State) bool {
	return func(st State) bool {
		for _, a := range in {
			if !slices.Contains(st.Local, netip.MustParseAddr(a)) {
				return false
			}
		}
		for _, a := range out {
			if slices.Contains(st.Local, netip.MustParseAddr(a)) {
				return false
			}
		}
		return true
	}
}

// all returns a condition that holds when every one of conds does.
func all(conds ...func(State) bool) func(State) bool {
	return func(st State) bool {
		for _, c := range conds {
			if !c(st) {
				return false
			}
		}
		return true
	}
}

// TestNetnsFollow walks through what issues 7 and 8 describe, in a
// namespace: interfaces added, renamed, deleted and recreated, addresses
// added and removed (IPv4, IPv6 tentative, point-to-point), a glob, and
// -i any, with two watchers side by side.
func TestNetnsFollow(t *testing.T) {
	requireNetns(t)
	ns := newNetns(t)
	ip := func(args ...string) { t.Helper(); ipIn(t, ns, args...) }

	_, rSel := openIn(t, ns, "v0", "veth*")
	wAny, rAny := openIn(t, ns, "any")
	sel := &follower{t: t, name: "-i v0 -i 'veth*'", r: rSel}
	anyf := &follower{t: t, name: "-i any", r: rAny}
	// A State is handed out only on a change: the initial States.
	if st := rSel.count(); st != 0 {
		t.Fatalf("%d updates before any change", st)
	}
	if st := wAny.State(); ifsText(st.Interfaces) != "lo:1" || addrsText(st.Local) != "127.0.0.1 ::1" {
		t.Fatalf("-i any at the start: %+v", st)
	}

	// An interface named by -i and one matching the glob appear.
	ip("link", "add", "v0", "type", "veth", "peer", "name", "veth0")
	v0, veth0 := ifindex(t, ns, "v0"), ifindex(t, ns, "veth0")
	// The kernel makes the peer first.
	sel.expect("veth pair added", all(hasIf("v0", v0), hasIf("veth0", veth0)), []string{
		fmt.Sprintf("interface veth0 appeared (index %d), matches veth*: captured", veth0),
		fmt.Sprintf("interface v0 appeared (index %d): capture starts", v0),
	})
	anyf.expect("veth pair added", all(hasIf("v0", v0), hasIf("veth0", veth0)), []string{
		fmt.Sprintf("interface v0 appeared (index %d)", v0),
	})

	// Addresses: how long from ip's return to the watcher's update.
	var fromStart, fromReturn []time.Duration
	for i := 1; i <= 20; i++ {
		a := fmt.Sprintf("10.0.1.%d", i)
		t0 := time.Now()
		ip("addr", "add", a+"/32", "dev", "v0")
		t1 := time.Now()
		_, at := sel.expect("address "+a+" added", hasLocal([]string{a}), []string{"address " + a + " added on v0"})
		tu := rSel.at(at)
		fromStart, fromReturn = append(fromStart, tu.Sub(t0)), append(fromReturn, tu.Sub(t1))
	}
	slices.Sort(fromStart)
	slices.Sort(fromReturn)
	t.Logf("latency of an address added, over %d additions: from ip's start median %v max %v; from its return median %v max %v "+
		"(negative: the update came before ip exited); the 2 s polling it replaces took 1 s on average, 2 s at worst (%.0fx the median from ip's start)",
		len(fromStart), fromStart[len(fromStart)/2], fromStart[len(fromStart)-1], fromReturn[len(fromReturn)/2], fromReturn[len(fromReturn)-1],
		float64(time.Second)/float64(fromStart[len(fromStart)/2]))
	anyf.expect("addresses added", hasLocal([]string{"10.0.1.20"}), []string{"address 10.0.1.20 added on v0"})

	// Point-to-point: ours is IFA_LOCAL, the peer's is not local.
	ip("addr", "add", "10.9.0.1", "peer", "10.9.0.2", "dev", "v0")
	sel.expect("point-to-point address", hasLocal([]string{"10.9.0.1"}, "10.9.0.2"), []string{"address 10.9.0.1 peer 10.9.0.2 added on v0"})

	ip("addr", "del", "10.0.1.1/32", "dev", "v0")
	sel.expect("address removed", hasLocal(nil, "10.0.1.1"), []string{"address 10.0.1.1 removed from v0"})

	// Issue 8: a rename changes nothing, and addresses added after it
	// are local at once.
	ip("link", "set", "v0", "name", "vX")
	sel.expect("rename", hasIf("vX", v0), []string{fmt.Sprintf("interface v0 (index %d) renamed vX: still captured (followed by index, as -i v0)", v0)})
	ip("addr", "add", "10.0.2.1/24", "dev", "vX")
	st, _ := sel.expect("address after the rename", hasLocal([]string{"10.0.2.1", "10.9.0.1"}), []string{"address 10.0.2.1 added on vX"})
	if len(st.Missing) != 0 {
		t.Errorf("missing %q after the rename: the name follows the interface", st.Missing)
	}

	// IPv6, with duplicate address detection that cannot finish (the
	// peer is down, so the link has no carrier): tentative, and local.
	ip("link", "set", "vX", "up")
	ip("addr", "add", "fd00::5/64", "dev", "vX")
	sel.expect("tentative IPv6 address", hasLocal([]string{"fd00::5"}), []string{"address fd00::5 added on vX"})
	if out, _ := exec.Command("ip", "-n", ns, "-6", "addr", "show", "dev", "vX").Output(); !bytes.Contains(out, []byte("tentative")) {
		t.Errorf("fd00::5 is not tentative, the test does not test what it says: %s", out)
	}
	// With a carrier, the kernel adds link-local addresses: local, without zone.
	ip("link", "set", "veth0", "up")
	ll := func(st State) bool {
		return slices.ContainsFunc(st.Local, func(a netip.Addr) bool { return a.IsLinkLocalUnicast() && a.Zone() == "" })
	}
	sel.expect("link-local address", ll, nil)

	// A bridge named v0 while the followed interface lives on as vX:
	// one name, one interface. Then vX is deleted (and its peer veth0
	// with it): the bridge takes the name's capture.
	ip("link", "add", "v0", "type", "bridge")
	br := ifindex(t, ns, "v0")
	anyf.expect("bridge added", hasIf("v0", br), []string{fmt.Sprintf("interface v0 appeared (index %d)", br)})
	ip("link", "del", "vX")
	sel.expect("followed interface deleted", all(hasIf("v0", br), hasLocal(nil, "10.0.2.1", "fd00::5")), []string{
		fmt.Sprintf("interface vX (index %d) deleted: capture paused until an interface named v0 appears, counters kept", v0),
		fmt.Sprintf("interface v0 is back (index %d): capture resumes", br),
	}, "bridge")
	anyf.expect("followed interface deleted", func(st State) bool { return !hasIf("veth0", 0)(st) && !hasIf("vX", 0)(st) }, []string{
		fmt.Sprintf("interface vX (index %d) deleted", v0),
		fmt.Sprintf("interface veth0 (index %d) deleted", veth0),
	})

	// Deleted: paused; recreated: captured again.
	ip("link", "del", "v0")
	sel.expect("deleted", func(st State) bool { return slices.Equal(st.Missing, []string{"v0"}) }, []string{
		fmt.Sprintf("interface v0 (index %d) deleted: capture paused until an interface named v0 appears, counters kept", br),
	})
	ip("link", "add", "v0", "type", "bridge")
	br2 := ifindex(t, ns, "v0")
	ip("addr", "add", "10.0.3.1/24", "dev", "v0")
	sel.expect("recreated", all(hasIf("v0", br2), hasLocal([]string{"10.0.3.1"})), []string{
		fmt.Sprintf("interface v0 is back (index %d): capture resumes", br2),
		"address 10.0.3.1 added on v0",
	})

	// Globs match interfaces that appear later, or are renamed into
	// them, and keep them through renames.
	ip("link", "add", "cali0", "type", "veth", "peer", "name", "other0")
	cali0 := ifindex(t, ns, "cali0")
	ip("link", "add", "vethA", "type", "bridge")
	vethA := ifindex(t, ns, "vethA")
	sel.expect("glob match", hasIf("vethA", vethA), []string{fmt.Sprintf("interface vethA appeared (index %d), matches veth*: captured", vethA)},
		"cali0", "other0")
	ip("link", "set", "cali0", "name", "veth9")
	sel.expect("renamed into the glob", hasIf("veth9", cali0),
		[]string{fmt.Sprintf("interface cali0 (index %d) renamed veth9, which matches veth*: captured", cali0)})
	ip("link", "set", "vethA", "name", "uplink")
	st, _ = sel.expect("renamed out of the glob", hasIf("uplink", vethA),
		[]string{fmt.Sprintf("interface vethA (index %d) renamed uplink: still captured", vethA)})
	if got := ifsText(st.Interfaces); got != fmt.Sprintf("v0:%d veth9:%d uplink:%d", br2, cali0, vethA) {
		t.Errorf("interfaces %s", got)
	}

	// -i any: every address of the host.
	ip("addr", "add", "192.0.2.7/24", "dev", "other0")
	anyf.expect("address on any interface", hasLocal([]string{"127.0.0.1", "::1", "10.0.3.1", "192.0.2.7"}),
		[]string{"address 192.0.2.7 added on other0"})
	// ...but only those of the selected interfaces otherwise: a barrier
	// change on a selected interface shows that other0's was not reported.
	ip("addr", "add", "10.0.3.2/24", "dev", "v0")
	sel.expect("barrier", hasLocal([]string{"10.0.3.2"}, "192.0.2.7", "127.0.0.1"), []string{"address 10.0.3.2 added on v0"}, "other0")
}

// TestNetnsLatency measures how long an address added takes to reach the
// watcher's caller when the test adds it itself, with an RTM_NEWADDR
// request (no ip process to start): from the request to the update.
func TestNetnsLatency(t *testing.T) {
	requireNetns(t)
	ns := newNetns(t)
	ipIn(t, ns, "link", "add", "v0", "type", "bridge")
	index := ifindex(t, ns, "v0")
	_, r := openIn(t, ns, "v0")
	f := &follower{t: t, name: "latency", r: r}
	var s *sock
	if err := inNetns(ns, func() (err error) { s, err = dial(); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 1<<16)
	var lat []time.Duration
	for i := 1; i <= 50; i++ {
		a := netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
		req := nlmsg(rtmNewAddr, nlmFRequest|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, uint32(i), 0,
			addrBody(afInet, 32, 0, int32(index), rtattr(ifaLocal, a.AsSlice()), rtattr(ifaAddress, a.AsSlice())))
		t0 := time.Now()
		if err := s.Send(req); err != nil {
			t.Fatal(err)
		}
		// The acknowledgement, among the notifications this socket gets too.
		for acked := false; !acked; {
			s.SetDeadline(time.Now().Add(stepTimeout))
			n, err := s.Receive(buf)
			if err != nil {
				t.Fatal(err)
			}
			for d := buf[:n]; len(d) > 0; {
				h, body, rest, err := nextMessage(d)
				if err != nil {
					t.Fatal(err)
				}
				d = rest
				if h.Type == nlmsgError && h.Seq == uint32(i) {
					if errno, _ := parseErrno(body); errno != 0 {
						t.Fatalf("adding %v: %v", a, syscall.Errno(errno))
					}
					acked = true
				}
			}
		}
		_, at := f.expect("address "+a.String(), hasLocal([]string{a.String()}), nil)
		lat = append(lat, r.at(at).Sub(t0))
	}
	slices.Sort(lat)
	t.Logf("latency from an RTM_NEWADDR request to the watcher's update, over %d additions: min %v median %v max %v "+
		"(the 2 s polling it replaces: 1 s on average, %.0fx the median)",
		len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1], float64(time.Second)/float64(lat[len(lat)/2]))
}

// TestNetnsDefault checks the interface picked without -i: none in a
// namespace with only lo, the first up one with an address otherwise, and
// followed by index like a name given.
func TestNetnsDefault(t *testing.T) {
	requireNetns(t)
	ns := newNetns(t)
	err := inNetns(ns, func() error { _, err := Open(Selector{}); return err })
	if err != ErrNoDefaultInterface {
		t.Fatalf("Open with only lo: %v, want ErrNoDefaultInterface", err)
	}
	ipIn(t, ns, "link", "add", "e0", "type", "veth", "peer", "name", "e1")
	ipIn(t, ns, "link", "add", "e2", "type", "bridge")
	ipIn(t, ns, "addr", "add", "10.0.0.1/24", "dev", "e0") // down
	ipIn(t, ns, "addr", "add", "10.0.0.2/24", "dev", "e2")
	ipIn(t, ns, "link", "set", "e1", "up") // up, no address
	ipIn(t, ns, "link", "set", "e2", "up")
	w, r := openIn(t, ns)
	if got := w.Selector().String(); got != "e2" {
		t.Fatalf("default interface %q, want e2", got)
	}
	if st := w.State(); ifsText(st.Interfaces) != fmt.Sprintf("e2:%d", ifindex(t, ns, "e2")) || !hasLocal([]string{"10.0.0.2"}, "10.0.0.1")(st) {
		t.Errorf("initial state %+v", st)
	}
	ipIn(t, ns, "link", "set", "e2", "name", "e3")
	f := &follower{t: t, name: "default", r: r}
	f.expect("rename", hasIf("e3", 0), []string{fmt.Sprintf("interface e2 (index %d) renamed e3: still captured (followed by index, as -i e2)", ifindex(t, ns, "e3"))})

	// Close wakes the goroutine blocked in its read, which ends quietly.
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(stepTimeout):
		t.Fatalf("Close did not return within %v", stepTimeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.states {
		for _, c := range st.Changes {
			if c.Kind == Failed || c.Kind == Resynced {
				t.Errorf("change %q: closing is no failure", c.Msg)
			}
		}
	}
}

// TestNetnsOverrun fills the socket's buffer while the caller is busy: the
// watcher reads everything again and the State is right.
func TestNetnsOverrun(t *testing.T) {
	requireNetns(t)
	ns := newNetns(t)
	ipIn(t, ns, "link", "add", "v0", "type", "bridge")
	sel, _ := ParseSelector([]string{"v0"})
	var w *Watcher
	if err := inNetns(ns, func() (err error) { w, err = Open(sel); return err }); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The smallest buffer the kernel allows, a few notifications.
	s := w.c.(*sock)
	s.rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 0)
		s.rcvbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	small := s.rcvbuf
	// The watcher is not reading yet: notifications pile up.
	var batch strings.Builder
	const n = 300
	for i := range n {
		fmt.Fprintf(&batch, "addr add 10.1.%d.%d/32 dev v0\n", i/250, i%250+1)
	}
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	r := newRecorder()
	w.Start(r.add)
	f := &follower{t: t, name: "overrun", r: r}
	st, _ := f.expect("resync", func(st State) bool { return len(st.Local) == n }, nil)
	if !slices.ContainsFunc(st.Changes, func(c Change) bool { return c.Kind == Resynced }) {
		t.Errorf("no resync in the changes: %q", changeMsgs(st.Changes))
	}
	if s.rcvbuf <= small {
		t.Errorf("receive buffer %d bytes after the overrun, %d before: not grown", s.rcvbuf, small)
	}
	t.Logf("%d addresses added with a %d-byte buffer: %d updates; buffer now %d bytes; first changes %q",
		n, small, r.count(), s.rcvbuf, changeMsgs(st.Changes)[:2])
}

// TestRecordKernelFixtures records testdata/kernel/*.hex (go test -record):
// the datagrams a subscribed socket receives while ip(8) runs each
// fixture's commands in a new namespace, and the replies to a dump.
func TestRecordKernelFixtures(t *testing.T) {
	if !*record {
		t.Skip("records the kernel fixtures with -record")
	}
	requireNetns(t)
	ns := newNetns(t)
	var s *sock
	if err := inNetns(ns, func() (err error) { s, err = dial(); return err }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 1<<16)
	// drain returns the datagrams queued now. The kernel queues the
	// notifications of a change before the system call that makes it
	// returns, so once ip has exited they are all there.
	drain := func() [][]byte {
		var out [][]byte
		for {
			var n int
			var rerr error
			if err := s.rc.Control(func(fd uintptr) {
				n, _, _, _, rerr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
			}); err != nil {
				t.Fatal(err)
			}
			if rerr == unix.EAGAIN {
				return out
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			out = append(out, slices.Clone(buf[:n]))
		}
	}
	write := func(name string, cmds []string, dgrams [][]byte) {
		var b strings.Builder
		fmt.Fprintf(&b, "# recorded by go test -record on Linux %s\n", kernelRelease())
		for _, c := range cmds {
			fmt.Fprintf(&b, "# %s\n", c)
		}
		for _, d := range dgrams {
			fmt.Fprintf(&b, "%x\n", d)
		}
		if err := os.MkdirAll(filepath.Dir(fixturePath(name, "")), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixturePath(name, ".hex"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// dump asks for every link, then every address, and returns the
	// datagrams of the replies.
	dump := func() [][]byte {
		var dgrams [][]byte
		for i, typ := range []uint16{rtmGetLink, rtmGetAddr} {
			if err := s.Send(appendRequest(nil, typ, uint32(i+1))); err != nil {
				t.Fatal(err)
			}
			for done := false; !done; {
				s.SetDeadline(time.Now().Add(stepTimeout))
				n, err := s.Receive(buf)
				if err != nil {
					t.Fatal(err)
				}
				d := slices.Clone(buf[:n])
				dgrams = append(dgrams, d)
				for len(d) > 0 {
					h, _, rest, err := nextMessage(d)
					if err != nil {
						t.Fatal(err)
					}
					done = done || h.Type == nlmsgDone
					d = rest
				}
			}
		}
		s.SetDeadline(time.Time{})
		return dgrams
	}
	drain()
	for _, fx := range []struct {
		name string
		cmds []string
	}{
		{"veth", []string{"link add v0 type veth peer name v1"}},
		{"addr4", []string{"addr add 10.0.0.5/24 dev v0", "addr add 10.8.0.2 peer 10.8.0.1 dev v0", "addr del 10.0.0.5/24 dev v0"}},
		{"addr6", []string{"link set v0 up", "addr add fd00::5/64 dev v0", "addr add fe80::5/64 dev v0 nodad", "addr del fd00::5/64 dev v0"}},
		{"bridge", []string{"link add br0 type bridge", "link set v1 master br0", "link set v1 nomaster"}},
		{"dump", nil},
		{"rename-delete", []string{"link set v1 name vX", "link del vX"}},
	} {
		if fx.name == "dump" {
			write(fx.name, []string{"RTM_GETLINK dump, then RTM_GETADDR dump, after the commands of the fixtures above"}, dump())
			continue
		}
		var cmds []string
		for _, c := range fx.cmds {
			ipIn(t, ns, strings.Fields(c)...)
			cmds = append(cmds, "ip "+c)
		}
		write(fx.name, cmds, drain())
	}
}

// kernelRelease returns uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
