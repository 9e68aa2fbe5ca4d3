package output

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// gate is a writer that blocks every write until it is opened; entered
// tells that a write is waiting.
type gate struct {
	open    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
	err     error
}

func newGate() *gate { return &gate{open: make(chan struct{}), entered: make(chan struct{}, 1)} }

func (g *gate) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	return g.buf.Write(p)
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %03d\n", i) // 9 bytes
	}
	return b.String()
}

// TestLossyWriterNeverBlocks writes to a reader that does not read: no
// write waits, what does not fit in the queue is dropped whole and
// counted, and once the reader reads, the queue arrives in order and the
// drop is reported.
func TestLossyWriterNeverBlocks(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	var reported []uint64
	l := NewLossyWriter(g, 90, func(n uint64) {
		mu.Lock()
		reported = append(reported, n)
		mu.Unlock()
	})
	// The first line is taken off the queue, and the goroutine waits in
	// the gate's Write; then the queue holds 10 lines.
	l.Write([]byte(lines(0, 1)))
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first line never reached the writer")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 30; i++ {
			if _, err := l.Write([]byte(lines(i, i+1))); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
		if _, err := l.Write([]byte(lines(30, 32))); err != nil {
			t.Errorf("write of two lines: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a write waited for a reader that does not read")
	}
	dropped := l.Dropped()
	if dropped != 32-11 {
		t.Errorf("dropped %d lines, want 21 (11 of 32 held)", dropped)
	}
	close(g.open)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := g.String()
	kept := 32 - int(dropped)
	if got != lines(0, kept) {
		t.Errorf("written:\n%s\nwant lines 0 to %d in order", got, kept-1)
	}
	mu.Lock()
	var sum uint64
	for _, n := range reported {
		sum += n
	}
	mu.Unlock()
	if sum != dropped {
		t.Errorf("reported %v dropped lines, want %d in all", reported, dropped)
	}

	// After Close, writes go straight through, whatever their size.
	big := lines(100, 200)
	if n, err := l.Write([]byte(big)); n != len(big) || err != nil {
		t.Errorf("write after Close: %d, %v", n, err)
	}
	if !strings.HasSuffix(g.String(), big) {
		t.Error("the write after Close did not reach the writer")
	}
}

// TestLossyWriterKeepsEverythingItCan writes less than the queue holds to
// a reader that keeps up: nothing is dropped or reported.
func TestLossyWriterKeepsEverythingItCan(t *testing.T) {
	g := newGate()
	close(g.open)
	reports := 0
	l := NewLossyWriter(g, 1<<20, func(uint64) { reports++ })
	for i := 0; i < 1000; i++ {
		l.Write([]byte(lines(i, i+1)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.String(); got != lines(0, 1000) || l.Dropped() != 0 || reports != 0 {
		t.Errorf("wrote %d bytes, dropped %d, %d reports; want %d bytes, none dropped", len(got), l.Dropped(), reports, len(lines(0, 1000)))
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLossyWriterError passes on the writer's first error: the write after
// it fails, and so does Close.
func TestLossyWriterError(t *testing.T) {
	g := newGate()
	g.err = errors.New("broken pipe")
	close(g.open)
	l := NewLossyWriter(g, 1<<10, nil)
	l.Write([]byte("a\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := l.Write([]byte("b\n")); err != nil {
			if err != g.err {
				t.Errorf("write: %v, want %v", err, g.err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer's error never reached Write")
		}
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != g.err {
		t.Errorf("Close: %v, want %v", err, g.err)
	}
}

// TestLossyWriterDrain checks the end of a live run: the summary is queued
// whatever the room, and Drain waits for it no longer than the deadline
// while the reader does not read, then returns nil once it did.
func TestLossyWriterDrain(t *testing.T) {
	g := newGate()
	l := NewLossyWriter(g, 64, nil)
	l.Write([]byte(lines(0, 7)))   // 63 bytes
	<-g.entered                    // the goroutine took them and waits in the reader's Write
	l.Write([]byte(lines(7, 14)))  // 63 more: the queue is full
	l.Write([]byte(lines(14, 15))) // dropped
	summary := strings.Repeat("summary\n", 100)
	if n, err := l.WriteAll([]byte(summary)); n != len(summary) || err != nil {
		t.Fatalf("WriteAll: %d, %v", n, err)
	}
	start := time.Now()
	if err := l.Drain(start.Add(100 * time.Millisecond)); err != ErrNotRead {
		t.Fatalf("Drain with a reader that does not read: %v, want ErrNotRead", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond || waited > 5*time.Second {
		t.Errorf("Drain waited %v for a 100 ms deadline", waited)
	}
	close(g.open)
	if err := l.Drain(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("Drain once the reader reads: %v", err)
	}
	if got, want := g.String(), lines(0, 14)+summary; got != want {
		t.Errorf("the reader got %d bytes, want the 126 queued and the %d of the summary", len(got), len(summary))
	}
	if l.Dropped() != 1 {
		t.Errorf("%d lines dropped, want 1", l.Dropped())
	}
}

// TestLossyWriterDrainError returns the writer's error rather than waiting.
func TestLossyWriterDrainError(t *testing.T) {
	g := newGate()
	g.err = errors.New("broken pipe")
	close(g.open)
	l := NewLossyWriter(g, 1<<10, nil)
	l.Write([]byte("a\n"))
	if err := l.Drain(time.Now().Add(10 * time.Second)); err != g.err {
		t.Errorf("Drain: %v, want %v", err, g.err)
	}
}
