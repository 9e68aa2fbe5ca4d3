package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gencapDir is the team's capture generator, beside a checkout.
const gencapDir = "../../../shared/tools/gencap"

// genCapture makes (once, cached in the temporary directory under a name
// made of args) a capture with gencap and returns its path and its truth
// file, which holds the counts a correct monitor reports.
func genCapture(tb testing.TB, args ...string) (string, map[string]any) {
	tb.Helper()
	if _, err := os.Stat(gencapDir); err != nil {
		tb.Skipf("gencap is not here (%v): it lives in ../shared/tools/gencap beside a team checkout", err)
	}
	dir := filepath.Join(os.TempDir(), "tcpeek-gencap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, strings.ReplaceAll(strings.Join(args, ""), "-", "_")+".pcap")
	if _, err := os.Stat(out + ".truth.json"); err != nil {
		bin := filepath.Join(dir, "gencap")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = gencapDir
		build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if msg, err := build.CombinedOutput(); err != nil {
			tb.Fatalf("building gencap: %v\n%s", err, msg)
		}
		gen := exec.Command(bin, append(args, "-o", out)...)
		if msg, err := gen.CombinedOutput(); err != nil {
			tb.Fatalf("gencap: %v\n%s", err, msg)
		}
	}
	raw, err := os.ReadFile(out + ".truth.json")
	if err != nil {
		tb.Fatal(err)
	}
	var truth map[string]any
	if err := json.Unmarshal(raw, &truth); err != nil {
		tb.Fatal(err)
	}
	return out, truth
}

// TestGencapTruth reads generated captures, handshake-only and with data,
// and checks every counter of RX and TX against the generator's truth.
// gencap's sessions that are never answered retransmit their SYN after 1 s
// and 3 s: with -t 5 each is a timeout or, within 8 s of the end, pending,
// so the truth's timeouts are tcpeek's timeouts plus its pending sessions.
func TestGencapTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("generates captures")
	}
	for _, args := range [][]string{
		{"-sessions", "20000", "-data", "0", "-seed", "7"},
		{"-sessions", "5000", "-data", "4", "-seed", "8"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			path, truth := genCapture(t, args...)
			host := truth["capture_host"].(map[string]any)
			r := runTcpeek(t, nil, "-r", path, "-q", "--icmp", "-t", "5", "-o", "json",
				"--local-net", host["ipv4"].(string)+"/32", "--local-net", host["ipv6"].(string)+"/128")
			if r.status != 0 {
				t.Fatalf("exit status %d\n%s", r.status, r.stderr)
			}
			var got struct {
				Filters []struct {
					Name    string
					Success map[string]uint64
					Failure map[string]uint64
				}
				Pending uint64
			}
			if err := json.Unmarshal([]byte(lastLine(r.stdout)), &got); err != nil {
				t.Fatalf("the STATS line: %v\n%s", err, r.stdout)
			}
			want := truth["all"].(map[string]any)
			var timeouts, wantTimeouts uint64
			for _, f := range got.Filters {
				w := want[f.Name].(map[string]any)
				for section, counts := range map[string]map[string]uint64{"success": f.Success, "failure": f.Failure} {
					for k, v := range w[section].(map[string]any) {
						n := uint64(v.(float64))
						switch {
						case section == "failure" && k == "timeout":
							timeouts += counts[k]
							wantTimeouts += n
						case section == "failure" && k == "total":
							n -= uint64(w["failure"].(map[string]any)["timeout"].(float64))
							if got := counts[k] - counts["timeout"]; got != n {
								t.Errorf("%s failure.total without timeouts = %d, want %d", f.Name, got, n)
							}
						case counts[k] != n:
							t.Errorf("%s %s.%s = %d, want %d", f.Name, section, k, counts[k], n)
						}
					}
				}
			}
			if timeouts+got.Pending != wantTimeouts {
				t.Errorf("timeouts %d + pending %d = %d, want %d", timeouts, got.Pending, timeouts+got.Pending, wantTimeouts)
			}
			if len(got.Filters) != 2 {
				t.Errorf("%d filters, want RX and TX", len(got.Filters))
			}
		})
	}
}
