package main

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The escape sequences --watch uses: plain ANSI (ECMA-48) and the xterm
// alternate screen, which every terminal emulator in use knows; no
// terminfo.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J" // alternate screen, hide the cursor, home, clear
	leaveScreen = "\x1b[?25h\x1b[?1049l"              // show the cursor, back to the normal screen
	clearScreen = "\x1b[H\x1b[2J"
	clearLine   = "\x1b[2K"
	clearBelow  = "\x1b[J"
)

// Fallback size when the terminal reports none (a serial line, some
// emulators before their window is mapped).
const defaultCols, defaultLines = 80, 24

// terminal is the terminal --watch draws on: stdout, and stdin for the
// keys when it is a terminal too.
type terminal struct {
	out   *os.File
	in    int           // stdin's descriptor, -1 when it is not a terminal
	saved *unix.Termios // stdin's modes before enter
	mu    sync.Mutex    // serializes enter and leave
	on    bool          // between enter and leave
}

// openTerminal returns the terminal of stdout, or nil when stdout is not a
// terminal, or one that cannot move the cursor (TERM=dumb).
func openTerminal(stdin, stdout *os.File) *terminal {
	if !isTerminal(int(stdout.Fd())) || os.Getenv("TERM") == "dumb" {
		return nil
	}
	t := &terminal{out: stdout, in: -1}
	if stdin != nil && isTerminal(int(stdin.Fd())) {
		t.in = int(stdin.Fd())
	}
	return t
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// enter puts stdin in cbreak mode (keys are read one by one, without
// echo; Ctrl+C still sends SIGINT) and switches to the alternate screen,
// with the cursor hidden.
func (t *terminal) enter() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.on {
		return nil
	}
	if t.in >= 0 {
		saved, err := unix.IoctlGetTermios(t.in, unix.TCGETS)
		if err != nil {
			return err
		}
		cbreak := *saved
		cbreak.Lflag &^= unix.ICANON | unix.ECHO
		// Ctrl+C and Ctrl+Z must not flush the output queue, as the kernel
		// does when it sends their signal: it could discard what the
		// handler writes to give the normal screen back.
		cbreak.Lflag |= unix.NOFLSH
		cbreak.Cc[unix.VMIN], cbreak.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(t.in, unix.TCSETS, &cbreak); err != nil {
			return err
		}
		t.saved = saved
	}
	t.on = true
	if _, err := t.out.WriteString(enterScreen); err != nil {
		t.restore()
		return err
	}
	return nil
}

// leave undoes enter: stdin's modes as they were, the cursor, and the
// normal screen. It is safe to call more than once.
func (t *terminal) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on {
		return
	}
	t.restore()                    // first: a write can block (Ctrl+S) or fail
	t.out.WriteString(leaveScreen) // a terminal that hung up cannot be helped
}

func (t *terminal) restore() {
	if t.saved != nil {
		unix.IoctlSetTermios(t.in, unix.TCSETS, t.saved)
		t.saved = nil
	}
	t.on = false
}

// size returns the terminal's columns and lines, asked anew each time (a
// resize sends SIGWINCH, which redraws).
func (t *terminal) size() (cols, lines int) {
	ws, err := unix.IoctlGetWinsize(int(t.out.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return defaultCols, defaultLines
	}
	return int(ws.Col), int(ws.Row)
}

// draw writes the frame in one write: each line at its place, cleared
// first, then the rest of the screen cleared. Moving the cursor to each
// line rather than writing newlines keeps a line as wide as the terminal
// from wrapping, and rewriting in place does not flicker.
func (t *terminal) draw(lines []string, clear bool) error {
	var b strings.Builder
	if clear {
		b.WriteString(clearScreen)
	}
	for i, l := range lines {
		b.WriteString("\x1b[" + strconv.Itoa(i+1) + ";1H" + clearLine + l)
	}
	b.WriteString("\x1b[" + strconv.Itoa(len(lines)+1) + ";1H" + clearBelow)
	_, err := t.out.WriteString(b.String())
	return err
}

// suspend gives the terminal back as it was and stops the process, as
// Ctrl+Z would without tcpeekstat's handler; once continued (fg), it sets
// the terminal up again.
//
// SIGSTOP goes to this very thread: sent to the process, it could be taken
// by another thread while this one runs on and sets the terminal up again
// before the stop takes hold.
func (t *terminal) suspend() error {
	t.leave()
	runtime.LockOSThread()
	err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGSTOP)
	runtime.UnlockOSThread()
	if err != nil {
		return err
	}
	return t.enter()
}

// readKeys reads stdin's keys, one byte each, until stop is called; the
// channel closes when stdin ends (a hang-up). Without a terminal on stdin
// it returns a channel that never delivers.
func (t *terminal) readKeys() (keys <-chan byte, stop func()) {
	if t.in < 0 {
		return nil, func() {}
	}
	// The reader polls stdin and a pipe, which stop writes to: a blocked
	// read(2) could not be interrupted, and making stdin non-blocking would
	// change it for the shell too.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, func() {}
	}
	ch := make(chan byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		fds := []unix.PollFd{{Fd: int32(t.in), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		buf := make([]byte, 64)
		for {
			if _, err := unix.Poll(fds, -1); err != nil {
				if errors.Is(err, syscall.EINTR) {
					continue
				}
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents == 0 {
				continue
			}
			n, err := unix.Read(t.in, buf)
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			if n <= 0 {
				return // end of input or a hang-up
			}
			for _, k := range buf[:n] {
				select {
				case ch <- k:
				default: // keys pile up unread: drop them
				}
			}
		}
	}()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			unix.Write(p[1], []byte{0})
			<-done
			unix.Close(p[0])
			unix.Close(p[1])
		})
	}
}
