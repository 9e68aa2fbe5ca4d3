package netwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Linux ABI values of rtnetlink (include/uapi/linux/netlink.h, rtnetlink.h,
// if_link.h, if_addr.h, if.h, socket.h). They are spelled out here rather
// than taken from golang.org/x/sys/unix so that the parser and the model are
// plain Go, tested and fuzzed on any system; consts_linux_test.go checks
// them against unix.
const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	nlmsgNoop    = 1
	nlmsgError   = 2
	nlmsgDone    = 3
	nlmsgOverrun = 4

	nlmFRequest  = 0x1
	nlmFMulti    = 0x2
	nlmFDumpIntr = 0x10
	nlmFDump     = 0x300 // NLM_F_ROOT | NLM_F_MATCH

	rtmNewLink = 16
	rtmDelLink = 17
	rtmGetLink = 18
	rtmNewAddr = 20
	rtmDelAddr = 21
	rtmGetAddr = 22

	ifinfomsgLen = 16 // struct ifinfomsg
	ifaddrmsgLen = 8  // struct ifaddrmsg
	rtattrLen    = 4  // struct rtattr (struct nlattr has the same layout)
	nlaTypeMask  = 0x3fff

	iflaIfname  = 3
	iflaExtMask = 29

	ifaAddress = 1
	ifaLocal   = 2
	ifaFlags   = 8

	ifaFDadfailed = 0x08

	afUnspec = 0
	afInet   = 2
	afBridge = 7
	afInet6  = 10

	// rtextFilterSkipStats (RTEXT_FILTER_SKIP_STATS) leaves the counters
	// out of a link dump; older kernels ignore the bit.
	rtextFilterSkipStats = 1 << 3

	iffUp          = 0x1
	iffBroadcast   = 0x2
	iffLoopback    = 0x8
	iffPointToPt   = 0x10
	iffRunning     = 0x40
	iffMulticast   = 0x1000
	arphrdLoopback = 772
)

// native is the byte order of netlink messages: the host's.
var native = binary.NativeEndian

// errMalformed is the error of a message whose lengths do not add up.
var errMalformed = errors.New("malformed netlink message")

// header is a netlink message header (struct nlmsghdr).
type header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	Pid   uint32
}

// nextMessage splits the first netlink message off b: its header, its body
// (the bytes after the header, up to the header's length) and the rest of
// b after the message's padding. A header whose length is shorter than a
// header or longer than b is an error: the rest of b cannot be trusted.
func nextMessage(b []byte) (h header, body, rest []byte, err error) {
	if len(b) < nlmsgHdrLen {
		return h, nil, nil, fmt.Errorf("%w: %d bytes left, a header needs %d", errMalformed, len(b), nlmsgHdrLen)
	}
	h = header{
		Len:   native.Uint32(b[0:4]),
		Type:  native.Uint16(b[4:6]),
		Flags: native.Uint16(b[6:8]),
		Seq:   native.Uint32(b[8:12]),
		Pid:   native.Uint32(b[12:16]),
	}
	if h.Len < nlmsgHdrLen || uint64(h.Len) > uint64(len(b)) {
		return h, nil, nil, fmt.Errorf("%w: length %d with %d bytes left", errMalformed, h.Len, len(b))
	}
	next := align4(int(h.Len))
	if next > len(b) {
		next = len(b)
	}
	return h, b[nlmsgHdrLen:h.Len], b[next:], nil
}

// align4 rounds n up to a multiple of 4 (NLMSG_ALIGN, RTA_ALIGN).
func align4(n int) int { return (n + 3) &^ 3 }

// forAttrs calls fn with the type (without the nested and byte-order bits)
// and value of every attribute in b. A trailing fragment shorter than an
// attribute header is ignored; an attribute whose length is shorter than
// its header or runs past b is an error.
func forAttrs(b []byte, fn func(typ uint16, val []byte)) error {
	for len(b) >= rtattrLen {
		l := int(native.Uint16(b[0:2]))
		if l < rtattrLen || l > len(b) {
			return fmt.Errorf("%w: attribute length %d with %d bytes left", errMalformed, l, len(b))
		}
		fn(native.Uint16(b[2:4])&nlaTypeMask, b[rtattrLen:l])
		next := align4(l)
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
	}
	return nil
}

// linkInfo is what the model keeps of a network interface.
type linkInfo struct {
	index int
	name  string
	flags net.Flags
	typ   uint16 // ARPHRD_*
}

// addrKey identifies an address on an interface, as the kernel does: an
// IPv4 address may be on one interface twice with two prefix lengths, or
// with two peers.
type addrKey struct {
	local netip.Addr // the host's address (IFA_LOCAL, else IFA_ADDRESS); no zone
	peer  netip.Addr // the other end of a point-to-point link, or the zero Addr
	plen  uint8
}

// event is one parsed rtnetlink message about a link or an address.
type event struct {
	typ   uint16 // rtmNewLink, rtmDelLink, rtmNewAddr or rtmDelAddr
	link  linkInfo
	index int     // the interface of an address
	addr  addrKey // the address, for rtmNewAddr and rtmDelAddr
	flags uint32  // the address's IFA_F_* flags
}

// decode parses the body of a message of type typ into an event. It
// returns ok false, with no error, for the messages the model ignores:
// other types, and links and addresses of other families (a bridge's
// AF_BRIDGE RTM_DELLINK says that a port left the bridge, not that an
// interface is gone).
func decode(typ uint16, body []byte) (e event, ok bool, err error) {
	switch typ {
	case rtmNewLink, rtmDelLink:
		e.link, ok, err = parseLink(body)
		e.index = e.link.index
	case rtmNewAddr, rtmDelAddr:
		e.index, e.addr, e.flags, ok, err = parseAddr(body)
	default:
		return e, false, nil
	}
	e.typ = typ
	return e, ok && err == nil, err
}

// parseLink parses the body of an RTM_NEWLINK or RTM_DELLINK message. ok is
// false for a family other than AF_UNSPEC.
func parseLink(b []byte) (l linkInfo, ok bool, err error) {
	if len(b) < ifinfomsgLen {
		return l, false, fmt.Errorf("%w: link message of %d bytes", errMalformed, len(b))
	}
	if b[0] != afUnspec {
		return l, false, nil
	}
	l.typ = native.Uint16(b[2:4])
	l.index = int(int32(native.Uint32(b[4:8])))
	l.flags = netFlags(native.Uint32(b[8:12]))
	if l.index <= 0 {
		return l, false, fmt.Errorf("%w: link index %d", errMalformed, l.index)
	}
	err = forAttrs(b[ifinfomsgLen:], func(typ uint16, val []byte) {
		if typ == iflaIfname {
			l.name = cString(val)
		}
	})
	return l, err == nil, err
}

// cString returns b up to its first NUL byte, as a string.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// netFlags converts IFF_* flags into net.Flags.
func netFlags(f uint32) net.Flags {
	var nf net.Flags
	for _, p := range [...]struct {
		iff uint32
		net net.Flags
	}{
		{iffUp, net.FlagUp},
		{iffBroadcast, net.FlagBroadcast},
		{iffLoopback, net.FlagLoopback},
		{iffPointToPt, net.FlagPointToPoint},
		{iffMulticast, net.FlagMulticast},
		{iffRunning, net.FlagRunning},
	} {
		if f&p.iff != 0 {
			nf |= p.net
		}
	}
	return nf
}

// parseAddr parses the body of an RTM_NEWADDR or RTM_DELADDR message. ok is
// false for a family other than AF_INET and AF_INET6. The host's address is
// IFA_LOCAL when the message has one and IFA_ADDRESS otherwise: on a
// point-to-point link IFA_ADDRESS is the peer's (IPv4 always sends both,
// IPv6 sends IFA_LOCAL only with a peer). IFA_FLAGS, when present, holds
// the flags that do not fit in the header's byte.
func parseAddr(b []byte) (index int, k addrKey, flags uint32, ok bool, err error) {
	if len(b) < ifaddrmsgLen {
		return 0, k, 0, false, fmt.Errorf("%w: address message of %d bytes", errMalformed, len(b))
	}
	family := b[0]
	if family != afInet && family != afInet6 {
		return 0, k, 0, false, nil
	}
	k.plen = b[1]
	flags = uint32(b[2])
	index = int(int32(native.Uint32(b[4:8])))
	if index <= 0 {
		return 0, k, 0, false, fmt.Errorf("%w: address on interface index %d", errMalformed, index)
	}
	size := 4
	if family == afInet6 {
		size = 16
	}
	var local, address netip.Addr
	var bad error
	err = forAttrs(b[ifaddrmsgLen:], func(typ uint16, val []byte) {
		switch typ {
		case ifaAddress, ifaLocal:
			if len(val) != size {
				bad = fmt.Errorf("%w: address attribute of %d bytes in family %d", errMalformed, len(val), family)
				return
			}
			a, _ := netip.AddrFromSlice(val)
			if typ == ifaLocal {
				local = a
			} else {
				address = a
			}
		case ifaFlags:
			if len(val) >= 4 {
				flags = native.Uint32(val)
			}
		}
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return 0, k, 0, false, err
	}
	k.local = local
	if !local.IsValid() {
		k.local = address
	} else if address.IsValid() && address != local {
		k.peer = address
	}
	if !k.local.IsValid() {
		return 0, k, 0, false, fmt.Errorf("%w: address message without an address", errMalformed)
	}
	return index, k, flags, true, nil
}

// parseErrno returns the error number of an NLMSG_ERROR message (0 for an
// acknowledgement), or of an NLMSG_DONE message, which may carry one too.
// The kernel sends it negated; it is returned positive.
func parseErrno(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%w: error message of %d bytes", errMalformed, len(b))
	}
	return -int(int32(native.Uint32(b[0:4]))), nil
}

// appendRequest appends to b a dump request of type typ (rtmGetLink or
// rtmGetAddr) for every family, with sequence number seq.
func appendRequest(b []byte, typ uint16, seq uint32) []byte {
	body := ifaddrmsgLen
	if typ == rtmGetLink {
		body = ifinfomsgLen + rtattrLen + 4 // and IFLA_EXT_MASK
	}
	start := len(b)
	b = append(b, make([]byte, nlmsgHdrLen+body)...)
	m := b[start:]
	native.PutUint32(m[0:4], uint32(len(m)))
	native.PutUint16(m[4:6], typ)
	native.PutUint16(m[6:8], nlmFRequest|nlmFDump)
	native.PutUint32(m[8:12], seq)
	// The family (first byte of the body) is AF_UNSPEC: every family.
	if typ == rtmGetLink {
		a := m[nlmsgHdrLen+ifinfomsgLen:]
		native.PutUint16(a[0:2], rtattrLen+4)
		native.PutUint16(a[2:4], iflaExtMask)
		native.PutUint32(a[4:8], rtextFilterSkipStats)
	}
	return b
}
