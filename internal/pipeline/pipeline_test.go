package pipeline

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
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
	st := stats.New(1, time.Unix(0, 0), 1000)
	cls := classify.New(classify.Config{Timeout: 60 * time.Second, MaxSessions: 1000, ICMP: true, Emit: st.Add})
	p := &Pipeline{Classifier: cls, Stats: st}
	if live {
		// A wall clock far after the capture: the idle ticks expire
		// every session still waiting.
		p.Clock = func() time.Time { return fixture.ExampleStart.Add(time.Hour) }
	}
	return p, st
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
