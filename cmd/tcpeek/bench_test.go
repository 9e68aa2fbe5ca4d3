package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkReadCapture measures the whole program on generated captures,
// against tcpdump copying the same file (when tcpdump is installed), timed
// in the same run: tcpdump_ratio > 1 means tcpeek is faster.
func BenchmarkReadCapture(b *testing.B) {
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"handshake", []string{"-sessions", "300000", "-data", "0"}},
		{"bulk", []string{"-sessions", "30000", "-data", "10"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path, truth := genCapture(b, bc.args...)
			packets := truth["packets"].(map[string]any)["all"].(map[string]any)["total"].(float64)
			devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			defer devnull.Close()
			tcpdump, _ := exec.LookPath("tcpdump")
			var ours, theirs time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if st := run([]string{"-r", path, "-q"}, devnull, devnull, devnull); st != 0 {
					b.Fatalf("exit status %d", st)
				}
				ours += time.Since(start)
				if tcpdump != "" {
					b.StopTimer()
					start = time.Now()
					if err := exec.Command(tcpdump, "-r", path, "-w", os.DevNull).Run(); err != nil {
						b.Fatalf("tcpdump: %v", err)
					}
					theirs += time.Since(start)
					b.StartTimer()
				}
			}
			b.ReportMetric(packets*float64(b.N)/ours.Seconds(), "packets/s")
			if theirs > 0 {
				b.ReportMetric(packets*float64(b.N)/theirs.Seconds(), "tcpdump_packets/s")
				b.ReportMetric(theirs.Seconds()/ours.Seconds(), "tcpdump_ratio")
			}
			fmt.Fprint(devnull)
		})
	}
}
