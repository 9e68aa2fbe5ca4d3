//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Capture filters of TestLiveCounts, in tcpdump's language, for the count of
// packets that tcpeek's kernel filter lets through (STATS capture.packets).
// In the lab's traffic, tcpeek takes at least the SYNs, SYN/ACKs and RSTs
// and the ICMP and ICMPv6 destination unreachables, whichever kernel filter
// runs; at most every TCP segment (the classic filter takes the FINs and
// ACKs that close the connections too, the eBPF one only the ACKs that
// complete handshakes), those ICMP errors, and the IPv6 packets that begin
// with a hop-by-hop header: the MLD reports that Linux sends, at times of
// its own choosing, when an interface comes up or gets an address. So
// tcpeek counts at least the packets of liveCertain, which are all the
// test's doing, and at most those of liveCaptureFilter, which tcpdump
// captures from before tcpeek starts until after it is read.
const (
	liveErrors        = "(icmp and icmp[icmptype] == icmp-unreach) or (icmp6 and ip6[40] == 1)"
	liveCertain       = "(ip and tcp[tcpflags] & (tcp-syn|tcp-rst) != 0) or (ip6 and ip6[6] == 6 and ip6[53] & 0x06 != 0) or " + liveErrors
	liveCaptureFilter = "tcp or " + liveErrors + " or (ip6 and ip6[6] == 0)"
)

// timeoutSlack is how late, beyond --timeout, a live tcpeek may count a
// timeout on a quiet link. Its clock runs half a second behind the wall
// clock, advanced every 200 ms poll; the rest is for a loaded machine (-race,
// parallel tests).
const timeoutSlack = 1500 * time.Millisecond

// TestLiveCounts runs tcpeek -i on the monitored host of a lab, makes the
// handshakes of TestRealStacksCapture (every kind, both families, both
// directions, the same filters), and checks every counter of every filter
// over the stats socket: STATS, GET (the original tool's array, also as
// tcpeekstat -j prints it), REFRESH (the deltas, then zeros) and
// tcpeekstat's table. Nothing moves the clock after the last handshake: the
// timeout sessions must end on the wall clock alone, neither before their
// last SYN + --timeout nor much after it.
func TestLiveCounts(t *testing.T) {
	t.Parallel()
	requireLab(t)
	start := time.Now()
	go buildTools() // meanwhile

	l := newLab(t)
	ss := pick(sessions(), func(s *session) bool { return s.kind != finalKind && s.kind != pendingKind })
	setupSessions(l, ss)
	c := l.startCaptureFilter(filepath.Join(t.TempDir(), "live.pcap"), liveCaptureFilter)
	t.Cleanup(func() {
		if t.Failed() {
			release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
			t.Logf("Linux %s; what veth-a saw (tcpdump -nn -r):\n%s", strings.TrimSpace(string(release)), c.text())
		}
	})
	sockDir := shortTempDir(t)
	sock := filepath.Join(sockDir, "tcpeek.sock")
	args := append([]string{"--icmp", "-t", strconv.Itoa(int(tcpeekTimeout / time.Second))}, filterExprs()...)
	d := l.startDaemon(sock, slices.Concat(args, []string{"-q", "--web.listen-address=127.0.0.1:" + liveMetricsPort})...)
	// A second daemon prints the session lines, -o json.
	js := l.startDaemon(filepath.Join(sockDir, "json.sock"), slices.Concat(args, []string{"-o", "json"})...)
	setup := time.Since(start)

	dialAll(t, l, ss)

	// What the kernels did, as in TestRealStacksCapture: if this fails,
	// the kinds do not describe this kernel, and tcpeek is not to blame.
	// tcpdump may write the last packets a little late.
	waitFor(5*time.Second, func() bool { return len(kernelDiffs(c.packets(), ss)) == 0 })
	pkts := c.packets()
	checkKernel(t, pkts, ss)

	// The final counts, with no traffic after the handshakes: the timeout
	// sessions end when tcpeek's clock, on a quiet link the wall clock,
	// passes their last SYN + --timeout.
	want := wantStats(ss)
	var timeouts uint64
	var firstSYN, lastSYN time.Time // the earliest and latest deadline - timeout
	for _, s := range ss {
		if s.kind.result != resTimeout {
			continue
		}
		timeouts++
		var last time.Time
		for _, p := range pkts {
			if p.src == s.client && p.dst == s.server && p.flags == "S" {
				last = maxTime(last, p.time)
			}
		}
		if firstSYN.IsZero() || last.Before(firstSYN) {
			firstSYN = last
		}
		lastSYN = maxTime(lastSYN, last)
	}
	var firstSeen, allSeen time.Time // when STATS first showed one, all timeouts
	st := d.waitStats("the final counts", func(st liveStats) (bool, string) {
		seen := time.Now()
		n := st.Filters[0].Failure.Timeout + st.Filters[1].Failure.Timeout
		if n > 0 && firstSeen.IsZero() {
			firstSeen = seen
		}
		if n >= timeouts && allSeen.IsZero() {
			allSeen = seen
		}
		diff := filtersDiff(st.Filters, want.Filters)
		if st.Sessions != want.Sessions {
			diff += fmt.Sprintf("\nsessions %+v, want %+v", st.Sessions, want.Sessions)
		}
		return diff == "", diff
	})
	traffic := time.Since(start) - setup
	if early := firstSYN.Add(tcpeekTimeout); firstSeen.Before(early) {
		t.Errorf("a timeout was counted at %v, before the earliest deadline, %v (last SYN + %v)",
			firstSeen.Format(time.StampMicro), early.Format(time.StampMicro), tcpeekTimeout)
	}
	if late := lastSYN.Add(tcpeekTimeout + timeoutSlack); allSeen.After(late) {
		t.Errorf("the last timeout was counted at %v, %v after its deadline (last SYN + %v): want at most %v",
			allSeen.Format(time.StampMicro), allSeen.Sub(lastSYN.Add(tcpeekTimeout)), tcpeekTimeout, timeoutSlack)
	}
	t.Logf("timeouts counted %v after the deadline of the last one (its SYN + %v)",
		allSeen.Sub(lastSYN.Add(tcpeekTimeout)).Round(time.Millisecond), tcpeekTimeout)

	if st.Pending != 0 {
		t.Errorf("pending %d in live mode, want 0", st.Pending)
	}
	checkMetrics(t, l, st)
	if cp := st.Capture; cp.Drops != 0 || cp.IfDrops != 0 || cp.BadChecksum != 0 || cp.Duplicates != 0 {
		t.Errorf("capture %+v: want no drops, no bad checksums, no copies", cp)
	}
	checkStatsTimes(t, st, start)

	// capture.packets: the packets tcpeek's kernel filter let through.
	c.stop()
	after := d.stats()
	if most, least := c.count(liveCaptureFilter), c.count(liveCertain); st.Capture.Packets > most || after.Capture.Packets < least {
		t.Errorf("capture.packets %d (then %d): want between %d (SYN, RST, ICMP errors) and %d (all TCP, and MLD) as tcpdump saw them",
			st.Capture.Packets, after.Capture.Packets, least, most)
	}

	// GET: the original array, with the same counts, as tcpeekstat -j
	// prints it. An MLD report may change pcap.recv meanwhile: take one
	// that GET gives before and after tcpeekstat -j.
	var get, getJ string
	var before, afterGet liveStats
	if !waitFor(5*time.Second, func() bool {
		before = d.stats()
		get = string(d.query("GET"))
		code, out, errs := l.tcpeekstat("", "-U", sock, "-j")
		if code != 0 {
			t.Fatalf("tcpeekstat -j: exit %d: %s", code, errs)
		}
		getJ = out
		afterGet = d.stats()
		return string(d.query("GET")) == get && getJ == get
	}) {
		t.Errorf("tcpeekstat -j printed\n%s\nnot the answer to GET:\n%s", getJ, get)
	}
	cs, pcap, err := parseCounters([]byte(get), true)
	if err != nil {
		t.Fatalf("GET answered %s: %v", get, err)
	}
	if diff := countersDiff(cs, countersOf(want.Filters)); diff != "" {
		t.Errorf("GET:\n%s\nanswer: %s", diff, get)
	}
	if pcap.Recv < before.Capture.Packets || pcap.Recv > afterGet.Capture.Packets || pcap.Drop != 0 || pcap.IfDrop != 0 {
		t.Errorf("GET pcap %+v: want recv between STATS's capture.packets before and after (%d, %d), drop 0, ifdrop 0",
			*pcap, before.Capture.Packets, afterGet.Capture.Packets)
	}

	// REFRESH: since the start the first time, then nothing new.
	for i, w := range [][]counters{countersOf(want.Filters), zeroCounters(want.Filters)} {
		answer := d.query("REFRESH")
		cs, _, err := parseCounters(answer, false)
		if err != nil {
			t.Errorf("REFRESH %d answered %s: %v", i+1, answer, err)
			continue
		}
		if diff := countersDiff(cs, w); diff != "" {
			t.Errorf("REFRESH %d:\n%s\nanswer: %s", i+1, diff, answer)
		}
	}

	// tcpeekstat's table: a row per filter, by name.
	code, table, errs := l.tcpeekstat("", "-U", sock)
	if code != 0 {
		t.Fatalf("tcpeekstat: exit %d: %s", code, errs)
	}
	var names []string
	for _, f := range want.Filters {
		names = append(names, f.Name)
	}
	rows := tableRows(table, names)
	for _, f := range want.Filters {
		row, w := rows[f.Name], tableRow(f)
		if len(row) < len(w) || !slices.Equal(row[:len(w)], w) {
			t.Errorf("tcpeekstat's row of %s: %q, want %q then the handshake times", f.Name, row, w)
		}
	}
	if !strings.Contains(table, " 0 dropped by the kernel, 0 dropped by the interface") {
		t.Errorf("tcpeekstat's table does not say that nothing was dropped")
	}
	if t.Failed() {
		t.Logf("tcpeekstat:\n%s", table)
	}

	d.stop(syscall.SIGTERM)
	sockGone(t, sock)

	// The -o json daemon: a line per session, with the result, the
	// duplicates, the filters, and the times of the capture; then, at
	// SIGINT, STATS.
	js.stop(syscall.SIGINT)
	got, lines := sessionLines(t, js.stdout.String())
	for _, line := range lines[:len(lines)-1] {
		checkLineTimes(t, line, ss, pkts)
	}
	var wantLines []sessionLine
	for _, s := range ss {
		if wl, ok := wantLine(s); ok {
			wantLines = append(wantLines, wl)
		}
	}
	checkLines(t, got, wantLines)
	last := parseStats(t, lines[len(lines)-1])
	if diff := filtersDiff(last.Filters, want.Filters); diff != "" {
		t.Errorf("the last line of -o json, STATS:\n%s", diff)
	}

	t.Logf("setup %v, traffic until the last count %v, total %v", setup.Round(time.Millisecond),
		traffic.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// lineTimes are the times of a session line of -o json.
type lineTimes struct {
	TS          time.Time `json:"ts"`
	Src         string    `json:"src"`
	Sport       uint16    `json:"sport"`
	HandshakeMS float64   `json:"handshake_ms"`
}

// checkLineTimes checks the times of a session line of -o json against the
// capture of the same packets: ts is the time of the session's first SYN
// and, for a timeout, handshake_ms runs from it to the last SYN + --timeout
// exactly (SPEC §4 rule 8), on the clock of the packets, not of the daemon.
func checkLineTimes(t *testing.T, line string, ss []*session, pkts []packet) {
	t.Helper()
	var lt lineTimes
	if err := json.Unmarshal([]byte(line), &lt); err != nil {
		t.Errorf("session line %s: %v", line, err)
		return
	}
	src, err := netip.ParseAddr(lt.Src)
	if err != nil {
		t.Errorf("session line %s: src: %v", line, err)
		return
	}
	client := netip.AddrPortFrom(src, lt.Sport)
	for _, s := range ss {
		if s.client != client {
			continue
		}
		var first, last time.Time
		for _, p := range pkts {
			if p.src == s.client && p.dst == s.server && p.flags == "S" {
				if first.IsZero() {
					first = p.time
				}
				last = p.time
			}
		}
		const tolerance = time.Millisecond
		if d := lt.TS.Sub(first); d < -tolerance || d > tolerance {
			t.Errorf("%v: ts %v, want the first SYN's time in the capture, %v", s, lt.TS.Format(time.StampMicro), first.Format(time.StampMicro))
		}
		if s.kind.result == resTimeout {
			want := float64(last.Add(tcpeekTimeout).Sub(first)) / float64(time.Millisecond)
			if d := lt.HandshakeMS - want; d < -1 || d > 1 {
				t.Errorf("%v: handshake_ms %.3f, want %.3f (from the first SYN to the last one + %v)", s, lt.HandshakeMS, want, tcpeekTimeout)
			}
		}
		return
	}
}

// checkStatsTimes checks the times of a live STATS: start no earlier than
// the test (live, it is the daemon's start or its first packet), now on the
// wall clock, not behind it.
func checkStatsTimes(t *testing.T, st liveStats, testStart time.Time) {
	t.Helper()
	start, err1 := time.Parse(time.RFC3339Nano, st.Start)
	now, err2 := time.Parse(time.RFC3339Nano, st.Now)
	if err1 != nil || err2 != nil {
		t.Errorf("STATS start %q, now %q: not RFC 3339", st.Start, st.Now)
		return
	}
	if start.Before(testStart.Add(-time.Second)) || now.Before(start) {
		t.Errorf("STATS start %v, now %v: want the daemon's start, then a later time", start, now)
	}
	if lag := time.Since(now); lag < -time.Second || lag > time.Second {
		t.Errorf("STATS now %v is %v behind the wall clock (the daemon publishes its counters at least every 250 ms)", now, lag)
	}
	if st.Version == "" {
		t.Error("STATS has no version")
	}
}

// sessionLineRE matches a real-time line: TIME | TIMESTAMP | SRC DST |
// RESULT | DUPS.
var sessionLineRE = regexp.MustCompile(`^ *[0-9]+\.[0-9]{3} \| [0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{3} \| (.*) \| (.{17}) \| +([0-9]+) +([0-9]+) *$`)

// textLine finds the real-time line of s in a daemon's stderr and returns
// "RESULT | DUPSYN DUPSYNACK", and whether it found one. The header and its
// rule must come before it.
func textLine(stderr string, s *session) (string, bool) {
	header := false
	lines := strings.Split(stderr, "\n")
	for i, line := range lines {
		if line == textHeader && i+1 < len(lines) && strings.Trim(lines[i+1], "-") == "" && len(lines[i+1]) > 100 {
			header = true
			continue
		}
		m := sessionLineRE.FindStringSubmatch(line)
		if !header || m == nil {
			continue
		}
		ends := strings.Fields(m[1])
		if len(ends) == 2 && ends[0] == s.client.String() && ends[1] == s.server.String() {
			return strings.TrimSpace(m[2]) + " | " + m[3] + " " + m[4], true
		}
	}
	return "", false
}

// summaryCounts parses the summary on a daemon's stderr: by filter name,
// "Success: N session" and "Failure: N session"; recv is "" if there is no
// "recv" line.
func summaryCounts(stderr string) (names []string, counts map[string]string, recv string) {
	_, summary, ok := strings.Cut(stderr, "========== TCPEEK SUMMARY ==========\n")
	if !ok {
		return nil, nil, ""
	}
	counts = map[string]string{}
	name := ""
	sc := bufio.NewScanner(strings.NewReader(summary))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "   recv   : "):
			recv = strings.TrimPrefix(line, "   recv   : ")
		case strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "  ") && line != " pcap stats":
			name = strings.TrimSpace(line)
			names = append(names, name)
		case name != "" && (strings.HasPrefix(line, "   Success: ") || strings.HasPrefix(line, "   Failure: ")):
			counts[name] += strings.TrimSpace(line) + "; "
		}
	}
	return names, counts, recv
}

// TestLiveSignals checks how a live tcpeek treats signals and prints as it
// runs: the real-time lines (text on stderr, and -o json on stdout) of a
// handshake while it runs; SIGHUP logged and ignored (it still counts);
// SIGTERM (text) and SIGINT (JSON) print the summary, remove the socket and
// exit 0.
func TestLiveSignals(t *testing.T) {
	t.Parallel()
	requireLab(t)
	go buildTools()
	l := newLab(t)
	all := sessions()
	one := func(dir string, fam *family) *session {
		ss := pick(all, func(s *session) bool { return s.kind == kinds[0] && s.dir == dir && s.fam == fam })
		return ss[0]
	}
	s1, s2 := one("RX", ipv4), one("TX", ipv6) // successes
	setupSessions(l, []*session{s1, s2})
	dir := shortTempDir(t)
	text := l.startDaemon(filepath.Join(dir, "text.sock"), append([]string{"-t", "2", "--icmp"}, filterExprs()...)...)
	js := l.startDaemon(filepath.Join(dir, "json.sock"), append([]string{"-t", "2", "-o", "json"}, filterExprs()...)...)

	// A line while the daemon runs, after the header.
	waitLine := func(s *session) {
		t.Helper()
		wl, _ := wantLine(s)
		want := fmt.Sprintf("%s | %d %d", resultWords[wl.Result], wl.DupSyn, wl.DupSynAck)
		var got string
		if !waitFor(countTimeout, func() bool {
			var ok bool
			got, ok = textLine(text.stderr.String(), s)
			return ok
		}) {
			t.Fatalf("no real-time line for %v on stderr after %v; stderr:\n%s", s, countTimeout, text.stderr.String())
		}
		if got != want {
			t.Errorf("the line of %v says %q, want %q", s, got, want)
		}
		if !waitFor(countTimeout, func() bool { return hasJSONLine(js.stdout.String(), wl) }) {
			t.Errorf("no JSON line %v on stdout of the -o json daemon after %v; stdout:\n%s", wl, countTimeout, js.stdout.String())
		}
	}
	dialAll(t, l, []*session{s1})
	waitLine(s1)

	// SIGHUP: logged, ignored. The daemon still answers and counts.
	if err := text.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(countTimeout, func() bool { return strings.Contains(text.stderr.String(), "SIGHUP") || text.exited() }) ||
		text.exited() {
		t.Fatalf("after SIGHUP: exited %v (%v), stderr:\n%s", text.exited(), text.err, text.stderr.String())
	}
	dialAll(t, l, []*session{s2})
	waitLine(s2)
	want := wantStats([]*session{s1, s2})
	for _, d := range []*daemon{text, js} {
		d.waitStats("both handshakes", func(st liveStats) (bool, string) {
			diff := filtersDiff(st.Filters, want.Filters)
			return diff == "", diff
		})
	}
	if text.exited() {
		t.Fatalf("the daemon exited after SIGHUP: %v", text.err)
	}

	// SIGTERM: the summary of every filter, then exit 0 without the socket.
	stderr := text.stop(syscall.SIGTERM)
	sockGone(t, text.sock)
	names, counts, recv := summaryCounts(stderr)
	var wantNames []string
	for _, f := range want.Filters {
		wantNames = append(wantNames, f.Name)
		w := fmt.Sprintf("Success: %d session; Failure: %d session; ", f.Success.Total, f.Failure.Total)
		if counts[f.Name] != w {
			t.Errorf("the summary of %s says %q, want %q", f.Name, counts[f.Name], w)
		}
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("the summary names the filters %q, want %q", names, wantNames)
	}
	if n, err := strconv.ParseUint(recv, 10, 64); err != nil || n == 0 {
		t.Errorf("the summary's recv line says %q, want the packets received", recv)
	}
	if !strings.Contains(stderr, "ICMP Unreachable") {
		t.Errorf("the summary has no ICMP Unreachable line, with --icmp")
	}
	if t.Failed() {
		t.Logf("stderr of the text daemon:\n%s", stderr)
	}

	// SIGINT, -o json: the session lines, then STATS as the last line.
	js.stop(syscall.SIGINT)
	sockGone(t, js.sock)
	got, lines := sessionLines(t, js.stdout.String())
	var wantLines []sessionLine
	for _, s := range []*session{s1, s2} {
		wl, _ := wantLine(s)
		wantLines = append(wantLines, wl)
	}
	checkLines(t, got, wantLines)
	last := parseStats(t, lines[len(lines)-1])
	if diff := filtersDiff(last.Filters, want.Filters); diff != "" {
		t.Errorf("the STATS line at SIGINT:\n%s", diff)
	}
	if strings.Contains(js.stderr.String(), "SUMMARY") {
		t.Errorf("-o json printed the text summary on stderr too:\n%s", js.stderr.String())
	}
}

// jsonLines splits stdout into its complete lines.
func jsonLines(stdout string) []string {
	if i := strings.LastIndexByte(stdout, '\n'); i >= 0 {
		return strings.Split(stdout[:i], "\n")
	}
	return nil
}

// sessionLines parses the session lines of tcpeek -o json's stdout, all its
// lines but the last (STATS), and returns them and all the lines.
func sessionLines(t *testing.T, stdout string) ([]sessionLine, []string) {
	t.Helper()
	lines := jsonLines(stdout)
	if len(lines) == 0 {
		t.Fatalf("tcpeek -o json printed nothing on stdout")
	}
	var got []sessionLine
	for _, line := range lines[:len(lines)-1] {
		var sl sessionLine
		if err := json.Unmarshal([]byte(line), &sl); err != nil {
			t.Fatalf("not a session line: %v: %s", err, line)
		}
		got = append(got, sl)
	}
	return got, lines
}

// hasJSONLine tells whether stdout has the session line want.
func hasJSONLine(stdout string, want sessionLine) bool {
	for _, line := range jsonLines(stdout) {
		var sl sessionLine
		if json.Unmarshal([]byte(line), &sl) == nil && sl.String() == want.String() {
			return true
		}
	}
	return false
}

// waitExit waits until p exits and returns its exit status; it fails the
// test if p does not exit within stopTimeout.
func waitExit(t *testing.T, p *process) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not exit within %v; stderr:\n%s", p.name, stopTimeout, p.stderr.String())
	}
	if p.cmd.ProcessState == nil {
		t.Fatalf("%s did not start: %v", p.name, p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// TestLiveSocketLifecycle checks the stats socket's file (SPEC §7): the
// directories made for it (0755 whatever the umask), its mode (0660), a
// second daemon on the same path (exit 1, "already running", the first one
// unharmed), a path that is not a socket (exit 1, left alone), a stale
// socket that nobody answers on (replaced), and its removal at exit.
func TestLiveSocketLifecycle(t *testing.T) {
	t.Parallel()
	requireLab(t)
	go buildTools()
	l := newLab(t)
	base := shortTempDir(t)
	sock := filepath.Join(base, "run", "tcpeek", "tcpeek.sock")

	// The first daemon, with a umask that would make both private.
	first := l.startDaemonCmd(sock, l.tcpeekCmd("077", "-U", sock, "-q"))
	for _, dir := range []string{filepath.Join(base, "run"), filepath.Dir(sock)} {
		if mode, st := statOf(t, dir); !mode.IsDir() || mode.Perm() != 0o755 || st.Uid != 0 {
			t.Errorf("%s: %v, uid %d: want a directory with mode 0755 owned by root", dir, mode, st.Uid)
		}
	}
	mode, st := statOf(t, sock)
	if mode.Type() != os.ModeSocket || mode.Perm() != 0o660 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s: %v, uid %d gid %d: want a socket with mode 0660 owned by root", sock, mode, st.Uid, st.Gid)
	}
	ino := st.Ino

	// A second daemon on the same path.
	second := l.startTcpeek("-U", sock, "-q")
	if code := waitExit(t, second); code != 1 || !strings.Contains(second.stderr.String(), "already running") {
		t.Errorf("a second tcpeek on %s: exit %d, stderr %q; want exit 1 and a message that says \"already running\"",
			sock, code, second.stderr.String())
	}
	if _, st := statOf(t, sock); st.Ino != ino {
		t.Errorf("the second tcpeek replaced the socket of the first")
	}
	first.stats() // still answers
	if first.exited() {
		t.Fatalf("the first daemon exited: %v", first.err)
	}

	// A path that is not a socket is left alone.
	file := filepath.Join(base, "file.sock")
	if err := os.WriteFile(file, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := l.startTcpeek("-U", file, "-q")
	if code := waitExit(t, other); code != 1 || !strings.Contains(other.stderr.String(), file) {
		t.Errorf("tcpeek -U %s (a regular file): exit %d, stderr %q; want exit 1 and a message that names the path",
			file, code, other.stderr.String())
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me\n" {
		t.Errorf("tcpeek touched %s, a regular file in the socket's place: %q, %v", file, b, err)
	}

	first.stop(syscall.SIGTERM)
	sockGone(t, sock)

	// A stale socket: bound, then closed without unlinking it.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := query(sock, "STATS"); err == nil {
		t.Fatalf("the stale socket %s answers", sock)
	}
	if mode, _ := statOf(t, sock); mode.Type() != os.ModeSocket {
		t.Fatalf("the stale socket %s is %v", sock, mode)
	}
	third := l.startDaemon(sock, "-q") // it answers: the stale socket is replaced
	if mode, _ := statOf(t, sock); mode.Type() != os.ModeSocket || mode.Perm() != 0o660 {
		t.Errorf("%s after replacing the stale socket: %v, want a socket with mode 0660", sock, mode)
	}

	// The protocol's edges: CRLF, an unknown request, a silent client.
	if b := third.query("STATS\r"); !strings.HasPrefix(string(b), `{"version":`) {
		t.Errorf("STATS with CRLF: %q", b)
	}
	if b := third.query("HELLO"); string(b) != `{"error":"unknown request"}`+"\n" {
		t.Errorf("an unknown request: %q, want {\"error\":\"unknown request\"}", b)
	}
	silent, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	connected := time.Now()
	third.stats() // another client is served meanwhile
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := silent.Read(make([]byte, 1))
	if dropped := time.Since(connected); n != 0 || err == nil || dropped > 3*time.Second || dropped < 900*time.Millisecond {
		t.Errorf("a client that sends nothing: read %d bytes (%v) after %v; want EOF, without an answer, after 1 s", n, err, dropped.Round(time.Millisecond))
	}

	third.stop(syscall.SIGTERM)
	sockGone(t, sock)

	// tcpeekstat when no tcpeek runs: one line, exit 1.
	code, stdout, stderr := l.tcpeekstat("", "-U", sock)
	if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, sock) {
		t.Errorf("tcpeekstat without tcpeek: exit %d, stdout %q, stderr %q; want exit 1 and one line that names the socket", code, stdout, stderr)
	}
}

// TestLiveDropPrivileges runs tcpeek -u nobody: the capture and the socket
// are opened as root, then every thread runs with nobody's user, group and
// groups and no capability; the socket and the directory made for it belong
// to nobody; the capture keeps counting, the interface's addresses are still
// read again (an address added while it runs is local); at SIGTERM it
// still removes its socket and exits 0.
func TestLiveDropPrivileges(t *testing.T) {
	t.Parallel()
	requireLab(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("needs the user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatalf("the groups of nobody: %v", err)
	}
	slices.Sort(gids)
	go buildTools()
	l := newLab(t)
	s1 := pick(sessions(), func(s *session) bool { return s.kind == kinds[0] && s.dir == "RX" && !s.fam.v6 })[0]
	setupSessions(l, []*session{s1})

	base := shortTempDir(t) // 0755: nobody can reach its socket to remove it
	sock := filepath.Join(base, "run", "tcpeek.sock")
	d := l.startDaemon(sock, "-u", "nobody", "-q", "-t", "2")

	// Every thread's credentials.
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", d.pid()))
	if strings.TrimSpace(string(comm)) != "tcpeek" {
		t.Fatalf("process %d is %q, not tcpeek", d.pid(), comm)
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", d.pid()))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", d.pid(), err)
	}
	four := func(n int) string { return strings.Repeat(strconv.Itoa(n)+" ", 4) }
	want := map[string]string{
		"Uid":    four(uid),
		"Gid":    four(gid),
		"Groups": strings.Join(gids, " ") + " ",
		"CapEff": "0000000000000000 ",
		"CapPrm": "0000000000000000 ",
		"CapInh": "0000000000000000 ",
		"CapAmb": "0000000000000000 ",
	}
	for _, task := range append([]string{fmt.Sprintf("/proc/%d/status", d.pid())}, tasks...) {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if _, asked := want[k]; ok && asked {
				f := strings.Fields(v)
				if k == "Groups" {
					slices.Sort(f)
				}
				got[k] = strings.Join(f, " ") + " "
			}
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s: %q, want %q (nobody)", task, k, strings.TrimSpace(got[k]), strings.TrimSpace(w))
			}
		}
	}

	// The socket and its directory belong to nobody.
	if mode, st := statOf(t, sock); mode.Type() != os.ModeSocket || mode.Perm() != 0o660 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v, uid %d gid %d: want a socket with mode 0660 owned by %d:%d", sock, mode, st.Uid, st.Gid, uid, gid)
	}
	if mode, st := statOf(t, filepath.Dir(sock)); !mode.IsDir() || mode.Perm() != 0o755 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v, uid %d gid %d: want a directory with mode 0755 owned by %d:%d", filepath.Dir(sock), mode, st.Uid, st.Gid, uid, gid)
	}

	// The capture works.
	dialAll(t, l, []*session{s1})
	d.waitStats("the handshake", func(st liveStats) (bool, string) {
		return st.Filters[0].Success.Total == 1, fmt.Sprintf("RX success %d, want 1", st.Filters[0].Success.Total)
	})

	// An address added to veth-a is local within a few seconds (tcpeek
	// reads the addresses every 2 s): a handshake to it counts in RX, where
	// before it counts nowhere (neither end is local). Connect until one
	// counts, giving each handshake half a second to show in STATS (the
	// daemon publishes its counters every 250 ms).
	added := netip.MustParseAddr("10.99.0.3")
	l.ip("-n", l.a, "addr", "add", added.String()+"/24", "dev", "veth-a")
	server := netip.AddrPortFrom(added, 7002)
	l.listen(l.a, []netip.AddrPort{server})
	tries := 0
	if !waitFor(countTimeout, func() bool {
		tries++
		if out := l.dial(l.b, netip.AddrPortFrom(addrB4, 0), server, 10*time.Second); out != outConnected {
			t.Fatalf("connect to %v: %s", server, out)
		}
		return waitFor(500*time.Millisecond, func() bool { return d.stats().Filters[0].Success.Total >= 2 })
	}) {
		t.Errorf("after %d handshakes in %v, none to %v, an address added to veth-a, counted in RX", tries, countTimeout, added)
	}
	t.Logf("the added address was local after %d handshakes", tries)

	d.stop(syscall.SIGTERM)
	sockGone(t, sock)
	if !strings.Contains(d.stderr.String(), "========== TCPEEK SUMMARY ==========") {
		t.Errorf("no summary at SIGTERM:\n%s", d.stderr.String())
	}
}

// liveMetricsPort is where the counting daemon serves /metrics, on the
// loopback of its namespace.
const liveMetricsPort = "19696"

// checkMetrics scrapes the daemon's /metrics inside its namespace and
// compares every filter's handshakes by result with STATS.
func checkMetrics(t *testing.T, l *lab, st liveStats) {
	t.Helper()
	out, err := l.helperCmd(l.a, "get", "http://127.0.0.1:"+liveMetricsPort+"/metrics").Output()
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	text := string(out)
	for _, f := range st.Filters {
		for _, r := range []struct {
			result string
			n      uint64
		}{
			{"success", f.Success.Total}, {"timeout", f.Failure.Timeout}, {"reject", f.Failure.Reject},
			{"unreach", f.Failure.Unreach}, {"abort", f.Failure.Abort},
		} {
			line := fmt.Sprintf("tcpeek_handshakes_total{filter=%q,result=%q} %d\n", f.Name, r.result, r.n)
			if !strings.Contains(text, line) {
				t.Errorf("/metrics has no line %q (STATS counts %d)", strings.TrimSpace(line), r.n)
			}
		}
		line := fmt.Sprintf("tcpeek_handshake_duration_seconds_count{filter=%q} %d\n", f.Name, f.HandshakeMS.Count)
		if !strings.Contains(text, line) {
			t.Errorf("/metrics has no line %q", strings.TrimSpace(line))
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}
