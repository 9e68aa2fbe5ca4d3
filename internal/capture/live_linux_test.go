//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/fixture"
	"github.com/tcpeek/tcpeek/internal/kfilter"
)

// serve listens on addr in namespace ns and reads every connection to its
// end, until the test ends.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
}

// dialOpts says how a test client behaves.
type dialOpts struct {
	deferAck bool // TCP_DEFER_ACCEPT on the connecting socket: its first ACK rides on its first data
	first    int  // bytes written at once after connect
	extra    int  // bytes written after those, 1000 at a time
	rst      bool // end with an RST (SO_LINGER 0), not a FIN
}

// dial connects from local to remote in namespace ns with the kernel's TCP
// stack, writes and closes as o says. The connect's result is the truth of
// whether the handshake completed.
func dial(ns string, local, remote netip.AddrPort, o dialOpts) error {
	return inNetns(ns, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: 5 * time.Second}
		if o.deferAck {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
				})
				return errors.Join(err, serr)
			}
		}
		c, err := d.Dial("tcp", remote.String())
		if err != nil {
			return fmt.Errorf("connect from %v to %v: %w", local, remote, err)
		}
		tc := c.(*net.TCPConn)
		if o.first > 0 {
			if _, err := c.Write(make([]byte, o.first)); err != nil {
				c.Close()
				return err
			}
		}
		buf := make([]byte, 1000)
		for n := 0; n < o.extra; n += len(buf) {
			if _, err := c.Write(buf); err != nil {
				c.Close()
				return err
			}
		}
		if o.rst {
			tc.SetLinger(0)
		}
		return c.Close()
	})
}

// TestLiveDataACK captures real kernel handshakes whose initiator
// acknowledges the SYN/ACK on its first data segment (TCP_DEFER_ACCEPT on
// the connecting socket), one that then resets, one that sends 300 KB and
// closes: the eBPF filter lets through that data segment, cut to SnapLen,
// and almost nothing of the established connection; the classic filter
// misses it. A capture with no filter is the reference of what was on the
// wire.
func TestLiveDataACK(t *testing.T) {
	requireLab(t)
	a, b := newNetns(t), newNetns(t)
	veth(t, a, "veth-a", "10.201.0.1/24", b, "veth-b", "10.201.0.2/24")
	idx := ifindex(t, a, "veth-a")
	caps := map[string]*recorder{}
	for _, name := range []string{kfilter.NameEBPF, kfilter.NameClassic, "none"} {
		caps[name] = openCapture(t, a, LiveConfig{Scope: ScopeOne, Interfaces: []int{idx}, Filter: openFilter(t, name)})
	}
	serve(t, a, "10.201.0.1:7000")
	server := addrPort("10.201.0.1:7000")

	for _, c := range []struct {
		name string
		o    dialOpts
	}{
		{"data ACK then RST", dialOpts{deferAck: true, first: 1000, rst: true}},
		{"data ACK then 300 KB and a close", dialOpts{deferAck: true, first: 1000, extra: 300_000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for attempt := range 5 {
				p := uint16(41000 + 10*attempt)
				if c.o.extra > 0 {
					p += 5
				}
				if err := dial(b, netip.AddrPortFrom(netip.MustParseAddr("10.201.0.2"), p), server, c.o); err != nil {
					t.Fatal(err)
				}
				// A marker SYN: once every capture has it, they have
				// all of the connection before it.
				marker := p + 1
				if err := dial(b, netip.AddrPortFrom(netip.MustParseAddr("10.201.0.2"), marker), server, dialOpts{}); err != nil {
					t.Fatal(err)
				}
				for name, r := range caps {
					r.waitSYN(t, name, marker)
				}
				ref := caps["none"].tcp(port(p))
				first := firstACK(ref, p)
				if first == nil {
					t.Fatalf("the reference capture has no ACK from port %d:\n%s", p, describe(ref))
				}
				if first.PayloadLen == 0 {
					t.Logf("attempt %d: the client sent a pure ACK first (a slow write); again", attempt)
					continue
				}
				checkDataACK(t, caps, p, first, len(ref), c.o)
				return
			}
			t.Fatal("the client never acknowledged the SYN/ACK on data in 5 attempts")
		})
	}
}

// firstACK returns the initiator's first segment with ACK set and SYN
// clear: the one that completes the handshake.
func firstACK(fs []frameRec, from uint16) *decode.Packet {
	for i := range fs {
		p := &fs[i].pkt
		if p.SrcPort == from && p.Flags&decode.ACK != 0 && p.Flags&(decode.SYN|decode.RST) == 0 {
			return p
		}
	}
	return nil
}

// checkDataACK checks what each capture has of the connection from port p,
// whose handshake completed with the data segment first.
func checkDataACK(t *testing.T, caps map[string]*recorder, p uint16, first *decode.Packet, onWire int, o dialOpts) {
	t.Helper()
	isFirst := func(k *decode.Packet) bool {
		return k.SrcPort == p && k.Seq == first.Seq && k.Ack == first.Ack && k.PayloadLen > 0 && k.Flags&decode.SYN == 0
	}
	for _, name := range []string{kfilter.NameEBPF, kfilter.NameClassic} {
		fs := caps[name].tcp(port(p))
		var got *frameRec
		syn, synAck, rst := 0, 0, 0
		for i := range fs {
			k := &fs[i].pkt
			switch {
			case isFirst(k) && got == nil:
				got = &fs[i]
			case k.Flags == decode.SYN:
				syn++
			case k.Flags == decode.SYN|decode.ACK:
				synAck++
			case k.Flags&decode.RST != 0 && k.SrcPort == p:
				rst++
			}
		}
		if syn != 1 || synAck != 1 {
			t.Errorf("%s: %d SYNs and %d SYN/ACKs of port %d, want 1 and 1:\n%s", name, syn, synAck, p, describe(fs))
		}
		if o.rst && rst == 0 {
			t.Errorf("%s: the client's RST is missing:\n%s", name, describe(fs))
		}
		switch name {
		case kfilter.NameEBPF:
			if got == nil {
				t.Errorf("eBPF: the data segment that completes the handshake (seq %d ack %d) is missing:\n%s", first.Seq, first.Ack, describe(fs))
				continue
			}
			if len(got.data) != kfilter.SnapLen || got.wireLen <= kfilter.SnapLen {
				t.Errorf("eBPF: the data segment kept %d of %d bytes, want %d", len(got.data), got.wireLen, kfilter.SnapLen)
			}
			if max := 5; len(fs) > max {
				t.Errorf("eBPF: %d frames of the connection (%d on the wire), want at most %d:\n%s", len(fs), onWire, max, describe(fs))
			}
			if o.extra > 0 && onWire < 20 {
				t.Errorf("only %d frames of the connection on the wire: the test sends too little", onWire)
			}
		case kfilter.NameClassic:
			if got != nil {
				t.Errorf("classic: the data segment that completes the handshake passed: the classic filter drops data")
			}
		}
		t.Logf("%s: %d frames of the connection, %d on the wire", name, len(fs), onWire)
	}
}

// describe lists frames for a failure message.
func describe(fs []frameRec) string {
	var s string
	for _, f := range fs {
		s += fmt.Sprintf("  %v len %d/%d\n", &f.pkt, len(f.data), f.wireLen)
	}
	return s
}

// TestLiveInterfaces checks the scopes in a namespace with two veth links:
// an unbound capture sees both; an allow-list of one sees only that one;
// SetInterfaces changes the list at run time, with no gap for an interface
// that stays in it; the frames of lo count once.
func TestLiveInterfaces(t *testing.T) {
	requireLab(t)
	a, b, c := newNetns(t), newNetns(t), newNetns(t)
	veth(t, a, "veth-ab", "10.202.1.1/24", b, "veth-ba", "10.202.1.2/24")
	veth(t, a, "veth-ac", "10.202.2.1/24", c, "veth-ca", "10.202.2.2/24")
	ab, ac := ifindex(t, a, "veth-ab"), ifindex(t, a, "veth-ac")
	serve(t, a, ":7000")
	fromB := func(p uint16) error {
		return dial(b, addrPort(fmt.Sprintf("10.202.1.2:%d", p)), addrPort("10.202.1.1:7000"), dialOpts{})
	}
	fromC := func(p uint16) error {
		return dial(c, addrPort(fmt.Sprintf("10.202.2.2:%d", p)), addrPort("10.202.2.1:7000"), dialOpts{})
	}
	seen := func(r *recorder, p uint16) bool {
		return len(r.tcp(func(k *decode.Packet) bool { return k.SrcPort == p && k.Flags == decode.SYN })) > 0
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	for i, name := range []string{kfilter.NameEBPF, kfilter.NameClassic} {
		base := uint16(42000 + 1000*i)
		t.Run(name, func(t *testing.T) {
			// Unbound: both links.
			all := openCapture(t, a, LiveConfig{Scope: ScopeAll, Interfaces: []int{ab, ac}, Filter: openFilter(t, name)})
			must(fromB(base + 1))
			must(fromC(base + 2))
			all.waitSYN(t, "any, from B", base+1)
			all.waitSYN(t, "any, from C", base+2)

			// An allow-list of B's link.
			set := openCapture(t, a, LiveConfig{Scope: ScopeSet, Interfaces: []int{ab}, Filter: openFilter(t, name)})
			must(fromC(base + 11))
			must(fromB(base + 12))
			set.waitSYN(t, "set {B}, from B", base+12)
			if seen(set, base+11) {
				t.Errorf("set {B}: a SYN from C passed")
			}
			// Changed to C's.
			must(set.l.SetInterfaces([]int{ac}))
			if got := set.l.Interfaces(); !slices.Equal(got, []int{ac}) {
				t.Errorf("Interfaces() = %v, want [%d]", got, ac)
			}
			must(fromB(base + 21))
			must(fromC(base + 22))
			set.waitSYN(t, "set {C}, from C", base+22)
			if seen(set, base+21) {
				t.Errorf("set {C}: a SYN from B passed")
			}
			// Both, then back and forth: B's link stays, C's comes and
			// goes; no SYN from B is missed.
			must(set.l.SetInterfaces([]int{ab, ac}))
			for k := range uint16(10) {
				if k%2 == 0 {
					must(set.l.SetInterfaces([]int{ab}))
				} else {
					must(set.l.SetInterfaces([]int{ab, ac}))
				}
				must(fromB(base + 100 + k))
			}
			must(fromC(base + 120))
			set.waitSYN(t, "set {B, C}, from C", base+120)
			for k := range uint16(10) {
				if !seen(set, base+100+k) {
					t.Errorf("set changing around B: the SYN from B of round %d is missing", k)
				}
			}
			if s := set.l.Stats(); s.Packets == 0 || s.Drops != 0 {
				t.Errorf("Stats() = %+v: want packets, no drops", s)
			}
			if got := set.l.FilterName(); got != name {
				t.Errorf("FilterName() = %q, want %q", got, name)
			}
		})
	}

	// The loopback: each frame once, with each filter and with none.
	for i, name := range []string{kfilter.NameEBPF, kfilter.NameClassic, "none"} {
		t.Run("lo/"+name, func(t *testing.T) {
			p := uint16(45000 + 10*i)
			lo := openCapture(t, a, LiveConfig{Scope: ScopeOne, Interfaces: []int{1}, Filter: openFilter(t, name)})
			must(dial(a, addrPort(fmt.Sprintf("127.0.0.1:%d", p)), addrPort("127.0.0.1:7000"), dialOpts{first: 10}))
			must(dial(a, addrPort(fmt.Sprintf("127.0.0.1:%d", p+1)), addrPort("127.0.0.1:7000"), dialOpts{}))
			lo.waitSYN(t, "lo", p+1)
			fs := lo.tcp(port(p))
			syn, synAck := 0, 0
			for _, f := range fs {
				switch f.pkt.Flags {
				case decode.SYN:
					syn++
				case decode.SYN | decode.ACK:
					synAck++
				}
				if f.link != linkEthernet {
					t.Errorf("a frame of lo of link type %d, want Ethernet", f.link)
				}
			}
			if syn != 1 || synAck != 1 {
				t.Errorf("lo: %d SYNs and %d SYN/ACKs, want each once:\n%s", syn, synAck, describe(fs))
			}
		})
	}

	if _, err := OpenLive(LiveConfig{Scope: ScopeSet, Interfaces: []int{ab}}); err == nil {
		t.Errorf("OpenLive of a set without a kernel filter: no error")
	}
}

// TestLiveTun checks frames of an interface without link-layer header (a
// tun device): they come from their network header behind a cooked header
// and decode; the eBPF filter follows their handshake as on Ethernet.
func TestLiveTun(t *testing.T) {
	requireLab(t)
	a := newNetns(t)
	ip(t, "-n", a, "tuntap", "add", "mode", "tun", "tun0")
	ip(t, "-n", a, "addr", "add", "10.203.0.1/24", "dev", "tun0")
	ip(t, "-n", a, "link", "set", "tun0", "up")
	idx := ifindex(t, a, "tun0")
	serve(t, a, "10.203.0.1:7000")
	var tun *os.File
	err := inNetns(a, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("tun0")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		tun = os.NewFile(uintptr(fd), "tun0")
		return nil
	})
	if err != nil {
		t.Skipf("no tun device here: %v", err)
	}
	defer tun.Close()

	for _, name := range []string{kfilter.NameEBPF, kfilter.NameClassic} {
		t.Run(name, func(t *testing.T) {
			r := openCapture(t, a, LiveConfig{Scope: ScopeOne, Interfaces: []int{idx}, Filter: openFilter(t, name)})
			client, server := addrPort("10.203.0.2:43001"), addrPort("10.203.0.1:7000")
			if name == kfilter.NameClassic {
				client = addrPort("10.203.0.2:43002")
			}
			const isn = 1000
			write := func(s fixture.Seg) {
				t.Helper()
				pkt, err := s.IP()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tun.Write(pkt); err != nil {
					t.Fatal(err)
				}
			}
			write(fixture.Seg{Src: client, Dst: server, Flags: "S", Seq: isn})
			// The kernel's SYN/ACK comes out of the tun device.
			var risn uint32
			buf := make([]byte, 2048)
			tun.SetReadDeadline(time.Now().Add(5 * time.Second))
			for risn == 0 {
				n, err := tun.Read(buf)
				if err != nil {
					t.Fatalf("reading the SYN/ACK from tun0: %v", err)
				}
				var p decode.Packet
				if (&decode.Decoder{}).Decode(&p, decode.LinkRaw, buf[:n], false) == decode.OK &&
					p.Flags == decode.SYN|decode.ACK && p.DstPort == client.Port() {
					risn = p.Seq
				}
			}
			write(fixture.Seg{Src: client, Dst: server, Flags: "PA", Seq: isn + 1, Ack: risn + 1, Data: 500})
			write(fixture.Seg{Src: client, Dst: server, Flags: "PA", Seq: isn + 501, Ack: risn + 1, Data: 500})
			marker := addrPort("10.203.0.2:43099")
			if name == kfilter.NameClassic {
				marker = addrPort("10.203.0.2:43098")
			}
			write(fixture.Seg{Src: marker, Dst: server, Flags: "S", Seq: 5})
			r.waitSYN(t, "tun", marker.Port())

			fs := r.tcp(port(client.Port()))
			var flags []string
			for _, f := range fs {
				if f.link != linkCooked {
					t.Errorf("a frame of tun0 of link type %d, want Linux cooked", f.link)
				}
				flags = append(flags, fmt.Sprintf("%s/%d", decode.FlagString(f.pkt.Flags), f.pkt.PayloadLen))
			}
			want := []string{"S/0", "S./0", "P./500"} // SYN in, SYN/ACK out, the data ACK in
			if name == kfilter.NameClassic {
				want = []string{"S/0", "S./0", "./0"} // and the kernel's pure ACK of the data
			}
			if !slices.Equal(flags[:min(len(flags), len(want))], want) || name == kfilter.NameEBPF && len(flags) != len(want) {
				t.Errorf("frames of the connection: %v, want %v", flags, want)
			}
		})
	}
}

// TestLiveVLAN sends frames with 0 to 4 VLAN tags over a veth link with a
// packet socket, and checks what the capture on the other end lets through:
// the kernel moves the outermost tag into metadata, the filters look through
// two more.
func TestLiveVLAN(t *testing.T) {
	requireLab(t)
	a, b := newNetns(t), newNetns(t)
	veth(t, a, "veth-a", "", b, "veth-b", "")
	ia, ib := ifindex(t, a, "veth-a"), ifindex(t, b, "veth-b")
	var sock int
	if err := inNetns(b, func() (err error) {
		sock, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	send := func(frame []byte) {
		t.Helper()
		sa := &unix.SockaddrLinklayer{Ifindex: ib, Protocol: htons(binary.BigEndian.Uint16(frame[12:]))}
		if err := unix.Sendto(sock, frame, 0, sa); err != nil {
			t.Fatal(err)
		}
	}
	// tagged returns an Ethernet frame of the segment with the tags.
	tagged := func(s fixture.Seg, tags ...uint16) []byte {
		t.Helper()
		f, err := s.Frame()
		if err != nil {
			t.Fatal(err)
		}
		for i := len(tags) - 1; i >= 0; i-- {
			tag := []byte{0, 0, 0, byte(10 + i), 0, 0}
			binary.BigEndian.PutUint16(tag[0:], tags[i])
			copy(tag[4:], f[12:14])
			f = append(f[:12:12], append(tag, f[14:]...)...)
		}
		return f
	}
	src, dst := netip.MustParseAddr("10.204.0.2"), netip.MustParseAddr("10.204.0.1")
	seg := func(p uint16, flags string, data int) fixture.Seg {
		return fixture.Seg{Src: netip.AddrPortFrom(src, p), Dst: netip.AddrPortFrom(dst, 80), Flags: flags, Seq: 1, Ack: 2, Data: data}
	}
	const q, ad = 0x8100, 0x88a8
	cases := []struct {
		p             uint16
		frame         []byte
		ebpf, classic bool
	}{
		{46001, tagged(seg(46001, "S", 0)), true, true},
		{46002, tagged(seg(46002, "S", 0), q), true, true},
		{46003, tagged(seg(46003, "S", 0), ad, q), true, true},
		{46004, tagged(seg(46004, "S", 0), ad, q, q), true, true},
		{46005, tagged(seg(46005, "S", 0), ad, q, q, q), false, false},
		{46006, tagged(seg(46006, "PA", 0), q), false, true}, // a pure ACK
		{46007, tagged(seg(46007, "PA", 100), ad, q), false, false},
		{46008, tagged(seg(46008, "RA", 0), ad, q), true, true},
	}
	for _, name := range []string{kfilter.NameEBPF, kfilter.NameClassic} {
		t.Run(name, func(t *testing.T) {
			r := openCapture(t, a, LiveConfig{Scope: ScopeOne, Interfaces: []int{ia}, Filter: openFilter(t, name)})
			for _, c := range cases {
				send(c.frame)
			}
			send(tagged(seg(46099, "S", 0), q))
			r.waitSYN(t, "veth", 46099)
			for _, c := range cases {
				want := c.ebpf
				if name == kfilter.NameClassic {
					want = c.classic
				}
				if got := len(r.tcp(port(c.p))) > 0; got != want {
					t.Errorf("port %d: passed %v, want %v", c.p, got, want)
				}
			}
		})
	}
}

// TestLiveInterfaceGone deletes the interface a capture is bound to: Next
// reports it once and goes on; an interface of that name made again (with
// a new index) is captured once SetInterfaces names it.
func TestLiveInterfaceGone(t *testing.T) {
	requireLab(t)
	a, b := newNetns(t), newNetns(t)
	veth(t, a, "veth-a", "10.205.0.1/24", b, "veth-b", "10.205.0.2/24")
	old := ifindex(t, a, "veth-a")
	var l *Live
	f := openFilter(t, kfilter.NameEBPF)
	if err := inNetns(a, func() (err error) {
		l, err = OpenLive(LiveConfig{Scope: ScopeOne, Interfaces: []int{old}, Filter: f, PollTimeout: 50 * time.Millisecond})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ip(t, "-n", a, "link", "del", "veth-a")
	var fr Frame
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err = l.Next(&fr); !errors.Is(err, ErrInterfaceGone); err = l.Next(&fr) {
		if err != nil && err != ErrIdle || time.Now().After(deadline) {
			t.Fatalf("Next after the interface was deleted: %v, want ErrInterfaceGone", err)
		}
	}
	if err := l.Next(&fr); err != ErrIdle {
		t.Fatalf("Next after ErrInterfaceGone: %v, want ErrIdle", err)
	}

	veth(t, a, "veth-a", "10.205.0.1/24", b, "veth-b2", "10.205.0.2/24")
	idx := ifindex(t, a, "veth-a")
	if idx == old {
		t.Fatalf("the new veth-a has the old index %d", idx)
	}
	if err := l.SetInterfaces([]int{idx}); err != nil {
		t.Fatal(err)
	}
	serve(t, a, "10.205.0.1:7000")
	if err := dial(b, addrPort("10.205.0.2:47001"), addrPort("10.205.0.1:7000"), dialOpts{}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := l.Next(&fr)
		if err != nil && err != ErrIdle || time.Now().After(deadline) {
			t.Fatalf("no SYN from the new veth-a: %v", err)
		}
		var p decode.Packet
		if err == nil && dec.Decode(&p, fr.LinkType, fr.Data, false) == decode.OK && p.SrcPort == 47001 && p.Flags == decode.SYN {
			break
		}
	}
}
