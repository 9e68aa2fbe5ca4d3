package top_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/top"
)

// gencapDir is the team's capture generator, beside a checkout.
const gencapDir = "../../../shared/tools/gencap"

// gencapTruth is the part of gencap's truth file this test reads.
type gencapTruth struct {
	CaptureHost map[string]string `json:"capture_host"`
	All         map[string]struct {
		Failure struct {
			Total uint64 `json:"total"`
		} `json:"failure"`
	} `json:"all"`
	ByPeer map[string]struct {
		Distinct int `json:"distinct_failing"`
		Top      []struct {
			Peer     string `json:"peer"`
			Port     uint16 `json:"port"`
			Failures uint64 `json:"failures"`
			Timeout  uint64 `json:"timeout"`
			Reject   uint64 `json:"reject"`
			Unreach  uint64 `json:"unreach"`
		} `json:"top"`
	} `json:"failures_by_peer"`
}

// genHeavyHitters builds gencap and writes a capture whose remote peers
// are Zipf-distributed, with its truth file, into a temporary directory.
func genHeavyHitters(t *testing.T, args ...string) (string, gencapTruth) {
	t.Helper()
	if _, err := os.Stat(gencapDir); err != nil {
		t.Skipf("gencap is not here (%v): it lives in ../shared/tools/gencap beside a team checkout, not in the project", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gencap")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = gencapDir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building gencap: %v\n%s", err, msg)
	}
	out := filepath.Join(dir, "hh.pcap")
	if msg, err := exec.Command(bin, append(args, "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("gencap: %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out + ".truth.json")
	if err != nil {
		t.Fatal(err)
	}
	var truth gencapTruth
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatalf("reading the truth file: %v", err)
	}
	return out, truth
}

// TestGencapHeavyHitters reads a capture of 300000 attempts whose remote
// ends are drawn from 50000 peers per family and direction (100000 per
// direction) with a Zipf distribution of exponent 1.2, classifies it
// (decode, classify) and feeds the failures to a Top with filters RX and
// TX, as the pipeline will. The exact counts come from the classifier's
// events; gencap's truth (the exact counts of its 1000 heaviest pairs per
// direction) checks those. The answers must then keep the sketch's
// bounds for every row, list every pair the guarantee says they must,
// and rank the heavy hitters exactly.
func TestGencapHeavyHitters(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and classifies a capture of 300000 attempts")
	}
	// -peers is per family and direction: 2 x 50000 = 100000 peers.
	path, truth := genHeavyHitters(t, "-sessions", "300000", "-data", "0", "-peers", "50000", "-zipf", "1.2", "-seed", "3")
	host4 := netip.MustParseAddr(truth.CaptureHost["ipv4"])
	host6 := netip.MustParseAddr(truth.CaptureHost["ipv6"])
	local := func(a netip.Addr) bool { return a == host4 || a == host6 }

	// The Top under test, at its default capacities.
	tp := top.New(top.Config{Filters: 2, Seed: 1})
	dirs := [2]string{"RX", "TX"}
	var exact [2][]exactEvent
	results := map[classify.Result]top.Result{
		classify.Timeout: top.Timeout, classify.Reject: top.Reject,
		classify.Unreach: top.Unreach, classify.Abort: top.Abort,
	}
	c := classify.New(classify.Config{
		Timeout:     5 * time.Second, // gencap's timeouts retransmit at 1 s and 3 s
		MaxSessions: 1 << 20,
		ICMP:        true,
		Match: func(init, resp netip.Addr, _ uint16) uint64 {
			switch {
			case local(resp):
				return 1 // RX
			case local(init):
				return 2 // TX
			}
			return 0
		},
		Emit: func(ev *classify.Event) {
			r, failed := results[ev.Result]
			if ev.Kind != classify.Ended || !failed {
				return
			}
			for i := range dirs {
				if ev.Filters&(1<<i) == 0 {
					continue
				}
				peer := ev.Init // RX: the client
				if i == 1 {
					peer = ev.Resp // TX: the server
				}
				tp.Add(i, peer, ev.RespPort, r, ev.End)
				exact[i] = append(exact[i], exactEvent{pair{peer, ev.RespPort}, r, ev.End})
			}
		},
		Seed: 1,
	})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := capture.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	var fr capture.Frame
	var p decode.Packet
	var last int64
	for {
		if err := rd.Next(&fr); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if dec.Decode(&p, fr.LinkType, fr.Data, fr.NoVerify) == decode.OK {
			c.Handle(&p, fr.Time)
		}
		last = fr.Time
	}
	c.Advance(last + int64(time.Minute)) // every attempt left times out
	if n := c.InProgress(); n != 0 {
		t.Fatalf("%d attempts still in progress", n)
	}

	got := tp.Snapshot(top.MaxN, last)
	for i, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			counts, ports, total := exactOf(exact[i], func(int64) bool { return true })
			tt := truth.ByPeer[dir]
			if want := truth.All[dir].Failure.Total; total != want || len(counts) != tt.Distinct || len(tt.Top) != top.MaxN {
				t.Fatalf("the classifier found %d failures of %d pairs, gencap made %d of %d (%d in its list): the comparison would be moot",
					total, len(counts), want, tt.Distinct, len(tt.Top))
			}
			for _, w := range tt.Top {
				c := counts[pair{netip.MustParseAddr(w.Peer), w.Port}]
				if c == nil || c.failures != w.Failures || c.res != [4]uint64{w.Timeout, w.Reject, w.Unreach, 0} {
					t.Fatalf("the classifier's counts for %s:%d are %+v, gencap's %+v", w.Peer, w.Port, c, w)
				}
			}
			ft := got[i]
			for _, l := range []struct {
				what     string
				rows     []top.Peer
				capacity int
			}{
				// The capture lasts 18 s and its last timeouts end 8 s
				// later: all of it lies in the last minute.
				{"since_start", ft.SinceStart, top.DefaultCapacity},
				{"last_minute", ft.LastMinute, top.DefaultWindowCapacity},
			} {
				// Every pair with more than total/capacity failures is
				// tracked; it is listed if it also has more than the
				// last row, which ranks after it.
				floor := max(float64(total)/float64(l.capacity), float64(l.rows[len(l.rows)-1].Failures))
				maxErr := checkBounds(t, l.what, l.rows, counts, floor, false)
				// How the first rows compare with the truth's first ones.
				for _, k := range []int{10, 100, 1000} {
					var exactRows, sameRank, found int
					var errK uint64
					want := map[pair]bool{}
					for _, w := range tt.Top[:k] {
						want[pair{netip.MustParseAddr(w.Peer), w.Port}] = true
					}
					for j, r := range l.rows[:k] {
						if r.Error == 0 {
							exactRows++
						}
						if w := tt.Top[j]; r.Addr.String() == w.Peer && r.Port == w.Port {
							sameRank++
						}
						if want[pair{r.Addr, r.Port}] {
							found++
						}
						errK = max(errK, r.Error)
					}
					t.Logf("%s, first %4d rows: %4d of the truth's first %d, %4d at its rank, %4d exact, largest error %d (true counts down to %d)",
						l.what, k, found, k, sameRank, exactRows, errK, tt.Top[k-1].Failures)
					// At the default capacities the heavy hitters stand
					// far above the sketches' error: the first 100 rows
					// are the truth's, in its order, exact.
					if k <= 100 && (sameRank != k || exactRows != k) {
						t.Errorf("%s: of the first %d rows, %d rank as the truth does, %d are exact", l.what, k, sameRank, exactRows)
					}
				}
				t.Logf("%s: %d failures, %d failing pairs; %d rows, largest error %d (%.2f%% of the failures)",
					l.what, total, len(counts), len(l.rows), maxErr, 100*float64(maxErr)/float64(total))
			}
			checkServices(t, "services", ft.Services, ports)
			checkServices(t, "services_last_minute", ft.ServicesLastMinute, ports)
		})
	}
}
