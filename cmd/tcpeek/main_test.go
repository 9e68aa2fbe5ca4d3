package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite the golden files and the example capture")

// examplePath is the example capture the README runs tcpeek on.
const examplePath = "../../testdata/example.pcap"

func TestMain(m *testing.M) {
	time.Local = time.UTC // golden files hold times
	version = "1.0.0"     // and the version, which go test does not stamp
	os.Exit(m.Run())
}

// TestExampleCapture checks that the committed example capture is what the
// fixture generator makes (go test -update rewrites it).
func TestExampleCapture(t *testing.T) {
	pkts, _, err := fixture.Example()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "example.pcap")
	if err := fixture.WritePcap(tmp, pkts, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(tmp)
	if *update {
		if err := os.WriteFile(examplePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tcpeek -update to make it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what fixture.Example makes; run go test ./cmd/tcpeek -update", examplePath)
	}
}

// result is what one run of tcpeek did.
type result struct {
	status         int
	stdout, stderr string
}

// runTcpeek runs the program in-process with args and returns its outputs.
func runTcpeek(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			w.Write(stdin)
			w.Close()
		}()
		in = r
	}
	status := run(args, in, out, errf)
	out.Close()
	errf.Close()
	in.Close()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return result{status, string(o), string(e)}
}

// golden compares got with testdata/name.golden (or rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tcpeek -update to make it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/tcpeek -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var localNets = []string{"--local-net", "192.0.2.0/24", "--local-net=2001:db8::/64"}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"text-all", []string{"-r", examplePath}},
		{"text-local", append([]string{"-r", examplePath, "--icmp"}, localNets...)},
		{"text-filters", append([]string{"--icmp", "web:RX@*:80:443", "-r", examplePath, "db:TX@198.51.100.0/24:5432,[2001:db8:ff::/48]:8443", ":RX@*:22", "v6:ANY@[2001:db8:ff::/48]:*"}, localNets...)},
		{"text-quiet", append([]string{"-q", "-r", examplePath}, localNets...)},
		{"text-timeout", append([]string{"-r", examplePath, "-t", "2", "--icmp"}, localNets...)},
		{"json", append([]string{"-o", "json", "-r", examplePath, "--icmp", "web:RX@*:80:443"}, localNets...)},
		{"json-quiet", []string{"-o", "json", "-q", "-r", examplePath}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runTcpeek(t, nil, tc.args...)
			if r.status != 0 {
				t.Fatalf("exit status %d, stderr:\n%s", r.status, r.stderr)
			}
			golden(t, tc.name, "--- stdout\n"+r.stdout+"--- stderr\n"+r.stderr)
		})
	}
}

// TestExampleCounts checks the example capture's counts against the
// outcomes its generator intended.
func TestExampleCounts(t *testing.T) {
	_, outcomes, err := fixture.Example()
	if err != nil {
		t.Fatal(err)
	}
	r := runTcpeek(t, nil, append([]string{"-o", "json", "-q", "--icmp", "-r", examplePath}, localNets...)...)
	if r.status != 0 {
		t.Fatalf("exit status %d: %s", r.status, r.stderr)
	}
	var st struct {
		Filters []struct {
			Name    string
			Success struct{ Total, DupSYN, DupSYNACK uint64 }
			Failure struct{ Total, Timeout, Reject, Unreach, Abort, DupSYN, DupSYNACK uint64 }
		}
		Pending uint64
		Capture struct{ Duplicates uint64 }
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	type counts struct{ succ, dupSyn, dupSA, fail, timeout, reject, unreach, abort, failDupSyn uint64 }
	want := map[string]*counts{"RX": {}, "TX": {}}
	var pending uint64
	for _, o := range outcomes {
		c := want[o.Dir]
		switch o.Result {
		case "success":
			c.succ++
			if o.DupSYN {
				c.dupSyn++
			}
			if o.DupSA {
				c.dupSA++
			}
			continue
		case "pending":
			pending++
			continue
		case "timeout":
			c.timeout++
		case "reject":
			c.reject++
		case "unreach":
			c.unreach++
		case "abort":
			c.abort++
		}
		c.fail++
		if o.DupSYN {
			c.failDupSyn++
		}
	}
	if len(st.Filters) != 2 {
		t.Fatalf("filters %+v", st.Filters)
	}
	for _, f := range st.Filters {
		got := counts{f.Success.Total, f.Success.DupSYN, f.Success.DupSYNACK, f.Failure.Total, f.Failure.Timeout,
			f.Failure.Reject, f.Failure.Unreach, f.Failure.Abort, f.Failure.DupSYN}
		if w := want[f.Name]; got != *w {
			t.Errorf("%s: got %+v, want %+v", f.Name, got, *w)
		}
	}
	if st.Pending != pending || st.Capture.Duplicates != 2 {
		t.Errorf("pending %d, duplicates %d; want %d, 2", st.Pending, st.Capture.Duplicates, pending)
	}
}

// TestStdin reads the example capture from standard input.
func TestStdin(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := runTcpeek(t, nil, "-q", "-o", "json", "-r", examplePath)
	fromStdin := runTcpeek(t, data, "-q", "-o", "json", "-r", "-")
	if fromStdin.status != 0 || fromStdin.stdout != fromFile.stdout {
		t.Fatalf("stdin run: status %d\n%s\nwant\n%s\nstderr %s", fromStdin.status, fromStdin.stdout, fromFile.stdout, fromStdin.stderr)
	}
}

// TestTruncatedCapture checks that a capture cut short still gets its
// summary, then an error naming the offset, and exit status 1.
func TestTruncatedCapture(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, data[:len(data)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	r := runTcpeek(t, nil, "-r", cut)
	if r.status != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", r.status, r.stderr)
	}
	if !strings.Contains(r.stderr, "TCPEEK SUMMARY") || !strings.Contains(r.stderr, "Success: ") {
		t.Errorf("no summary before the error:\n%s", r.stderr)
	}
	last := lastLine(r.stderr)
	if !strings.Contains(last, "byte offset") || !strings.HasPrefix(last, "tcpeek: ") {
		t.Errorf("last line %q does not name the byte offset", last)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestUsageErrors checks that every usage error exits 2 with one line that
// names the problem and the hint.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "tcpeek: unknown flag: --bogus"},
		{[]string{"-Z"}, "tcpeek: unknown shorthand flag: 'Z' in -Z"},
		{[]string{"-r"}, "tcpeek: flag needs an argument: 'r' in -r"},
		{[]string{"-r", "x", "-i", "eth0"}, "tcpeek: -i and -r cannot be used together: capture live or read a file"},
		{[]string{"-r", "x", "-t", "0"}, "tcpeek: --timeout: 0 is too small (at least 1)"},
		{[]string{"-r", "x", "-tabc"}, `tcpeek: --timeout: "abc" is not a whole number of seconds`},
		{[]string{"-r", "x", "--timeout=99999999999999999999"}, `tcpeek: --timeout: "99999999999999999999" is too large (at most 2147483648)`},
		{[]string{"-r", "x", "-c", "3"}, `tcpeek: --checksum: "3" is not 0, 1 or 2`},
		{[]string{"-r", "x", "-B", "0"}, "tcpeek: --buffer: 0 is too small (at least 1)"},
		{[]string{"-r", "x", "--max-sessions", "-5"}, "tcpeek: --max-sessions: -5 is too small (at least 1)"},
		{[]string{"-r", "x", "-l", "loud"}, `tcpeek: --loglevel: log level "loud" is not one of emerg, alert, crit, err, warning, notice, info, debug or 0-7`},
		{[]string{"-r", "x", "-o", "xml"}, `tcpeek: --output: "xml" is not text or json`},
		{[]string{"-r", "x", "--local-net", "10.0.0.0/33"}, `tcpeek: --local-net: "10.0.0.0/33" is not an address or network like 192.0.2.0/24 or 2001:db8::/32`},
		{[]string{"-r", "x", "web:RX@%:80,443", "--local-net", "10.0.0.0/8"}, `tcpeek: filter "web:RX@%:80,443": port "80,443" is not a number (column 12)`},
		{[]string{"-r", "x", "web:RX@*:80"}, `tcpeek: filter "web:RX@*:80": direction RX needs local addresses: give --local-net or use ANY`},
		// The first hour of a new user.
		{[]string{"-r", "a.pcap", "-r", "b.pcap"}, `tcpeek: -r given 2 times ("a.pcap", "b.pcap"...): tcpeek reads one capture; merge them first (mergecap -w all.pcapng a.pcap b.pcap)`},
		{[]string{"-r", "x", "tcp", "port", "80"}, `tcpeek: filter "tcp": "tcp" is pcap-filter syntax, which tcpeek does not take: write filters as NAME:DIR@ADDR:PORT, e.g. web:RX@*:80 (see tcpeek --help) (column 1)`},
		{[]string{"-r", "x", "webANY@*:80"}, `tcpeek: filter "webANY@*:80": missing ':' between the name and the direction: did you mean "web:ANY@*:80"? (column 4)`},
		{[]string{"-r", "x", "pcap:ANY@*:80"}, `tcpeek: filter "pcap:ANY@*:80": name "pcap" is reserved: the socket's GET answer holds the capture counters under it; choose another name`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runTcpeek(t, nil, tc.args...)
			if r.status != 2 {
				t.Errorf("exit status %d, want 2", r.status)
			}
			want := tc.want + "\nTry 'tcpeek --help' for more information.\n"
			if r.stderr != want {
				t.Errorf("stderr %q, want %q", r.stderr, want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-r", "x", "-h"}} {
		r := runTcpeek(t, nil, args...)
		if r.status != 0 || !strings.HasPrefix(r.stdout, "Usage: tcpeek") || r.stderr != "" {
			t.Errorf("%v: status %d, stdout %.40q, stderr %q", args, r.status, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"-v"}, {"--version"}} {
		r := runTcpeek(t, nil, args...)
		if r.status != 0 || r.stdout != "tcpeek "+version+"\n" {
			t.Errorf("%v: status %d, stdout %q", args, r.status, r.stdout)
		}
	}
}

// TestRuntimeErrors checks the exit status 1 cases.
func TestRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	notPcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notPcap, []byte("<!DOCTYPE html>\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-r", filepath.Join(dir, "missing.pcap")}, "no such file or directory"},
		{[]string{"-r", notPcap}, "not a pcap or pcapng file"},
		{[]string{"-r", examplePath, "-u", "no-such-user-here"}, "-u no-such-user-here: no such user"},
	}
	for _, tc := range tests {
		r := runTcpeek(t, nil, tc.args...)
		if r.status != 1 || !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "tcpeek: ") {
			t.Errorf("%v: status %d, stderr %q; want 1 and %q", tc.args, r.status, r.stderr, tc.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		read, size int64
		packets    uint64
		rate       float64
		want       string
	}{
		{512, 0, 10, 10, "tcpeek: 512 B, 10 packets, 10 packets/s"},
		{3 << 20, 12 << 20, 123456, 2.5e6, "tcpeek: 3.0 MiB of 12.0 MiB (25%), 123456 packets, 2.5 M packets/s"},
		{5 << 30, 5 << 30, 1, 1500, "tcpeek: 5.0 GiB of 5.0 GiB (100%), 1 packets, 1.5 k packets/s"},
	}
	for _, tc := range tests {
		if got := progressLine(tc.read, tc.size, tc.packets, tc.rate); got != tc.want {
			t.Errorf("progressLine(%d, %d, %d, %g) = %q, want %q", tc.read, tc.size, tc.packets, tc.rate, got, tc.want)
		}
	}
}
