//go:build linux

package capture

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/kfilter"
)

// requireLab skips the test unless it can make network namespaces.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes network namespaces and captures in them")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2)")
	}
}

// nsSeq tells apart the namespaces of one test process.
var nsSeq atomic.Int64

// newNetns makes a network namespace named after the test process, with lo
// up. Its removal is registered before it is made, so it goes whatever the
// test's result.
func newNetns(t *testing.T) string {
	t.Helper()
	removeStaleNetns(t)
	ns := fmt.Sprintf("tpk-cap-%d-%d", os.Getpid(), nsSeq.Add(1))
	t.Cleanup(func() {
		if _, err := os.Stat("/var/run/netns/" + ns); err == nil {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		}
	})
	ip(t, "netns", "add", ns)
	ip(t, "-n", ns, "link", "set", "lo", "up")
	return ns
}

// removeStaleNetns deletes the namespaces of test processes that no longer
// exist (killed before their cleanups ran).
func removeStaleNetns(t *testing.T) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		var pid, n int
		if _, err := fmt.Sscanf(e.Name(), "tpk-cap-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
				t.Logf("ip netns del %s: %v: %s", e.Name(), err, out)
			}
		}
	}
}

// ip runs the ip command and fails the test if it fails.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// veth joins namespaces a and b with a veth pair, names them na in a and
// nb in b, gives them the addresses, and waits until both are up.
func veth(t *testing.T, a, na, addrA, b, nb, addrB string) {
	t.Helper()
	ip(t, "-n", a, "link", "add", na, "type", "veth", "peer", "name", nb, "netns", b)
	for _, c := range []struct{ ns, dev, addr string }{{a, na, addrA}, {b, nb, addrB}} {
		if c.addr != "" {
			args := []string{"-n", c.ns, "addr", "add", c.addr, "dev", c.dev}
			if strings.Contains(c.addr, ":") {
				args = append(args, "nodad")
			}
			ip(t, args...)
		}
		ip(t, "-n", c.ns, "link", "set", c.dev, "up")
	}
	for _, c := range []struct{ ns, dev string }{{a, na}, {b, nb}} {
		if !waitFor(10*time.Second, func() bool {
			out, _ := exec.Command("ip", "-n", c.ns, "-o", "link", "show", c.dev).Output()
			return bytes.Contains(out, []byte("state UP"))
		}) {
			t.Fatalf("%s in %s did not come up", c.dev, c.ns)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes, and tells
// whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// inNetns runs f on a thread in the network namespace ns: the sockets f
// opens belong to ns, and work from any thread afterwards. The thread is
// never given back to other goroutines: it ends with f's goroutine.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits
		errc <- func() error {
			fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("entering %s: %w", ns, err)
			}
			return f()
		}()
	}()
	return <-errc
}

// ifindex returns the index of the interface name in namespace ns.
func ifindex(t *testing.T, ns, name string) int {
	t.Helper()
	var idx int
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
			return fmt.Errorf("interface %s in %s: %w", name, ns, err)
		}
		idx = int(ifr.Uint32())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// openFilter opens the kernel filter named ("ebpf", "classic", or "none":
// nil), or skips the test if eBPF cannot be loaded here.
func openFilter(t *testing.T, name string) Filter {
	t.Helper()
	var f kfilter.Filter
	var err error
	switch name {
	case "none":
		return nil
	case kfilter.NameEBPF:
		f, err = kfilter.NewEBPF(kfilter.Config{Timeout: time.Minute})
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("eBPF cannot be loaded here: %v", err)
		}
	case kfilter.NameClassic:
		f, err = kfilter.NewClassic()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// frameRec is a frame a test capture received, with what the decoder made
// of it.
type frameRec struct {
	link    uint32
	data    []byte
	wireLen int
	pkt     decode.Packet
	status  decode.Status
}

// recorder reads a live capture on a goroutine of its own and keeps copies
// of the frames, until stopped.
type recorder struct {
	l      *Live
	mu     sync.Mutex
	frames []frameRec
	err    error
	done   chan struct{}
	stop   atomic.Bool
}

// openCapture opens a live capture in namespace ns and starts recording it;
// it is closed when the test ends.
func openCapture(t *testing.T, ns string, cfg LiveConfig) *recorder {
	t.Helper()
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = 50 * time.Millisecond
	}
	var l *Live
	if err := inNetns(ns, func() (err error) { l, err = OpenLive(cfg); return err }); err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	r := &recorder{l: l, done: make(chan struct{})}
	go r.run()
	t.Cleanup(func() {
		r.stop.Store(true)
		<-r.done
		l.Close()
		if r.err != nil {
			t.Errorf("capture: %v", r.err)
		}
	})
	return r
}

func (r *recorder) run() {
	defer close(r.done)
	var f Frame
	var dec decode.Decoder
	for !r.stop.Load() {
		err := r.l.Next(&f)
		if err == ErrIdle {
			continue
		}
		if err != nil {
			r.err = err
			return
		}
		rec := frameRec{link: f.LinkType, data: bytes.Clone(f.Data), wireLen: f.WireLen}
		rec.status = dec.Decode(&rec.pkt, f.LinkType, rec.data, f.NoVerify)
		r.mu.Lock()
		r.frames = append(r.frames, rec)
		r.mu.Unlock()
	}
}

// tcp returns the TCP segments recorded so far that match.
func (r *recorder) tcp(match func(p *decode.Packet) bool) []frameRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []frameRec
	for _, f := range r.frames {
		if f.status == decode.OK && f.pkt.Kind == decode.KindTCP && match(&f.pkt) {
			out = append(out, f)
		}
	}
	return out
}

// port matches the segments from or to port.
func port(p uint16) func(*decode.Packet) bool {
	return func(k *decode.Packet) bool { return k.SrcPort == p || k.DstPort == p }
}

// waitSYN waits until the capture has recorded a SYN from the port, and
// fails the test if it does not within 10 s.
func (r *recorder) waitSYN(t *testing.T, what string, from uint16) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool {
		return len(r.tcp(func(p *decode.Packet) bool { return p.SrcPort == from && p.Flags == decode.SYN })) > 0
	}) {
		t.Fatalf("%s: no SYN from port %d within 10 s", what, from)
	}
}

// addrPort parses an address and port.
func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
