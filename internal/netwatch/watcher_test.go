package netwatch

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait for a State in these tests; a fake kernel
// answers at once, so only a bug makes it pass.
const waitTimeout = 10 * time.Second

// host is what the fake kernel holds at the start of most tests.
var host = cat(
	newLink(1, "lo", iffUp|iffLoopback), newLink(2, "eth0", iffUp), newLink(3, "veth0", iffUp), newLink(4, "veth1", iffUp),
	newAddr4(1, "127.0.0.1"), newAddr4(2, "192.0.2.2"), newAddr6(2, "2001:db8::2", 0), newAddr4(3, "10.0.0.3"), newAddr4(4, "10.0.0.4"),
)

// openFake opens a Watcher on k with the -i values given.
func openFake(t *testing.T, k *fakeKernel, values ...string) *Watcher {
	t.Helper()
	sel, err := ParseSelector(values)
	if err != nil {
		t.Fatal(err)
	}
	w, err := open(k, sel)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestOpenDump(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	// While the addresses are dumped, after the first datagram (lo's and
	// eth0's IPv4 addresses), eth0's IPv4 address is deleted and another
	// added: the notifications arrive between the dump's parts.
	k.onDump = func(typ uint16, n int) (uint16, int, []item) {
		if typ != rtmGetAddr {
			return 0, -1, nil
		}
		return 0, 0, []item{{data: cat(delAddr4(2, "192.0.2.2"), newAddr4(2, "192.0.2.22"))}}
	}
	// A notification queued before the dump was asked for is applied too.
	k.notify(newLink(5, "veth2", iffUp))
	w := openFake(t, k, "eth0", "veth*")
	st := w.State()
	checkState(t, 0, st, step{ifs: "eth0:2 veth0:3 veth1:4 veth2:5", local: "10.0.0.3 10.0.0.4 192.0.2.22 2001:db8::2"})
	if k.dumpCount(rtmGetLink) != 1 || k.dumpCount(rtmGetAddr) != 1 {
		t.Errorf("%d link dumps and %d address dumps, want 1 and 1", k.dumpCount(rtmGetLink), k.dumpCount(rtmGetAddr))
	}
	if got := w.Selector().String(); got != "eth0, veth*" {
		t.Errorf("Selector %q", got)
	}
}

func TestOpenRedo(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	k.onDump = func(typ uint16, n int) (uint16, int, []item) {
		switch {
		case typ == rtmGetLink && n == 1:
			return nlmFDumpIntr, -1, nil // the first link dump is interrupted
		case typ == rtmGetAddr && n == 1:
			return 0, 0, []item{{err: errOverrun}} // notifications lost in the first address dump
		}
		return 0, -1, nil
	}
	w := openFake(t, k, "any")
	checkState(t, 0, w.State(), step{ifs: "lo:1 eth0:2 veth0:3 veth1:4", local: "10.0.0.3 10.0.0.4 127.0.0.1 192.0.2.2 2001:db8::2"})
	if k.dumpCount(rtmGetLink) != 3 || k.dumpCount(rtmGetAddr) != 2 {
		t.Errorf("%d link dumps and %d address dumps, want 3 and 2", k.dumpCount(rtmGetLink), k.dumpCount(rtmGetAddr))
	}
}

func TestOpenErrors(t *testing.T) {
	sel := func(v ...string) Selector {
		s, err := ParseSelector(v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("error reply", func(t *testing.T) {
		k := newFakeKernel()
		k.errno = int32(syscall.EPERM)
		_, err := open(k, sel("eth0"))
		if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "reading the kernel's links") {
			t.Errorf("error %v, want EPERM reading the links", err)
		}
	})
	t.Run("always interrupted", func(t *testing.T) {
		k := newFakeKernel()
		k.set(host)
		k.onDump = func(uint16, int) (uint16, int, []item) { return nlmFDumpIntr, -1, nil }
		_, err := open(k, sel("eth0"))
		if err == nil || !strings.Contains(err.Error(), "10 attempts in a row") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("malformed reply", func(t *testing.T) {
		k := newFakeKernel()
		k.set(cat(newLink(1, "lo", 0), nlmsg(rtmNewLink, 0, 0, 0, linkBody(afUnspec, 0, 1, 0, "bad"))))
		_, err := open(k, sel("eth0"))
		if !errors.Is(err, errMalformed) {
			t.Errorf("error %v, want errMalformed", err)
		}
	})
	t.Run("no default interface", func(t *testing.T) {
		k := newFakeKernel()
		k.set(cat(newLink(1, "lo", iffUp|iffLoopback), newAddr4(1, "127.0.0.1"), newLink(2, "eth0", 0), newAddr4(2, "10.0.0.2")))
		if _, err := open(k, Selector{}); !errors.Is(err, ErrNoDefaultInterface) {
			t.Errorf("error %v, want ErrNoDefaultInterface", err)
		}
	})
	t.Run("default interface", func(t *testing.T) {
		k := newFakeKernel()
		k.set(host)
		w, err := open(k, Selector{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if got := w.Selector().Names(); !slices.Equal(got, []string{"eth0"}) {
			t.Errorf("default %q, want eth0", got)
		}
		checkState(t, 0, w.State(), step{ifs: "eth0:2", local: "192.0.2.2 2001:db8::2"})
	})
}

func TestWatcherUpdates(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	w := openFake(t, k, "eth0")
	// Queued before Start: reported in the first update.
	k.notify(newLink(2, "wan0", iffUp))
	r := newRecorder()
	w.Start(r.add)
	st, msgs, next := r.waitFor(t, 0, waitTimeout, "rename", func(st State) bool { return len(st.Interfaces) == 1 && st.Interfaces[0].Name == "wan0" })
	if !slices.Equal(msgs, []string{"interface eth0 (index 2) renamed wan0: still captured (followed by index, as -i eth0)"}) {
		t.Errorf("changes %q", msgs)
	}
	if st.Changes[0].Kind != LinkRenamed || st.Changes[0].OldName != "eth0" || st.Changes[0].Name != "wan0" || st.Changes[0].Index != 2 {
		t.Errorf("change %+v", st.Changes[0])
	}
	// One datagram, one update.
	k.notify(newAddr4(2, "192.0.2.3"), delAddr6(2, "2001:db8::2"), newAddr4(3, "10.0.0.33"))
	st, _, next = r.waitFor(t, next, waitTimeout, "addresses", func(st State) bool { return len(st.Changes) > 0 })
	checkState(t, 1, st, step{ifs: "wan0:2", local: "192.0.2.2 192.0.2.3",
		changes: []string{"address 192.0.2.3 added on wan0", "address 2001:db8::2 removed from wan0"}})
	if w.State().Local == nil || addrsText(w.State().Local) != "192.0.2.2 192.0.2.3" {
		t.Errorf("State() %v, want the last update's", w.State().Local)
	}
	// Malformed messages and messages of no interest make no update;
	// the next good one does.
	k.notify([]byte{1, 2, 3})
	k.notify(nlmsg(24, 0, 0, 0, make([]byte, 12)), newAddr4(3, "10.0.0.34"))
	k.notify(delLink(2, "wan0"))
	_, msgs, _ = r.waitFor(t, next, waitTimeout, "deletion", func(st State) bool { return len(st.Missing) == 1 })
	if !slices.Equal(msgs, []string{"interface wan0 (index 2) deleted: capture paused until an interface named eth0 appears, counters kept"}) {
		t.Errorf("changes %q", msgs)
	}
	if n := r.count(); n != 3 {
		t.Errorf("%d updates, want 3", n)
	}
}

func TestWatcherOverrun(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	w := openFake(t, k, "veth*")
	r := newRecorder()
	w.Start(r.add)
	// Notifications were lost: veth1 was deleted, veth2 created.
	k.set(cat(newLink(1, "lo", iffUp|iffLoopback), newLink(2, "eth0", iffUp), newLink(3, "veth0", iffUp), newLink(6, "veth2", iffUp),
		newAddr4(3, "10.0.0.3"), newAddr4(6, "10.0.0.6")))
	k.fail(errOverrun)
	st, _, next := r.waitFor(t, 0, waitTimeout, "resync", func(st State) bool { return len(st.Changes) > 0 })
	checkState(t, 0, st, step{ifs: "veth0:3 veth2:6", local: "10.0.0.3 10.0.0.6", changes: []string{
		"netlink: notifications were lost (socket buffer full, now 416 KiB): interfaces and addresses read again",
		"interface veth1 (index 4) deleted",
		"interface veth2 appeared (index 6), matches veth*: captured",
		"address 10.0.0.6 added on veth2",
	}})
	if st.Changes[0].Kind != Resynced {
		t.Errorf("first change %v, want resynced", st.Changes[0].Kind)
	}
	// A datagram too large for the buffer: lost, so read again, with a
	// larger buffer.
	k.set(host)
	k.notify(make([]byte, initialBuf+1))
	st, _, _ = r.waitFor(t, next, waitTimeout, "resync after truncation", func(st State) bool { return len(st.Changes) > 0 })
	checkState(t, 1, st, step{ifs: "veth0:3 veth1:4", local: "10.0.0.3 10.0.0.4", changes: []string{
		"netlink: a notification did not fit in 64 KiB (now 128 KiB): interfaces and addresses read again",
		"interface veth2 (index 6) deleted",
		"interface veth1 appeared (index 4), matches veth*: captured",
		"address 10.0.0.4 added on veth1",
	}})
}

func TestWatcherFailed(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	w := openFake(t, k, "eth0")
	w.retry = time.Millisecond
	r := newRecorder()
	w.Start(r.add)
	k.fail(syscall.EIO)
	st, _, next := r.waitFor(t, 0, waitTimeout, "failure", func(st State) bool { return len(st.Changes) > 0 })
	if len(st.Changes) != 1 || st.Changes[0].Kind != Failed ||
		st.Changes[0].Msg != "following interfaces by netlink: input/output error; retrying in 1ms" {
		t.Errorf("changes %+v", st.Changes)
	}
	st, _, _ = r.waitFor(t, next, waitTimeout, "resync", func(st State) bool { return len(st.Changes) > 0 })
	checkState(t, 1, st, step{ifs: "eth0:2", local: "192.0.2.2 2001:db8::2",
		changes: []string{"netlink: after an error: interfaces and addresses read again"}})
}

func TestWatcherClose(t *testing.T) {
	k := newFakeKernel()
	k.set(host)
	w := openFake(t, k, "eth0")
	r := newRecorder()
	w.Start(r.add)
	w.Start(func(State) { t.Error("second Start ran") })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := r.count()
	k.queue <- item{data: newAddr4(2, "192.0.2.9")} // nobody reads it
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if r.count() != n {
		t.Errorf("an update after Close")
	}

	// Close before Start: Start does nothing.
	k2 := newFakeKernel()
	k2.set(host)
	w2 := openFake(t, k2, "eth0")
	w2.Close()
	w2.Start(func(State) { t.Error("Start after Close ran") })
}
