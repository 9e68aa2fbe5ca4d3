package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/stats"
)

// These tests run tcpeekstat as a process of its own (the test binary,
// with mainEnv set): on a pseudo-terminal, whose modes it must give back,
// and with its output a pipe.

// tcpeekstatCmd returns the command that runs tcpeekstat with args.
func tcpeekstatCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "TZ=UTC", "TERM=xterm")
	return cmd
}

// waitExit waits up to 10 s for cmd to exit and returns its status.
func waitExit(t *testing.T, cmd *exec.Cmd, exited <-chan error) int {
	t.Helper()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee) && ee.Exited():
			return ee.ExitCode()
		default:
			t.Fatalf("tcpeekstat did not exit normally: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tcpeekstat still runs after 10 s")
	}
	return -1
}

// startWatchDaemon serves counters with failures, for a frame with rates.
func startWatchDaemon(t *testing.T) *fakeTcpeek {
	d := startTcpeek(t, "web:RX@*:80")
	d.update(func(s *stats.Snapshot) {
		s.Filters[2].Success.Total = 100
		s.Filters[2].Failure = stats.Failure{Total: 10, Reject: 10}
	})
	return d
}

// openPTY opens a pseudo-terminal pair: the master, which the test reads
// and writes as the user's terminal would, and the slave, tcpeekstat's
// terminal. Both are closed when the test ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var n int
	control(t, master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlock the slave
			return fmt.Errorf("TIOCSPTLCK: %w", err)
		}
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		if err != nil {
			return fmt.Errorf("TIOCGPTN: %w", err)
		}
		return nil
	})
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the slave: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// control runs fn with f's descriptor. Unlike f.Fd, it leaves f in
// non-blocking mode, so that closing f ends a Read under way.
func control(t *testing.T, f *os.File, fn func(fd int) error) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}

func setSize(t *testing.T, tty *os.File, cols, rows int) {
	t.Helper()
	control(t, tty, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
	})
}

// termios returns the modes of the terminal (on Linux, those of the slave
// when asked on the master).
func termios(t *testing.T, tty *os.File) unix.Termios {
	t.Helper()
	var tio *unix.Termios
	control(t, tty, func(fd int) (err error) {
		tio, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	})
	return *tio
}

// vt is the little of a VT100 that tcpeekstat's frames use: cursor
// positioning, erasing, the alternate screen, and text. It records any
// character written past the last column, which a real terminal would
// wrap to the next line and so break the frame.
type vt struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced after each write
	cols     int
	rows     int
	cells    [][]rune
	r, c     int
	alt      bool
	hidden   bool
	overflow []string
	raw      bytes.Buffer // everything received
	pending  []byte       // an incomplete escape sequence or rune
}

func newVT(cols, rows int) *vt {
	v := &vt{changed: make(chan struct{})}
	v.resize(cols, rows)
	return v
}

func (v *vt) resize(cols, rows int) {
	v.cols, v.rows = cols, rows
	v.cells = make([][]rune, rows)
	for i := range v.cells {
		v.cells[i] = []rune(strings.Repeat(" ", cols))
	}
	v.r, v.c = 0, 0
}

func (v *vt) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.raw.Write(p)
	b := append(v.pending, p...)
	v.pending = nil
	for len(b) > 0 {
		n := v.step(b)
		if n == 0 { // incomplete: wait for more
			v.pending = append([]byte(nil), b...)
			break
		}
		b = b[n:]
	}
	close(v.changed)
	v.changed = make(chan struct{})
	return len(p), nil
}

// step interprets the start of b and returns how many bytes it used; 0
// when b holds an incomplete sequence.
func (v *vt) step(b []byte) int {
	switch b[0] {
	case '\r':
		v.c = 0
		return 1
	case '\n':
		if v.r < v.rows-1 {
			v.r++
		}
		return 1
	case 0x1b:
		if len(b) < 2 {
			return 0
		}
		if b[1] != '[' {
			return 2
		}
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				v.csi(string(b[2:i]), b[i])
				return i + 1
			}
		}
		return 0
	}
	if !utf8.FullRune(b) {
		return 0
	}
	r, n := utf8.DecodeRune(b)
	if r < ' ' {
		return n
	}
	if v.c >= v.cols {
		v.overflow = append(v.overflow, fmt.Sprintf("%q past column %d on line %d", r, v.cols, v.r+1))
		return n
	}
	v.cells[v.r][v.c] = r
	v.c++
	return n
}

func (v *vt) csi(params string, final byte) {
	num := func(i, def int) int {
		f := strings.Split(params, ";")
		if i < len(f) {
			if n, err := strconv.Atoi(f[i]); err == nil && n > 0 {
				return n
			}
		}
		return def
	}
	blank := func(r, from int) {
		for c := from; c < v.cols; c++ {
			v.cells[r][c] = ' '
		}
	}
	switch {
	case final == 'H':
		v.r, v.c = min(num(0, 1), v.rows)-1, min(num(1, 1), v.cols)-1
	case final == 'J' && params == "2":
		for r := range v.rows {
			blank(r, 0)
		}
	case final == 'J':
		blank(v.r, v.c)
		for r := v.r + 1; r < v.rows; r++ {
			blank(r, 0)
		}
	case final == 'K' && params == "2":
		blank(v.r, 0)
	case final == 'K':
		blank(v.r, v.c)
	case params == "?1049" && final == 'h':
		v.alt = true
	case params == "?1049" && final == 'l':
		v.alt = false
	case params == "?25" && final == 'l':
		v.hidden = true
	case params == "?25" && final == 'h':
		v.hidden = false
	}
}

// screen returns the screen's lines, without trailing blanks.
func (v *vt) screen() string {
	var b strings.Builder
	for _, r := range v.cells {
		b.WriteString(strings.TrimRight(string(r), " ") + "\n")
	}
	return b.String()
}

// wait waits up to 10 s for cond, checked under the lock after each write.
func (v *vt) wait(t *testing.T, what string, cond func(v *vt) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		v.mu.Lock()
		ok, changed := cond(v), v.changed
		v.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			v.mu.Lock()
			defer v.mu.Unlock()
			t.Fatalf("after 10 s, still not %s; the screen:\n%s", what, v.screen())
		}
	}
}

// TestWatchTerminal runs tcpeekstat --watch on a pseudo-terminal: it draws
// within the terminal's width, redraws when the window changes, gives the
// terminal back on Ctrl+Z and takes it again when continued, ends on q or
// Ctrl+C, and leaves the terminal in the modes it found.
func TestWatchTerminal(t *testing.T) {
	for _, tt := range []struct {
		name    string
		suspend bool   // Ctrl+Z, then continue, before quitting
		quit    string // what the user types
	}{
		{"q", false, "q"},
		{"Ctrl+C", false, "\x03"},
		{"Ctrl+Z", true, "q"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startWatchDaemon(t)
			master, slave := openPTY(t)
			setSize(t, master, 60, 15)
			before := termios(t, master)
			if before.Lflag&unix.ICANON == 0 || before.Lflag&unix.ECHO == 0 || before.Lflag&unix.ISIG == 0 {
				t.Fatalf("a new pseudo-terminal is not in canonical mode with echo and signals: lflag %#x", before.Lflag)
			}

			screen := newVT(60, 15)
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				io.Copy(screen, master) // until the master is closed
			}()
			t.Cleanup(func() {
				master.Close()
				<-copied
			})

			// No tick in the test's time: a redraw comes from SIGWINCH.
			cmd := tcpeekstatCmd("-w", "--interval=1h", "-U", d.path)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			// Its own session, with the pseudo-terminal as its controlling
			// terminal, so that Ctrl+C and window changes signal it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
				exited <- nil
			})

			screen.wait(t, "a frame on the alternate screen", func(v *vt) bool {
				s := v.screen()
				return v.alt && v.hidden && strings.Contains(s, "q quits") && strings.Contains(s, "web")
			})
			during := termios(t, master)
			if during.Lflag&(unix.ICANON|unix.ECHO) != 0 || during.Lflag&unix.ISIG == 0 {
				t.Errorf("while watching: lflag %#x; want no ICANON, no ECHO, ISIG kept", during.Lflag)
			}
			screen.mu.Lock()
			if !strings.Contains(screen.screen(), "p99ms") || strings.Contains(screen.screen(), "success") {
				t.Errorf("at 60 columns, want p99ms but not success:\n%s", screen.screen())
			}
			screen.mu.Unlock()

			// A wider window: SIGWINCH, and a frame with every column.
			screen.mu.Lock()
			screen.resize(100, 30)
			screen.mu.Unlock()
			setSize(t, master, 100, 30)
			screen.wait(t, "redrawn 100 columns wide", func(v *vt) bool {
				return strings.Contains(v.screen(), "success") && strings.Contains(v.screen(), "p50ms")
			})

			if tt.suspend {
				if _, err := master.WriteString("\x1a"); err != nil {
					t.Fatal(err)
				}
				screen.wait(t, "back on the normal screen after Ctrl+Z", func(v *vt) bool { return !v.alt && !v.hidden })
				waitStopped(t, cmd.Process.Pid)
				if stopped := termios(t, master); stopped != before {
					t.Errorf("stopped, the terminal's modes were not restored:\nbefore %+v\nafter  %+v", before, stopped)
				}
				if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				screen.wait(t, "redrawn on the alternate screen once continued", func(v *vt) bool {
					return v.alt && v.hidden && strings.Contains(v.screen(), "web")
				})
				if again := termios(t, master); again != during {
					t.Errorf("continued, the terminal's modes are not those of the watch:\nbefore %+v\nafter  %+v", during, again)
				}
			}

			if _, err := master.WriteString(tt.quit); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, cmd, exited); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
			exited <- nil // for the cleanup
			if after := termios(t, master); after != before {
				t.Errorf("the terminal's modes were not restored:\nbefore %+v\nafter  %+v", before, after)
			}
			screen.wait(t, "back on the normal screen with the cursor shown", func(v *vt) bool { return !v.alt && !v.hidden })
			screen.mu.Lock()
			defer screen.mu.Unlock()
			if len(screen.overflow) > 0 {
				t.Errorf("text written past the right edge: %v", screen.overflow)
			}
			if !bytes.HasSuffix(screen.raw.Bytes(), []byte(leaveScreen)) {
				t.Errorf("the output does not end with leaving the alternate screen: ...%q", tail(screen.raw.Bytes()))
			}
		})
	}
}

func tail(b []byte) []byte { return b[max(0, len(b)-80):] }

// waitStopped waits up to 10 s for process pid to be stopped (state T in
// /proc/PID/stat).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped after 10 s: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchProcessPipe runs tcpeekstat --watch with its output a pipe: it
// prints plain tables, and ends with status 0, saying nothing, on SIGTERM,
// on SIGINT, and when the reader closes the pipe.
func TestWatchProcessPipe(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(cmd *exec.Cmd, r *os.File) error
	}{
		{"SIGTERM", func(cmd *exec.Cmd, _ *os.File) error { return cmd.Process.Signal(syscall.SIGTERM) }},
		{"SIGINT", func(cmd *exec.Cmd, _ *os.File) error { return cmd.Process.Signal(syscall.SIGINT) }},
		{"closed pipe", func(_ *exec.Cmd, r *os.File) error { return r.Close() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startWatchDaemon(t)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var stderr lockedBuffer
			cmd := tcpeekstatCmd("-w", "--interval=0.1", "-U", d.path)
			cmd.Stdout, cmd.Stderr = w, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Kill()
				select {
				case <-exited:
				default:
				}
			}()

			// Read until two frames are complete: the third has begun.
			var out []byte
			buf := make([]byte, 4096)
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			for bytes.Count(out, []byte("\n\n20")) < 2 {
				n, err := r.Read(buf)
				if err != nil {
					t.Fatalf("reading tcpeekstat's output: %v; so far:\n%s", err, out)
				}
				out = append(out, buf[:n]...)
			}
			if err := tt.end(cmd, r); err != nil {
				t.Fatal(err)
			}
			code := waitExit(t, cmd, exited)
			if code != 0 || stderr.String() != "" {
				t.Errorf("exit status %d, stderr %q; want 0 and nothing", code, stderr.String())
			}
			frames := strings.Split(string(out), "\n\n20")[:2]
			for i, f := range frames {
				if !strings.Contains(f, "FILTER") || !strings.Contains(f, "web") {
					t.Errorf("frame %d is not a table of the filters:\n%s", i, f)
				}
			}
			if !strings.Contains(frames[1], "rates over") {
				t.Errorf("the second frame has no rates:\n%s", frames[1])
			}
			if bytes.ContainsRune(out, 0x1b) {
				t.Errorf("escape sequences written to a pipe:\n%q", out)
			}
		})
	}
}
