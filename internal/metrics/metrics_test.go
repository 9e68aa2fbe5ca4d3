package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixedStats returns counters made from a fixed set of events.
func fixedStats(t *testing.T) *stats.Stats {
	t.Helper()
	st := stats.New([]stats.FilterInfo{
		{Name: "RX", Direction: "RX", Rules: []string{"*:*"}},
		{Name: "TX", Direction: "TX", Rules: []string{"*:*"}},
		{Name: "web", Direction: "RX", Rules: []string{"*:80", "*:443"}},
	}, time.Unix(1700000000, 0), 1000)
	ms := int64(time.Millisecond)
	events := []classify.Event{
		{Result: classify.Success, Filters: 0b101, Start: 0, SynAck: 1 * ms, SawSynAck: true, End: 2 * ms},
		{Result: classify.Success, Filters: 0b101, Start: 0, SynAck: 1000 * ms, SawSynAck: true, End: 1001 * ms, DupSYN: 1},
		{Result: classify.Success, Filters: 0b010, Start: 0, SynAck: 20 * ms, SawSynAck: true, End: 40 * ms, DupSYNACK: 2},
		{Result: classify.Timeout, Filters: 0b010, Start: 0, End: 63000 * ms, DupSYN: 5},
		{Result: classify.Reject, Filters: 0b001, Start: 0, End: 1 * ms},
		{Result: classify.Unreach, Filters: 0b010, Start: 0, End: 3 * ms, ICMPType: 3, ICMPCode: 1},
		{Result: classify.Abort, Filters: 0b101, Start: 0, SynAck: 1, SawSynAck: true, End: 5 * ms},
		{Kind: classify.LateRetry, Filters: 0b001},
		{Kind: classify.Displaced, Filters: 0b101},
	}
	st.Apply(events)
	st.Update(time.Unix(1700000060, 0), stats.Capture{Packets: 12345, Drops: 3, IfDrops: 1, BadChecksum: 2, Duplicates: 7, KernelFilter: "ebpf"},
		stats.Sessions{InProgress: 9, Overflow: 4, Displaced: 11, Evicted: 6})
	return st
}

// TestCollectorGolden compares the exposition of fixed counters with
// testdata/metrics.golden (go test -update rewrites it).
func TestCollectorGolden(t *testing.T) {
	st := fixedStats(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(st.Snapshot))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/metrics -update makes it)", err)
	}
	if buf.String() != string(want) {
		t.Errorf("exposition differs from %s:\n%s", path, buf.String())
	}
	// The exposition passes Prometheus's own lint.
	problems, err := testutil.CollectAndLint(NewCollector(st.Snapshot))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorAgreesWithStats checks a few values against the snapshot the
// socket serves.
func TestCollectorAgreesWithStats(t *testing.T) {
	st := fixedStats(t)
	c := NewCollector(st.Snapshot)
	snap := st.Snapshot()
	expect := `
# HELP tcpeek_handshakes_total Connection attempts that ended, by filter and result (success, timeout, reject, unreach, abort).
# TYPE tcpeek_handshakes_total counter
`
	var b strings.Builder
	b.WriteString(expect)
	for _, s := range snap.Filters {
		f := s
		for _, r := range []struct {
			name string
			v    uint64
		}{{"abort", s.Failure.Abort}, {"reject", s.Failure.Reject}, {"success", s.Success.Total}, {"timeout", s.Failure.Timeout}, {"unreach", s.Failure.Unreach}} {
			b.WriteString("tcpeek_handshakes_total{filter=\"" + f.Name + "\",result=\"" + r.name + "\"} " + strconv.FormatUint(r.v, 10) + "\n")
		}
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(b.String()), "tcpeek_handshakes_total"); err != nil {
		t.Error(err)
	}
	// Per filter: 5 results, 2 retransmissions, displaced, 2 histograms;
	// then 10 series of the whole monitor.
	if n := testutil.CollectAndCount(c); n != 3*10+10 {
		t.Errorf("%d series, want %d", n, 3*10+10)
	}
}
