// Package pipeline runs tcpeek's one pipeline: frames from a source are
// decoded, classified, and the classifier's events counted and handed to the
// outputs. One goroutine runs it; other goroutines only read the counters.
package pipeline

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// Source yields captured frames.
type Source interface {
	// Next reads the next frame into f. It returns io.EOF at the end of
	// the input, and ErrIdle when no frame arrived for a while (live
	// sources), so that the clock can advance on a quiet link.
	Next(f *capture.Frame) error
}

// ErrIdle is returned by a live Source when no frame arrived within its
// poll interval.
var ErrIdle = capture.ErrIdle

// idleLag is how far behind the wall clock the classifier's clock is
// advanced on a quiet link: frames may wait that long in the capture ring,
// and must not find their session expired by a clock that ran ahead of them.
const idleLag = 500 * time.Millisecond

// publishInterval is the longest a live pipeline goes without updating the
// shared counters.
const publishInterval = 250 * time.Millisecond

// KernelStats is implemented by sources that can tell what they lost.
type KernelStats interface {
	// KernelStats returns cumulative counts of frames received, dropped
	// for lack of buffer space, and dropped by the interface.
	KernelStats() (recv, drops, ifdrops uint64)
}

// publishEvery is how many frames pass between two updates of the shared
// counters: readers see counts at most this many frames old.
const publishEvery = 4096

// Pipeline connects a source, the decoder, the classifier and the counters.
type Pipeline struct {
	Decoder    decode.Decoder
	Classifier *classify.Classifier
	Stats      *stats.Stats
	// Clock returns the wall-clock time; nil for offline input, where the
	// packet time is the only clock.
	Clock func() time.Time
	// Warnf logs a warning (may be nil).
	Warnf func(format string, args ...any)

	stop        atomic.Bool
	lastPublish time.Time
	packets     uint64
	badSum      uint64
	started     bool // the first packet's time is the start (offline)
	steps       uint64
	last        int64
}

// Stop asks Run to return; it is safe to call from any goroutine (a signal
// handler) and takes effect within one frame or one poll interval.
func (p *Pipeline) Stop() { p.stop.Store(true) }

// Packets returns the number of frames read so far. It is only safe to call
// from the goroutine that runs Run, or after Run returned.
func (p *Pipeline) Packets() uint64 { return p.packets }

// batchSize is how many frames are decoded before they are classified: the
// classifier prefetches the session-table memory of a whole batch, so that
// its cache misses overlap. A live batch is handed over before it is full
// when no more frames wait in the ring, so that no frame waits for others.
const batchSize = classify.MaxBatch

// Run reads src until the end of input, an error or Stop. It returns nil at
// the end of the input or on Stop; any other error of the source is
// returned after the counters were updated with what was read before it.
//
// Offline (no Clock), reading and decoding run on a goroutine of their own,
// a batch ahead of the classifier: a capture file is read as fast as two
// CPUs allow. Live, one goroutine does everything, so that the capture costs
// as little CPU per packet as it can.
func (p *Pipeline) Run(src Source) error {
	if p.Clock == nil {
		return p.runOffline(src)
	}
	var (
		f     capture.Frame
		pkts  [batchSize]decode.Packet
		times [batchSize]int64
		err   error
		n     int // frames since the last publish
	)
	bs, _ := src.(buffered)
	for err == nil && !p.stop.Load() {
		k := 0
		for frames := 0; k < batchSize; frames++ {
			if bs != nil && frames > 0 && !bs.Buffered() {
				break
			}
			if err = src.Next(&f); err != nil {
				break
			}
			p.count(&f)
			switch p.Decoder.Decode(&pkts[k], f.LinkType, f.Data, f.NoVerify) {
			case decode.OK:
				times[k] = f.Time
				k++
			case decode.BadChecksum:
				p.badSum++
			}
		}
		p.Classifier.HandleBatch(pkts[:k], times[:k])
		if n += k; n >= publishEvery {
			n = 0
			p.publish(src)
		} else if p.Clock().Sub(p.lastPublish) >= publishInterval {
			p.publish(src)
		}
		if err == ErrIdle {
			p.Classifier.Advance(p.Clock().Add(-idleLag).UnixNano())
			p.publish(src)
			err = nil
		}
	}
	p.publish(src)
	if err == io.EOF {
		err = nil
	}
	return err
}

// count counts a frame read.
func (p *Pipeline) count(f *capture.Frame) {
	p.packets++
	if f.Time > p.last {
		p.last = f.Time
	}
}

// buffered is implemented by sources that can tell whether their next frame
// is already there (capture.FileReader, capture.Live).
type buffered interface{ Buffered() bool }

// offlineBatch is a batch of decoded packets, as classifier keys, passed
// from the reading goroutine to the classifying one.
type offlineBatch struct {
	keys    [offlineBatchSize]classify.Key
	times   [offlineBatchSize]int64
	n       int
	partial bool   // handed over before full, because the input paused
	packets uint64 // frames read so far, this batch included
	badSum  uint64
	first   int64
	last    int64
	err     error // how the reading ended, in the last batch
}

const (
	offlineBatchSize = 1024
	offlineBatches   = 4
)

// runOffline is Run with the reading and decoding on another goroutine.
func (p *Pipeline) runOffline(src Source) error {
	free := make(chan *offlineBatch, offlineBatches)
	full := make(chan *offlineBatch, offlineBatches)
	for i := 0; i < offlineBatches; i++ {
		free <- new(offlineBatch)
	}
	go p.read(src, free, full)
	n := 0
	for b := range full {
		for i := 0; i < b.n; i += classify.MaxBatch {
			j := min(i+classify.MaxBatch, b.n)
			p.Classifier.HandleKeyed(b.keys[i:j], b.times[i:j])
		}
		p.packets, p.badSum = b.packets, b.badSum
		if !p.started && b.packets > 0 {
			p.started = true
			p.Stats.SetStart(time.Unix(0, b.first))
		}
		p.last = max(p.last, b.last)
		if n += b.n; n >= publishEvery || b.partial {
			n = 0
			p.publish(src)
		}
		err := b.err
		free <- b
		if err != nil {
			p.publish(src)
			if err == io.EOF {
				err = nil
			}
			return err
		}
	}
	return nil
}

// read reads and decodes frames into batches until the end of the input,
// an error or Stop; its last batch carries the error (io.EOF at the end).
func (p *Pipeline) read(src Source, free <-chan *offlineBatch, full chan<- *offlineBatch) {
	var (
		f               capture.Frame
		pkt             decode.Packet
		packets, badSum uint64
		first, last     int64
		dec             = p.Decoder
		cls             = p.Classifier
	)
	for {
		b := <-free
		b.n = 0
		b.partial = false
		var err error
		for frames := 0; b.n < offlineBatchSize; frames++ {
			if bs, ok := src.(buffered); ok && frames > 0 && !bs.Buffered() {
				b.partial = true // a quiet pipe: hand over what was read before waiting
				break
			}
			if err = src.Next(&f); err != nil {
				break
			}
			if packets == 0 {
				first = f.Time
			}
			packets++
			last = max(last, f.Time)
			switch dec.Decode(&pkt, f.LinkType, f.Data, f.NoVerify) {
			case decode.OK:
				b.keys[b.n] = cls.Key(&pkt)
				b.times[b.n] = f.Time
				b.n++
			case decode.BadChecksum:
				badSum++
			}
		}
		if err == nil && p.stop.Load() {
			err = io.EOF
		}
		b.packets, b.badSum, b.first, b.last, b.err = packets, badSum, first, last, err
		full <- b
		if err != nil {
			return
		}
	}
}

// Finish ends offline input: the sessions still in progress are recorded as
// pending (SPEC §4 rule 11).
func (p *Pipeline) Finish() {
	p.publish(nil)
	p.Stats.SetPending(uint64(p.Classifier.InProgress()))
}

// publish copies the pipeline's counters into the shared Stats.
func (p *Pipeline) publish(src Source) {
	c := stats.Capture{
		Packets:     p.packets,
		BadChecksum: p.badSum,
		Duplicates:  p.Classifier.Duplicates(),
	}
	now := time.Unix(0, p.Classifier.Clock())
	if p.Clock != nil {
		now = p.Clock()
		p.lastPublish = now
	} else if p.last == 0 {
		now = time.Unix(0, 0)
	}
	if ks, ok := src.(KernelStats); ok {
		c.Packets, c.Drops, c.IfDrops = ks.KernelStats()
	}
	p.Stats.Update(now, c, stats.Sessions{
		InProgress: uint64(p.Classifier.InProgress()),
		Overflow:   p.Classifier.Overflow(),
		Evicted:    p.Classifier.Evicted(),
	})
	if steps := p.Classifier.ClockSteps(); steps != p.steps {
		p.steps = steps
		if p.Warnf != nil {
			p.Warnf("packet time went back by more than the timeout (a clock step, merged captures, or a packet stamped in the future before): %d time(s) so far; sessions in progress then end a timeout later", steps)
		}
	}
}

// Stopped tells whether Stop was called.
func (p *Pipeline) Stopped() bool { return p.stop.Load() }
