// Package pipeline runs tcpeek's one pipeline: frames from a source are
// decoded, classified, and the classifier's events counted and handed to the
// outputs. One goroutine runs it; other goroutines only read the counters.
package pipeline

import (
	"errors"
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
var ErrIdle = errors.New("no frame within the poll interval")

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

	stop    atomic.Bool
	packets uint64
	badSum  uint64
	first   int64
	last    int64
}

// Stop asks Run to return; it is safe to call from any goroutine (a signal
// handler) and takes effect within one frame or one poll interval.
func (p *Pipeline) Stop() { p.stop.Store(true) }

// Packets returns the number of frames read so far. It is only safe to call
// from the goroutine that runs Run, or after Run returned.
func (p *Pipeline) Packets() uint64 { return p.packets }

// batchSize is how many frames are decoded before they are classified: the
// classifier prefetches the session-table memory of a whole batch, so that
// its cache misses overlap.
const batchSize = 16

// Run reads src until the end of input, an error or Stop. It returns nil at
// the end of the input or on Stop; any other error of the source is
// returned after the counters were updated with what was read before it.
func (p *Pipeline) Run(src Source) error {
	var (
		f     capture.Frame
		pkts  [batchSize]decode.Packet
		times [batchSize]int64
		err   error
		n     int // frames since the last publish
	)
	for err == nil && !p.stop.Load() {
		k := 0
		for k < batchSize {
			if err = src.Next(&f); err != nil {
				break
			}
			p.packets++
			if p.first == 0 {
				p.first = f.Time
				p.Stats.SetStart(time.Unix(0, f.Time))
			}
			if f.Time > p.last {
				p.last = f.Time
			}
			switch p.Decoder.Decode(&pkts[k], f.LinkType, f.Data, f.NoVerify) {
			case decode.OK:
				times[k] = f.Time
				k++
			case decode.BadChecksum:
				p.badSum++
			}
		}
		for i := 0; i < k; i++ {
			p.Classifier.Prefetch(&pkts[i])
		}
		for i := 0; i < k; i++ {
			p.Classifier.Handle(&pkts[i], times[i])
		}
		if n += k; n >= publishEvery {
			n = 0
			p.publish(src)
		}
		if err == ErrIdle {
			if p.Clock != nil {
				p.Classifier.Advance(p.Clock().UnixNano())
			}
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
	} else if p.last == 0 {
		now = time.Unix(0, 0)
	}
	if ks, ok := src.(KernelStats); ok {
		c.Packets, c.Drops, c.IfDrops = ks.KernelStats()
	}
	p.Stats.Update(now, c, stats.Sessions{
		InProgress: uint64(p.Classifier.InProgress()),
		Overflow:   p.Classifier.Overflow(),
	})
}

// Stopped tells whether Stop was called.
func (p *Pipeline) Stopped() bool { return p.stop.Load() }
