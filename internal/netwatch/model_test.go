package netwatch

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// step is messages applied to a tracker and the State expected after them.
type step struct {
	msgs    []byte
	ifs     string   // the selected interfaces, "name:index" separated by spaces
	missing string   // State.Missing, separated by spaces
	local   string   // State.Local, separated by spaces
	changes []string // the messages of State.Changes
}

// ifsText returns the interfaces as a step writes them.
func ifsText(ifs []Interface) string {
	var s []string
	for _, i := range ifs {
		s = append(s, fmt.Sprintf("%s:%d", i.Name, i.Index))
	}
	return strings.Join(s, " ")
}

// addrsText returns addresses separated by spaces.
func addrsText(as []netip.Addr) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

// changeMsgs returns the messages of cs.
func changeMsgs(cs []Change) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Msg)
	}
	return s
}

// checkState fails the test if st is not what s expects.
func checkState(t *testing.T, i int, st State, s step) {
	t.Helper()
	if got := ifsText(st.Interfaces); got != s.ifs {
		t.Errorf("step %d: interfaces %q, want %q", i, got, s.ifs)
	}
	if got := strings.Join(st.Missing, " "); got != s.missing {
		t.Errorf("step %d: missing %q, want %q", i, got, s.missing)
	}
	if got := addrsText(st.Local); got != s.local {
		t.Errorf("step %d: local %q, want %q", i, got, s.local)
	}
	if got := changeMsgs(st.Changes); !slices.Equal(got, s.changes) {
		t.Errorf("step %d: changes\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(s.changes, "\n"))
	}
}

func TestTracker(t *testing.T) {
	ptp := nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 32, 0, 4, rtattr(ifaAddress, ip("10.8.0.1")), rtattr(ifaLocal, ip("10.8.0.2"))))
	addr16 := nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 16, 0, 3, rtattr(ifaAddress, ip("10.1.1.1")), rtattr(ifaLocal, ip("10.1.1.1"))))
	tests := []struct {
		name  string
		sel   []string
		init  []byte // the initial dump
		steps []step
	}{
		{
			name: "exact name followed by index",
			sel:  []string{"v0"},
			init: cat(newLink(1, "lo", iffUp|iffLoopback), newLink(5, "v0", iffUp), newLink(6, "other", iffUp),
				newAddr4(5, "10.0.0.5"), newAddr4(6, "10.0.0.6")),
			steps: []step{
				{ifs: "v0:5", local: "10.0.0.5"},
				{msgs: newLink(5, "vX", iffUp), ifs: "vX:5", local: "10.0.0.5",
					changes: []string{"interface v0 (index 5) renamed vX: still captured (followed by index, as -i v0)"}},
				{msgs: newAddr4(5, "10.0.0.7"), ifs: "vX:5", local: "10.0.0.5 10.0.0.7",
					changes: []string{"address 10.0.0.7 added on vX"}},
				{msgs: newAddr4(5, "10.0.0.7"), ifs: "vX:5", local: "10.0.0.5 10.0.0.7"}, // news of a known address
				{msgs: newAddr4(6, "10.0.0.8"), ifs: "vX:5", local: "10.0.0.5 10.0.0.7"},
				// A new v0 while the followed one lives on as vX: one name, one interface.
				{msgs: newLink(7, "v0", iffUp), ifs: "vX:5", local: "10.0.0.5 10.0.0.7"},
				{msgs: cat(delAddr4(5, "10.0.0.5"), delAddr4(5, "10.0.0.7"), delLink(5, "vX")), ifs: "v0:7",
					changes: []string{
						"address 10.0.0.5 removed from vX",
						"address 10.0.0.7 removed from vX",
						"interface vX (index 5) deleted: capture paused until an interface named v0 appears, counters kept",
						"interface v0 is back (index 7): capture resumes",
					}},
				{msgs: delLink(7, "v0"), missing: "v0",
					changes: []string{"interface v0 (index 7) deleted: capture paused until an interface named v0 appears, counters kept"}},
				{msgs: newAddr4(6, "10.0.0.9"), missing: "v0"},
				{msgs: cat(newLink(8, "v0", 0), newAddr4(8, "10.0.0.9")), ifs: "v0:8", local: "10.0.0.9",
					changes: []string{"interface v0 is back (index 8): capture resumes", "address 10.0.0.9 added on v0"}},
				{msgs: newLink(8, "v0", iffUp|iffRunning), ifs: "v0:8", local: "10.0.0.9"}, // flags only
				{msgs: newLink(6, "v0", iffUp), ifs: "v0:8", local: "10.0.0.9"},            // the name is taken
			},
		},
		{
			name: "names absent at the start",
			sel:  []string{"v1", "v2"},
			init: cat(newLink(1, "lo", iffUp|iffLoopback), newLink(2, "v2", iffUp)),
			steps: []step{
				{ifs: "v2:2", missing: "v1"},
				{msgs: newLink(9, "tmp", 0), ifs: "v2:2", missing: "v1"},
				{msgs: cat(newLink(9, "v1", 0), newAddr6(9, "fd00::9", 0)), ifs: "v2:2 v1:9", local: "fd00::9",
					changes: []string{"interface tmp (index 9) renamed v1: captured", "address fd00::9 added on v1"}},
				{msgs: newLink(10, "v1", 0), ifs: "v2:2 v1:9", local: "fd00::9"},
			},
		},
		{
			name: "globs",
			sel:  []string{"veth*", "eth0"},
			init: cat(newLink(1, "lo", iffUp|iffLoopback), newLink(2, "eth0", iffUp), newLink(3, "veth0", iffUp), newLink(4, "dummy", iffUp),
				newAddr4(2, "192.0.2.1"), newAddr6(3, "fe80::3", 0x80), newAddr4(4, "192.0.2.4")),
			steps: []step{
				{ifs: "eth0:2 veth0:3", local: "192.0.2.1 fe80::3"},
				{msgs: newLink(5, "veth1", 0), ifs: "eth0:2 veth0:3 veth1:5", local: "192.0.2.1 fe80::3",
					changes: []string{"interface veth1 appeared (index 5), matches veth*: captured"}},
				{msgs: newLink(6, "cali1", 0), ifs: "eth0:2 veth0:3 veth1:5", local: "192.0.2.1 fe80::3"},
				{msgs: newLink(6, "veth2", 0), ifs: "eth0:2 veth0:3 veth1:5 veth2:6", local: "192.0.2.1 fe80::3",
					changes: []string{"interface cali1 (index 6) renamed veth2, which matches veth*: captured"}},
				{msgs: newLink(3, "uplink", iffUp), ifs: "eth0:2 uplink:3 veth1:5 veth2:6", local: "192.0.2.1 fe80::3",
					changes: []string{"interface veth0 (index 3) renamed uplink: still captured"}},
				{msgs: newAddr6(3, "fd00::3", 0x40), ifs: "eth0:2 uplink:3 veth1:5 veth2:6", local: "192.0.2.1 fd00::3 fe80::3",
					changes: []string{"address fd00::3 added on uplink"}},
				{msgs: newAddr6(3, "fd00::3", 0x48), ifs: "eth0:2 uplink:3 veth1:5 veth2:6", local: "192.0.2.1 fe80::3",
					changes: []string{"address fd00::3 on uplink failed duplicate address detection: not local"}},
				{msgs: delLink(5, "veth1"), ifs: "eth0:2 uplink:3 veth2:6", local: "192.0.2.1 fe80::3",
					changes: []string{"interface veth1 (index 5) deleted"}},
				{msgs: newLink(11, "veth1", 0), ifs: "eth0:2 uplink:3 veth2:6 veth1:11", local: "192.0.2.1 fe80::3",
					changes: []string{"interface veth1 appeared (index 11), matches veth*: captured"}},
				{msgs: delAddr6(3, "fe80::3"), ifs: "eth0:2 uplink:3 veth2:6 veth1:11", local: "192.0.2.1",
					changes: []string{"address fe80::3%uplink removed from uplink"}},
			},
		},
		{
			name: "any",
			sel:  []string{"any"},
			init: cat(newLink(1, "lo", iffUp|iffLoopback), newLink(2, "eth0", iffUp), newLink(3, "eth1", iffUp),
				newAddr4(1, "127.0.0.1"), newAddr6(1, "::1", 0x80), newAddr4(2, "10.1.1.1"), newAddr4(3, "10.1.1.1")),
			steps: []step{
				{ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1"},
				{msgs: delAddr4(2, "10.1.1.1"), ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1",
					changes: []string{"address 10.1.1.1 removed from eth0"}},
				{msgs: cat(newLink(4, "tun0", iffUp|iffPointToPt), ptp, newAddr6(4, "fe80::8", 0)), ifs: "lo:1 eth0:2 eth1:3 tun0:4",
					local:   "10.1.1.1 10.8.0.2 127.0.0.1 ::1 fe80::8",
					changes: []string{"interface tun0 appeared (index 4)", "address 10.8.0.2 peer 10.8.0.1 added on tun0", "address fe80::8%tun0 added on tun0"}},
				{msgs: newLink(4, "wg0", iffUp|iffPointToPt), ifs: "lo:1 eth0:2 eth1:3 wg0:4",
					local:   "10.1.1.1 10.8.0.2 127.0.0.1 ::1 fe80::8",
					changes: []string{"interface tun0 (index 4) renamed wg0: still captured"}},
				{msgs: delLink(4, "wg0"), ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1",
					changes: []string{"interface wg0 (index 4) deleted"}},
				// One address twice on an interface, with two prefix lengths.
				{msgs: addr16, ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1",
					changes: []string{"address 10.1.1.1 added on eth1"}},
				{msgs: delAddr4(3, "10.1.1.1"), ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1",
					changes: []string{"address 10.1.1.1 removed from eth1"}},
				// Messages about objects never seen change nothing.
				{msgs: cat(delAddr4(3, "10.9.9.9"), delLink(77, "ghost")), ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1"},
				// An address on an interface not (yet) known is not local.
				{msgs: newAddr4(78, "10.7.7.7"), ifs: "lo:1 eth0:2 eth1:3", local: "10.1.1.1 127.0.0.1 ::1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := ParseSelector(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			fresh := newTable()
			for _, e := range events(t, tt.init) {
				fresh.apply(e)
			}
			tr := newTracker(sel)
			tr.reconcile(fresh)
			tr.changes = nil
			for i, s := range tt.steps {
				for _, e := range events(t, s.msgs) {
					tr.apply(e)
				}
				checkState(t, i, tr.state(), s)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	sel, err := ParseSelector([]string{"v0", "veth*"})
	if err != nil {
		t.Fatal(err)
	}
	before := cat(newLink(1, "lo", iffUp|iffLoopback), newLink(5, "v0", iffUp), newLink(6, "veth0", iffUp), newLink(7, "veth1", iffUp),
		newAddr4(5, "10.0.0.5"), newAddr4(6, "10.0.0.6"), newAddr4(7, "10.0.0.7"))
	// What the kernel holds after notifications were lost: v0 deleted and
	// recreated, veth0 renamed, veth1 gone, veth2 new, addresses moved.
	after := cat(newLink(1, "lo", iffUp|iffLoopback), newLink(6, "peer0", iffUp), newLink(9, "v0", iffUp), newLink(10, "veth2", iffUp),
		newAddr4(6, "10.0.0.60"), newAddr4(9, "10.0.0.9"), newAddr6(10, "fd00::a", 0x08))
	load := func(b []byte) *table {
		tab := newTable()
		for _, e := range events(t, b) {
			tab.apply(e)
		}
		return tab
	}
	tr := newTracker(sel)
	tr.reconcile(load(before))
	checkState(t, 0, tr.state(), step{ifs: "v0:5 veth0:6 veth1:7", local: "10.0.0.5 10.0.0.6 10.0.0.7",
		changes: []string{
			"interface v0 appeared (index 5): capture starts",
			"interface veth0 appeared (index 6), matches veth*: captured",
			"interface veth1 appeared (index 7), matches veth*: captured",
			"address 10.0.0.5 added on v0",
			"address 10.0.0.6 added on veth0",
			"address 10.0.0.7 added on veth1",
		}})
	tr.reconcile(load(after))
	checkState(t, 1, tr.state(), step{ifs: "peer0:6 v0:9 veth2:10", local: "10.0.0.9 10.0.0.60",
		changes: []string{
			"interface v0 (index 5) deleted: capture paused until an interface named v0 appears, counters kept",
			"interface veth1 (index 7) deleted",
			"interface veth0 (index 6) renamed peer0: still captured",
			"interface v0 is back (index 9): capture resumes",
			"interface veth2 appeared (index 10), matches veth*: captured",
			"address 10.0.0.6 removed from peer0",
			"address 10.0.0.60 added on peer0",
			"address 10.0.0.9 added on v0",
		}})
	tr.reconcile(load(after))
	checkState(t, 2, tr.state(), step{ifs: "peer0:6 v0:9 veth2:10", local: "10.0.0.9 10.0.0.60"})
}

func TestDefaultLink(t *testing.T) {
	tests := []struct {
		name string
		msgs []byte
		want string // "" for none
	}{
		{"none at all", nil, ""},
		{"loopback only", cat(newLink(1, "lo", iffUp|iffLoopback), newAddr4(1, "127.0.0.1")), ""},
		{"down, or without address", cat(newLink(2, "eth0", 0), newAddr4(2, "10.0.0.2"), newLink(3, "eth1", iffUp)), ""},
		{
			"first by index",
			cat(newLink(1, "lo", iffUp|iffLoopback), newAddr4(1, "127.0.0.1"), newLink(4, "eth2", iffUp), newAddr6(4, "fe80::4", 0),
				newLink(3, "eth1", iffUp), newAddr4(3, "10.0.0.3"), newLink(2, "eth0", 0), newAddr4(2, "10.0.0.2")),
			"eth1",
		},
		{"loopback by type", cat(nlmsg(rtmNewLink, 0, 0, 0, linkBody(afUnspec, 1, arphrdLoopback, iffUp, "lo2")), newAddr4(1, "127.0.0.2")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable()
			for _, e := range events(t, tt.msgs) {
				tab.apply(e)
			}
			l, ok := tab.defaultLink()
			if l.name != tt.want || ok != (tt.want != "") {
				t.Errorf("got %q, %v; want %q", l.name, ok, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k := LinkAdded; k <= Failed; k++ {
		if s := k.String(); strings.HasPrefix(s, "Kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if s := Kind(0).String(); s != "Kind(0)" {
		t.Errorf("Kind(0) = %q", s)
	}
}
