//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tcpeek/tcpeek/internal/gmondtest"
)

// The Ganglia programs of Debian's ganglia-monitor package.
const (
	gmondPath   = "/usr/sbin/gmond"
	gmetricPath = "/usr/bin/gmetric"
)

// gmond's ports in namespace A, where nothing else listens.
const (
	gmondUDPPort = 8649
	gmondTCPPort = 8650
)

// gmetricItems are the counters tcpeekstat -g sends for each filter
// (SPEC §8), as section and item of GET's counters.
var gmetricItems = [...]struct{ section, item string }{
	{"success", "dupsyn"},
	{"success", "dupsynack"},
	{"failure", "timeout"},
	{"failure", "reject"},
	{"failure", "unreach"},
	{"failure", "abort"},
}

// TestLiveGanglia runs a real gmond in namespace A, a live tcpeek on veth-a
// and handshakes of every kind that ends at once, both directions, IPv4 and
// IPv6; tcpeekstat -g then sends, through the real gmetric, the changes
// since the previous -g of every filter's counters, which gmond's XML must
// show: first everything, then only one more rejected handshake.
func TestLiveGanglia(t *testing.T) {
	t.Parallel()
	requireLab(t)
	for _, p := range []string{gmondPath, gmetricPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not found (install Debian's ganglia-monitor to run this test): %v", p, err)
		}
	}
	go buildTools()
	l := newLab(t)

	// gmond, listening on 127.0.0.1 in namespace A only, and a gmetric
	// that sends there.
	dir := t.TempDir()
	conf := filepath.Join(dir, "gmond.conf")
	if err := os.WriteFile(conf, []byte(gmondtest.Config(gmondUDPPort, gmondTCPPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	gmond := l.start("gmond in "+l.a, exec.Command("ip", "netns", "exec", l.a, gmondPath, "-f", "-c", conf), false)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gmond's output:\n%s%s", gmond.stdout.String(), gmond.stderr.String())
		}
	})
	wrapper := filepath.Join(dir, "gmetric")
	script := "#!/bin/sh\nexec " + gmetricPath + " -c '" + conf + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	// Every kind but the timeout (it takes seconds) and the excluded one
	// (nothing to send).
	ss := pick(sessions(), func(s *session) bool {
		switch s.kind {
		case finalKind, pendingKind:
			return false
		}
		return s.tracked() && s.kind.result != resTimeout
	})
	setupSessions(l, ss)
	sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
	d := l.startDaemon(sock, append([]string{"--icmp", "-t", "2", "-q"}, filterExprs()...)...)
	if !waitFor(startTimeout, func() bool { _, err := l.gmondMetrics(); return err == nil || gmond.exited() }) || gmond.exited() {
		t.Fatalf("gmond does not answer on its XML port (exited: %v, %v)", gmond.exited(), gmond.err)
	}

	dialAll(t, l, ss)
	want := wantStats(ss)
	d.waitStats("the counts", func(st liveStats) (bool, string) {
		diff := filtersDiff(st.Filters, want.Filters)
		return diff == "", diff
	})
	gmetric := func() {
		t.Helper()
		code, stdout, stderr := l.tcpeekstat(l.a, "-U", sock, "-g", "--gmetric-path", wrapper)
		if code != 0 {
			t.Fatalf("tcpeekstat -g: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	}
	gmetric()
	l.waitMetrics(countersOf(want.Filters))

	// One more rejected handshake: the next -g sends it, and zeros.
	reject := pick(sessions(), func(s *session) bool { return s.kind.result == resReject && s.dir == "RX" && !s.fam.v6 })[0]
	again := newSession(reject.kind, reject.fam, reject.dir, reject.server.Port(), reject.client.Port()+50)
	dialAll(t, l, []*session{again})
	want = wantStats(append(ss, again))
	d.waitStats("the last rejected handshake", func(st liveStats) (bool, string) {
		diff := filtersDiff(st.Filters, want.Filters)
		return diff == "", diff
	})
	gmetric()
	l.waitMetrics(countersOf(wantStats([]*session{again}).Filters))
}

// gmondMetrics reads gmond's XML in namespace A (through a helper process
// there) and returns "VAL TYPE UNITS" by metric name.
func (l *lab) gmondMetrics() (map[string]string, error) {
	out, err := l.helperCmd(l.a, "fetch", fmt.Sprintf("127.0.0.1:%d", gmondTCPPort)).Output()
	if err != nil {
		return nil, fmt.Errorf("reading gmond's XML: %w", err)
	}
	return gmondtest.Metrics(out)
}

// waitMetrics polls gmond until it shows, for every filter of cs, the
// metric tcpeek_FILTER_SECTION_ITEM of every counter tcpeekstat -g sends,
// with the value of cs, and fails the test if it does not within
// countTimeout.
func (l *lab) waitMetrics(cs []counters) {
	l.t.Helper()
	want := make(map[string]string)
	for _, c := range cs {
		for _, it := range gmetricItems {
			v := c.success[it.item]
			if it.section == "failure" {
				v = c.failure[it.item]
			}
			want["tcpeek_"+c.name+"_"+it.section+"_"+it.item] = strconv.FormatUint(v, 10) + " uint32 sessions"
		}
	}
	var diff []string
	if waitFor(countTimeout, func() bool {
		got, err := l.gmondMetrics()
		diff = gmondtest.Diff(got, want)
		if err != nil {
			diff = append(diff, err.Error())
		}
		return len(diff) == 0
	}) {
		return
	}
	l.t.Fatalf("gmond's metrics after %v:\n%s", countTimeout, strings.Join(diff, "\n"))
}
