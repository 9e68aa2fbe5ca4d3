//go:build linux

package kfilter

import (
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/pcapgo"
)

// BenchmarkKernelReplay runs every frame of the capture named by
// $TCPEEK_REPLAY_PCAP (one from ../shared/tools/gencap) once through each
// filter, in order, with BPF_PROG_TEST_RUN, and reports the kernel's mean
// time per frame: what the filter costs on that traffic with the tuple
// map's real cache behaviour, which BenchmarkKernel's one repeated frame
// hides. Each run's figure includes the test run's own timing, about 70 ns
// (the classic program's figure less its BenchmarkKernel one). It logs the
// mean by kind of segment.
func BenchmarkKernelReplay(b *testing.B) {
	name := os.Getenv("TCPEEK_REPLAY_PCAP")
	if name == "" {
		b.Skip("set TCPEEK_REPLAY_PCAP to a capture (gencap -sessions 1000000 -data 0 -seed 7)")
	}
	frames := readFrames(b, name)
	for _, p := range []string{NameEBPF, NameClassic} {
		b.Run(p, func(b *testing.B) {
			for range b.N {
				var prog *ebpf.Program
				if p == NameEBPF {
					prog = newTestEBPF(b, Config{Timeout: 30 * time.Second}).Program()
				} else {
					prog = loadClassic(b, nil)
				}
				var total time.Duration
				byKind := map[string]struct {
					n int
					d time.Duration
				}{}
				for _, fr := range frames {
					_, d, err := prog.Benchmark(fr, 1, nil)
					if err != nil {
						b.Fatal(err)
					}
					total += d
					k := byKind[segKind(fr)]
					k.n++
					k.d += d
					byKind[segKind(fr)] = k
				}
				for _, kind := range slices.Sorted(func(yield func(string) bool) {
					for k := range byKind {
						if !yield(k) {
							return
						}
					}
				}) {
					k := byKind[kind]
					b.Logf("%-6s %8d frames %5.0f ns", kind, k.n, float64(k.d.Nanoseconds())/float64(k.n))
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(len(frames)), "ns/frame")
			}
		})
	}
}

// readFrames reads the frames of a pcap file.
func readFrames(tb testing.TB, name string) [][]byte {
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, data)
	}
}

// segKind names the kind of an untagged Ethernet frame: its TCP flags
// (S, SA, A, PA, R, RA...; "6" before them for IPv6) or "other".
func segKind(fr []byte) string {
	var flags byte
	prefix := ""
	switch {
	case len(fr) >= 14+20+14 && fr[12] == 0x08 && fr[13] == 0 && fr[23] == protoTCP:
		flags = fr[14+int(fr[14]&0xf)*4+13]
	case len(fr) >= 14+40+14 && fr[12] == 0x86 && fr[13] == 0xdd && fr[20] == protoTCP:
		flags, prefix = fr[14+40+13], "6"
	default:
		return "other"
	}
	s := prefix
	for _, f := range []struct {
		bit  byte
		name string
	}{{tcpFIN, "F"}, {tcpSYN, "S"}, {tcpRST, "R"}, {0x08, "P"}, {tcpACK, "A"}} {
		if flags&f.bit != 0 {
			s += f.name
		}
	}
	return s
}
