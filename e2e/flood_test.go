//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/testutil"
)

// floodStats is what the flood test reads of STATS.
type floodStats struct {
	Now     string `json:"now"`
	Filters []struct {
		Name    string `json:"name"`
		Success struct {
			Total uint64 `json:"total"`
		} `json:"success"`
		Failure struct {
			Total   uint64 `json:"total"`
			Timeout uint64 `json:"timeout"`
			Reject  uint64 `json:"reject"`
		} `json:"failure"`
		Displaced uint64 `json:"displaced"`
	} `json:"filters"`
	Capture struct {
		Packets uint64 `json:"packets"`
		Drops   uint64 `json:"drops"`
	} `json:"capture"`
	Sessions struct {
		InProgress uint64 `json:"in_progress"`
		Displaced  uint64 `json:"displaced"`
	} `json:"sessions"`
}

// TestLiveSYNFlood floods a live daemon with spoofed SYNs, to an open port
// and to a closed one, at more than ten times its table's size a second,
// while real clients connect from an address of their own (SPEC §11):
// every real connection is counted with the result the client saw, the
// real attempts that time out during the flood are displaced rather than
// counted, the table's displacements are counted, and the memory is bounded
// and given back after the flood.
func TestLiveSYNFlood(t *testing.T) {
	t.Parallel()
	requireLab(t)
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("needs hping3 (Debian package hping3) to flood")
	}
	const (
		table    = 2000
		real     = 100 // successful real connections
		refused  = 20  // refused ones
		timedOut = 4   // ones whose SYNs are dropped: they time out
	)
	l := newLab(t)
	realAddr := netip.MustParseAddr("10.99.0.3")
	l.ip("-n", l.b, "addr", "add", realAddr.String()+"/24", "dev", "veth-b")
	// A answers the spoofed sources through B, where the answers die.
	l.ip("-n", l.a, "route", "add", "default", "via", addrB4.String())
	l.iptables(l.a, false, "INPUT -p tcp --dport 82 -j DROP")
	open := netip.AddrPortFrom(addrA4, 80)
	l.listen(l.a, []netip.AddrPort{open})

	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "-B", "64", "--max-sessions", strconv.Itoa(table), "real:RX@"+realAddr.String()+":*")
	query := func() floodStats {
		var st floodStats
		if err := json.Unmarshal(d.query("STATS"), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	rssStart := testutil.RSSKiB(d.pid())

	// The flood, to the open port and to a closed one.
	var floods []*process
	for _, port := range []string{"80", "81"} {
		cmd := exec.Command("ip", "netns", "exec", l.b, "hping3", "--flood", "-q", "-S", "--rand-source", "-p", port, addrA4.String())
		floods = append(floods, l.start("hping3 -p "+port, cmd, false))
	}
	stopFloods := func() {
		for _, p := range floods {
			if !p.exited() {
				p.cmd.Process.Signal(syscall.SIGINT)
			}
		}
		for _, p := range floods {
			waitExit(t, p)
		}
	}
	defer stopFloods()
	// Its rate, from the SYNs the daemon displaces.
	first := query()
	t0 := time.Now()
	if !waitFor(countTimeout, func() bool { return query().Sessions.Displaced > first.Sessions.Displaced+10*table }) {
		t.Fatalf("the flood displaces nothing: %+v", query())
	}
	st := query()
	rate := float64(st.Capture.Packets-first.Capture.Packets) / time.Since(t0).Seconds()
	t.Logf("flood: %.0f packets/s into a table of %d", rate, table)
	if rate < 10*table {
		t.Skipf("hping3 sends %.0f packets/s here, less than ten times the table of %d: not a flood", rate, table)
	}

	// The real clients, during the flood.
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	dial := func(port uint16, remote netip.AddrPort, timeout time.Duration) {
		defer wg.Done()
		out := l.dial(l.b, netip.AddrPortFrom(realAddr, port), remote, timeout)
		mu.Lock()
		outcomes[fmt.Sprintf("%d %s", remote.Port(), out)]++
		mu.Unlock()
	}
	peak := testutil.RSSKiB(d.pid())
	for i := range timedOut {
		wg.Add(1)
		go dial(uint16(40000+i), netip.AddrPortFrom(addrA4, 82), 10*time.Second)
	}
	for i := range real {
		wg.Add(1)
		dial(uint16(41000+i), open, 5*time.Second)
		if i < refused {
			wg.Add(1)
			dial(uint16(42000+i), netip.AddrPortFrom(addrA4, 81), 5*time.Second)
		}
		peak = max(peak, testutil.RSSKiB(d.pid()))
	}
	wg.Wait()
	peak = max(peak, testutil.RSSKiB(d.pid()))
	stopFloods()
	want := map[string]int{"80 connected": real, "81 refused": refused, "82 timeout": timedOut}
	for k, v := range want {
		if outcomes[k] != v {
			t.Fatalf("the clients saw %v, want %v", outcomes, want)
		}
	}

	// Every real connection counted with its result; the timed-out ones
	// displaced, not counted.
	var got floodStats
	ok := waitFor(countTimeout, func() bool {
		got = query()
		f := got.Filters[2]
		return f.Success.Total == real && f.Failure.Reject == refused && f.Displaced >= timedOut
	})
	f := got.Filters[2]
	t.Logf("real: %d successes, %d rejects, %d timeouts, %d displaced; table: %d displaced in all; drops %d; RSS %d KiB at the start, %d at the peak",
		f.Success.Total, f.Failure.Reject, f.Failure.Timeout, f.Displaced, got.Sessions.Displaced, got.Capture.Drops, rssStart, peak)
	if !ok {
		t.Errorf("filter real: %d successes (want %d), %d rejects (want %d), %d displaced (want at least %d, the timed-out attempts)",
			f.Success.Total, real, f.Failure.Reject, refused, f.Displaced, timedOut)
	}
	if got.Capture.Drops > 0 {
		t.Errorf("the kernel dropped %d packets: the counts cannot be trusted", got.Capture.Drops)
	}

	// The memory comes back near where it was within a minute and a half.
	var now int
	back := waitFor(90*time.Second, func() bool {
		now = testutil.RSSKiB(d.pid())
		return now <= rssStart+max((peak-rssStart)/4, 16<<10)
	})
	t.Logf("RSS after the flood: %d KiB", now)
	if !back {
		t.Errorf("RSS %d KiB 90 s after the flood: not back near its start (%d KiB; peak %d KiB)", now, rssStart, peak)
	}
	d.stop(syscall.SIGTERM)
}
