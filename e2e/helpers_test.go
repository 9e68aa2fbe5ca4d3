//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables that turn the test binary into a helper process
// (TestHelperProcess) instead of a test run.
const (
	helperEnv = "TCPEEK_E2E_HELPER" // the helper's job: listen, dial or sysctl
	argsEnv   = "TCPEEK_E2E_ARGS"   // its arguments, separated by spaces
)

// Outcomes of a dial, as the dial helper reports them on its stdout.
const (
	outConnected   = "connected"   // the handshake completed
	outRefused     = "refused"     // ECONNREFUSED: an RST, or an ICMP port unreachable
	outUnreachable = "unreachable" // EHOSTUNREACH or ENETUNREACH
	outTimeout     = "timeout"     // ETIMEDOUT: the kernel gave up retrying its SYN
	outDeadline    = "deadline"    // the dialer's own timeout expired first
	outAbandoned   = "abandoned"   // the SYN was sent and the socket closed at once
)

// TestHelperProcess is not a test. It is what the test binary does when
// TestRealStacksCapture re-executes it inside a network namespace, with
// TCPEEK_E2E_HELPER saying which job to do:
//
//   - listen ADDR:PORT...: listen on every address, print "ready" once all
//     of them listen, then accept and close connections until stdin is
//     closed (or the process is killed);
//   - dial LOCAL REMOTE TIMEOUT: connect from LOCAL to REMOTE with the
//     kernel's TCP stack and print the outcome (connected, refused,
//     unreachable, timeout, deadline, or "error: ..."); with a TIMEOUT of
//     0s, send the SYN and close the socket at once ("abandoned");
//   - refused REMOTE N: connect N times, one after the other, to REMOTE,
//     where nothing listens, and fail unless each is refused;
//   - sysctl KEY=VALUE...: set per-namespace sysctls by writing /proc/sys,
//     which shows the namespace of the process that opens it; a KEY that
//     starts with ? is skipped where the kernel does not have it;
//   - fetch ADDR:PORT: connect to a TCP server (gmond's XML port in a
//     namespace) and copy what it sends to stdout until it closes;
//   - get URL: an HTTP GET (tcpeek's /metrics in a namespace), the body to
//     stdout.
//
// Without the variable it returns at once.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	args := strings.Fields(os.Getenv(argsEnv))
	var err error
	switch mode {
	case "listen":
		err = helperListen(args, false)
	case "listenread":
		err = helperListen(args, true)
	case "dial":
		err = helperDial(args)
	case "refused":
		err = helperRefused(args)
	case "sysctl":
		err = helperSysctl(args)
	case "fetch":
		err = helperFetch(args)
	case "get":
		err = helperGet(args)
	case "dataack":
		err = helperDataAck(args)
	case "unixproxy":
		err = helperUnixProxy(args)
	default:
		err = fmt.Errorf("unknown job %q", mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// helperListen listens on every address of addrs and accepts and closes
// connections until stdin reaches its end; with read, it reads each
// connection until its end before closing it.
func helperListen(addrs []string, read bool) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if read {
					go func() {
						io.Copy(io.Discard, c)
						c.Close()
					}()
					continue
				}
				c.Close()
			}
		}()
	}
	fmt.Println("ready")
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// helperDial connects from args[0] to args[1] with the timeout args[2] and
// prints the outcome.
func helperDial(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want LOCAL REMOTE TIMEOUT, got %q", args)
	}
	local, err1 := netip.ParseAddrPort(args[0])
	remote, err2 := netip.ParseAddrPort(args[1])
	timeout, err3 := time.ParseDuration(args[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	if timeout == 0 {
		out, err := abandon(local, remote)
		if err != nil {
			return err
		}
		fmt.Println(out)
		return nil
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: timeout}
	c, err := d.Dial("tcp", remote.String())
	if err == nil {
		c.Close()
	}
	fmt.Println(dialOutcome(err))
	return nil
}

// abandon binds a non-blocking socket to local, connects it to remote, which
// sends the SYN, and closes it at once, which sends nothing in SYN-SENT. It
// returns "abandoned" if connect was in progress, else the outcome. Unlike a
// dialer's timeout, nothing here waits: the socket is gone well before any
// retransmission, however loaded the machine.
func abandon(local, remote netip.AddrPort) (string, error) {
	sockaddr := func(a netip.AddrPort) syscall.Sockaddr {
		if a.Addr().Is4() {
			return &syscall.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
		}
		return &syscall.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
	}
	family := syscall.AF_INET6
	if local.Addr().Is4() {
		family = syscall.AF_INET
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, sockaddr(local)); err != nil {
		return "", err
	}
	err = syscall.Connect(fd, sockaddr(remote))
	if err == syscall.EINPROGRESS {
		return outAbandoned, nil
	}
	return dialOutcome(err), nil
}

// dialOutcome names what a dial's error says about the handshake.
func dialOutcome(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return outConnected
	case errors.Is(err, syscall.ECONNREFUSED):
		return outRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return outUnreachable
	case errors.Is(err, syscall.ETIMEDOUT):
		return outTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return outDeadline
	}
	return "error: " + err.Error()
}

// helperRefused connects args[1] times to args[0], a port nobody listens
// on, one connection after the other, and fails unless each is refused.
func helperRefused(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want REMOTE N, got %q", args)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("connection %d to %s was accepted", i, args[0])
		}
		if dialOutcome(err) != outRefused {
			return fmt.Errorf("connection %d to %s: %v", i, args[0], err)
		}
	}
	return nil
}

// helperSysctl sets each KEY=VALUE of args in /proc/sys, skipping an
// optional ?KEY that the kernel does not have.
func helperSysctl(args []string) error {
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		k, optional := strings.CutPrefix(k, "?")
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		err := os.WriteFile(path, []byte(v), 0o644)
		if optional && errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// helperFetch connects to the TCP server args[0] and copies what it sends
// to stdout until it closes the connection, within 5 s.
func helperFetch(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want ADDR:PORT, got %q", args)
	}
	c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(os.Stdout, c)
	return err
}

// helperDataAck connects from args[0] to args[1] so that the handshake
// completes on a data segment rather than a pure ACK, then ends the
// connection as args[2] says, and prints the outcome and connect()'s own
// time:
//
//   - rst: TCP_DEFER_ACCEPT on the connecting socket holds the ACK back
//     until data is written; 100 bytes, then an RST (SO_LINGER 0), as
//     health checkers and load balancers do;
//   - close: likewise, then waits 50 ms and closes normally;
//   - tfo: TCP Fast Open data in the SYN (net.ipv4.tcp_fastopen=5 in the
//     client's namespace) to a server without Fast Open, which
//     acknowledges the SYN only: the client resends the data with its ACK,
//     waits to be established (TCP_INFO), then resets.
//
// The output is "connected CONNECT_MS LOCALPORT" when the handshake
// completed as the client's kernel sees it.
func helperDataAck(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want LOCAL REMOTE MODE, got %q", args)
	}
	local, err1 := netip.ParseAddrPort(args[0])
	remote, err2 := netip.ParseAddrPort(args[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(local.Port()), Addr: local.Addr().As4()}); err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: int(remote.Port()), Addr: remote.Addr().As4()}
	data := bytes.Repeat([]byte("x"), 100)
	start := time.Now()
	switch args[2] {
	case "rst", "close":
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1); err != nil {
			return err
		}
		if err := syscall.Connect(fd, sa); err != nil {
			return err
		}
		took := time.Since(start)
		if _, err := syscall.Write(fd, data); err != nil {
			return err
		}
		fmt.Printf("%s %.3f %d\n", outConnected, float64(took)/1e6, local.Port())
	case "tfo":
		const msgFastOpen = 0x20000000
		if err := syscall.Sendto(fd, data, msgFastOpen, sa); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			if err != nil {
				return err
			}
			if info.State == unix.BPF_TCP_ESTABLISHED {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not established after 5 s: TCP state %d", info.State)
			}
			time.Sleep(time.Millisecond)
		}
		fmt.Printf("%s %.3f %d\n", outConnected, float64(time.Since(start))/1e6, local.Port())
	default:
		return fmt.Errorf("unknown mode %q", args[2])
	}
	if args[2] == "close" {
		time.Sleep(50 * time.Millisecond) // the classic filter's handshake would end here
		return nil
	}
	// Reset: SO_LINGER with a zero timeout makes close send an RST.
	return syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
}

// helperUnixProxy listens on the UNIX socket args[0] and forwards every
// connection to the TCP address args[1], until stdin reaches its end: a
// way into the namespace for a client outside it (UNIX socket paths are not
// in network namespaces). It prints "ready" once it listens.
func helperUnixProxy(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want PATH ADDR, got %q", args)
	}
	ln, err := net.Listen("unix", args[0])
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c, func() (net.Conn, error) { return net.Dial("tcp", args[1]) })
		}
	}()
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// proxy copies between c and a connection dial makes, both ways, until
// either ends.
func proxy(c net.Conn, dial func() (net.Conn, error)) {
	defer c.Close()
	d, err := dial()
	if err != nil {
		return
	}
	defer d.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(d, c); done <- struct{}{} }()
	go func() { io.Copy(c, d); done <- struct{}{} }()
	<-done
}

// helperGet gets args[0] over HTTP and copies the body to stdout.
func helperGet(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want a URL, got %q", args)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// syncBuffer is a bytes.Buffer that a process may write while the test reads
// it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a process the test started in one of its namespaces. Every one
// is killed when the test ends, whatever its result.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr syncBuffer
	done           chan struct{} // closed once the process has exited
	err            error         // what Wait returned, once done is closed
}

// exited tells whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitOutput waits until the process has written s on stdout or stderr, and
// fails the test if it exits or the timeout passes first.
func (p *process) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	has := func() bool { return strings.Contains(p.stdout.String()+p.stderr.String(), s) }
	if !waitFor(timeout, func() bool { return has() || p.exited() }) || !has() {
		t.Fatalf("%s did not print %q within %v (exited: %v, err: %v)\nstdout:\n%s\nstderr:\n%s",
			p.name, s, timeout, p.exited(), p.err, p.stdout.String(), p.stderr.String())
	}
}

// waitFor polls cond until it holds or the timeout passes, and tells whether
// it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lab is a pair of network namespaces joined by a veth pair: A (veth-a,
// 10.99.0.1/24, fd99::1/64) is the monitored host, B (veth-b, 10.99.0.2/24,
// fd99::2/64) its peer. Traffic never leaves them.
type lab struct {
	t     *testing.T
	a, b  string // the namespaces' names
	exe   string // the test binary, run again as helper processes
	mu    sync.Mutex
	procs []*process
}

// labSeq tells apart the labs of one test process (go test -count=N).
var labSeq atomic.Int64

// Addresses of the lab.
var (
	addrA4 = netip.MustParseAddr("10.99.0.1")
	addrB4 = netip.MustParseAddr("10.99.0.2")
	addrA6 = netip.MustParseAddr("fd99::1")
	addrB6 = netip.MustParseAddr("fd99::2")
)

// requireLab skips the test unless it runs as root with the tools a lab
// needs.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates network namespaces, runs tcpdump and sets iptables rules")
	}
	var missing []string
	for _, tool := range []string{"ip", "tcpdump", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("needs %s on PATH (Debian packages iproute2, tcpdump, iptables)", strings.Join(missing, ", "))
	}
}

// newLab creates the namespaces and their link. Their removal, and the
// killing of every process in them, is registered with t.Cleanup before
// anything is created, so it happens whatever the test's result.
func newLab(t *testing.T) *lab {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Not /proc/self/exe: ip netns exec would resolve that to ip itself.
	n := labSeq.Add(1)
	l := &lab{
		t:   t,
		a:   fmt.Sprintf("tpk-a-%d-%d", os.Getpid(), n),
		b:   fmt.Sprintf("tpk-b-%d-%d", os.Getpid(), n),
		exe: exe,
	}
	removeStaleLabs(t)
	t.Cleanup(l.cleanup)
	for _, ns := range []string{l.a, l.b} {
		out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
		if err != nil {
			if bytes.Contains(out, []byte("Operation not permitted")) {
				t.Skipf("cannot create network namespaces here: %s", bytes.TrimSpace(out))
			}
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		// No duplicate address detection and no router solicitations: the
		// addresses are usable at once and the capture holds only the
		// test's traffic (the defaults apply to the veth made below).
		// One SYN retransmission (tcp_syn_retries also governs IPv6) with
		// exponential backoff: a dial to a port that drops SYNs sends a
		// SYN, retransmits it 1 s later and fails 2 s after that. Linux
		// 6.7 and later would by default (tcp_syn_linear_timeouts=4)
		// retransmit every second until those 3 s run out: 3 SYNs.
		l.sysctl(ns,
			"net.ipv6.conf.all.accept_dad=0",
			"net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.default.router_solicitations=0",
			"net.ipv6.conf.default.accept_ra=0",
			"net.ipv4.tcp_syn_retries=1",
			"?net.ipv4.tcp_syn_linear_timeouts=0",
		)
	}
	l.ip("-n", l.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", l.b)
	for _, c := range []struct {
		ns, dev string
		v4, v6  netip.Addr
	}{{l.a, "veth-a", addrA4, addrA6}, {l.b, "veth-b", addrB4, addrB6}} {
		l.ip("-n", c.ns, "addr", "add", c.v4.String()+"/24", "dev", c.dev)
		l.ip("-n", c.ns, "addr", "add", c.v6.String()+"/64", "dev", c.dev, "nodad")
		l.ip("-n", c.ns, "link", "set", "lo", "up")
		l.ip("-n", c.ns, "link", "set", c.dev, "up")
	}
	// The IPv6 address is usable (not tentative) at once thanks to nodad;
	// wait until both ends of the link are up, which veth reports once the
	// peer is up too.
	for _, c := range []struct{ ns, dev string }{{l.a, "veth-a"}, {l.b, "veth-b"}} {
		if !waitFor(10*time.Second, func() bool {
			out, _ := exec.Command("ip", "-n", c.ns, "-o", "link", "show", c.dev).Output()
			return bytes.Contains(out, []byte("state UP"))
		}) {
			t.Fatalf("%s in %s did not come up", c.dev, c.ns)
		}
	}
	return l
}

// cleanup kills every process the test started and every process left in
// the namespaces, then deletes the namespaces.
func (l *lab) cleanup() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		if p.cmd.Process == nil {
			continue // never started
		}
		if !p.exited() {
			p.cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			l.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
		}
	}
	for _, ns := range []string{l.a, l.b} {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			continue // never created
		}
		if err := deleteNetns(ns); err != nil {
			l.t.Error(err)
		}
	}
}

// netnsDir is where ip netns keeps the namespaces it names.
const netnsDir = "/var/run/netns"

// deleteNetns kills every process in the namespace ns and deletes it.
func deleteNetns(ns string) error {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", ns, err, out)
	}
	return nil
}

// labName matches the name of a lab's namespace and captures the PID of the
// test process that made it.
var labName = regexp.MustCompile(`^tpk-[ab]-([0-9]+)-[0-9]+$`)

// removeStaleLabs deletes the namespaces of labs whose test process no
// longer exists: one killed before its cleanup could run (SIGKILL, or the
// panic of go test -timeout).
func removeStaleLabs(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		m := labName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if err := deleteNetns(e.Name()); err != nil {
			t.Log(err)
			continue
		}
		t.Logf("deleted namespace %s, left behind by process %d", e.Name(), pid)
	}
}

// ip runs the ip command and fails the test if it fails.
func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// run runs a command in namespace ns and fails the test if it fails.
func (l *lab) run(ns string, args ...string) {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// iptables appends the rule spec (e.g. "INPUT -p tcp --dport 80 -j DROP")
// in namespace ns, for IPv6 if v6.
func (l *lab) iptables(ns string, v6 bool, spec string) {
	l.t.Helper()
	tool := "iptables"
	if v6 {
		tool = "ip6tables"
	}
	l.run(ns, append([]string{tool, "-w", "-A"}, strings.Fields(spec)...)...)
}

// helperCmd returns the command that runs the test binary as a helper doing
// job with args in namespace ns.
func (l *lab) helperCmd(ns, job string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", "netns", "exec", ns, l.exe, "-test.run=^TestHelperProcess$")
	// Under -race, a process otherwise sleeps 1 s at exit.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), helperEnv+"="+job, argsEnv+"="+strings.Join(args, " "), "GORACE="+gorace)
	return cmd
}

// sysctl sets sysctls in namespace ns.
func (l *lab) sysctl(ns string, kvs ...string) {
	l.t.Helper()
	if out, err := l.helperCmd(ns, "sysctl", kvs...).CombinedOutput(); err != nil {
		l.t.Fatalf("sysctl in %s: %v: %s", ns, err, out)
	}
}

// start starts cmd as a process that the cleanup kills. So that not even a
// killed test leaves it behind, it gets SIGKILL when the test process dies
// (unless cmd sets its own SysProcAttr, or the process changes its user,
// which cancels that), and one started with a stdin pipe (keepStdin) sees
// its end; what is left anyway dies with the namespaces, which the next run
// deletes (removeStaleLabs). If it cannot start, the process is returned as
// exited, with the error. start may be called from any goroutine.
func (l *lab) start(name string, cmd *exec.Cmd, keepStdin bool) *process {
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.stderr
	}
	var err error
	if keepStdin {
		p.stdin, err = cmd.StdinPipe()
	}
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		p.err = err
		close(p.done)
		return p
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// listen starts a listener helper in namespace ns on addrs and waits until
// it listens.
func (l *lab) listen(ns string, addrs []netip.AddrPort) {
	l.t.Helper()
	var args []string
	for _, a := range addrs {
		args = append(args, a.String())
	}
	p := l.start("listener in "+ns, l.helperCmd(ns, "listen", args...), true)
	p.waitOutput(l.t, "ready\n", 10*time.Second)
}

// startDial starts a dial helper in namespace ns that connects from local to
// remote with the given timeout.
func (l *lab) startDial(ns string, local, remote netip.AddrPort, timeout time.Duration) *process {
	return l.start(fmt.Sprintf("dial %v -> %v", local, remote),
		l.helperCmd(ns, "dial", local.String(), remote.String(), timeout.String()), false)
}

// dial connects from local to remote in namespace ns, with the kernel's TCP
// stack, and returns the outcome. It may be called from any goroutine.
func (l *lab) dial(ns string, local, remote netip.AddrPort, timeout time.Duration) string {
	p := l.startDial(ns, local, remote, timeout)
	select {
	case <-p.done:
	case <-time.After(timeout + 10*time.Second):
		return "error: the dial helper did not exit"
	}
	if p.err != nil {
		return fmt.Sprintf("error: %v: %s", p.err, p.stderr.String())
	}
	return strings.TrimSpace(p.stdout.String())
}

// capture is a tcpdump writing what veth-a in namespace A sees to a file.
type capture struct {
	l    *lab
	path string
	p    *process
}

// captureFilter is what startCapture captures: the handshakes' segments and
// the ICMP errors (ICMPv6 neighbour discovery too).
const captureFilter = "tcp or icmp or icmp6"

// startCapture starts tcpdump on veth-a and waits until it captures.
func (l *lab) startCapture(path string) *capture {
	l.t.Helper()
	return l.startCaptureFilter(path, captureFilter)
}

// startCaptureFilter starts tcpdump on veth-a with a capture filter and
// waits until it captures.
func (l *lab) startCaptureFilter(path, filter string) *capture {
	l.t.Helper()
	// -Z root: Debian's tcpdump otherwise switches to the user tcpdump,
	// which cannot write in the test's temporary directory. -U writes
	// every packet out at once, and --immediate-mode takes it from the
	// kernel at once (not when a block of the ring is full or a second
	// old, which a SIGINT right after the traffic would lose), so the file
	// can be read while it grows.
	cmd := exec.Command("ip", "netns", "exec", l.a, "tcpdump", "-i", "veth-a",
		"-w", path, "-U", "--immediate-mode", "-s", "200", "-Z", "root", filter)
	c := &capture{l: l, path: path, p: l.start("tcpdump in "+l.a, cmd, false)}
	c.p.waitOutput(l.t, "listening on", 10*time.Second)
	return c
}

// stop stops tcpdump with SIGINT, as an operator would, and waits until it
// has exited, so that the file is complete. It fails the test if tcpdump
// lost packets.
func (c *capture) stop() {
	t := c.l.t
	t.Helper()
	c.p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump did not exit after SIGINT:\n%s", c.p.stderr.String())
	}
	if c.p.err != nil {
		t.Fatalf("tcpdump: %v:\n%s", c.p.err, c.p.stderr.String())
	}
	if !strings.Contains(c.p.stderr.String(), "\n0 packets dropped by kernel") {
		t.Fatalf("tcpdump lost packets, the counts cannot be exact:\n%s", c.p.stderr.String())
	}
}

// text returns the capture as tcpdump -nn -r prints it, for a reader.
func (c *capture) text() string {
	out, err := exec.Command("tcpdump", "-nn", "-r", c.path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(tcpdump -r: %v)", out, err)
	}
	return string(out)
}

// records returns the number of packets in the capture file.
func (c *capture) records() uint64 {
	c.l.t.Helper()
	out, err := exec.Command("tcpdump", "-nn", "-r", c.path).Output()
	if err != nil {
		c.l.t.Fatalf("tcpdump -r: %v", err)
	}
	return uint64(bytes.Count(out, []byte("\n")))
}

// count returns the number of packets in the capture file that match the
// tcpdump filter expression.
func (c *capture) count(filter string) uint64 {
	c.l.t.Helper()
	out, err := exec.Command("tcpdump", "-nn", "-r", c.path, filter).Output()
	if err != nil {
		c.l.t.Fatalf("tcpdump -r %s %q: %v", c.path, filter, err)
	}
	return uint64(bytes.Count(out, []byte("\n")))
}

// packet is one TCP segment of the capture, as tcpdump describes it.
type packet struct {
	time     time.Time
	src, dst netip.AddrPort
	flags    string // tcpdump's flags: S, S., R., ., P., F., ...
}

// packets returns the TCP segments captured so far. The file may be read
// while tcpdump writes it; a record cut short at its end is left out.
func (c *capture) packets() []packet {
	out, _ := exec.Command("tcpdump", "-nn", "-tt", "-r", c.path, "tcp").Output()
	var pkts []packet
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if p, ok := parsePacket(sc.Text()); ok {
			pkts = append(pkts, p)
		}
	}
	return pkts
}

// parsePacket parses a line of tcpdump -nn -tt on a TCP segment:
//
//	1764231234.123456 IP6 fd99::2.17204 > fd99::1.7204: Flags [S], seq 1, ...
func parsePacket(line string) (packet, bool) {
	f := strings.Fields(line)
	if len(f) < 7 || f[3] != ">" || f[5] != "Flags" {
		return packet{}, false
	}
	sec, frac, _ := strings.Cut(f[0], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	src, err3 := parseEndpoint(f[2])
	dst, err4 := parseEndpoint(strings.TrimSuffix(f[4], ":"))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return packet{}, false
	}
	return packet{
		time:  time.Unix(s, us*1000),
		src:   src,
		dst:   dst,
		flags: strings.Trim(f[6], "[],"),
	}, true
}

// parseEndpoint parses tcpdump's ADDR.PORT.
func parseEndpoint(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// waitPackets waits until the TCP segments captured so far hold what cond
// looks for, and fails the test if they do not within the timeout.
func (c *capture) waitPackets(what string, timeout time.Duration, cond func([]packet) bool) {
	c.l.t.Helper()
	if !waitFor(timeout, func() bool { return cond(c.packets()) }) {
		c.l.t.Fatalf("the capture did not show %s within %v", what, timeout)
	}
}

// tools are the programs under test, built once per test process into a
// directory that TestMain removes.
type tools struct {
	tcpeek, tcpeekstat string
}

var built struct {
	once sync.Once
	dir  string
	bins tools
	err  error
}

// TestMain runs the tests, then removes the programs they built.
func TestMain(m *testing.M) {
	code := m.Run()
	built.once.Do(func() {}) // waits for a build that a skipped test began
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildTools builds ./cmd/tcpeek and ./cmd/tcpeekstat of the module that
// holds this package, as the Makefile does (CGO_ENABLED=0), the first time
// it is called; every call returns the binaries' paths. It may be called
// from any goroutine.
func buildTools() (tools, error) {
	built.once.Do(func() {
		built.bins, built.err = buildToolsOnce()
	})
	return built.bins, built.err
}

func buildToolsOnce() (tools, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		root := os.Getenv("GOROOT")
		if root == "" {
			return tools{}, errors.New("no go command on PATH to build tcpeek with")
		}
		goCmd = filepath.Join(root, "bin", "go")
	}
	root, err := filepath.Abs("..") // go test runs in the package's directory
	if err != nil {
		return tools{}, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return tools{}, fmt.Errorf("the module root is not %s: %v", root, err)
	}
	dir, err := os.MkdirTemp("", "tcpeek-e2e-bin-")
	if err != nil {
		return tools{}, err
	}
	built.dir = dir
	cmd := exec.Command(goCmd, "build", "-o", dir+string(filepath.Separator), "./cmd/tcpeek", "./cmd/tcpeekstat")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return tools{}, fmt.Errorf("go build ./cmd/tcpeek ./cmd/tcpeekstat: %v\n%s", err, out)
	}
	return tools{tcpeek: filepath.Join(dir, "tcpeek"), tcpeekstat: filepath.Join(dir, "tcpeekstat")}, nil
}

// requireTools builds the programs under test, or fails the test.
func requireTools(t *testing.T) tools {
	t.Helper()
	bins, err := buildTools()
	if err != nil {
		t.Fatal(err)
	}
	return bins
}
