//go:build linux

package e2e

import (
	"bufio"
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/server"
	"github.com/tcpeek/tcpeek/internal/server/servertest"
	"github.com/tcpeek/tcpeek/internal/testutil"
)

// hardenEnv turns the test binary into a helper of the hardening tests
// (TestHardenHelper) instead of a test run: "JOB ARG...".
const hardenEnv = "TCPEEK_E2E_HARDEN"

// TestHardenHelper is not a test. It is what the test binary does when a
// hardening test runs it again, with TCPEEK_E2E_HARDEN saying which job:
//
//   - attack PATH MODES HELD: attack the stats socket at PATH in the ways
//     of servertest.Attack (MODES separated by commas), HELD being how
//     many of the attacker's clients the server holds;
//   - idlers ADDR N: open N TCP connections to ADDR that send nothing.
//
// It prints "ready" once under way and goes on until its standard input
// ends. Without the variable it returns at once.
func TestHardenHelper(t *testing.T) {
	spec := os.Getenv(hardenEnv)
	if spec == "" {
		return
	}
	args := strings.Fields(spec)
	var err error
	switch {
	case len(args) == 4 && args[0] == "attack":
		err = helperAttack(args[1], strings.Split(args[2], ","), args[3])
	case len(args) == 3 && args[0] == "idlers":
		err = helperIdlers(args[1], args[2])
	default:
		err = fmt.Errorf("unknown job %q", spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", spec, err)
		os.Exit(2)
	}
	os.Exit(0)
}

func helperAttack(path string, modes []string, held string) error {
	n, err := strconv.Atoi(held)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	wait, err := servertest.Attack(path, modes, n, stop)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	close(stop)
	wait()
	return nil
}

// helperIdlers opens n connections to addr, 256 at a time, and holds them.
func helperIdlers(addr, ns string) error {
	n, err := strconv.Atoi(ns)
	if err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		errs  int
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 256)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				if first == nil {
					first = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if errs > 0 {
		return fmt.Errorf("%d of %d connections failed: %w", errs, n, first)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// startHardenHelper runs the test binary as a helper doing job with args,
// as cred's user if not nil (from a copy that user can execute), until the
// test ends, and waits until it is under way.
func startHardenHelper(t *testing.T, cred *syscall.Credential, job string, args ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		exe = executableCopy(t, exe)
	}
	cmd := exec.Command(exe, "-test.run=^TestHardenHelper$")
	// Under -race, a process otherwise sleeps 1 s at exit.
	cmd.Env = append(os.Environ(), hardenEnv+"="+job+" "+strings.Join(args, " "), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s helper: %v", job, err)
	}
	done := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, stdout) // after "ready", so that Wait returns
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the %s helper: %v\n%s", job, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("the %s helper did not stop within 20 s", job)
		}
	})
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the %s helper: %q, %v\n%s", job, line, err, stderr.String())
	}
	go io.Copy(io.Discard, r)
}

// executableCopy copies the program at path to a directory every user can
// reach (the test binary's own is its builder's alone) and returns the
// copy's path.
func executableCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(shortTempDir(t), filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// nobody returns the credentials of the user nobody, or skips the test.
func nobody(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("needs the user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// TestLiveSocketStarvation runs tcpeek -u nobody, as the README suggests,
// and attacks its stats socket as nobody in every way of SPEC §7 at once:
// idle connections, reconnections as fast as one process can, megabytes
// without a newline, requests whose answers are never read. Root's client,
// asking STATS again and again, gets every answer, 99% of them within
// 100 ms, and tcpeek's file descriptors stay bounded.
func TestLiveSocketStarvation(t *testing.T) {
	t.Parallel()
	requireLab(t)
	cred := nobody(t)
	go buildTools()
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "run", "tcpeek.sock")
	d := l.startDaemon(sock, "-u", "nobody", "-q")
	pid := d.pid()
	baseFDs, baseRSS := testutil.OpenFDs(pid), testutil.RSSKiB(pid)

	startHardenHelper(t, cred, "attack", sock, strings.Join(servertest.Modes, ","), strconv.Itoa(server.MaxClientsPerUID))
	var (
		times    []time.Duration
		failures []string
		maxFDs   int
		maxRSS   int
	)
	for i := range 300 {
		began := time.Now()
		b, err := query(sock, "STATS")
		times = append(times, time.Since(began))
		if err != nil || !strings.HasPrefix(string(b), `{"version":`) {
			failures = append(failures, fmt.Sprintf("request %d: %q, %v", i, b, err))
		}
		maxFDs, maxRSS = max(maxFDs, testutil.OpenFDs(pid)), max(maxRSS, testutil.RSSKiB(pid))
	}
	slices.Sort(times)
	p50, p99 := times[len(times)/2], times[len(times)*99/100]
	t.Logf("attacked as nobody: root's client p50 %v, p99 %v, max %v over %d requests; tcpeek: at most %d file descriptors (%d before), RSS %d KiB (%d before)",
		p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond), len(times),
		maxFDs, baseFDs, maxRSS, baseRSS)
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... %d failures in all", len(failures))
			break
		}
		t.Errorf("root's client: %s", f)
	}
	if p99 > 100*time.Millisecond {
		t.Errorf("root's client: p99 %v, want at most 100 ms", p99)
	}
	// nobody's clients held, the answered ones whose input is discarded,
	// root's client; dropped ones whose goroutine has not run yet.
	if limit := baseFDs + server.MaxClientsPerUID + 16 + 1 + 64; maxFDs > limit {
		t.Errorf("tcpeek had %d file descriptors open under attack, want at most %d", maxFDs, limit)
	}
	if d.exited() {
		t.Fatalf("tcpeek exited under attack: %v", d.err)
	}
	d.stop(syscall.SIGTERM)
	sockGone(t, sock)
}
