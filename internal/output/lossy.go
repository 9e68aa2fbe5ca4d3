package output

import (
	"bytes"
	"io"
	"sync"
)

// LossyWriter passes writes on to another writer from a goroutine of its
// own, through a queue of bounded size, so that a write never waits for the
// reader at the other end. A write that does not fit in the queue is
// dropped whole and its lines are counted: when whoever reads tcpeek's
// output stops reading (a paused pager, a slow terminal over ssh, a full
// pipe), the live capture loses session lines, which it reports, rather
// than packets, which would make its counts wrong. Each write should hold
// whole lines.
//
// Close waits until the queue is written, then makes later writes go
// straight to the writer, so that the summary at the end is never dropped.
type LossyWriter struct {
	w       io.Writer
	max     int
	report  func(lines uint64)
	mu      sync.Mutex
	queue   []byte
	spare   []byte
	closed  bool
	err     error  // the first error of w
	dropped uint64 // lines dropped since the last report
	total   uint64 // lines dropped in all
	wake    chan struct{}
	done    chan struct{}
}

// NewLossyWriter returns a LossyWriter that queues at most max bytes for w.
// After a write to w that follows dropped lines, report (if not nil) is
// called with their number, on the LossyWriter's goroutine.
func NewLossyWriter(w io.Writer, max int, report func(lines uint64)) *LossyWriter {
	l := &LossyWriter{
		w:      w,
		max:    max,
		report: report,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go l.run()
	return l
}

// Write queues p, or drops it if the queue has no room for it. It returns
// the first error that writing to the underlying writer returned, if any.
func (l *LossyWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if l.closed {
		n, err := l.w.Write(p)
		l.err = err
		return n, err
	}
	if len(l.queue)+len(p) > l.max {
		n := uint64(bytes.Count(p, []byte{'\n'}))
		l.dropped += n
		l.total += n
		return len(p), nil
	}
	l.queue = append(l.queue, p...)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Dropped returns how many lines were dropped so far.
func (l *LossyWriter) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Close writes out the queue, waiting for the underlying writer as long as
// it takes, and stops the goroutine. Later writes are not queued but
// written at once. It returns the first error of the underlying writer.
func (l *LossyWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.err
	}
	l.closed = true
	close(l.wake)
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *LossyWriter) run() {
	defer close(l.done)
	for range l.wake {
		l.flush()
	}
	l.flush() // what came between the last wake-up and Close
}

// flush writes the queue until it is empty, then reports dropped lines.
func (l *LossyWriter) flush() {
	for {
		l.mu.Lock()
		b := l.queue
		if len(b) == 0 || l.err != nil {
			dropped := l.dropped
			l.dropped = 0
			l.mu.Unlock()
			if dropped > 0 && l.report != nil {
				l.report(dropped)
			}
			return
		}
		l.queue, l.spare = l.spare[:0], nil
		l.mu.Unlock()

		_, err := l.w.Write(b)

		l.mu.Lock()
		l.spare = b[:0]
		if err != nil && l.err == nil {
			l.err = err
		}
		l.mu.Unlock()
	}
}
