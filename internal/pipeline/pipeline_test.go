package pipeline

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/fixture"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// frames is a Source of prepared frames; after them it returns end (io.EOF
// or an error), or ErrIdle idle times first.
type frames struct {
	pkts []fixture.Packet
	i    int
	idle int
	end  error
}

func (s *frames) Next(f *capture.Frame) error {
	if s.i < len(s.pkts) {
		p := s.pkts[s.i]
		s.i++
		*f = capture.Frame{Time: p.Time.UnixNano(), LinkType: 1, Data: p.Data, WireLen: len(p.Data)}
		return nil
	}
	if s.idle > 0 {
		s.idle--
		return ErrIdle
	}
	return s.end
}

func newPipeline(t *testing.T, live bool) (*Pipeline, *stats.Stats) {
	t.Helper()
	set, err := filter.NewSet(nil, false) // one filter, ALL
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Filters: set, Timeout: 60 * time.Second, MaxSessions: 1000, ICMP: true}
	if live {
		// A wall clock far after the capture: the idle ticks expire
		// every session still waiting.
		cfg.Clock = func() time.Time { return fixture.ExampleStart.Add(time.Hour) }
	}
	p := New(cfg)
	return p, p.Stats()
}

// TestRun feeds the example capture through both kinds of pipelines and
// checks the counts, the capture counters, and how errors end the run.
func TestRun(t *testing.T) {
	pkts, outcomes, err := fixture.Example()
	if err != nil {
		t.Fatal(err)
	}
	var succ, fail uint64
	for _, o := range outcomes {
		switch o.Result {
		case "success":
			succ++
		case "pending":
		default:
			fail++
		}
	}
	broken := errors.New("disk on fire")
	tests := []struct {
		name        string
		live        bool
		end         error
		wantErr     error
		wantFail    uint64
		wantPending uint64
	}{
		{"offline", false, io.EOF, nil, fail, 1},
		{"offline error", false, broken, broken, fail, 1},
		{"live, idle ticks expire the last session", true, io.EOF, nil, fail + 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, st := newPipeline(t, tc.live)
			src := &frames{pkts: pkts, end: tc.end}
			if tc.live {
				src.idle = 3
			}
			if err := p.Run(src); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run: %v, want %v", err, tc.wantErr)
			}
			if !tc.live {
				p.Finish()
			}
			snap := st.Snapshot()
			f := snap.Filters[0]
			if f.Success.Total != succ || f.Failure.Total != tc.wantFail || snap.Pending != tc.wantPending {
				t.Errorf("success %d, failure %d, pending %d; want %d, %d, %d",
					f.Success.Total, f.Failure.Total, snap.Pending, succ, tc.wantFail, tc.wantPending)
			}
			if snap.Capture.Packets != uint64(len(pkts)) || snap.Capture.Duplicates != 2 {
				t.Errorf("capture %+v, want %d packets and 2 duplicates", snap.Capture, len(pkts))
			}
			if !tc.live && !snap.Start.Equal(fixture.ExampleStart) {
				t.Errorf("start %v, want the first packet's time %v", snap.Start, fixture.ExampleStart)
			}
		})
	}
}

// TestStop checks that Stop ends a run that would otherwise go on idling.
func TestStop(t *testing.T) {
	p, _ := newPipeline(t, true)
	src := &frames{idle: 1 << 30}
	done := make(chan error)
	go func() { done <- p.Run(src) }()
	p.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}

// ring is a live Source whose frames arrive in bursts: Buffered tells
// whether the current burst has more, and when it has none, Next would
// wait for the kernel. Before it would, ring records how many sessions the
// classifier counted, then ends the run.
type ring struct {
	frames
	burst   int // frames of the first burst
	st      *stats.Stats
	counted int64 // successes counted when Next would have waited; -1 before
}

func (r *ring) Buffered() bool { return r.i < r.burst }

func (r *ring) Next(f *capture.Frame) error {
	if r.i == r.burst {
		r.counted = int64(r.st.Snapshot().Filters[0].Success.Total)
		return io.EOF
	}
	return r.frames.Next(f)
}

// TestLiveHandsOverPartialBatch checks that a live pipeline classifies the
// frames that arrived before it waits for more: a handshake's three frames
// must be counted, not held back until a batch fills.
func TestLiveHandsOverPartialBatch(t *testing.T) {
	cli := netip.MustParseAddrPort("192.0.2.1:40000")
	srv := netip.MustParseAddrPort("198.51.100.1:443")
	var pkts []fixture.Packet
	for i, s := range []fixture.Seg{
		{Src: cli, Dst: srv, Flags: "S", Seq: 100},
		{Src: srv, Dst: cli, Flags: "SA", Seq: 500, Ack: 101},
		{Src: cli, Dst: srv, Flags: "A", Seq: 101, Ack: 501},
	} {
		b, err := s.Frame()
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, fixture.Packet{Time: fixture.ExampleStart.Add(time.Duration(i) * time.Millisecond), Data: b})
	}
	p, st := newPipeline(t, true)
	src := &ring{frames: frames{pkts: pkts}, burst: len(pkts), st: st, counted: -1}
	if err := p.Run(src); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if src.counted != 1 {
		t.Errorf("%d successes counted when the pipeline waited for more frames, want 1", src.counted)
	}
}

// dropping is a source that says the kernel dropped packets.
type dropping struct{ frames }

func (d *dropping) KernelStats() (recv, drops, ifdrops uint64) { return 1000, 42, 0 }

// TestReports checks the log lines of a full table and of kernel drops:
// one each, with the numbers, however many batches report them within 10 s.
func TestReports(t *testing.T) {
	srv := netip.MustParseAddrPort("198.51.100.1:443")
	var pkts []fixture.Packet
	for i := range 50 {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 40000)
		b, err := fixture.Seg{Src: cli, Dst: srv, Flags: "S", Seq: 100}.Frame()
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, fixture.Packet{Time: fixture.ExampleStart.Add(time.Duration(i) * 100 * time.Millisecond), Data: b})
	}
	set, err := filter.NewSet(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	clock := fixture.ExampleStart
	p := New(Config{Filters: set, Timeout: time.Minute, MaxSessions: 10,
		Clock: func() time.Time { clock = clock.Add(time.Millisecond); return clock },
		Warnf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if err := p.Run(&dropping{frames{pkts: pkts, end: io.EOF}}); err != nil {
		t.Fatal(err)
	}
	full, drops := 0, 0
	for _, l := range logged {
		switch {
		case strings.Contains(l, "the session table is full (--max-sessions 10)") && strings.Contains(l, "40 in all"):
			full++
		case strings.Contains(l, "the kernel dropped 42 packets"):
			drops++
		default:
			t.Errorf("unexpected log line %q", l)
		}
	}
	if full != 1 || drops != 1 {
		t.Errorf("%d table-full lines and %d drop lines, want one each: %q", full, drops, logged)
	}
	if got := p.Stats().Snapshot().Sessions.Displaced; got != 40 {
		t.Errorf("sessions.displaced %d, want 40", got)
	}
}
