package netwatch

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Interface is a network interface the selector selects.
type Interface struct {
	Index int       // the kernel's interface index, which a rename keeps
	Name  string    // the current name
	Flags net.Flags // up, loopback, point-to-point, ...
	Type  uint16    // the ARPHRD_* hardware type: 1 Ethernet, 772 loopback, 65534 none (tun, wireguard)
}

// State is what the caller needs to know, whole: the interfaces to capture
// on and the local addresses, with what changed since the previous State.
// Its slices are never modified after it is handed out.
type State struct {
	// Interfaces are the selected interfaces that exist now, by index.
	// With -i any it is every interface of the host.
	Interfaces []Interface
	// Missing are the names given to -i that no interface has now (deleted,
	// or not created yet): their capture is paused until one appears.
	Missing []string
	// Local are the IPv4 and IPv6 addresses of the selected interfaces (of
	// every interface, with -i any), sorted, each once, without zones:
	// a link-local address is local whatever interface a packet came in on.
	// Tentative IPv6 addresses (duplicate address detection not finished)
	// are local; addresses that failed it are not.
	Local []netip.Addr
	// Changes says what changed since the previous State, in the order it
	// happened, for the log. It is empty in the initial State.
	Changes []Change
}

// Indexes returns the indexes of s.Interfaces, in order.
func (s State) Indexes() []int {
	out := make([]int, len(s.Interfaces))
	for i, ifi := range s.Interfaces {
		out[i] = ifi.Index
	}
	return out
}

// Kind says what a Change is about.
type Kind uint8

// The kinds of Change.
const (
	// LinkAdded: an interface is selected that was not: it appeared and
	// matches a glob (or -i any), or was renamed into a glob.
	LinkAdded Kind = iota + 1
	// LinkBack: an interface got a name given to -i that had no interface
	// (deleted, or absent at the start): its capture resumes.
	LinkBack
	// LinkRenamed: a selected interface was renamed; it stays selected.
	LinkRenamed
	// LinkDeleted: a selected interface was deleted (or moved to another
	// network namespace).
	LinkDeleted
	// AddrAdded: an address was added on a selected interface.
	AddrAdded
	// AddrRemoved: an address was removed from a selected interface, or
	// failed duplicate address detection.
	AddrRemoved
	// Resynced: netlink notifications were lost (the socket's buffer
	// overran); every interface and address was read again, and the
	// changes found are reported after this one.
	Resynced
	// Failed: reading netlink failed; the watcher retries.
	Failed
)

var kindNames = [...]string{
	LinkAdded: "link-added", LinkBack: "link-back", LinkRenamed: "link-renamed", LinkDeleted: "link-deleted",
	AddrAdded: "addr-added", AddrRemoved: "addr-removed", Resynced: "resynced", Failed: "failed",
}

// String returns the kind's name, such as "link-renamed".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Change is one thing that changed, with a sentence for the log.
type Change struct {
	Kind    Kind
	Index   int        // the interface's index (0 for Resynced and Failed)
	Name    string     // the interface's name, after a rename
	OldName string     // the name before, for LinkRenamed
	Addr    netip.Addr // the address, for AddrAdded and AddrRemoved
	Msg     string     // what happened, for the log: "interface v0 (index 5) renamed vX: still captured"
}

// String returns c.Msg.
func (c Change) String() string { return c.Msg }

// table is the kernel's links and addresses, as the messages tell them.
type table struct {
	links map[int]linkInfo
	addrs map[int]map[addrKey]uint32 // interface index -> address -> IFA_F_* flags
}

func newTable() *table {
	return &table{links: make(map[int]linkInfo), addrs: make(map[int]map[addrKey]uint32)}
}

// apply records e in t. Deleting a link deletes its addresses.
func (t *table) apply(e event) {
	switch e.typ {
	case rtmNewLink:
		if old, ok := t.links[e.index]; ok && e.link.name == "" {
			e.link.name = old.name
		}
		t.links[e.index] = e.link
	case rtmDelLink:
		delete(t.links, e.index)
		delete(t.addrs, e.index)
	case rtmNewAddr:
		m := t.addrs[e.index]
		if m == nil {
			m = make(map[addrKey]uint32)
			t.addrs[e.index] = m
		}
		m[e.addr] = e.flags
	case rtmDelAddr:
		if m := t.addrs[e.index]; m != nil {
			delete(m, e.addr)
			if len(m) == 0 {
				delete(t.addrs, e.index)
			}
		}
	}
}

// defaultLink returns the first interface, by index, that is up, is not a
// loopback and has an address (SPEC §1: the interface used without -i).
func (t *table) defaultLink() (linkInfo, bool) {
	for _, idx := range slices.Sorted(maps.Keys(t.links)) {
		l := t.links[idx]
		if l.flags&net.FlagUp != 0 && l.flags&net.FlagLoopback == 0 && l.typ != arphrdLoopback && len(t.addrs[idx]) > 0 {
			return l, true
		}
	}
	return linkInfo{}, false
}

// pin is the interface that an exact name given to -i follows.
type pin struct {
	name  string
	index int  // the interface followed, 0 when there is none
	seen  bool // an interface was followed once: a new one is "back"
}

// tracker applies events to a table and to the selection, and records the
// changes a caller logs. The selection follows interfaces by index: an
// exact name follows the interface that had it, through renames, until it
// is deleted, and then the next interface that takes the name; an
// interface a glob matched (when it appeared or was renamed) stays
// selected through renames until it is deleted.
type tracker struct {
	sel     Selector
	tab     *table
	pins    []pin
	globbed map[int]string // interfaces selected by a glob -> the glob
	changes []Change
}

func newTracker(sel Selector) *tracker {
	tr := &tracker{sel: sel, tab: newTable(), globbed: make(map[int]string)}
	for _, n := range sel.names {
		tr.pins = append(tr.pins, pin{name: n})
	}
	return tr
}

// selected reports whether the interface idx is selected.
func (tr *tracker) selected(idx int) bool {
	if tr.sel.any {
		return true
	}
	if _, ok := tr.globbed[idx]; ok {
		return true
	}
	for _, p := range tr.pins {
		if p.index == idx {
			return true
		}
	}
	return false
}

// pinnedNames returns the names given to -i that follow the interface idx.
func (tr *tracker) pinnedNames(idx int) []string {
	var out []string
	for _, p := range tr.pins {
		if p.index == idx {
			out = append(out, p.name)
		}
	}
	return out
}

func (tr *tracker) note(c Change) { tr.changes = append(tr.changes, c) }

// apply applies one event.
func (tr *tracker) apply(e event) {
	switch e.typ {
	case rtmNewLink:
		tr.linkUp(e.link)
	case rtmDelLink:
		tr.linkGone(e.index)
	case rtmNewAddr:
		if e.flags&ifaFDadfailed != 0 {
			tr.addrGone(e.index, e.addr, true)
		} else {
			tr.addrUp(e.index, e.addr, e.flags)
		}
	case rtmDelAddr:
		tr.addrGone(e.index, e.addr, false)
	}
}

// linkUp handles a new interface, or news of a known one (a rename, new
// flags).
func (tr *tracker) linkUp(l linkInfo) {
	old, known := tr.tab.links[l.index]
	if l.name == "" && known {
		l.name = old.name
	}
	wasSelected := known && tr.selected(l.index)
	tr.tab.links[l.index] = l
	if known && old.name == l.name {
		return // new flags, MTU, carrier...: nothing the caller follows
	}
	// The interface has a new name: names waiting for an interface take
	// it, globs may match it.
	var back, backSeen []string
	for i := range tr.pins {
		p := &tr.pins[i]
		if p.index == 0 && p.name == l.name {
			p.index = l.index
			if p.seen {
				backSeen = append(backSeen, p.name)
			} else {
				back = append(back, p.name)
			}
			p.seen = true
		}
	}
	glob := ""
	if _, ok := tr.globbed[l.index]; !ok {
		if glob = tr.sel.glob(l.name); glob != "" {
			tr.globbed[l.index] = glob
		}
	}
	c := Change{Index: l.index, Name: l.name}
	switch {
	case known && wasSelected:
		c.Kind, c.OldName = LinkRenamed, old.name
		c.Msg = fmt.Sprintf("interface %s (index %d) renamed %s: still captured", old.name, l.index, l.name)
		if names := tr.pinnedNames(l.index); !tr.sel.any && len(names) > 0 && !slices.Contains(names, l.name) {
			c.Msg += fmt.Sprintf(" (followed by index, as -i %s)", strings.Join(names, ", "))
		}
	case known && (len(back) > 0 || len(backSeen) > 0):
		c.Kind, c.OldName = LinkBack, old.name
		c.Msg = fmt.Sprintf("interface %s (index %d) renamed %s: captured", old.name, l.index, l.name)
	case known && glob != "":
		c.Kind, c.OldName = LinkAdded, old.name
		c.Msg = fmt.Sprintf("interface %s (index %d) renamed %s, which matches %s: captured", old.name, l.index, l.name, glob)
	case known:
		return
	case len(backSeen) > 0:
		c.Kind = LinkBack
		c.Msg = fmt.Sprintf("interface %s is back (index %d): capture resumes", l.name, l.index)
	case len(back) > 0:
		c.Kind = LinkBack
		c.Msg = fmt.Sprintf("interface %s appeared (index %d): capture starts", l.name, l.index)
	case glob != "":
		c.Kind = LinkAdded
		c.Msg = fmt.Sprintf("interface %s appeared (index %d), matches %s: captured", l.name, l.index, glob)
	case tr.sel.any:
		c.Kind = LinkAdded
		c.Msg = fmt.Sprintf("interface %s appeared (index %d)", l.name, l.index)
	default:
		return
	}
	tr.note(c)
}

// linkGone handles the deletion of an interface (or its move to another
// network namespace).
func (tr *tracker) linkGone(idx int) {
	l, known := tr.tab.links[idx]
	wasSelected := known && tr.selected(idx)
	tr.tab.apply(event{typ: rtmDelLink, index: idx})
	delete(tr.globbed, idx)
	var paused []string
	for i := range tr.pins {
		if tr.pins[i].index == idx {
			tr.pins[i].index = 0
			paused = append(paused, tr.pins[i].name)
		}
	}
	if !wasSelected {
		return
	}
	c := Change{Kind: LinkDeleted, Index: idx, Name: l.name}
	if len(paused) == 0 {
		c.Msg = fmt.Sprintf("interface %s (index %d) deleted", l.name, idx)
		tr.note(c)
		return
	}
	c.Msg = fmt.Sprintf("interface %s (index %d) deleted: capture paused until an interface named %s appears, counters kept",
		l.name, idx, strings.Join(paused, " or "))
	tr.note(c)
	// Another interface may have the name already (the followed one had
	// been renamed): it is followed now.
	for _, other := range slices.Sorted(maps.Keys(tr.tab.links)) {
		if o := tr.tab.links[other]; slices.Contains(paused, o.name) {
			tr.linkRenamedInto(o)
		}
	}
}

// linkRenamedInto makes the names waiting for an interface follow l, which
// has one of them already.
func (tr *tracker) linkRenamedInto(l linkInfo) {
	for i := range tr.pins {
		p := &tr.pins[i]
		if p.index == 0 && p.name == l.name {
			p.index = l.index
			tr.note(Change{Kind: LinkBack, Index: l.index, Name: l.name,
				Msg: fmt.Sprintf("interface %s is back (index %d): capture resumes", l.name, l.index)})
		}
	}
}

// addrText returns a for the log, with its zone if it is link-local and
// its peer if it has one.
func addrText(k addrKey, ifname string) string {
	a := k.local
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		a = a.WithZone(ifname)
	}
	if k.peer.IsValid() {
		return fmt.Sprintf("%s peer %s", a, k.peer)
	}
	return a.String()
}

// addrUp handles a new address, or news of a known one (new flags: a
// tentative address becomes usable, a lifetime is renewed).
func (tr *tracker) addrUp(idx int, k addrKey, flags uint32) {
	_, had := tr.tab.addrs[idx][k]
	tr.tab.apply(event{typ: rtmNewAddr, index: idx, addr: k, flags: flags})
	l, known := tr.tab.links[idx]
	if had || !known || !tr.selected(idx) {
		return
	}
	tr.note(Change{Kind: AddrAdded, Index: idx, Name: l.name, Addr: k.local,
		Msg: fmt.Sprintf("address %s added on %s", addrText(k, l.name), l.name)})
}

// addrGone handles the removal of an address, or its failed duplicate
// address detection.
func (tr *tracker) addrGone(idx int, k addrKey, dadFailed bool) {
	_, had := tr.tab.addrs[idx][k]
	tr.tab.apply(event{typ: rtmDelAddr, index: idx, addr: k})
	l, known := tr.tab.links[idx]
	if !had || !known || !tr.selected(idx) {
		return
	}
	c := Change{Kind: AddrRemoved, Index: idx, Name: l.name, Addr: k.local,
		Msg: fmt.Sprintf("address %s removed from %s", addrText(k, l.name), l.name)}
	if dadFailed {
		c.Msg = fmt.Sprintf("address %s on %s failed duplicate address detection: not local", addrText(k, l.name), l.name)
	}
	tr.note(c)
}

// reconcile brings the model to fresh, a table read whole from the kernel
// after notifications were lost, as if the notifications had arrived: gone
// interfaces first (so that a recreated one takes the name back), then new
// and renamed ones, then addresses.
func (tr *tracker) reconcile(fresh *table) {
	for _, idx := range slices.Sorted(maps.Keys(tr.tab.links)) {
		if _, ok := fresh.links[idx]; !ok {
			tr.linkGone(idx)
		}
	}
	for _, idx := range slices.Sorted(maps.Keys(fresh.links)) {
		tr.linkUp(fresh.links[idx])
	}
	for _, idx := range slices.Sorted(maps.Keys(tr.tab.addrs)) {
		for _, k := range sortedKeys(tr.tab.addrs[idx]) {
			if _, ok := fresh.addrs[idx][k]; !ok {
				tr.addrGone(idx, k, false)
			}
		}
	}
	for _, idx := range slices.Sorted(maps.Keys(fresh.addrs)) {
		m := fresh.addrs[idx]
		for _, k := range sortedKeys(m) {
			if f := m[k]; f&ifaFDadfailed != 0 {
				tr.addrGone(idx, k, true)
			} else {
				tr.addrUp(idx, k, f)
			}
		}
	}
}

// sortedKeys returns the addresses of m in order.
func sortedKeys(m map[addrKey]uint32) []addrKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b addrKey) int {
		return cmp.Or(a.local.Compare(b.local), a.peer.Compare(b.peer), cmp.Compare(a.plen, b.plen))
	})
}

// state returns the current State, with the changes recorded since the
// last call, which it forgets.
func (tr *tracker) state() State {
	var st State
	for _, idx := range slices.Sorted(maps.Keys(tr.tab.links)) {
		if !tr.selected(idx) {
			continue
		}
		l := tr.tab.links[idx]
		st.Interfaces = append(st.Interfaces, Interface{Index: idx, Name: l.name, Flags: l.flags, Type: l.typ})
		for k := range tr.tab.addrs[idx] {
			st.Local = append(st.Local, k.local)
		}
	}
	slices.SortFunc(st.Local, netip.Addr.Compare)
	st.Local = slices.Compact(st.Local)
	for _, p := range tr.pins {
		if p.index == 0 {
			st.Missing = append(st.Missing, p.name)
		}
	}
	st.Changes, tr.changes = tr.changes, nil
	return st
}
