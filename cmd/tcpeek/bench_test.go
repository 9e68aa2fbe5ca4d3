package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// gencapDir is the team's capture generator, beside a checkout.
const gencapDir = "../../../shared/tools/gencap"

// genCapture makes (once, cached in the temporary directory) a capture with
// gencap and returns its path and its truth file.
func genCapture(b *testing.B, name string, args ...string) (string, map[string]any) {
	b.Helper()
	if _, err := os.Stat(gencapDir); err != nil {
		b.Skipf("gencap is not here (%v): it lives in ../shared/tools/gencap beside a team checkout", err)
	}
	dir := filepath.Join(os.TempDir(), "tcpeek-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, name+".pcap")
	if _, err := os.Stat(out + ".truth.json"); err != nil {
		bin := filepath.Join(dir, "gencap")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = gencapDir
		build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if msg, err := build.CombinedOutput(); err != nil {
			b.Fatalf("building gencap: %v\n%s", err, msg)
		}
		gen := exec.Command(bin, append(args, "-o", out)...)
		if msg, err := gen.CombinedOutput(); err != nil {
			b.Fatalf("gencap: %v\n%s", err, msg)
		}
	}
	raw, err := os.ReadFile(out + ".truth.json")
	if err != nil {
		b.Fatal(err)
	}
	var truth map[string]any
	if err := json.Unmarshal(raw, &truth); err != nil {
		b.Fatal(err)
	}
	return out, truth
}

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
			path, truth := genCapture(b, bc.name, bc.args...)
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
