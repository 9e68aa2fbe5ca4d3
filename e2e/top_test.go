//go:build linux

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLiveTop makes refused connections from B to A and asks the live
// daemon who is failing: TOP must name B's address and the refused port
// with every attempt, in the RX filter (the peer of RX is the client), and
// STATS must carry the same list under the filter's top key.
func TestLiveTop(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "web:RX@*:7999")
	const n = 25
	l.refuse(n)
	d.waitRejects(n)

	var top struct {
		Filters []struct {
			Name       string `json:"name"`
			SinceStart []struct {
				Peer     string `json:"peer"`
				Port     uint16 `json:"port"`
				Failures uint64 `json:"failures"`
				Reject   uint64 `json:"reject"`
				Error    uint64 `json:"error"`
			} `json:"since_start"`
			LastMinute []struct {
				Peer     string `json:"peer"`
				Failures uint64 `json:"failures"`
			} `json:"last_minute"`
			Services []struct {
				Port     uint16 `json:"port"`
				Failures uint64 `json:"failures"`
			} `json:"services"`
		} `json:"filters"`
	}
	b := d.query("TOP 3")
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("TOP answered %s: %v", b, err)
	}
	if len(top.Filters) != 3 {
		t.Fatalf("TOP has %d filters, want RX, TX and web: %s", len(top.Filters), b)
	}
	for _, i := range []int{0, 2} { // RX and web
		f := top.Filters[i]
		if len(f.SinceStart) != 1 || f.SinceStart[0].Peer != addrB4.String() || f.SinceStart[0].Port != 7999 ||
			f.SinceStart[0].Failures != n || f.SinceStart[0].Reject != n || f.SinceStart[0].Error != 0 {
			t.Errorf("TOP of %s since start: %+v, want %v port 7999 with %d rejects", f.Name, f.SinceStart, addrB4, n)
		}
		if len(f.LastMinute) != 1 || f.LastMinute[0].Failures != n {
			t.Errorf("TOP of %s in the last minute: %+v", f.Name, f.LastMinute)
		}
		if len(f.Services) != 1 || f.Services[0].Port != 7999 || f.Services[0].Failures != n {
			t.Errorf("TOP of %s services: %+v", f.Name, f.Services)
		}
	}
	if len(top.Filters[1].SinceStart) != 0 {
		t.Errorf("TX has failing peers: %+v", top.Filters[1].SinceStart)
	}
	var st struct {
		Filters []struct {
			Top struct {
				SinceStart []struct {
					Peer     string `json:"peer"`
					Failures uint64 `json:"failures"`
				} `json:"since_start"`
			} `json:"top"`
		} `json:"filters"`
	}
	// STATS' lists may be up to a tenth of a second old.
	ok := waitFor(countTimeout, func() bool {
		if err := json.Unmarshal(d.query("STATS"), &st); err != nil {
			t.Fatal(err)
		}
		s := st.Filters[0].Top.SinceStart
		return len(s) == 1 && s[0].Peer == addrB4.String() && s[0].Failures == n
	})
	if !ok {
		t.Errorf("STATS top of RX: %+v", st.Filters[0].Top.SinceStart)
	}
}

// TestLiveTcpeekstatWho asks a live daemon who is failing the way an
// operator does, with tcpeekstat: --top names the client of the refused
// connections, and --watch, its output not a terminal, prints tables that
// show the failures and that client.
func TestLiveTcpeekstatWho(t *testing.T) {
	t.Parallel()
	requireLab(t)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "web:RX@*:7999")
	const n = 12
	l.refuse(n)
	d.waitRejects(n)

	code, out, errOut := l.tcpeekstat("", "-U", sock, "--top=5")
	if code != 0 {
		t.Fatalf("tcpeekstat --top: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, addrB4.String()) || !strings.Contains(out, "7999") {
		t.Errorf("tcpeekstat --top does not name %v port 7999:\n%s", addrB4, out)
	}

	bin := requireTools(t).tcpeekstat
	cmd := exec.Command(bin, "-U", sock, "--watch", "--interval=200ms")
	var wout syncBuffer
	cmd.Stdout = &wout
	p := l.start("tcpeekstat --watch", cmd, false)
	// Two tables: the second has rates; the last minute's peers are there
	// from the first.
	if !waitFor(countTimeout, func() bool { return strings.Count(wout.String(), addrB4.String()) >= 2 }) {
		t.Fatalf("tcpeekstat --watch did not show %v twice:\n%s", addrB4, wout.String())
	}
	if s := wout.String(); strings.Contains(s, "\x1b") {
		t.Errorf("tcpeekstat --watch wrote escape codes to a pipe:\n%q", s)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, p); code != 0 {
		t.Errorf("tcpeekstat --watch exited %d after SIGTERM", code)
	}
}
