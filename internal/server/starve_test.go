package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/connlimit"
	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/server/servertest"
	"github.com/tcpeek/tcpeek/internal/testutil"
)

// attackEnv makes the test binary an attacker of the stats socket instead
// of a test run (see attackMain): "PATH MODE[,MODE...]".
const attackEnv = "TCPEEK_SERVER_ATTACK"

// TestMain runs the tests, or the attacker when attackEnv says so.
func TestMain(m *testing.M) {
	if spec := os.Getenv(attackEnv); spec != "" {
		if err := attackMain(spec); err != nil {
			fmt.Fprintf(os.Stderr, "attacker: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// attackMain runs the attacks of spec, "PATH MODE[,MODE...] HELD" (HELD:
// how many of the attacker's clients the server holds), until its standard
// input ends, having printed "attacking" once they began.
func attackMain(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("want PATH MODES HELD, got %q", spec)
	}
	held, err := strconv.Atoi(f[2])
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	wait, err := servertest.Attack(f[0], strings.Split(f[1], ","), held, stop)
	if err != nil {
		return err
	}
	fmt.Println("attacking")
	io.Copy(io.Discard, os.Stdin)
	close(stop)
	wait()
	return nil
}

// startAttacker runs the test binary as an attacker of the socket at path,
// as cred's user (not root) if not nil, until the test ends.
func startAttacker(t *testing.T, exe, path, modes string, cred *syscall.Credential) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	// Under -race, a process otherwise sleeps 1 s at exit.
	held := MaxClients
	if cred != nil {
		held = MaxClientsPerUID
	}
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", attackEnv, path, modes, held), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the attacker: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("attacker %s: %v", modes, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("attacker %s did not stop within 10 s", modes)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "attacking\n" {
		t.Fatalf("attacker %s: %q, %v", modes, line, err)
	}
}

// starveRequests is how many requests the well-behaved client makes under
// each attack.
const starveRequests = 300

// starveP99 is the bound on the 99th percentile of the well-behaved
// client's times: SPEC §7's 100 ms. The race detector makes each
// connection about five times as costly to the server, and the client
// then waits about as much longer behind the attackers' connections in the
// kernel's queue (a burst of 1000 takes half a second): under it, the
// bound is 1 s, no outage.
var starveP99 = map[bool]time.Duration{false: 100 * time.Millisecond, true: time.Second}[raceEnabled]

// bigTop returns a Top function whose answers are about 1 MB, more than a
// UNIX socket's buffer: a client that does not read makes the server's
// write wait.
func bigTop() func(int) *protocol.TopAnswer {
	peers := make([]protocol.TopPeer, protocol.MaxTopN)
	for i := range peers {
		peers[i] = protocol.TopPeer{Peer: fmt.Sprintf("192.0.2.%d", i%256), Port: 443, Failures: uint64(1000 - i), Reject: uint64(1000 - i), Last: "2024-05-06T07:09:00.000000000Z"}
	}
	a := &protocol.TopAnswer{Now: "2024-05-06T07:09:39.000000000Z"}
	for _, f := range testFilters {
		a.Filters = append(a.Filters, protocol.TopFilter{Name: f.Name, Direction: f.Direction, TopLists: protocol.TopLists{
			SinceStart: peers, LastMinute: peers, Services: []protocol.TopService{{Port: 443, Failures: 1000}},
		}})
	}
	return func(int) *protocol.TopAnswer { return a }
}

// goodClient asks STATS n times in a row, as a well-behaved client does,
// and returns how long each took, connection to EOF, and the failures.
func goodClient(path string, n int) (times []time.Duration, failures []string) {
	for i := range n {
		began := time.Now()
		got, err := ask(path, "STATS\n")
		times = append(times, time.Since(began))
		if err != nil || !strings.HasPrefix(got, `{"version":"1.0.0"`) {
			failures = append(failures, fmt.Sprintf("request %d after %v: %q, %v", i, time.Since(began).Round(time.Millisecond), got, err))
		}
	}
	slices.Sort(times)
	return times, failures
}

// percentile returns the p-th percentile of sorted times.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// peak samples f every few milliseconds until stop is called, which
// returns the highest value seen.
func peak(f func() int) (stop func() int) {
	var top atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			top.Store(max(top.Load(), int64(f())))
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() int {
		close(done)
		<-finished
		return int(top.Load())
	}
}

// TestStarvation attacks the socket from another process, in each way of
// SPEC §7 and in all at once, while a well-behaved client asks STATS again
// and again: it must get every answer, 99% of them within starveP99, and
// the server's file descriptors must stay bounded.
func TestStarvation(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, modes := range append(servertest.Modes, strings.Join(servertest.Modes, ",")) {
		t.Run(modes, func(t *testing.T) {
			cfg := testConfig(t, newFakeStats(3))
			cfg.Logf = nil // the attack's rate-limited lines are expected
			s := start(t, cfg, nil)
			baseFDs := testutil.OpenFDs(0)
			startAttacker(t, exe, s.Path(), modes, nil)
			fds := peak(func() int { return testutil.OpenFDs(0) })
			held := peak(s.clients.Len)
			accepted, began := s.accepted.Load(), time.Now()
			times, failures := goodClient(s.Path(), starveRequests)
			rate := float64(s.accepted.Load()-accepted) / time.Since(began).Seconds()
			maxFDs, maxHeld := fds(), held()
			checkStarvation(t, times, failures)
			t.Logf("%s: p50 %v, p99 %v, max %v over %d requests; server: %.0f connections/s, at most %d clients held, %d file descriptors (%d before)",
				modes, percentile(times, 50).Round(10*time.Microsecond), percentile(times, 99).Round(10*time.Microsecond),
				times[len(times)-1].Round(10*time.Microsecond), len(times), rate, maxHeld, maxFDs, baseFDs)
			if maxHeld > MaxClients {
				t.Errorf("%d clients held at once, at most %d", maxHeld, MaxClients)
			}
			// The clients held, those whose input is being discarded, the
			// good client's own connection; and dropped ones whose
			// goroutine has not run yet (a dropped connection's descriptor
			// is closed once its reader returns): a few more.
			if limit := baseFDs + MaxClients + maxDraining + 1 + 64; maxFDs > limit {
				t.Errorf("%d file descriptors open under attack, want at most %d", maxFDs, limit)
			}
		})
	}
}

func checkStarvation(t *testing.T, times []time.Duration, failures []string) {
	t.Helper()
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... %d failures in all", len(failures))
			break
		}
		t.Errorf("the well-behaved client: %s", f)
	}
	if p99 := percentile(times, 99); p99 > starveP99 {
		t.Errorf("the well-behaved client's p99 is %v, want at most %v (p50 %v)", p99, starveP99, percentile(times, 50))
	}
}

// TestStarvationOtherUID attacks the socket from another user, nobody, in
// every way at once: that user must hold no more than MaxClientsPerUID
// places, and root's client is served as if nothing happened.
func TestStarvationOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the attacker runs as nobody")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("needs the user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The test binary's directory is root's alone: nobody runs a copy.
	dir := tempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "attacker")
	if err := copyFile(exe, 0o755); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, newFakeStats(3))
	if err := os.Chmod(filepath.Dir(cfg.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.UID, cfg.GID = uid, gid // the socket is nobody's, as with -u nobody
	cfg.Logf = nil
	s := start(t, cfg, nil)
	startAttacker(t, exe, s.Path(), strings.Join(servertest.Modes, ","), &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
	var attacked atomic.Bool
	held := peak(func() int {
		n := s.clients.Count(uint32(uid))
		if n > 0 {
			attacked.Store(true)
		}
		return n
	})
	times, failures := goodClient(s.Path(), starveRequests)
	maxHeld := held()
	checkStarvation(t, times, failures)
	t.Logf("nobody attacking: root's p50 %v, p99 %v, max %v over %d requests; nobody held at most %d places",
		percentile(times, 50).Round(10*time.Microsecond), percentile(times, 99).Round(10*time.Microsecond),
		times[len(times)-1].Round(10*time.Microsecond), len(times), maxHeld)
	if !attacked.Load() {
		t.Error("the attacker as nobody never got a place: the test tests nothing")
	}
	if maxHeld > MaxClientsPerUID {
		t.Errorf("nobody held %d places at once, at most %d", maxHeld, MaxClientsPerUID)
	}
}

// copyFile copies the running test binary to path with mode.
func copyFile(path string, mode os.FileMode) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, mode)
}

// TestNoReaderGivesWay checks that a client that does not read an answer
// larger than the socket's buffer holds its place only until a newcomer
// needs it, not for WriteTimeout.
func TestNoReaderGivesWay(t *testing.T) {
	cfg := testConfig(t, newFakeStats(3))
	cfg.Top = bigTop()
	s := start(t, cfg, func(s *Server) { s.clients = newTable(connlimit.Limits{Max: 2}) })
	noReader, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer noReader.Close()
	if _, err := io.WriteString(noReader, "TOP 1000\n"); err != nil {
		t.Fatal(err)
	}
	// Once part of the answer is there, the server waits for the rest to
	// be read.
	if !testutil.WaitFor(10*time.Second, func() bool { return unread(noReader.(*net.UnixConn)) > 0 && s.clients.IdleLen() == 1 }) {
		t.Fatal("the server did not wait for the answer to TOP 1000 to be read within 10 s")
	}
	silent, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !testutil.WaitFor(10*time.Second, func() bool { return s.clients.Len() == 2 }) {
		t.Fatalf("%d clients held, want 2", s.clients.Len())
	}
	began := time.Now()
	if got := mustAsk(t, s.Path(), "STATS\n"); !strings.HasPrefix(got, `{"version":"1.0.0"`) {
		t.Fatalf("STATS while the server is full: %q", got)
	}
	if took := time.Since(began); took >= WriteTimeout {
		t.Errorf("STATS answered after %v, when the client that does not read gave up its place (WriteTimeout %v)", took, WriteTimeout)
	}
	// The client that did not read was the one dropped: what it reads now
	// ends before the answer does.
	noReader.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(noReader)
	if whole := protocol.Encode(cfg.Top(1000)); len(b) >= len(whole) {
		t.Errorf("the client that did not read got its whole answer (%d bytes): it was not the one dropped", len(b))
	}
	silent.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent client, younger: %v; want it still connected", err)
	}
}
