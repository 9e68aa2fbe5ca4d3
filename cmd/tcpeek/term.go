package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// isTerminal tells whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// pollable returns a duplicate of standard input in non-blocking mode, so
// that Go's poller serves its reads and closing it interrupts a read that
// waits for a pipe (tcpdump -w - | tcpeek -r - on a quiet link, then ^C).
// The returned function closes the duplicate and gives standard input back
// its blocking mode, so that a shell reading the same terminal is not left
// with a non-blocking one.
func pollable(f *os.File) (*os.File, func()) {
	plain := func() { f.Close() }
	rc, err := f.SyscallConn()
	if err != nil {
		return f, plain
	}
	dup, wasNonblock := -1, false
	rc.Control(func(fd uintptr) {
		fl, ferr := unix.FcntlInt(fd, unix.F_GETFL, 0)
		wasNonblock = ferr == nil && fl&unix.O_NONBLOCK != 0
		dup, err = unix.Dup(int(fd))
	})
	if err != nil || dup < 0 {
		return f, plain
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return f, plain
	}
	d := os.NewFile(uintptr(dup), f.Name())
	return d, func() {
		d.Close()
		if !wasNonblock {
			rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), false) })
		}
	}
}

// once returns a function that calls f once, whoever calls it first.
func once(f func()) func() {
	var o sync.Once
	return func() { o.Do(f) }
}

// ttyWriter serializes writes to stderr with the progress line: a write
// first erases the progress line, which the next tick redraws, and the
// progress line is only drawn at the start of a line.
type ttyWriter struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool // stderr is a terminal
	progress bool // a progress line is on the screen
	midLine  bool // the last write did not end a line
}

func (t *ttyWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.progress {
		io.WriteString(t.w, "\r\x1b[K")
		t.progress = false
	}
	n, err := t.w.Write(p)
	if n > 0 {
		t.midLine = p[n-1] != '\n'
	}
	return n, err
}

// show draws the progress line (no newline), or erases it when msg is "".
func (t *ttyWriter) show(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if msg == "" && !t.progress || msg != "" && t.midLine {
		return
	}
	io.WriteString(t.w, "\r\x1b[K"+msg)
	t.progress = msg != ""
}

// lineWriter passes on whole lines only: it holds back the end of a write
// that does not end a line until the next write (or Flush) completes it, so
// that a buffer filling up in the middle of a line never leaves half a line
// on the terminal for the progress line to erase.
type lineWriter struct {
	w    io.Writer
	held []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		l.held = append(l.held, p...)
		if len(l.held) < 64<<10 {
			return len(p), nil
		}
		return len(p), l.Flush() // a very long line: let it through
	}
	var err error
	if len(l.held) > 0 {
		l.held = append(l.held, p[:i+1]...)
		_, err = l.w.Write(l.held)
	} else {
		_, err = l.w.Write(p[:i+1])
	}
	l.held = append(l.held[:0], p[i+1:]...)
	return len(p), err
}

// Flush writes what is held back.
func (l *lineWriter) Flush() error {
	if len(l.held) == 0 {
		return nil
	}
	_, err := l.w.Write(l.held)
	l.held = l.held[:0]
	return err
}

// startProgress shows, once a second has passed, how far the reading got:
// bytes read of the total and packets per second. It returns a function
// that stops and erases it.
func startProgress(tw *ttyWriter, r *capture.FileReader, size int64, st *stats.Stats) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var lastPkts uint64
		lastT := start
		rate := 0.0
		for {
			select {
			case <-done:
				tw.show("")
				return
			case now := <-tick.C:
				snap := st.Snapshot()
				pk := snap.Capture.Packets
				if dt := now.Sub(lastT).Seconds(); dt > 0 {
					rate = float64(pk-lastPkts) / dt
				}
				lastPkts, lastT = pk, now
				if now.Sub(start) < time.Second {
					continue
				}
				tw.show(progressLine(r.BytesRead(), size, pk, rate))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// progressLine formats the progress of a read.
func progressLine(read, size int64, packets uint64, rate float64) string {
	var b strings.Builder
	b.WriteString("tcpeek: ")
	b.WriteString(bytesText(read))
	if size > 0 {
		fmt.Fprintf(&b, " of %s (%.0f%%)", bytesText(size), 100*float64(read)/float64(size))
	}
	fmt.Fprintf(&b, ", %d packets, %s packets/s", packets, countText(rate))
	return b.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func countText(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.1f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// linkTypeNames names pcap link types as tcpdump does.
func linkTypeNames(lts []uint32) string {
	if len(lts) == 0 {
		return "none yet"
	}
	var parts []string
	for i, lt := range lts {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("and %d more", len(lts)-i))
			break
		}
		parts = append(parts, linkTypeName(lt))
	}
	return strings.Join(parts, ", ")
}

func linkTypeName(lt uint32) string {
	switch lt {
	case 0:
		return "NULL (BSD loopback)"
	case 1:
		return "EN10MB (Ethernet)"
	case 12, 14, 101:
		return "RAW (Raw IP)"
	case 108:
		return "LOOP (OpenBSD loopback)"
	case 113:
		return "LINUX_SLL (Linux cooked v1)"
	case 228:
		return "IPV4 (Raw IPv4)"
	case 229:
		return "IPV6 (Raw IPv6)"
	case 276:
		return "LINUX_SLL2 (Linux cooked v2)"
	}
	return fmt.Sprintf("%d (not decoded: its packets are skipped)", lt)
}
