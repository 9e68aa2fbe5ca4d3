package netwatch

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestNextMessage(t *testing.T) {
	link := newLink(2, "eth0", iffUp)
	done := nlmsg(nlmsgDone, nlmFMulti, 7, 99, u32(0))
	odd := nlmsg(rtmNewLink, 0, 0, 0, []byte{1, 2, 3, 4, 5}) // length 21, padded to 24
	tests := []struct {
		name  string
		in    []byte
		types []uint16 // the types of the messages split off, in order
		bad   bool     // an error after them
	}{
		{"one", link, []uint16{rtmNewLink}, false},
		{"multipart", cat(link, newLink(3, "eth1", 0), done), []uint16{rtmNewLink, rtmNewLink, nlmsgDone}, false},
		{"unpadded last", odd[:21], []uint16{rtmNewLink}, false},
		{"padded odd length", cat(odd, done), []uint16{rtmNewLink, nlmsgDone}, false},
		{"short header", link[:10], nil, true},
		{"length past the end", link[:len(link)-4], nil, true},
		{"length below a header", cat(done, func() []byte { b := nlmsg(nlmsgNoop, 0, 0, 0, nil); native.PutUint32(b, 8); return b }()), []uint16{nlmsgDone}, true},
		{"empty", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint16
			b := tt.in
			var err error
			for len(b) > 0 {
				var h header
				h, _, b, err = nextMessage(b)
				if err != nil {
					break
				}
				got = append(got, h.Type)
			}
			if (err != nil) != tt.bad {
				t.Fatalf("error %v, want error %v", err, tt.bad)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("error %v is not errMalformed", err)
			}
			if len(got) != len(tt.types) {
				t.Fatalf("types %v, want %v", got, tt.types)
			}
			for i := range got {
				if got[i] != tt.types[i] {
					t.Fatalf("types %v, want %v", got, tt.types)
				}
			}
		})
	}
	t.Run("fields", func(t *testing.T) {
		h, body, rest, err := nextMessage(cat(done, link))
		if err != nil {
			t.Fatal(err)
		}
		if h != (header{Len: 20, Type: nlmsgDone, Flags: nlmFMulti, Seq: 7, Pid: 99}) || len(body) != 4 || len(rest) != len(link) {
			t.Errorf("got %+v, body %d bytes, rest %d bytes", h, len(body), len(rest))
		}
	})
}

func TestDecode(t *testing.T) {
	a4 := netip.MustParseAddr("10.0.0.5")
	tests := []struct {
		name string
		msg  []byte
		want event
		skip bool // ignored, without error
		bad  bool
	}{
		{
			name: "new link",
			msg:  newLink(5, "veth0", iffUp|iffBroadcast|iffMulticast|iffRunning),
			want: event{typ: rtmNewLink, index: 5, link: linkInfo{index: 5, name: "veth0", typ: 1,
				flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast | net.FlagRunning}},
		},
		{
			name: "loopback",
			msg:  nlmsg(rtmNewLink, 0, 0, 0, linkBody(afUnspec, 1, arphrdLoopback, iffUp|iffLoopback, "lo")),
			want: event{typ: rtmNewLink, index: 1, link: linkInfo{index: 1, name: "lo", typ: arphrdLoopback, flags: net.FlagUp | net.FlagLoopback}},
		},
		{
			name: "deleted link",
			msg:  delLink(5, "veth0"),
			want: event{typ: rtmDelLink, index: 5, link: linkInfo{index: 5, name: "veth0", typ: 1}},
		},
		{
			name: "name without NUL, nested bit set",
			msg: nlmsg(rtmNewLink, 0, 0, 0, append(linkBody(afUnspec, 9, 1, 0, ""),
				rtattr(iflaIfname|0x8000, []byte("wg0"))...)),
			want: event{typ: rtmNewLink, index: 9, link: linkInfo{index: 9, name: "wg0", typ: 1}},
		},
		{
			name: "other attributes around the name",
			msg: nlmsg(rtmNewLink, 0, 0, 0, cat(linkBody(afUnspec, 3, 1, 0, ""),
				rtattr(4, u32(1500)), rtattr(iflaIfname, []byte("br0\x00")), rtattr(16, []byte{6}))),
			want: event{typ: rtmNewLink, index: 3, link: linkInfo{index: 3, name: "br0", typ: 1}},
		},
		{name: "bridge port message", msg: nlmsg(rtmDelLink, 0, 0, 0, linkBody(afBridge, 5, 1, 0, "veth0")), skip: true},
		{name: "link index 0", msg: newLink(0, "x", 0), bad: true},
		{name: "negative link index", msg: newLink(-3, "x", 0), bad: true},
		{name: "short link", msg: nlmsg(rtmNewLink, 0, 0, 0, make([]byte, 10)), bad: true},
		{
			name: "attribute past the end",
			msg: nlmsg(rtmNewLink, 0, 0, 0, func() []byte {
				b := linkBody(afUnspec, 2, 1, 0, "eth0")
				native.PutUint16(b[ifinfomsgLen:], 200)
				return b
			}()),
			bad: true,
		},
		{
			name: "attribute shorter than its header",
			msg: nlmsg(rtmNewLink, 0, 0, 0, func() []byte {
				b := linkBody(afUnspec, 2, 1, 0, "eth0")
				native.PutUint16(b[ifinfomsgLen:], 2)
				return b
			}()),
			bad: true,
		},
		{
			name: "IPv4 address",
			msg:  newAddr4(5, "10.0.0.5"),
			want: event{typ: rtmNewAddr, index: 5, addr: addrKey{local: a4, plen: 24}},
		},
		{
			name: "IPv4 point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the peer's",
			msg: nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 32, 0x80, 7,
				rtattr(ifaAddress, ip("10.8.0.1")), rtattr(ifaLocal, ip("10.8.0.2")))),
			want: event{typ: rtmNewAddr, index: 7, flags: 0x80,
				addr: addrKey{local: netip.MustParseAddr("10.8.0.2"), peer: netip.MustParseAddr("10.8.0.1"), plen: 32}},
		},
		{
			name: "IPv6 address, tentative in IFA_FLAGS",
			msg:  newAddr6(5, "fd00::5", 0x40),
			want: event{typ: rtmNewAddr, index: 5, flags: 0x40, addr: addrKey{local: netip.MustParseAddr("fd00::5"), plen: 64}},
		},
		{
			name: "IFA_FLAGS beyond the header's byte",
			msg:  newAddr6(5, "fd00::5", 0x200),
			want: event{typ: rtmNewAddr, index: 5, flags: 0x200, addr: addrKey{local: netip.MustParseAddr("fd00::5"), plen: 64}},
		},
		{
			name: "IPv6 with a peer",
			msg: nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet6, 128, 0, 8,
				rtattr(ifaLocal, ip("fd00::1")), rtattr(ifaAddress, ip("fd00::2")))),
			want: event{typ: rtmNewAddr, index: 8,
				addr: addrKey{local: netip.MustParseAddr("fd00::1"), peer: netip.MustParseAddr("fd00::2"), plen: 128}},
		},
		{
			name: "link-local IPv6",
			msg:  newAddr6(2, "fe80::1", 0x80),
			want: event{typ: rtmNewAddr, index: 2, flags: 0x80, addr: addrKey{local: netip.MustParseAddr("fe80::1"), plen: 64}},
		},
		{
			name: "deleted address",
			msg:  delAddr4(5, "10.0.0.5"),
			want: event{typ: rtmDelAddr, index: 5, addr: addrKey{local: a4, plen: 24}},
		},
		{name: "IPv4 address of 16 bytes", msg: nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 24, 0, 5, rtattr(ifaAddress, ip("fd00::5")))), bad: true},
		{name: "no address attribute", msg: nlmsg(rtmNewAddr, 0, 0, 0, addrBody(afInet, 24, 0, 5)), bad: true},
		{name: "address on index 0", msg: newAddr4(0, "10.0.0.5"), bad: true},
		{name: "short address", msg: nlmsg(rtmNewAddr, 0, 0, 0, make([]byte, 4)), bad: true},
		{name: "other family", msg: nlmsg(rtmNewAddr, 0, 0, 0, addrBody(17, 0, 0, 5, rtattr(ifaAddress, []byte{1, 2, 3, 4, 5, 6}))), skip: true},
		{name: "route message", msg: nlmsg(24, 0, 0, 0, make([]byte, 12)), skip: true},
		{name: "done", msg: nlmsg(nlmsgDone, nlmFMulti, 1, 1, u32(0)), skip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, _, err := nextMessage(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			e, ok, err := decode(h.Type, body)
			switch {
			case tt.bad:
				if err == nil || ok {
					t.Fatalf("got %+v, ok %v, error %v; want an error", e, ok, err)
				}
				if !errors.Is(err, errMalformed) {
					t.Errorf("error %v is not errMalformed", err)
				}
			case tt.skip:
				if err != nil || ok {
					t.Fatalf("got %+v, ok %v, error %v; want it skipped", e, ok, err)
				}
			default:
				if err != nil || !ok {
					t.Fatalf("ok %v, error %v", ok, err)
				}
				if e != tt.want {
					t.Errorf("got  %+v\nwant %+v", e, tt.want)
				}
			}
		})
	}
}

func TestParseErrno(t *testing.T) {
	req := appendRequest(nil, rtmGetLink, 3)
	tests := []struct {
		name string
		body []byte
		want int
		bad  bool
	}{
		{"permission denied", errBody(1, req[:nlmsgHdrLen]), 1, false},
		{"acknowledgement", errBody(0, req[:nlmsgHdrLen]), 0, false},
		{"EBUSY in done", u32(uint32(0xfffffff0)), 16, false},
		{"short", []byte{1, 2}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseErrno(tt.body)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestAppendRequest(t *testing.T) {
	for _, tt := range []struct {
		typ  uint16
		size int
	}{{rtmGetLink, nlmsgHdrLen + ifinfomsgLen + 8}, {rtmGetAddr, nlmsgHdrLen + ifaddrmsgLen}} {
		b := appendRequest([]byte{9, 9, 9, 9}, tt.typ, 42)[4:]
		h, body, rest, err := nextMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if int(h.Len) != tt.size || h.Type != tt.typ || h.Flags != nlmFRequest|nlmFDump || h.Seq != 42 || len(rest) != 0 {
			t.Errorf("type %d: header %+v, rest %d bytes", tt.typ, h, len(rest))
		}
		if body[0] != afUnspec {
			t.Errorf("type %d: family %d, want AF_UNSPEC", tt.typ, body[0])
		}
		if tt.typ == rtmGetLink {
			var mask uint32
			if err := forAttrs(body[ifinfomsgLen:], func(typ uint16, val []byte) {
				if typ == iflaExtMask {
					mask = native.Uint32(val)
				}
			}); err != nil || mask != rtextFilterSkipStats {
				t.Errorf("IFLA_EXT_MASK %#x, %v", mask, err)
			}
		}
	}
}
