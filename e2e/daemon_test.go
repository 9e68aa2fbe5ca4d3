//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Deadlines of the live tests. They are generous: nothing waits for them
// unless something is wrong.
const (
	startTimeout = 10 * time.Second // until a daemon answers on its socket
	stopTimeout  = 10 * time.Second // until a signalled daemon has exited
	countTimeout = 15 * time.Second // until the counters reach their values
)

// daemon is a live tcpeek watching veth-a in namespace A of a lab.
type daemon struct {
	*process
	l    *lab
	sock string // its stats socket
	bins tools
}

// tcpeekCmd returns the command that runs tcpeek -i veth-a with args in
// namespace A. ip netns exec executes tcpeek in its own process, so the
// command's process is tcpeek: its PID, its signals, its exit status. With
// a umask other than "", tcpeek runs with that umask.
func (l *lab) tcpeekCmd(umask string, args ...string) *exec.Cmd {
	l.t.Helper()
	bin := requireTools(l.t).tcpeek
	argv := []string{"netns", "exec", l.a}
	if umask != "" {
		argv = append(argv, "sh", "-c", "umask "+umask+` && exec "$0" "$@"`)
	}
	argv = append(argv, bin, "-i", "veth-a")
	return exec.Command("ip", append(argv, args...)...)
}

// startTcpeek starts tcpeek -i veth-a with args in namespace A and returns
// at once.
func (l *lab) startTcpeek(args ...string) *process {
	l.t.Helper()
	return l.start("tcpeek "+strings.Join(args, " "), l.tcpeekCmd("", args...), false)
}

// startDaemon starts tcpeek -i veth-a -U sock with args in namespace A and
// waits until it answers STATS on its socket: from then on, its capture is
// open (it opens it before the socket). If the test fails, the daemon's
// stdout and stderr are logged.
func (l *lab) startDaemon(sock string, args ...string) *daemon {
	l.t.Helper()
	return l.startDaemonCmd(sock, l.tcpeekCmd("", append([]string{"-U", sock}, args...)...))
}

// startDaemonCmd starts cmd, a tcpeekCmd with -U sock, and waits until it
// answers STATS.
func (l *lab) startDaemonCmd(sock string, cmd *exec.Cmd) *daemon {
	l.t.Helper()
	t := l.t
	d := &daemon{l: l, sock: sock, bins: requireTools(t)}
	name := cmd.String()
	if i := slices.Index(cmd.Args, d.bins.tcpeek); i >= 0 {
		name = "tcpeek " + strings.Join(cmd.Args[i+1:], " ")
	}
	d.process = l.start(name, cmd, false)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (exited: %v, %v)\nstdout:\n%s\nstderr:\n%s", d.name, d.exited(), d.err, d.stdout.String(), d.stderr.String())
		}
	})
	var err error
	answered := waitFor(startTimeout, func() bool {
		if d.exited() {
			return true
		}
		_, err = query(sock, "STATS")
		return err == nil
	})
	if d.exited() || !answered {
		t.Fatalf("%s does not answer on %s after %v (exited: %v, %v): %v\nstderr:\n%s",
			d.name, sock, startTimeout, d.exited(), d.err, err, d.stderr.String())
	}
	return d
}

// pid returns the daemon's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// query sends one request line to the stats socket at path and returns the
// answer, read until EOF.
func query(path, request string) ([]byte, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request+"\n"); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// query sends a request to the daemon and fails the test if it does not
// answer.
func (d *daemon) query(request string) []byte {
	d.l.t.Helper()
	b, err := query(d.sock, request)
	if err != nil {
		d.l.t.Fatalf("%s on %s: %v (daemon exited: %v)", request, d.sock, err, d.exited())
	}
	return b
}

// liveStats is the STATS object, with the fields that statsObject leaves
// out.
type liveStats struct {
	statsObject
	Version string `json:"version"`
	Start   string `json:"start"`
	Now     string `json:"now"`
}

// stats asks the daemon for STATS.
func (d *daemon) stats() liveStats {
	d.l.t.Helper()
	b := d.query("STATS")
	var st liveStats
	if err := json.Unmarshal(b, &st); err != nil || len(st.Filters) == 0 {
		d.l.t.Fatalf("STATS answered something else (%v): %s", err, b)
	}
	return st
}

// waitStats polls STATS until ok holds for it, and fails the test with the
// last answer and what is wrong with it (ok's second result) if it does not
// within countTimeout.
func (d *daemon) waitStats(what string, ok func(liveStats) (bool, string)) liveStats {
	d.l.t.Helper()
	var st liveStats
	var why string
	var good bool
	waitFor(countTimeout, func() bool {
		st = d.stats()
		good, why = ok(st)
		return good || d.exited()
	})
	if !good {
		d.l.t.Fatalf("STATS did not show %s within %v: %s\nlast STATS: %+v", what, countTimeout, why, st)
	}
	return st
}

// filtersDiff describes how the filters of got differ from want ("" if they
// do not).
func filtersDiff(got, want []filterStats) string {
	var diff []string
	if len(got) != len(want) {
		diff = append(diff, fmt.Sprintf("%d filters, want %d", len(got), len(want)))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			diff = append(diff, fmt.Sprintf("filter %d (%s):\n got  %+v\n want %+v", i, want[i].Name, got[i], want[i]))
		}
	}
	return strings.Join(diff, "\n")
}

// signal sends sig to the daemon and waits until it has exited; it fails the
// test unless the daemon exits 0 within stopTimeout. It returns its stderr.
func (d *daemon) stop(sig syscall.Signal) string {
	d.l.t.Helper()
	t := d.l.t
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %v to %s: %v", sig, d.name, err)
	}
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not exit within %v of %v\nstderr:\n%s", d.name, stopTimeout, sig, d.stderr.String())
	}
	if d.err != nil {
		t.Fatalf("%s after %v: %v, want exit status 0\nstderr:\n%s", d.name, sig, d.err, d.stderr.String())
	}
	return d.stderr.String()
}

// tcpeekstat runs tcpeekstat with args in namespace ns ("": the test's own)
// and returns its exit status, stdout and stderr.
func (l *lab) tcpeekstat(ns string, args ...string) (code int, stdout, stderr string) {
	l.t.Helper()
	bin := requireTools(l.t).tcpeekstat
	cmd := exec.Command(bin, args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		l.t.Fatalf("tcpeekstat %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// counters are a filter's counters in the answers to GET and REFRESH: the
// original tool's keys ("abort" is new).
type counters struct {
	name             string
	success, failure map[string]uint64
}

// Keys of GET and REFRESH (SPEC §7): those of the original tool first, then
// the ones tcpeek appends.
var (
	successKeys = []string{"total", "dupsyn", "dupsynack"}
	failureKeys = []string{"total", "timeout", "reject", "unreach"}
	failureNew  = []string{"abort"}
)

// pcapStats is the last object of the answer to GET.
type pcapStats struct {
	Recv   uint64 `json:"recv"`
	Drop   uint64 `json:"drop"`
	IfDrop uint64 `json:"ifdrop"`
}

// parseCounters decodes the answer to GET (withPcap) or REFRESH: an array
// of one-key objects, {"NAME":{"success":{...},"failure":{...}}}, one per
// named filter, then for GET {"pcap":{"stats":{...}}}. It checks the shape
// strictly: the original tool's consumers parse it.
func parseCounters(answer []byte, withPcap bool) ([]counters, *pcapStats, error) {
	if !strings.HasSuffix(string(answer), "]\n") || strings.Count(string(answer), "\n") != 1 {
		return nil, nil, errors.New("not one line of JSON ending in ]")
	}
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(answer, &objs); err != nil {
		return nil, nil, err
	}
	var cs []counters
	var pcap *pcapStats
	for i, o := range objs {
		if len(o) != 1 {
			return nil, nil, fmt.Errorf("object %d has %d keys, want 1", i, len(o))
		}
		for name, raw := range o {
			if withPcap && i == len(objs)-1 {
				if name != "pcap" {
					return nil, nil, fmt.Errorf("the last object is %q, want pcap", name)
				}
				var p map[string]map[string]uint64
				if err := json.Unmarshal(raw, &p); err != nil {
					return nil, nil, fmt.Errorf("pcap: %w", err)
				}
				if len(p) != 1 || !sameKeys(p["stats"], []string{"recv", "drop", "ifdrop"}, nil) {
					return nil, nil, fmt.Errorf("pcap is %s, want {\"stats\":{\"recv\":N,\"drop\":N,\"ifdrop\":N}}", raw)
				}
				pcap = &pcapStats{Recv: p["stats"]["recv"], Drop: p["stats"]["drop"], IfDrop: p["stats"]["ifdrop"]}
				continue
			}
			var sections map[string]map[string]uint64
			if err := json.Unmarshal(raw, &sections); err != nil {
				return nil, nil, fmt.Errorf("filter %s: %w", name, err)
			}
			if len(sections) != 2 || !sameKeys(sections["success"], successKeys, nil) ||
				!sameKeys(sections["failure"], failureKeys, failureNew) {
				return nil, nil, fmt.Errorf("filter %s is %s: want success with %v and failure with %v (and perhaps %v)",
					name, raw, successKeys, failureKeys, failureNew)
			}
			cs = append(cs, counters{name, sections["success"], sections["failure"]})
		}
	}
	if withPcap && pcap == nil {
		return nil, nil, errors.New("no pcap object")
	}
	return cs, pcap, nil
}

// sameKeys tells whether m has every key of keys, and no other but those of
// optional.
func sameKeys(m map[string]uint64, keys, optional []string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	for k := range m {
		if !slices.Contains(keys, k) && !slices.Contains(optional, k) {
			return false
		}
	}
	return true
}

// countersOf returns the GET counters of the STATS filters fs, as they must
// be.
func countersOf(fs []filterStats) []counters {
	var cs []counters
	for _, f := range fs {
		cs = append(cs, counters{
			name: f.Name,
			success: map[string]uint64{
				"total": f.Success.Total, "dupsyn": f.Success.DupSyn, "dupsynack": f.Success.DupSynAck,
			},
			failure: map[string]uint64{
				"total": f.Failure.Total, "timeout": f.Failure.Timeout, "reject": f.Failure.Reject,
				"unreach": f.Failure.Unreach, "abort": f.Failure.Abort,
			},
		})
	}
	return cs
}

// zeroCounters returns the counters of filters fs all at zero.
func zeroCounters(fs []filterStats) []counters {
	zero := make([]filterStats, len(fs))
	for i, f := range fs {
		zero[i] = filterStats{Name: f.Name}
	}
	return countersOf(zero)
}

// countersDiff describes how got differs from want ("" if it does not).
func countersDiff(got, want []counters) string {
	var diff []string
	if len(got) != len(want) {
		diff = append(diff, fmt.Sprintf("%d filters, want %d", len(got), len(want)))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.name != w.name {
			diff = append(diff, fmt.Sprintf("filter %d is %q, want %q", i, g.name, w.name))
			continue
		}
		for _, sec := range []struct {
			name      string
			got, want map[string]uint64
		}{{"success", g.success, w.success}, {"failure", g.failure, w.failure}} {
			for k, wv := range sec.want {
				if gv, ok := sec.got[k]; ok && gv != wv {
					diff = append(diff, fmt.Sprintf("%s %s.%s = %d, want %d", w.name, sec.name, k, gv, wv))
				}
			}
		}
	}
	return strings.Join(diff, "\n")
}

// tableRows parses the filters' rows of tcpeekstat's table: FILTER DIR and
// the counters, by filter name.
func tableRows(table string, names []string) map[string][]string {
	rows := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 2 && slices.Contains(names, f[0]) {
			rows[f[0]] = f[1:]
		}
	}
	return rows
}

// tableRow returns what tcpeekstat's row of filter f must hold, after the
// name: DIR, success total, dupsyn, dupsynack, failure total, timeout,
// reject, unreach, abort (then the handshake times, not compared).
func tableRow(f filterStats) []string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return []string{f.Direction,
		u(f.Success.Total), u(f.Success.DupSyn), u(f.Success.DupSynAck),
		u(f.Failure.Total), u(f.Failure.Timeout), u(f.Failure.Reject), u(f.Failure.Unreach), u(f.Failure.Abort)}
}

// shortTempDir returns a new directory, removed when the test ends, with a
// short path (a socket's path is at most 107 bytes) that every user can
// traverse (mode 0755), unlike t.TempDir's.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tpk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// statOf returns the mode and owner of path, not following a symbolic link.
func statOf(t *testing.T, path string) (os.FileMode, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.Sys().(*syscall.Stat_t)
}

// filterExprs returns the user's filters of the filters table, as given on
// the command line.
func filterExprs() []string {
	var exprs []string
	for _, f := range filters {
		if f.expr != "" {
			exprs = append(exprs, f.expr)
		}
	}
	return exprs
}

// pick returns the sessions of ss for which keep holds.
func pick(ss []*session, keep func(*session) bool) []*session {
	var out []*session
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// sockGone fails the test unless nothing is left at path.
func sockGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket %s is still there after the daemon exited (Lstat: %v)", path, err)
	}
}
