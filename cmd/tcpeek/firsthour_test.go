package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpeek/tcpeek/internal/fixture"
)

// TestPipeLinesAsTheyHappen reads a capture from a pipe whose writer pauses
// (ssh host tcpdump -U -w - | tcpeek -r -): the line of a session must come
// out while the writer waits, not at the end of the input.
func TestPipeLinesAsTheyHappen(t *testing.T) {
	pkts, _, err := fixture.Example()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ex.pcap")
	if err := fixture.WritePcap(path, pkts, false); err != nil {
		t.Fatal(err)
	}
	capture, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file header and the first session's three frames: the first
	// success of the example.
	first := 24
	for range 3 {
		first += 16 + int(uint32(capture[first+8])|uint32(capture[first+9])<<8|uint32(capture[first+10])<<16|uint32(capture[first+11])<<24)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	status := make(chan int, 1)
	go func() {
		status <- run([]string{"-r", "-", "-o", "json", "--local-net", "192.0.2.0/24"}, inR, outW, errf)
		outW.Close()
	}()
	if _, err := inW.Write(capture[:first]); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(outR).ReadString('\n')
		line <- s
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, `"result":"success"`) {
			t.Errorf("first line %q, want the first session's", l)
		}
	case <-time.After(10 * time.Second):
		t.Error("no session line while the input pauses: lines wait for the end of the input")
	}
	inW.Write(capture[first:])
	inW.Close()
	if st := <-status; st != 0 {
		t.Errorf("exit status %d", st)
	}
}

// TestFirstHour checks what a new user ran into in the first hour.
func TestFirstHour(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pcap")
	if err := fixture.WritePcap(empty, nil, false); err != nil {
		t.Fatal(err)
	}
	t.Run("an empty capture has no times", func(t *testing.T) {
		r := runTcpeek(t, nil, "-r", empty)
		if r.status != 0 || !strings.Contains(r.stderr, "     from : -\n       to : -\n") || strings.Contains(r.stderr, "1970") {
			t.Errorf("status %d, stderr:\n%s", r.status, r.stderr)
		}
	})
	t.Run("-l debug logs the filters, the local networks and the table's size", func(t *testing.T) {
		r := runTcpeek(t, nil, "-q", "-l", "debug", "-r", examplePath, "--local-net", "192.0.2.0/24", "web:RX@*:80:443", ":ANY@*:22")
		for _, want := range []string{"filter RX: RX *:*", "filter web: RX *:80:443", "exclusion: ANY *:22", "local networks: 192.0.2.0/24", "session table: "} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
	})
	t.Run("--syslog without a syslog daemon logs to stderr", func(t *testing.T) {
		for _, p := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
			if _, err := os.Stat(p); err == nil {
				t.Skipf("%s exists: a syslog daemon may be listening", p)
			}
		}
		r := runTcpeek(t, nil, "--syslog", "-q", "-r", examplePath)
		if r.status != 0 || !strings.Contains(r.stderr, "logging to stderr instead") || !strings.Contains(r.stderr, "TCPEEK SUMMARY") {
			t.Errorf("status %d, stderr:\n%s", r.status, r.stderr)
		}
	})
	t.Run("--failures-only", func(t *testing.T) {
		for _, args := range [][]string{{"-o", "json"}, {}} {
			r := runTcpeek(t, nil, append([]string{"--failures-only", "-r", examplePath}, args...)...)
			out := r.stdout + r.stderr
			success := strings.Contains(out, `"result":"success"`) || strings.Contains(out, "|      success      |")
			if r.status != 0 || success || !strings.Contains(out, "reject") || !strings.Contains(out, "timeout") {
				t.Errorf("%v: status %d, output:\n%s", args, r.status, out)
			}
		}
	})
}
