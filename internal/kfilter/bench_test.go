//go:build linux

package kfilter

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkKernel measures what each filter costs in the kernel per frame:
// BPF_PROG_TEST_RUN runs the program b.N times on one frame
// (Program.Benchmark), and ns/run is the kernel's own time per run. The
// classic program runs as classicToEBPF translates it, as the kernel runs it
// after converting it. The frames: a SYN (eBPF: a retransmission, which
// refreshes its tuple), a data segment whose tuple is not in the map (the
// bulk of a link), one whose tuple is (a handshake in progress), and a pure
// ACK not in the map.
func BenchmarkKernel(b *testing.B) {
	e := newTestEBPF(b, Config{Timeout: time.Minute})
	c := loadClassic(b, nil)
	frames := []struct {
		name string
		s    seg
		v6   bool
	}{
		{"SYN", seg{'i', "S", isn, 0, 0}, false},
		{"data not in map", seg{'i', "PA", isn + 1, risn + 1, 1400}, false},
		{"data not in map/IPv6", seg{'i', "PA", isn + 1, risn + 1, 1400}, true},
		{"data in map", seg{'r', "PA", risn + 1, isn + 1, 1400}, false},
		{"pure ACK not in map", seg{'i', "A", isn + 1, risn + 1, 0}, false},
	}
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{{NameEBPF, e.Program()}, {NameClassic, c}} {
		for _, f := range frames {
			b.Run(p.name+"/"+f.name, func(b *testing.B) {
				clearTuples(b, e)
				if f.name == "data in map" {
					// A handshake in progress: its SYN and SYN/ACK.
					ebpfRun(b, e, seg{'i', "S", isn, 0, 0}.frame(b, false, 40000))
					ebpfRun(b, e, seg{'r', "SA", risn, isn + 1, 0}.frame(b, false, 40000))
				}
				frame := f.s.frame(b, f.v6, 40000)
				b.ReportAllocs()
				ret, per, err := p.prog.Benchmark(frame, b.N, b.ResetTimer)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(per.Nanoseconds()), "ns/run")
				b.ReportMetric(float64(ret), "verdict")
			})
		}
	}
}
