package netwatch

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fixtures recorded from a real kernel (Linux 6.18, x86-64): what a
// NETLINK_ROUTE socket subscribed to the link and address groups received
// while ip(8) changed a namespace's interfaces, and a dump. Each
// testdata/kernel/NAME.hex holds the datagrams, one per line in hex, after
// comment lines (#) that give the commands; NAME.golden is what the
// parser makes of them. go test -record (root) records them again, -update
// rewrites the golden files.
var update = flag.Bool("update", false, "rewrite testdata/kernel/*.golden from the parser's output")

// kernelFixtures are the names of the recorded fixtures.
var kernelFixtures = []string{"veth", "addr4", "addr6", "bridge", "rename-delete", "dump"}

// fixturePath returns the path of a fixture's file with extension ext.
func fixturePath(name, ext string) string { return filepath.Join("testdata", "kernel", name+ext) }

// fixture returns the datagrams of a recorded fixture.
func fixture(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(name, ".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		d, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, d)
	}
	return out
}

// littleEndian reports whether the host is little-endian, as the host that
// recorded the fixtures.
func littleEndian() bool { return native.Uint16([]byte{1, 0}) == 1 }

// msgTypes names the message types of the fixtures.
var msgTypes = map[uint16]string{
	nlmsgNoop: "NLMSG_NOOP", nlmsgError: "NLMSG_ERROR", nlmsgDone: "NLMSG_DONE", nlmsgOverrun: "NLMSG_OVERRUN",
	rtmNewLink: "RTM_NEWLINK", rtmDelLink: "RTM_DELLINK", rtmNewAddr: "RTM_NEWADDR", rtmDelAddr: "RTM_DELADDR",
}

// render describes, one line per message, what the parser makes of the
// datagrams.
func render(dgrams [][]byte) string {
	var b strings.Builder
	for i, d := range dgrams {
		fmt.Fprintf(&b, "datagram %d (%d bytes)\n", i, len(d))
		for len(d) > 0 {
			h, body, rest, err := nextMessage(d)
			if err != nil {
				fmt.Fprintf(&b, "  error: %v\n", err)
				break
			}
			d = rest
			name := msgTypes[h.Type]
			if name == "" {
				name = fmt.Sprintf("type %d", h.Type)
			}
			multi := ""
			if h.Flags&nlmFMulti != 0 {
				multi = " multi"
			}
			if h.Flags&nlmFDumpIntr != 0 {
				multi += " dump-intr"
			}
			fmt.Fprintf(&b, "  %s%s", name, multi)
			if h.Type == nlmsgDone || h.Type == nlmsgError {
				errno, err := parseErrno(body)
				fmt.Fprintf(&b, " errno %d %v\n", errno, err)
				continue
			}
			e, ok, err := decode(h.Type, body)
			switch {
			case err != nil:
				fmt.Fprintf(&b, ": error: %v\n", err)
			case !ok:
				fmt.Fprintf(&b, ": skipped (family %d)\n", body[0])
			case e.typ == rtmNewLink || e.typ == rtmDelLink:
				fmt.Fprintf(&b, ": index %d name %q type %d flags %v\n", e.index, e.link.name, e.link.typ, e.link.flags)
			default:
				fmt.Fprintf(&b, ": index %d local %v", e.index, e.addr.local)
				if e.addr.peer.IsValid() {
					fmt.Fprintf(&b, " peer %v", e.addr.peer)
				}
				fmt.Fprintf(&b, "/%d flags %#x\n", e.addr.plen, e.flags)
			}
		}
	}
	return b.String()
}

// TestKernelFixtures checks the parser on messages a real kernel sent.
func TestKernelFixtures(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixtures were recorded on a little-endian host; netlink is in the host's byte order")
	}
	for _, name := range kernelFixtures {
		t.Run(name, func(t *testing.T) {
			got := render(fixture(t, name))
			path := fixturePath(name, ".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal([]byte(got), want) {
				t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, got)
			}
			if strings.Contains(got, "error") {
				t.Errorf("a message of the kernel's did not parse:\n%s", got)
			}
		})
	}
}

// TestKernelSequence applies the recorded notifications in the order they
// were recorded to a model following v1 and one following everything:
// among others, a bridge port's AF_BRIDGE RTM_DELLINK (ip link set v1
// nomaster) must not end v1's capture.
func TestKernelSequence(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixtures were recorded on a little-endian host; netlink is in the host's byte order")
	}
	tr := newTracker(Selector{names: []string{"v1"}})
	all := newTracker(Selector{any: true})
	for _, tt := range []struct {
		name       string
		changes    []string
		anyChanges []string
		ifs, local string
		anyIfs     string
		anyLocal   string
		missing    string
	}{
		{name: "veth", ifs: "v1:2",
			changes:    []string{"interface v1 appeared (index 2): capture starts"},
			anyChanges: []string{"interface v1 appeared (index 2)", "interface v0 appeared (index 3)"},
			anyIfs:     "v1:2 v0:3"},
		{name: "addr4", ifs: "v1:2", anyIfs: "v1:2 v0:3", anyLocal: "10.8.0.2",
			anyChanges: []string{"address 10.0.0.5 added on v0", "address 10.8.0.2 peer 10.8.0.1 added on v0", "address 10.0.0.5 removed from v0"}},
		{name: "addr6", ifs: "v1:2", anyIfs: "v1:2 v0:3", anyLocal: "10.8.0.2 fe80::5",
			anyChanges: []string{"address fd00::5 added on v0", "address fe80::5%v0 added on v0", "address fd00::5 removed from v0"}},
		{name: "bridge", ifs: "v1:2", anyIfs: "v1:2 v0:3 br0:4", anyLocal: "10.8.0.2 fe80::5",
			anyChanges: []string{"interface br0 appeared (index 4)"}},
		{name: "rename-delete", missing: "v1", anyIfs: "br0:4",
			changes: []string{
				"interface v1 (index 2) renamed vX: still captured (followed by index, as -i v1)",
				"interface vX (index 2) deleted: capture paused until an interface named v1 appears, counters kept",
			},
			anyChanges: []string{
				"interface v1 (index 2) renamed vX: still captured",
				"address fe80::5%v0 removed from v0",
				"interface vX (index 2) deleted",
				"address 10.8.0.2 peer 10.8.0.1 removed from v0",
				"interface v0 (index 3) deleted",
			}},
	} {
		for _, d := range fixture(t, tt.name) {
			for _, e := range events(t, d) {
				tr.apply(e)
				all.apply(e)
			}
		}
		checkState(t, 0, tr.state(), step{ifs: tt.ifs, local: tt.local, missing: tt.missing, changes: tt.changes})
		checkState(t, 1, all.state(), step{ifs: tt.anyIfs, local: tt.anyLocal, changes: tt.anyChanges})
	}
}
