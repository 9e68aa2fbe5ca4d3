//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpeekTimeout is tcpeek's handshake timeout (-t). It is longer than the
// 1 s after which Linux retransmits a SYN or SYN/ACK, so that every
// retransmission counts on its session, pending or failed, and short enough
// that the timeout sessions end before the capture does.
const tcpeekTimeout = 2 * time.Second

// family is an IP version, with the lab's addresses in it.
type family struct {
	name        string
	v6          bool
	a, b        netip.Addr // the monitored host and its peer
	portUnreach string     // iptables --reject-with for an ICMP port unreachable
	icmpCode    int        // that message's code
}

var (
	ipv4 = &family{"IPv4", false, addrA4, addrB4, "icmp-port-unreachable", 3}
	ipv6 = &family{"IPv6", true, addrA6, addrB6, "icmp6-port-unreachable", 4}
)

// Results as tcpeek's JSON Lines spell them, and two that never appear there:
// untracked (a session that an exclusion filter removes) and pending (in
// progress at the end of the capture).
const (
	resSuccess   = "success"
	resTimeout   = "timeout"
	resReject    = "reject"
	resUnreach   = "unreach"
	resAbort     = "abort"
	resUntracked = ""
	resPending   = "pending"
)

// kind is one way for a handshake to go: how the namespaces are set up for
// it, what the client's connect reports, and what tcpeek must make of the
// capture. Rule specs are iptables arguments after -A, in which {port} is the
// server's port and {unreach} the family's port-unreachable message.
type kind struct {
	name        string
	port        uint16 // the server's port; 0: one per family and direction
	offset      uint16 // with port 0, the server's port is 7000+100*variant+offset
	listen      bool   // a server listens on the port
	serverRules []string
	clientRules []string
	dialTimeout time.Duration // 0: send the SYN and close the socket at once
	outcome     string        // what the client's connect reports
	result      string        // what tcpeek reports
	// dupSyn and dupSynAck are the duplicates on the session's line.
	dupSyn, dupSynAck int
	// lateDupSyn counts SYNs that come after the session ended (SPEC §4
	// rule 9): they count in failure.dupsyn, but not on the line.
	lateDupSyn perFamily
}

// perFamily is a number that differs between IPv4 and IPv6.
type perFamily struct{ v4, v6 int }

func (p perFamily) of(f *family) int {
	if f.v6 {
		return p.v6
	}
	return p.v4
}

// kinds are the handshakes made in both families and both directions.
var kinds = []*kind{{
	name: "success", offset: 1, listen: true,
	dialTimeout: 10 * time.Second, outcome: outConnected, result: resSuccess,
}, {
	// A closed port: the server's kernel answers the SYN with an RST.
	name: "reject", offset: 2,
	dialTimeout: 10 * time.Second, outcome: outRefused, result: resReject,
}, {
	// The server's netfilter answers the SYN with an ICMP port
	// unreachable. It reaches the client while connect() still holds the
	// socket lock: veth delivers synchronously, so the SYN, the REJECT and
	// the ICMP are all handled in the softirq that runs when the SYN is
	// sent (the kernel counts TcpExtLockDroppedIcmps). A locked socket
	// takes the ICMP as a soft error and stays in SYN-SENT. Then the
	// families differ: since Linux 5.8, tcp_v4_err queues the ICMP on the
	// socket's error queue even without IP_RECVERR (ipv6_icmp_error checks
	// IPV6_RECVERR first), so epoll wakes Go's non-blocking connect at
	// once and it fails with the soft error, ECONNREFUSED: one SYN. An
	// IPv6 socket is not woken: its SYN is retransmitted after 1 s with
	// the same ISN, the second ICMP finds the socket unlocked and ends the
	// attempt. So IPv6 has one SYN after the session ended as unreach: it
	// counts in failure.dupsyn (one session, rule 9), not on the line. (A
	// blocking connect sleeps until the state changes and retries in both
	// families; an ICMP from a remote host, arriving after connect has let
	// go of the lock, ends the attempt at once in both.)
	name: "unreach", offset: 3,
	serverRules: []string{"INPUT -p tcp --dport {port} -j REJECT --reject-with {unreach}"},
	dialTimeout: 10 * time.Second, outcome: outRefused, result: resUnreach,
	lateDupSyn: perFamily{v4: 0, v6: 1},
}, {
	// SYNs vanish in the server: the client sends the SYN, its
	// retransmission 1 s later, and gives up 2 s after that. The session
	// ends at the last SYN + tcpeek's timeout.
	name: "timeout", offset: 4,
	serverRules: []string{"INPUT -p tcp --dport {port} -j DROP"},
	dialTimeout: 10 * time.Second, outcome: outTimeout, result: resTimeout,
	dupSyn: 1,
}, {
	// The server drops the first SYN after the capture point saw it (in
	// B's INPUT for TX, in A's INPUT for RX: tcpdump sees a packet before
	// netfilter does): the capture holds the SYN and its retransmission.
	name: "lost-syn", offset: 5, listen: true,
	serverRules: []string{"INPUT -p tcp --syn --dport {port} -m statistic --mode nth --every 2 --packet 0 -j DROP"},
	dialTimeout: 10 * time.Second, outcome: outConnected, result: resSuccess,
	dupSyn: 1,
}, {
	// The client drops the first SYN/ACK where it arrives, after the
	// capture saw it, and drops its own retransmitted SYN before it leaves
	// (so it is never on the wire): the SYN/ACK retransmission that
	// completes the handshake comes from the server's own timer, 1 s after
	// the first. The capture, on either side, has one SYN and two SYN/ACKs.
	name: "lost-synack", offset: 6, listen: true,
	clientRules: []string{
		"INPUT -p tcp --sport {port} --tcp-flags SYN,ACK,RST SYN,ACK -m statistic --mode nth --every 2 --packet 0 -j DROP",
		"OUTPUT -p tcp --syn --dport {port} -m statistic --mode nth --every 2 --packet 1 -j DROP",
	},
	dialTimeout: 10 * time.Second, outcome: outConnected, result: resSuccess,
	dupSynAck: 1,
}, {
	// The client sends its SYN and closes the socket at once, which sends
	// nothing in SYN-SENT; it drops the first SYN/ACK where it arrives (it
	// would otherwise complete the handshake before connect returns, veth
	// being that fast). The server's SYN/ACK retransmission, 1 s later,
	// finds no socket: the client's kernel answers with an RST whose seq
	// is the SYN/ACK's ack, ISN+1.
	name: "abort", offset: 7, listen: true,
	clientRules: []string{
		"INPUT -p tcp --sport {port} --tcp-flags SYN,ACK,RST SYN,ACK -m statistic --mode nth --every 2 --packet 0 -j DROP",
	},
	dialTimeout: 0, outcome: outAbandoned, result: resAbort,
	dupSynAck: 1,
}, {
	// A successful handshake on the port of the exclusion filter.
	name: "excluded", port: 9999, listen: true,
	dialTimeout: 10 * time.Second, outcome: outConnected, result: resUntracked,
}}

// The late kinds are made once each, after the others. The after-deadline
// handshake moves packet time past the deadline of the timeout sessions, so
// that they end as timeouts before the capture ends; the pending one is a
// SYN left unanswered as the capture stops.
var (
	finalKind = &kind{
		name: "after-deadline", listen: true,
		dialTimeout: 10 * time.Second, outcome: outConnected, result: resSuccess,
	}
	pendingKind = &kind{
		name:        "pending",
		serverRules: []string{"INPUT -p tcp --dport {port} -j DROP"},
		dialTimeout: 30 * time.Second, result: resPending,
	}
)

// session is one connection attempt of the test.
type session struct {
	kind           *kind
	fam            *family
	dir            string // RX: B connects to a server in A; TX: A connects to B
	client, server netip.AddrPort
}

func (s *session) String() string {
	return fmt.Sprintf("%s %s %s (%v -> %v)", s.dir, s.fam.name, s.kind.name, s.client, s.server)
}

// tracked tells whether tcpeek follows the session: every one but those an
// exclusion filter removes.
func (s *session) tracked() bool { return s.kind.result != resUntracked }

// newSession makes the session of kind k in family fam and direction dir,
// with the server on port and the client on clientPort.
func newSession(k *kind, fam *family, dir string, port, clientPort uint16) *session {
	s := &session{kind: k, fam: fam, dir: dir}
	if dir == "RX" {
		s.client, s.server = netip.AddrPortFrom(fam.b, clientPort), netip.AddrPortFrom(fam.a, port)
	} else {
		s.client, s.server = netip.AddrPortFrom(fam.a, clientPort), netip.AddrPortFrom(fam.b, port)
	}
	return s
}

// sessions returns every kind in both families and directions, each with
// its own ports. Variant v (1 RX IPv4, 2 RX IPv6, 3 TX IPv4, 4 TX IPv6)
// serves kind k on port 7000+100v+k.offset (9999 for the excluded kind) and
// connects from the server's port + 10000 (19900+v for the excluded kind),
// so every 4-tuple is distinct and known in advance. Then come the late
// sessions: the after-deadline one on 7310 (TX IPv4) and the pending one on
// 7211 (RX IPv6).
func sessions() []*session {
	var ss []*session
	v := uint16(0)
	for _, dir := range []string{"RX", "TX"} {
		for _, fam := range []*family{ipv4, ipv6} {
			v++
			for _, k := range kinds {
				port, clientPort := 7000+100*v+k.offset, 17000+100*v+k.offset
				if k.port != 0 {
					port, clientPort = k.port, 19900+v
				}
				ss = append(ss, newSession(k, fam, dir, port, clientPort))
			}
		}
	}
	return append(ss,
		newSession(finalKind, ipv4, "TX", 7310, 17310),
		newSession(pendingKind, ipv6, "RX", 7211, 17211))
}

// filterSpec is a filter of the tcpeek command line and the sessions it
// must count.
type filterSpec struct {
	expr      string // as given on the command line; "" for RX and TX
	name, dir string // as STATS names them; "" for an exclusion filter
	counts    func(*session) bool
}

// filters are the filters of STATS in their order: the default RX and TX,
// then the user's, and one exclusion filter, which is not in STATS.
var filters = []filterSpec{
	{name: "RX", dir: "RX", counts: func(s *session) bool { return s.dir == "RX" }},
	{name: "TX", dir: "TX", counts: func(s *session) bool { return s.dir == "TX" }},
	{expr: ":ANY@*:9999"},
	// ANY compares the address with either end: every IPv6 session, RX
	// (fd99::2 initiates) and TX (fd99::2 responds).
	{expr: "peer6:ANY@[fd99::2/128]:*", name: "peer6", dir: "ANY",
		counts: func(s *session) bool { return s.fam.v6 }},
	// A rule address with host bits set matches its whole network.
	{expr: "b4:TX@10.99.0.77/24:*", name: "b4", dir: "TX",
		counts: func(s *session) bool { return !s.fam.v6 && s.dir == "TX" }},
	// Several rules match RX 7101 (IPv4 success): it counts once.
	{expr: "svc:RX@*:7101:7103,10.99.0.2/32:7101,[fd99::/64]:7201-7203", name: "svc", dir: "RX",
		counts: func(s *session) bool {
			return s.dir == "RX" && slices.Contains([]uint16{7101, 7103, 7201, 7202, 7203}, s.server.Port())
		}},
	// Networks next to the lab's: nothing.
	{expr: "none:ANY@10.99.1.0/24:*,[fd99:1::/32]:*", name: "none", dir: "ANY",
		counts: func(*session) bool { return false }},
}

// filterNames returns the names of the filters that count s, in order.
func filterNames(s *session) []string {
	var names []string
	for _, f := range filters {
		if f.name != "" && s.tracked() && f.counts(s) {
			names = append(names, f.name)
		}
	}
	return names
}

// successCounts and failureCounts are those of a filter in STATS (SPEC §7).
type successCounts struct {
	Total     uint64 `json:"total"`
	DupSyn    uint64 `json:"dupsyn"`
	DupSynAck uint64 `json:"dupsynack"`
}

type failureCounts struct {
	Total     uint64 `json:"total"`
	Timeout   uint64 `json:"timeout"`
	Reject    uint64 `json:"reject"`
	Unreach   uint64 `json:"unreach"`
	Abort     uint64 `json:"abort"`
	DupSyn    uint64 `json:"dupsyn"`
	DupSynAck uint64 `json:"dupsynack"`
}

// filterStats is a filter's object in STATS.
type filterStats struct {
	Name        string        `json:"name"`
	Direction   string        `json:"direction"`
	Success     successCounts `json:"success"`
	Failure     failureCounts `json:"failure"`
	HandshakeMS struct {
		Count uint64 `json:"count"`
	} `json:"handshake_ms"`
}

// statsObject is the STATS object, the last line of tcpeek -o json.
type statsObject struct {
	Filters  []filterStats `json:"filters"`
	Pending  uint64        `json:"pending"`
	Capture  captureCounts `json:"capture"`
	Sessions sessionCounts `json:"sessions"`
}

// captureCounts and sessionCounts are the capture and session-table
// objects of STATS.
type captureCounts struct {
	Packets     uint64 `json:"packets"`
	Drops       uint64 `json:"drops"`
	IfDrops     uint64 `json:"ifdrops"`
	BadChecksum uint64 `json:"bad_checksum"`
	Duplicates  uint64 `json:"duplicates"`
}

type sessionCounts struct {
	InProgress uint64 `json:"in_progress"`
	Overflow   uint64 `json:"overflow"`
}

// sessionLine is a session's object in tcpeek -o json.
type sessionLine struct {
	Src       string   `json:"src"`
	Sport     uint16   `json:"sport"`
	Dst       string   `json:"dst"`
	Dport     uint16   `json:"dport"`
	Result    string   `json:"result"`
	ICMPCode  *int     `json:"icmp_code"`
	DupSyn    int      `json:"dup_syn"`
	DupSynAck int      `json:"dup_synack"`
	Filters   []string `json:"filters"`
}

func (l sessionLine) String() string {
	code := "null"
	if l.ICMPCode != nil {
		code = strconv.Itoa(*l.ICMPCode)
	}
	return fmt.Sprintf("%s:%d -> %s:%d %s icmp_code=%s dup_syn=%d dup_synack=%d filters=%q",
		l.Src, l.Sport, l.Dst, l.Dport, l.Result, code, l.DupSyn, l.DupSynAck, l.Filters)
}

// wantLine returns the JSON line that tcpeek must print for s, if any.
func wantLine(s *session) (sessionLine, bool) {
	k := s.kind
	if !s.tracked() || k.result == resPending {
		return sessionLine{}, false
	}
	l := sessionLine{
		Src: s.client.Addr().String(), Sport: s.client.Port(),
		Dst: s.server.Addr().String(), Dport: s.server.Port(),
		Result: k.result, DupSyn: k.dupSyn, DupSynAck: k.dupSynAck,
		Filters: filterNames(s),
	}
	if k.result == resUnreach {
		code := s.fam.icmpCode
		l.ICMPCode = &code
	}
	return l, true
}

// wantStats returns the STATS that tcpeek must report for ss.
func wantStats(ss []*session) statsObject {
	var want statsObject
	for _, f := range filters {
		if f.name == "" {
			continue
		}
		fs := filterStats{Name: f.name, Direction: f.dir}
		for _, s := range ss {
			k := s.kind
			if !s.tracked() || k.result == resPending || !f.counts(s) {
				continue
			}
			dupSyn := k.dupSyn + k.lateDupSyn.of(s.fam)
			dupSynAck := k.dupSynAck
			if k.result == resSuccess {
				fs.Success.Total++
				fs.Success.DupSyn += b2u(dupSyn > 0)
				fs.Success.DupSynAck += b2u(dupSynAck > 0)
				fs.HandshakeMS.Count++
				continue
			}
			fs.Failure.Total++
			fs.Failure.Timeout += b2u(k.result == resTimeout)
			fs.Failure.Reject += b2u(k.result == resReject)
			fs.Failure.Unreach += b2u(k.result == resUnreach)
			fs.Failure.Abort += b2u(k.result == resAbort)
			fs.Failure.DupSyn += b2u(dupSyn > 0)
			fs.Failure.DupSynAck += b2u(dupSynAck > 0)
		}
		want.Filters = append(want.Filters, fs)
	}
	for _, s := range ss {
		if s.kind.result == resPending {
			want.Pending++
			want.Sessions.InProgress++
		}
	}
	return want
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// TestRealStacksCapture makes real handshakes between two Linux network
// namespaces, captures them with tcpdump on the monitored host's interface,
// and checks that tcpeek -r counts exactly what happened: every counter of
// STATS, every session line of -o json, and the text output. It first checks
// that the capture holds the SYNs and SYN/ACKs the kinds describe, so that a
// kernel that behaves differently is told apart from a tcpeek bug. The
// traffic takes about 4 s (the timeout sessions set the pace), and tcpeek
// is built meanwhile.
func TestRealStacksCapture(t *testing.T) {
	t.Parallel()
	requireLab(t)
	start := time.Now()

	// Build tcpeek while the traffic runs.
	binc := make(chan error, 1)
	go func() {
		_, err := buildTools()
		binc <- err
	}()

	l := newLab(t)
	ss := sessions()
	setupSessions(l, ss)
	c := l.startCapture(filepath.Join(t.TempDir(), "capture.pcap"))
	t.Cleanup(func() {
		if t.Failed() {
			release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
			t.Logf("Linux %s; the capture (tcpdump -nn -r):\n%s", bytes.TrimSpace(release), c.text())
		}
	})
	setup := time.Since(start)

	// Every session but the late ones, all at once.
	var main []*session
	var final, pending *session
	for _, s := range ss {
		switch s.kind {
		case finalKind:
			final = s
		case pendingKind:
			pending = s
		default:
			main = append(main, s)
		}
	}
	dialAll(t, l, main)

	// Packet time must pass the deadline of the timeout sessions (their
	// last SYN + tcpeek's timeout) before the capture ends. Read it in the
	// capture, wait until it has passed, and make one more handshake.
	var deadline time.Time
	c.waitPackets("every SYN of the timeout sessions", 10*time.Second, func(pkts []packet) bool {
		for _, s := range main {
			if s.kind.result != resTimeout {
				continue
			}
			n := 0
			for _, p := range pkts {
				if p.src == s.client && p.dst == s.server && p.flags == "S" {
					n++
					deadline = maxTime(deadline, p.time.Add(tcpeekTimeout))
				}
			}
			if n < 1+s.kind.dupSyn {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Until(deadline.Add(10 * time.Millisecond)))
	dialAll(t, l, []*session{final})

	// A SYN that nothing answers, then the end of the capture, once it
	// holds that SYN and the last ACK of the after-deadline handshake.
	pd := l.startDial(l.clientNS(pending), pending.client, pending.server, pending.kind.dialTimeout)
	c.waitPackets("the pending SYN and the last ACK of the after-deadline handshake", 10*time.Second, func(pkts []packet) bool {
		var syn, ack bool
		for _, p := range pkts {
			syn = syn || p.src == pending.client && p.dst == pending.server && p.flags == "S"
			ack = ack || p.src == final.client && p.dst == final.server && p.flags == "."
		}
		return syn && ack
	})
	c.stop()
	if pd.cmd.Process != nil {
		pd.cmd.Process.Kill()
	}
	traffic := time.Since(start) - setup

	// First, what the kernels did. If this fails, the kinds above do not
	// describe this kernel, and tcpeek is not to blame.
	checkKernel(t, c.packets(), ss)

	if err := <-binc; err != nil {
		t.Fatal(err)
	}
	bin := requireTools(t).tcpeek
	args := []string{"-r", c.path, "--icmp",
		"--local-net", addrA4.String() + "/32", "--local-net", addrA6.String() + "/128",
		"-t", strconv.Itoa(int(tcpeekTimeout / time.Second))}
	for _, f := range filters {
		if f.expr != "" {
			args = append(args, f.expr)
		}
	}
	want := wantStats(ss)
	want.Capture.Packets = c.records()
	var wantLines []sessionLine
	for _, s := range ss {
		if wl, ok := wantLine(s); ok {
			wantLines = append(wantLines, wl)
		}
	}

	t.Run("json-quiet", func(t *testing.T) {
		stdout, _ := runTcpeek(t, bin, append(args, "-q", "-o", "json")...)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 1 {
			t.Errorf("-q -o json printed %d lines, want only STATS:\n%s", len(lines), stdout)
		}
		checkStats(t, parseStats(t, lines[len(lines)-1]), want)
	})
	t.Run("json", func(t *testing.T) {
		stdout, _ := runTcpeek(t, bin, append(args, "-o", "json")...)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		checkStats(t, parseStats(t, lines[len(lines)-1]), want)
		var got []sessionLine
		for _, line := range lines[:len(lines)-1] {
			var sl sessionLine
			if err := json.Unmarshal([]byte(line), &sl); err != nil {
				t.Fatalf("not a session line: %v: %s", err, line)
			}
			got = append(got, sl)
		}
		checkLines(t, got, wantLines)
	})
	t.Run("text", func(t *testing.T) {
		_, stderr := runTcpeek(t, bin, args...)
		checkText(t, stderr, wantLines)
	})
	t.Logf("setup %v, traffic %v, total %v", setup.Round(time.Millisecond), traffic.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
}

// checkKernel checks that the capture holds the SYNs and SYN/ACKs that the
// kinds say each session has: 1 + dupSyn + lateDupSyn SYNs, and, when the
// server answered, 1 + dupSynAck SYN/ACKs.
func checkKernel(t *testing.T, pkts []packet, ss []*session) {
	t.Helper()
	for _, d := range kernelDiffs(pkts, ss) {
		t.Error(d)
	}
}

// kernelDiffs returns what checkKernel finds wrong, one line per session.
func kernelDiffs(pkts []packet, ss []*session) []string {
	var diffs []string
	for _, s := range ss {
		var syns, synAcks int
		for _, p := range pkts {
			switch {
			case p.src == s.client && p.dst == s.server && p.flags == "S":
				syns++
			case p.src == s.server && p.dst == s.client && p.flags == "S.":
				synAcks++
			}
		}
		k := s.kind
		wantSyns, wantSynAcks := 1+k.dupSyn+k.lateDupSyn.of(s.fam), 1+k.dupSynAck
		switch k.result {
		case resReject, resUnreach, resTimeout, resPending:
			wantSynAcks = 0
		}
		if k.result == resPending && syns > 1 {
			syns = 1 // the capture may have lasted until its retransmission
		}
		if syns != wantSyns || synAcks != wantSynAcks {
			diffs = append(diffs, fmt.Sprintf("the kernel did not do what the test expects (not a tcpeek problem): %v: %d SYNs and %d SYN/ACKs in the capture, want %d and %d",
				s, syns, synAcks, wantSyns, wantSynAcks))
		}
	}
	return diffs
}

// parseStats decodes the STATS line.
func parseStats(t *testing.T, line string) statsObject {
	t.Helper()
	var st statsObject
	if err := json.Unmarshal([]byte(line), &st); err != nil || len(st.Filters) == 0 {
		t.Fatalf("the last line is not STATS (%v): %s", err, line)
	}
	return st
}

// clientNS and serverNS return the namespaces of s's client and server: in
// RX, B connects to a server in A; in TX, A connects to a server in B.
func (l *lab) clientNS(s *session) string {
	if s.dir == "RX" {
		return l.b
	}
	return l.a
}

func (l *lab) serverNS(s *session) string {
	if s.dir == "RX" {
		return l.a
	}
	return l.b
}

// setupSessions sets the iptables rules of every session and starts the
// listeners, one helper per namespace, and waits until they listen.
func setupSessions(l *lab, ss []*session) {
	l.t.Helper()
	listeners := map[string][]netip.AddrPort{}
	for _, s := range ss {
		r := strings.NewReplacer("{port}", strconv.Itoa(int(s.server.Port())), "{unreach}", s.fam.portUnreach)
		for _, spec := range s.kind.serverRules {
			l.iptables(l.serverNS(s), s.fam.v6, r.Replace(spec))
		}
		for _, spec := range s.kind.clientRules {
			l.iptables(l.clientNS(s), s.fam.v6, r.Replace(spec))
		}
		if s.kind.listen {
			listeners[l.serverNS(s)] = append(listeners[l.serverNS(s)], s.server)
		}
	}
	for ns, addrs := range listeners {
		l.listen(ns, addrs)
	}
}

// dialAll makes the connection attempts of ss at once and checks what each
// client's connect reported.
func dialAll(t *testing.T, l *lab, ss []*session) {
	t.Helper()
	outcomes := make([]string, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() {
			outcomes[i] = l.dial(l.clientNS(s), s.client, s.server, s.kind.dialTimeout)
		})
	}
	wg.Wait()
	for i, s := range ss {
		if outcomes[i] != s.kind.outcome {
			t.Errorf("%v: connect: %s, want %s", s, outcomes[i], s.kind.outcome)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// runTcpeek runs the tcpeek binary with args, fails the test unless it
// exits 0, and returns its stdout and stderr.
func runTcpeek(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpeek %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// checkStats compares STATS with what it must be, counter by counter.
func checkStats(t *testing.T, got, want statsObject) {
	t.Helper()
	if len(got.Filters) != len(want.Filters) {
		t.Errorf("STATS has %d filters, want %d", len(got.Filters), len(want.Filters))
	}
	for i := range min(len(got.Filters), len(want.Filters)) {
		if g, w := got.Filters[i], want.Filters[i]; g != w {
			t.Errorf("filter %d (%s):\n got  %+v\n want %+v", i, w.Name, g, w)
		}
	}
	if got.Pending != want.Pending {
		t.Errorf("pending %d, want %d", got.Pending, want.Pending)
	}
	if got.Sessions != want.Sessions {
		t.Errorf("sessions %+v, want %+v", got.Sessions, want.Sessions)
	}
	if got.Capture != want.Capture {
		t.Errorf("capture %+v, want %+v", got.Capture, want.Capture)
	}
}

// checkLines compares the session lines of tcpeek -o json with the expected
// ones, in any order.
func checkLines(t *testing.T, got, want []sessionLine) {
	t.Helper()
	key := func(l sessionLine) string { return fmt.Sprintf("%s:%d>%s:%d", l.Src, l.Sport, l.Dst, l.Dport) }
	wantBy := map[string]sessionLine{}
	for _, w := range want {
		wantBy[key(w)] = w
	}
	seen := map[string]bool{}
	for _, g := range got {
		k := key(g)
		w, ok := wantBy[k]
		switch {
		case !ok:
			t.Errorf("unexpected session line: %v", g)
		case seen[k]:
			t.Errorf("second line for one session: %v", g)
		case g.String() != w.String():
			t.Errorf("session line:\n got  %v\n want %v", g, w)
		}
		seen[k] = true
	}
	for _, w := range want {
		if !seen[key(w)] {
			t.Errorf("no session line: want %v", w)
		}
	}
}

// textHeader is the header of the real-time lines (SPEC §6).
const textHeader = " TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     |      RESULTS      | DUP SYN  DUP S/A"

// resultWords are the RESULTS column of the text output.
var resultWords = map[string]string{
	resSuccess: "success",
	resTimeout: "failure (timeout)",
	resReject:  "failure (reject)",
	resUnreach: "failure (unreach)",
	resAbort:   "failure (abort)",
}

// checkText checks tcpeek's text output (stderr): the header, one line per
// ended session with its result and duplicate counts, and the summary.
func checkText(t *testing.T, stderr string, wantLines []sessionLine) {
	t.Helper()
	want := map[string]string{}
	for _, wl := range wantLines {
		src := netip.AddrPortFrom(netip.MustParseAddr(wl.Src), wl.Sport)
		dst := netip.AddrPortFrom(netip.MustParseAddr(wl.Dst), wl.Dport)
		want[src.String()+" "+dst.String()] = fmt.Sprintf("%s | %d %d", resultWords[wl.Result], wl.DupSyn, wl.DupSynAck)
	}
	sc := bufio.NewScanner(strings.NewReader(stderr))
	state := "before"
	seen := map[string]bool{}
	summary := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == textHeader:
			if state != "before" {
				t.Errorf("second header line")
			}
			state = "header"
		case state == "header":
			if strings.Trim(line, "-") != "" {
				t.Errorf("the header is followed by %q, not a rule", line)
			}
			state = "lines"
		case state == "lines" && line == "":
			state = "after"
		case state == "lines":
			f := strings.Split(line, "|")
			if len(f) != 5 {
				t.Errorf("not a session line: %q", line)
				continue
			}
			ends, result, dups := strings.Fields(f[2]), strings.TrimSpace(f[3]), strings.Fields(f[4])
			if len(ends) != 2 || len(dups) != 2 {
				t.Errorf("not a session line: %q", line)
				continue
			}
			k := ends[0] + " " + ends[1]
			got := fmt.Sprintf("%s | %s %s", result, dups[0], dups[1])
			w, ok := want[k]
			switch {
			case !ok:
				t.Errorf("unexpected session line: %q", line)
			case seen[k]:
				t.Errorf("second line for one session: %q", line)
			case got != w:
				t.Errorf("session line %q: got %q, want %q", line, got, w)
			}
			seen[k] = true
		case strings.Contains(line, "========== TCPEEK SUMMARY =========="):
			summary = true
		}
	}
	if state == "before" {
		t.Errorf("no header line %q", textHeader)
	}
	for k, w := range want {
		if !seen[k] {
			t.Errorf("no session line for %s (%s)", k, w)
		}
	}
	if !summary {
		t.Error("no summary")
	}
	if !strings.Contains(stderr, "\n Pending: 1 session\n") {
		t.Error("the summary does not say ' Pending: 1 session'")
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
}
