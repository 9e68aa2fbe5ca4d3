package output

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"
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
// At the end, WriteAll queues the summary whatever the room left and Drain
// waits, up to a deadline, for the queue to be written: a reader that went
// away or stopped reading can delay the end by no more than that. Close
// instead waits as long as it takes, then makes later writes go straight to
// the writer.
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
	busy    bool   // the goroutine is writing what it took from the queue
	wake    chan struct{}
	idle    chan struct{} // signalled when the queue is written out
	done    chan struct{}
}

// ErrNotRead is returned by Drain when the queue was not written out by the
// deadline: the reader is not reading.
var ErrNotRead = errors.New("the output was not read in time")

// NewLossyWriter returns a LossyWriter that queues at most max bytes for w.
// After a write to w that follows dropped lines, report (if not nil) is
// called with their number, on the LossyWriter's goroutine.
func NewLossyWriter(w io.Writer, max int, report func(lines uint64)) *LossyWriter {
	l := &LossyWriter{
		w:      w,
		max:    max,
		report: report,
		wake:   make(chan struct{}, 1),
		idle:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go l.run()
	return l
}

// SetReport sets the function that is told of dropped lines (see
// NewLossyWriter).
func (l *LossyWriter) SetReport(report func(lines uint64)) {
	l.mu.Lock()
	l.report = report
	l.mu.Unlock()
}

// Write queues p, or drops it if the queue has no room for it. It returns
// the first error that writing to the underlying writer returned, if any.
func (l *LossyWriter) Write(p []byte) (int, error) { return l.enqueue(p, false) }

// WriteAll queues p whatever the room left in the queue: for the few lines
// at the end (the summary) that must not be dropped for want of room. It
// never waits; it returns the first error of the underlying writer.
func (l *LossyWriter) WriteAll(p []byte) (int, error) { return l.enqueue(p, true) }

// enqueue is Write, or WriteAll if all.
func (l *LossyWriter) enqueue(p []byte, all bool) (int, error) {
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
	if !all && len(l.queue)+len(p) > l.max {
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

// Drain waits until everything queued was written, or the deadline passes
// (ErrNotRead), or the writer failed (its error). The writes still waiting
// after the deadline are not cancelled: a process that gives up on its
// reader simply exits.
func (l *LossyWriter) Drain(deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		l.mu.Lock()
		empty, err := len(l.queue) == 0 && !l.busy, l.err
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if empty {
			return nil
		}
		select {
		case <-l.idle:
		case <-t.C:
			return ErrNotRead
		}
	}
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

// flush writes the queue until it is empty, reports dropped lines (the
// report's own line is then written too), and tells Drain.
func (l *LossyWriter) flush() {
	for {
		l.mu.Lock()
		b := l.queue
		if len(b) == 0 || l.err != nil {
			dropped, report, failed := l.dropped, l.report, l.err != nil
			l.dropped = 0
			l.mu.Unlock()
			if dropped > 0 && report != nil && !failed {
				report(dropped)
				continue
			}
			select {
			case l.idle <- struct{}{}:
			default:
			}
			return
		}
		l.queue, l.spare = l.spare[:0], nil
		l.busy = true
		l.mu.Unlock()

		_, err := l.w.Write(b)

		l.mu.Lock()
		l.busy = false
		l.spare = b[:0]
		if err != nil && l.err == nil {
			l.err = err
		}
		l.mu.Unlock()
	}
}
