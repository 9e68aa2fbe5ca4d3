package netwatch

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// Builders of rtnetlink messages, in the host's byte order, for fixtures.

// nlmsg returns one message: a header and body, padded to 4 bytes.
func nlmsg(typ, flags uint16, seq, pid uint32, body []byte) []byte {
	b := make([]byte, nlmsgHdrLen, nlmsgHdrLen+align4(len(body)))
	native.PutUint32(b[0:4], uint32(nlmsgHdrLen+len(body)))
	native.PutUint16(b[4:6], typ)
	native.PutUint16(b[6:8], flags)
	native.PutUint32(b[8:12], seq)
	native.PutUint32(b[12:16], pid)
	b = append(b, body...)
	return append(b, make([]byte, align4(len(b))-len(b))...)
}

// rtattr returns one attribute, padded to 4 bytes.
func rtattr(typ uint16, val []byte) []byte {
	b := make([]byte, rtattrLen, rtattrLen+align4(len(val)))
	native.PutUint16(b[0:2], uint16(rtattrLen+len(val)))
	native.PutUint16(b[2:4], typ)
	b = append(b, val...)
	return append(b, make([]byte, align4(len(b))-len(b))...)
}

// linkBody returns the body of a link message with an IFLA_IFNAME (none
// if name is empty).
func linkBody(family uint8, index int32, typ uint16, iff uint32, name string) []byte {
	b := make([]byte, ifinfomsgLen)
	b[0] = family
	native.PutUint16(b[2:4], typ)
	native.PutUint32(b[4:8], uint32(index))
	native.PutUint32(b[8:12], iff)
	if name != "" {
		b = append(b, rtattr(iflaIfname, append([]byte(name), 0))...)
	}
	return b
}

// addrBody returns the body of an address message with the attributes
// given.
func addrBody(family, plen, flags uint8, index int32, attrs ...[]byte) []byte {
	b := make([]byte, ifaddrmsgLen)
	b[0], b[1], b[2] = family, plen, flags
	native.PutUint32(b[4:8], uint32(index))
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// ip returns the bytes of an address attribute value.
func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// u32 returns v as 4 bytes.
func u32(v uint32) []byte { b := make([]byte, 4); native.PutUint32(b, v); return b }

// errBody returns the body of an NLMSG_ERROR (or NLMSG_DONE) with errno
// (positive; sent negated) and the request's header.
func errBody(errno int32, req []byte) []byte {
	b := u32(uint32(-errno))
	return append(b, req...)
}

// Messages a kernel sends, as notifications (seq 0, pid 0) by default.

func newLink(index int32, name string, iff uint32) []byte {
	return nlmsg(rtmNewLink, 0, 0, 0, linkBody(afUnspec, index, 1, iff, name))
}

func delLink(index int32, name string) []byte {
	return nlmsg(rtmDelLink, 0, 0, 0, linkBody(afUnspec, index, 1, 0, name))
}

// newAddr4 and the others give an address with prefix length 24 (IPv4) or
// 64 (IPv6), with IFA_LOCAL and IFA_ADDRESS for IPv4, IFA_ADDRESS for IPv6.
func newAddr4(index int32, a string) []byte {
	return nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 24, 0, index, rtattr(ifaAddress, ip(a)), rtattr(ifaLocal, ip(a))))
}

func delAddr4(index int32, a string) []byte {
	return nlmsg(rtmDelAddr, 0, 0, 0, addrBody(afInet, 24, 0, index, rtattr(ifaAddress, ip(a)), rtattr(ifaLocal, ip(a))))
}

func newAddr6(index int32, a string, flags uint32) []byte {
	return nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet6, 64, uint8(flags), index, rtattr(ifaAddress, ip(a)), rtattr(ifaFlags, u32(flags))))
}

func delAddr6(index int32, a string) []byte {
	return nlmsg(rtmDelAddr, 0, 0, 0, addrBody(afInet6, 64, 0, index, rtattr(ifaAddress, ip(a))))
}

// events decodes the messages in b, failing the test on an error.
func events(t testing.TB, b []byte) []event {
	t.Helper()
	var out []event
	for len(b) > 0 {
		h, body, rest, err := nextMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		b = rest
		e, ok, err := decode(h.Type, body)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// cat concatenates messages.
func cat(msgs ...[]byte) []byte { return slices.Concat(msgs...) }

// fakeKernel is a conn that answers dumps from its own links and
// addresses and hands out the datagrams and errors the test queues.
type fakeKernel struct {
	mu       sync.Mutex
	objects  map[uint16][][]byte // rtmGetLink or rtmGetAddr -> message bodies to dump
	perDgram int                 // messages per dump datagram
	// onDump, if set, is called when a dump is asked for, with the
	// number of dumps of that type asked for so far (1 for the first);
	// it returns the flags to set on the dump's messages, items to
	// queue with them, and the index of the datagram after which to
	// queue them (-1: before the first).
	onDump   func(typ uint16, n int) (flags uint16, after int, inject []item)
	dumps    map[uint16]int
	queue    chan item
	closed   chan struct{}
	once     sync.Once
	grows    int
	bufBytes int
	errno    int32 // if not 0, dumps are answered with this error
}

// item is one result of Receive.
type item struct {
	data []byte
	err  error
}

const fakePort = 4242

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		objects:  map[uint16][][]byte{},
		perDgram: 2,
		dumps:    map[uint16]int{},
		queue:    make(chan item, 1000),
		closed:   make(chan struct{}),
		bufBytes: 212992,
	}
}

// set replaces what dumps report by the links and addresses of msgs.
func (k *fakeKernel) set(msgs []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.objects = map[uint16][][]byte{}
	for b := msgs; len(b) > 0; {
		h, body, rest, err := nextMessage(b)
		if err != nil {
			panic(err)
		}
		b = rest
		typ := uint16(rtmGetLink)
		if h.Type == rtmNewAddr {
			typ = rtmGetAddr
		}
		k.objects[typ] = append(k.objects[typ], body)
	}
}

// notify queues notifications, one datagram.
func (k *fakeKernel) notify(msgs ...[]byte) { k.queue <- item{data: cat(msgs...)} }

// push queues items.
func (k *fakeKernel) push(items []item) {
	for _, it := range items {
		k.queue <- it
	}
}

// fail queues an error.
func (k *fakeKernel) fail(err error) { k.queue <- item{err: err} }

func (k *fakeKernel) Send(b []byte) error {
	h, _, _, err := nextMessage(b)
	if err != nil {
		return err
	}
	typ := h.Type
	k.mu.Lock()
	k.dumps[typ]++
	n := k.dumps[typ]
	objs := slices.Clone(k.objects[typ])
	onDump := k.onDump
	errno := k.errno
	k.mu.Unlock()
	if errno != 0 {
		k.notify(nlmsg(nlmsgError, 0, h.Seq, fakePort, errBody(errno, b[:nlmsgHdrLen])))
		return nil
	}
	var flags uint16
	after := -1
	var inject []item
	if onDump != nil {
		flags, after, inject = onDump(typ, n)
	}
	reply := uint16(rtmNewLink)
	if typ == rtmGetAddr {
		reply = rtmNewAddr
	}
	var dgrams [][]byte
	var cur []byte
	for i, body := range objs {
		cur = append(cur, nlmsg(reply, nlmFMulti|flags, h.Seq, fakePort, body)...)
		if (i+1)%k.perDgram == 0 {
			dgrams = append(dgrams, cur)
			cur = nil
		}
	}
	cur = append(cur, nlmsg(nlmsgDone, nlmFMulti|flags, h.Seq, fakePort, u32(0))...)
	dgrams = append(dgrams, cur)
	if after < 0 {
		k.push(inject)
	}
	for i, d := range dgrams {
		k.queue <- item{data: d}
		if i == after {
			k.push(inject)
		}
	}
	return nil
}

func (k *fakeKernel) Receive(b []byte) (int, error) {
	select {
	case it := <-k.queue:
		if it.err != nil {
			return 0, it.err
		}
		n := copy(b, it.data)
		if n < len(it.data) {
			return n, errTruncated
		}
		return n, nil
	case <-k.closed:
		return 0, errClosed
	}
}

func (k *fakeKernel) PortID() uint32              { return fakePort }
func (k *fakeKernel) SetDeadline(time.Time) error { return nil }

func (k *fakeKernel) GrowBuffer() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.grows++
	k.bufBytes *= 2
	return k.bufBytes
}

func (k *fakeKernel) Close() error {
	k.once.Do(func() { close(k.closed) })
	return nil
}

// dumpCount returns how many dumps of typ were asked for.
func (k *fakeKernel) dumpCount(typ uint16) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dumps[typ]
}

// recorder collects the States a Watcher hands out.
type recorder struct {
	mu     sync.Mutex
	cond   *sync.Cond
	states []State
	times  []time.Time // when each State was handed out
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) add(st State) {
	r.mu.Lock()
	r.states = append(r.states, st)
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
	r.cond.Broadcast()
}

// waitFor waits until a State handed out since the from-th satisfies ok
// and returns it and the messages of every change up to it, or fails the
// test after the timeout.
func (r *recorder) waitFor(t testing.TB, from int, timeout time.Duration, what string, ok func(State) bool) (State, []string, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, r.cond.Broadcast)
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; ; {
		for ; i < len(r.states); i++ {
			if ok(r.states[i]) {
				var msgs []string
				for _, st := range r.states[from : i+1] {
					for _, c := range st.Changes {
						msgs = append(msgs, c.Msg)
					}
				}
				return r.states[i], msgs, i + 1
			}
		}
		if !time.Now().Before(deadline) {
			var last State
			if len(r.states) > 0 {
				last = r.states[len(r.states)-1]
			}
			t.Fatalf("%s: not within %v; last state %+v", what, timeout, last)
		}
		r.cond.Wait()
	}
}

// count returns the number of States handed out.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states)
}
