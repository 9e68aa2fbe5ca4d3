package netwatch

import (
	"net/netip"
	"slices"
	"testing"
)

// FuzzMessages feeds arbitrary datagrams to the parser and the model: no
// panic, and whatever the messages, the State keeps its invariants.
func FuzzMessages(f *testing.F) {
	f.Add(host)
	f.Add(cat(newLink(5, "v0", iffUp), newLink(5, "vX", iffUp), delLink(5, "vX"), newLink(6, "v0", 0)))
	f.Add(cat(newLink(7, "veth1", 0), newAddr6(7, "fe80::1", 0x40), newAddr6(7, "fe80::1", 0x48), delAddr6(7, "fe80::1")))
	f.Add(nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 32, 0, 4, rtattr(ifaAddress, ip("10.8.0.1")), rtattr(ifaLocal, ip("10.8.0.2")))))
	f.Add(nlmsg(rtmDelLink, 0, 0, 0, linkBody(afBridge, 5, 1, 0, "veth0")))
	f.Add(cat(nlmsg(nlmsgError, 0, 1, 1, errBody(1, make([]byte, nlmsgHdrLen))), nlmsg(nlmsgDone, nlmFMulti, 1, 1, u32(0))))
	f.Add(appendRequest(nil, rtmGetLink, 1))
	for _, name := range kernelFixtures {
		for _, d := range fixture(f, name) {
			f.Add(d)
		}
	}
	sel, err := ParseSelector([]string{"v0", "veth*"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := newTracker(sel)
		any := newTracker(Selector{any: true})
		for len(b) > 0 {
			h, body, rest, err := nextMessage(b)
			if err != nil {
				break
			}
			if len(rest) >= len(b) {
				t.Fatalf("nextMessage did not advance: %d bytes, then %d", len(b), len(rest))
			}
			b = rest
			e, ok, err := decode(h.Type, body)
			if ok && err != nil {
				t.Fatalf("ok with error %v", err)
			}
			if !ok {
				continue
			}
			if e.index <= 0 || (e.typ == rtmNewAddr || e.typ == rtmDelAddr) && (!e.addr.local.IsValid() || e.addr.local.Zone() != "") {
				t.Fatalf("event %+v", e)
			}
			tr.apply(e)
			any.apply(e)
		}
		for _, tr := range []*tracker{tr, any} {
			changes := len(tr.changes)
			st := tr.state()
			if len(st.Changes) != changes || len(tr.changes) != 0 {
				t.Fatalf("%d changes recorded, %d handed out, %d kept", changes, len(st.Changes), len(tr.changes))
			}
			if !slices.IsSortedFunc(st.Local, netip.Addr.Compare) || len(slices.Compact(slices.Clone(st.Local))) != len(st.Local) {
				t.Fatalf("local %v not sorted and unique", st.Local)
			}
			for i, ifi := range st.Interfaces {
				if i > 0 && st.Interfaces[i-1].Index >= ifi.Index {
					t.Fatalf("interfaces %v not by index", st.Interfaces)
				}
				if _, ok := tr.tab.links[ifi.Index]; !ok {
					t.Fatalf("interface %v not in the table", ifi)
				}
			}
			for _, c := range st.Changes {
				if c.Msg == "" {
					t.Fatalf("change %+v without a message", c)
				}
			}
			// No state about interfaces that are gone.
			for idx := range tr.globbed {
				if _, ok := tr.tab.links[idx]; !ok {
					t.Fatalf("glob selection of gone interface %d", idx)
				}
			}
			for _, p := range tr.pins {
				if _, ok := tr.tab.links[p.index]; p.index != 0 && !ok {
					t.Fatalf("name %s follows gone interface %d", p.name, p.index)
				}
			}
		}
	})
}
