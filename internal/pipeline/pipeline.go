// Package pipeline runs tcpeek's one pipeline: frames from a source are
// decoded, matched against the filters, classified, and the classifier's
// events counted and handed to the outputs. It owns that wiring: the
// command builds a Config, the pipeline builds the classifier and the
// counters. One goroutine runs it (offline, reading and decoding run a
// batch ahead on a second one); other goroutines only read the counters or
// call the methods documented as safe for them.
package pipeline

import (
	"io"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/filter"
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

// KernelStats is implemented by sources that can tell what they lost.
type KernelStats interface {
	// KernelStats returns cumulative counts of frames received, dropped
	// for lack of buffer space, and dropped by the interface.
	KernelStats() (recv, drops, ifdrops uint64)
}

// filterNamer is implemented by live sources, which say which kernel filter
// runs (capture.Live).
type filterNamer interface{ FilterName() string }

// buffered is implemented by sources that can tell whether their next frame
// is already there (capture.FileReader, capture.Live).
type buffered interface{ Buffered() bool }

// Sink receives the ended sessions, on the pipeline's goroutine: the
// real-time lines of either format.
type Sink interface {
	// Event writes one event; an error stops the pipeline from calling
	// the sink again (see Pipeline.SinkErr). The event is valid only
	// during the call.
	Event(ev *classify.Event) error
	// Flush writes out what Event buffered.
	Flush() error
}

// Config sets up a Pipeline.
type Config struct {
	// Filters are the filters sessions are counted in.
	Filters *filter.Set
	// Local is the first set of local addresses (SetLocal replaces it).
	Local *filter.Local
	// Timeout, MaxSessions and ICMP configure the classifier (see
	// classify.Config).
	Timeout     time.Duration
	MaxSessions int
	ICMP        bool
	// Checksum is what the decoder verifies (-c).
	Checksum decode.Checksum
	// Clock returns the wall-clock time; nil for offline input, where the
	// packet time is the only clock. Live, the counters start at Clock().
	Clock func() time.Time
	// Sink receives the ended sessions; nil counts them only.
	Sink Sink
	// SinkFailed, if not nil, is called once, on the pipeline's goroutine,
	// with the Sink's first error; the pipeline counts on without it.
	SinkFailed func(error)
	// Warnf logs a warning, Debugf what only -l debug shows (either may
	// be nil).
	Warnf, Debugf func(format string, args ...any)
	// Seed seeds the classifier's hash (0: random); for tests.
	Seed uint64
}

// Pipeline connects a source, the decoder, the filters, the classifier,
// the counters and the outputs.
type Pipeline struct {
	cfg     Config
	dec     decode.Decoder
	cls     *classify.Classifier
	stats   *stats.Stats
	local   atomic.Pointer[filter.Local]
	sinkErr error
	written bool // events went to the sink since its last Flush

	// events are the events of the batch being handled, counted and
	// written out together once it is done (see Emit in New).
	events []classify.Event

	stop        atomic.Bool
	lastPublish time.Time
	packets     uint64
	badSum      uint64
	started     bool // the first packet's time is the start (offline)
	steps       uint64
	last        int64

	lastFull, lastDrop               time.Time // when they were last reported
	reportedDisplaced, reportedDrops uint64
	peakMemory                       int         // the table's memory since it was last given back
	loggedMemory                     int         // the table's memory when last logged
	freeing                          atomic.Bool // a FreeOSMemory runs
}

// maxEvents bounds the events held for one batch: a clock jump that expires
// many sessions at once hands them over in slices of this many.
const maxEvents = 4096

// New returns a pipeline for cfg. Counting starts at cfg.Clock() live, and
// at the first packet's time offline.
func New(cfg Config) *Pipeline {
	p := &Pipeline{cfg: cfg}
	p.dec.Checksum = cfg.Checksum
	p.local.Store(cfg.Local)
	start := time.Unix(0, 0)
	if cfg.Clock != nil {
		start = cfg.Clock()
	}
	p.stats = stats.New(stats.Describe(cfg.Filters.Filters()), start, cfg.MaxSessions)
	set := cfg.Filters
	p.cls = classify.New(classify.Config{
		Timeout:     cfg.Timeout,
		MaxSessions: cfg.MaxSessions,
		ICMP:        cfg.ICMP,
		// The top failing peers need the failures' addresses.
		Seed: cfg.Seed,
		Match: func(init, resp netip.Addr, port uint16) uint64 {
			return set.Match(init, resp, port, p.local.Load())
		},
		Emit: func(ev *classify.Event) {
			p.events = append(p.events, *ev)
			if len(p.events) >= maxEvents {
				p.deliver()
			}
		},
	})
	return p
}

// Stats returns the counters, which any goroutine may read.
func (p *Pipeline) Stats() *stats.Stats { return p.stats }

// SetLocal replaces the set of local addresses: sessions that begin after
// the call are matched against the new set. Safe from any goroutine.
func (p *Pipeline) SetLocal(l *filter.Local) { p.local.Store(l) }

// SinkErr returns the first error of the Sink, after which no more events
// were written; nil if none. Call it after Run returned.
func (p *Pipeline) SinkErr() error { return p.sinkErr }

// Stop asks Run to return; it is safe to call from any goroutine (a signal
// handler) and takes effect within one batch or one poll interval.
func (p *Pipeline) Stop() { p.stop.Store(true) }

// reportEvery spaces the log lines that say the table is full or the kernel
// drops packets: at most one of each per interval, with the numbers.
const reportEvery = 10 * time.Second

// freeAfter is how much memory the session table must have given back
// before the pipeline asks the runtime to return it to the system at once
// (the scavenger alone takes minutes).
const freeAfter = 64 << 20

// report logs, at most every reportEvery each, that the session table is
// full and displaces sessions, and that the kernel dropped packets; and has
// the memory the table gave back returned to the system.
func (p *Pipeline) report(now time.Time, c stats.Capture, ss stats.Sessions) {
	if p.cfg.Warnf != nil && now.Sub(p.lastFull) >= reportEvery && ss.Displaced > p.reportedDisplaced {
		n := ss.Displaced - p.reportedDisplaced
		p.cfg.Warnf("the session table is full (--max-sessions %d): %d sessions in progress displaced since the last report, %d in all; handshakes that complete within a round trip are still counted (SPEC §11)",
			p.cfg.MaxSessions, n, ss.Displaced)
		p.lastFull, p.reportedDisplaced = now, ss.Displaced
	}
	if p.cfg.Warnf != nil && now.Sub(p.lastDrop) >= reportEvery && c.Drops > p.reportedDrops {
		n := c.Drops - p.reportedDrops
		p.cfg.Warnf("the kernel dropped %d packets since the last report, %d in all, for want of room in the capture ring: the counts miss them (a bigger -B helps if it keeps happening)",
			n, c.Drops)
		p.lastDrop, p.reportedDrops = now, c.Drops
	}
	mem := p.cls.Memory()
	if mem > p.peakMemory {
		p.peakMemory = mem
	}
	if p.cfg.Debugf != nil && (mem >= 2*p.loggedMemory || mem <= p.loggedMemory/2) {
		p.cfg.Debugf("session table: %d KiB for %d sessions in progress", mem>>10, ss.InProgress)
		p.loggedMemory = mem
	}
	if p.peakMemory-mem >= freeAfter && !p.freeing.Load() {
		p.peakMemory = mem
		p.freeing.Store(true)
		go func() { // a full collection: not on the packets' goroutine
			debug.FreeOSMemory()
			p.freeing.Store(false)
		}()
	}
}

// Stopped tells whether Stop was called.
func (p *Pipeline) Stopped() bool { return p.stop.Load() }

// deliver writes out and counts the events held, then forgets them.
func (p *Pipeline) deliver() {
	if len(p.events) == 0 {
		return
	}
	if s := p.cfg.Sink; s != nil && p.sinkErr == nil {
		p.written = true
		for i := range p.events {
			if p.sinkErr = s.Event(&p.events[i]); p.sinkErr != nil {
				p.sinkFailed()
				break
			}
		}
	}
	p.stats.Apply(p.events)
	clear(p.events) // drop the addresses' references
	p.events = p.events[:0]
}

// flush writes out what the sink buffered, if anything was written to it.
func (p *Pipeline) flush() {
	if s := p.cfg.Sink; s != nil && p.sinkErr == nil && p.written {
		p.written = false
		if p.sinkErr = s.Flush(); p.sinkErr != nil {
			p.sinkFailed()
		}
	}
}

func (p *Pipeline) sinkFailed() {
	if p.cfg.SinkFailed != nil {
		p.cfg.SinkFailed(p.sinkErr)
	}
}

// batch is a batch of decoded packets, as classifier keys.
type batch struct {
	keys    []classify.Key
	times   []int64
	partial bool   // handed over before full, because the input paused
	packets uint64 // frames read so far, this batch included
	badSum  uint64
	first   int64
	last    int64
	err     error // how the reading ended, in the last batch
}

func newBatch(size int) *batch {
	return &batch{keys: make([]classify.Key, 0, size), times: make([]int64, 0, size)}
}

// reader reads and decodes frames into batches. It is the one read loop of
// both modes: live, the pipeline's goroutine runs it between batches;
// offline, a goroutine of its own runs it a batch ahead.
type reader struct {
	src             Source
	bs              buffered
	dec             decode.Decoder
	cls             *classify.Classifier
	stop            *atomic.Bool
	pkt             decode.Packet
	f               capture.Frame
	packets, badSum uint64
	first, last     int64
}

// fill reads frames into b until it is full, the source has no more frames
// waiting (after at least one: a quiet input hands over what it has), or
// an error, which it records in b.err (io.EOF when Stop was called).
func (r *reader) fill(b *batch) {
	b.keys, b.times, b.partial, b.err = b.keys[:0], b.times[:0], false, nil
	for frames := 0; len(b.keys) < cap(b.keys); frames++ {
		if r.bs != nil && frames > 0 && !r.bs.Buffered() {
			b.partial = true
			break
		}
		if b.err = r.src.Next(&r.f); b.err != nil {
			break
		}
		if r.packets == 0 {
			r.first = r.f.Time
		}
		r.packets++
		r.last = max(r.last, r.f.Time)
		switch r.dec.Decode(&r.pkt, r.f.LinkType, r.f.Data, r.f.NoVerify) {
		case decode.OK:
			b.keys = append(b.keys, r.cls.Key(&r.pkt))
			b.times = append(b.times, r.f.Time)
		case decode.BadChecksum:
			r.badSum++
		}
	}
	if b.err == nil && r.stop.Load() {
		b.err = io.EOF
	}
	b.packets, b.badSum, b.first, b.last = r.packets, r.badSum, r.first, r.last
}

// handle classifies a batch, then writes out and counts its events.
func (p *Pipeline) handle(b *batch) {
	for i := 0; i < len(b.keys); i += classify.MaxBatch {
		j := min(i+classify.MaxBatch, len(b.keys))
		p.cls.HandleKeyed(b.keys[i:j], b.times[i:j])
	}
	p.packets, p.badSum = b.packets, b.badSum
	p.last = max(p.last, b.last)
	p.deliver()
}

// Batch sizes: live, a batch is handed over as soon as the ring is empty,
// and at most classify.MaxBatch frames, whose table lookups the classifier
// overlaps; offline, bigger batches amortize the hand-over between the
// goroutines.
const (
	liveBatchSize    = classify.MaxBatch
	offlineBatchSize = 1024
	offlineBatches   = 4
)

// idleLag is how far behind the wall clock the classifier's clock is
// advanced on a quiet link: frames may wait that long in the capture ring,
// and must not find their session expired by a clock that ran ahead of them.
const idleLag = 500 * time.Millisecond

// publishInterval is the longest a live pipeline goes without updating the
// shared counters.
const publishInterval = 250 * time.Millisecond

// publishEvery is how many packets pass between two updates of the shared
// capture counters: readers see counts at most this many packets old. (The
// session counters are updated after every batch.)
const publishEvery = 4096

// Run reads src until the end of input, an error or Stop. It returns nil at
// the end of the input or on Stop; any other error of the source is
// returned after the counters were updated with what was read before it.
//
// Offline (no Clock), reading and decoding run on a goroutine of their own,
// a batch ahead of the classifier: a capture file is read as fast as two
// CPUs allow. Live, one goroutine does everything, so that the capture costs
// as little CPU per packet as it can.
func (p *Pipeline) Run(src Source) error {
	r := &reader{src: src, dec: p.dec, cls: p.cls, stop: &p.stop}
	r.bs, _ = src.(buffered)
	var err error
	if p.cfg.Clock == nil {
		err = p.runOffline(r)
	} else {
		err = p.runLive(r)
	}
	p.flush()
	p.publish(src)
	if err == io.EOF {
		err = nil
	}
	return err
}

// runLive is Run on one goroutine, with the wall clock advancing the
// classifier's on a quiet link.
func (p *Pipeline) runLive(r *reader) error {
	b := newBatch(liveBatchSize)
	n := 0 // packets since the last publish
	for !p.stop.Load() {
		r.fill(b)
		p.handle(b)
		p.flush() // a daemon's lines must not wait
		if n += len(b.keys); n >= publishEvery {
			n = 0
			p.publish(r.src)
		} else if p.cfg.Clock().Sub(p.lastPublish) >= publishInterval {
			p.publish(r.src)
		}
		switch b.err {
		case nil:
		case ErrIdle:
			p.cls.Advance(p.cfg.Clock().Add(-idleLag).UnixNano())
			p.deliver()
			p.flush()
			p.publish(r.src)
		default:
			return b.err
		}
	}
	return nil
}

// runOffline is Run with the reading and decoding on another goroutine.
func (p *Pipeline) runOffline(r *reader) error {
	free := make(chan *batch, offlineBatches)
	full := make(chan *batch, offlineBatches)
	for range offlineBatches {
		free <- newBatch(offlineBatchSize)
	}
	go func() {
		for b := range free {
			r.fill(b)
			full <- b
			if b.err != nil {
				return
			}
		}
	}()
	n := 0
	for b := range full {
		p.handle(b)
		if !p.started && b.packets > 0 {
			p.started = true
			p.stats.SetStart(time.Unix(0, b.first))
		}
		if b.partial {
			p.flush() // a pipe paused: what was read comes out now
		}
		if n += len(b.keys); n >= publishEvery || b.partial {
			n = 0
			p.publish(r.src)
		}
		err := b.err
		free <- b
		if err != nil {
			return err
		}
	}
	return nil
}

// Finish ends offline input: the sessions still in progress are recorded as
// pending (SPEC §4 rule 11).
func (p *Pipeline) Finish() {
	p.publish(nil)
	p.stats.SetPending(uint64(p.cls.InProgress()))
}

// publish copies the pipeline's counters into the shared Stats.
func (p *Pipeline) publish(src Source) {
	c := stats.Capture{
		Packets:     p.packets,
		BadChecksum: p.badSum,
		Duplicates:  p.cls.Duplicates(),
	}
	now := time.Unix(0, p.cls.Clock())
	if p.cfg.Clock != nil {
		now = p.cfg.Clock()
		p.lastPublish = now
	} else if p.last == 0 {
		now = time.Unix(0, 0)
	}
	if ks, ok := src.(KernelStats); ok {
		c.Packets, c.Drops, c.IfDrops = ks.KernelStats()
	}
	if fn, ok := src.(filterNamer); ok {
		c.KernelFilter = fn.FilterName()
	}
	ss := stats.Sessions{
		InProgress: uint64(p.cls.InProgress()),
		Overflow:   p.cls.Overflow(),
		Displaced:  p.cls.Displaced(),
		Evicted:    p.cls.Evicted(),
	}
	p.stats.Update(now, c, ss)
	p.report(now, c, ss)
	if steps := p.cls.ClockSteps(); steps != p.steps {
		p.steps = steps
		p.stats.RebaseTop(time.Unix(0, p.cls.Clock()))
		if p.cfg.Warnf != nil {
			p.cfg.Warnf("packet time went back by more than the timeout (a clock step, merged captures, or a packet stamped in the future before): %d time(s) so far; sessions in progress then end a timeout later", steps)
		}
	}
}
