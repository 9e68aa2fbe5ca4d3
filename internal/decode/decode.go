package decode

import (
	"encoding/binary"
	"net/netip"
)

// Link types (pcap LINKTYPE_* values) that Decode understands.
const (
	LinkNull      = 0   // BSD loopback, address family in host byte order
	LinkEthernet  = 1   // Ethernet II
	LinkRaw12     = 12  // raw IP (DLT_RAW as most systems number it)
	LinkRaw14     = 14  // raw IP (DLT_RAW as OpenBSD numbers it)
	LinkRaw       = 101 // raw IP, version in the first nibble
	LinkLoop      = 108 // OpenBSD loopback, address family in network byte order
	LinkLinuxSLL  = 113 // Linux cooked capture v1
	LinkIPv4      = 228 // raw IPv4
	LinkIPv6      = 229 // raw IPv6
	LinkLinuxSLL2 = 276 // Linux cooked capture v2
)

// Checksum is how much a Decoder verifies (SPEC §5).
type Checksum uint8

// Checksum verification levels, the values of tcpeek's -c option.
const (
	// CheckNone verifies nothing.
	CheckNone Checksum = 0
	// CheckIP verifies IPv4 header checksums.
	CheckIP Checksum = 1
	// CheckAll verifies IPv4 header checksums and TCP, ICMP and ICMPv6
	// checksums.
	CheckAll Checksum = 2
)

// Bounds on what a frame may make the decoder do.
const (
	// MaxEncap is the most encapsulation layers (tags, labels, tunnels)
	// peeled off one frame; deeper frames are malformed.
	MaxEncap = 16
	// MaxIPv6ExtHeaders is the most IPv6 extension headers followed in one
	// header chain; longer chains are malformed.
	MaxIPv6ExtHeaders = 8
)

// EtherTypes and IP protocol numbers used below.
const (
	etIPv4       = 0x0800
	etIPv6       = 0x86dd
	etVLAN       = 0x8100
	etQinQ       = 0x88a8
	etQinQOld1   = 0x9100
	etQinQOld2   = 0x9200
	etMPLS       = 0x8847
	etMPLSMcast  = 0x8848
	etPPPoE      = 0x8864
	etFabricPath = 0x8903
	etTEB        = 0x6558 // transparent Ethernet bridging (GRE, Geneve)
	etERSPAN2    = 0x88be
	etERSPAN3    = 0x22eb

	protoICMP   = 1
	protoIPIP   = 4
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoGRE    = 47
	protoICMPv6 = 58

	portVXLAN  = 4789
	portGeneve = 6081
	portTeredo = 3544
)

// Decoder decodes frames into Packets. The zero value verifies no checksum.
// A Decoder has no state besides its settings and may be copied.
type Decoder struct {
	// Checksum is the verification level.
	Checksum Checksum
}

// state is the context of one Decode call.
type state struct {
	p        *Packet
	check    Checksum
	noVerify bool // the frame's checksums are not computed yet
	depth    int
}

// Decode decodes frame, captured on a link of type link, into p. noVerify
// tells that the capture marked the frame as not checksummed yet (outgoing
// packets of the capturing host with checksum offload), so no checksum of it
// is verified. On any status but OK, p is the zero Packet (Kind KindNone).
// Decode never allocates and never keeps frame.
func (d *Decoder) Decode(p *Packet, link uint32, frame []byte, noVerify bool) Status {
	if link == LinkEthernet && (d.Checksum == CheckNone || noVerify) && fastTCP(p, frame) {
		return OK
	}
	return d.decode(p, link, frame, noVerify)
}

// decode is Decode without the fast path.
func (d *Decoder) decode(p *Packet, link uint32, frame []byte, noVerify bool) Status {
	*p = Packet{}
	s := state{p: p, check: d.Checksum, noVerify: noVerify}
	var st Status
	switch link {
	case LinkEthernet:
		st = s.ether(frame)
	case LinkRaw, LinkRaw12, LinkRaw14:
		st = s.rawIP(frame)
	case LinkIPv4:
		st = s.ipv4(frame)
	case LinkIPv6:
		st = s.ipv6(frame)
	case LinkLinuxSLL:
		if len(frame) < 16 {
			return Malformed
		}
		st = s.etherType(binary.BigEndian.Uint16(frame[14:]), frame[16:])
	case LinkLinuxSLL2:
		if len(frame) < 20 {
			return Malformed
		}
		st = s.etherType(binary.BigEndian.Uint16(frame[0:]), frame[20:])
	case LinkNull, LinkLoop:
		if len(frame) < 4 {
			return Malformed
		}
		var af uint32
		if link == LinkLoop {
			af = binary.BigEndian.Uint32(frame)
		} else {
			// Host byte order of the capturing machine: families are
			// small numbers, so a big value is the other byte order.
			af = binary.LittleEndian.Uint32(frame)
			if af > 0xffff {
				af = binary.BigEndian.Uint32(frame)
			}
		}
		switch af {
		case 2: // AF_INET everywhere
			st = s.ipv4(frame[4:])
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			st = s.ipv6(frame[4:])
		default:
			st = Unusable
		}
	default:
		st = Unusable
	}
	if st != OK {
		*p = Packet{}
	}
	return st
}

// fastTCP decodes the commonest frame, an untagged Ethernet frame with an
// IPv4 header without options or an IPv6 header without extension headers,
// carrying a whole TCP header, when no checksum is to be verified. It gives
// the same Packet as the general path, for a fraction of its work, and
// returns false for any other frame, leaving p for the general path.
func fastTCP(p *Packet, frame []byte) bool {
	if len(frame) < 14+40 {
		return false
	}
	var t []byte
	var src, dst netip.Addr
	var id uint16
	switch et := binary.BigEndian.Uint16(frame[12:]); {
	case et == etIPv4 && frame[14] == 0x45 && frame[23] == protoTCP:
		b := frame[14:]
		total := int(binary.BigEndian.Uint16(b[2:]))
		if total < 40 || total > len(b) || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return false
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		id = binary.BigEndian.Uint16(b[4:])
		t = b[20:total]
	case et == etIPv6 && len(frame) >= 14+60 && frame[14]>>4 == 6 && frame[20] == protoTCP:
		b := frame[14:]
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if plen < 20 || 40+plen > len(b) {
			return false
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		t = b[40 : 40+plen]
	default:
		return false
	}
	doff := int(t[12]>>4) * 4
	if doff < 20 || doff > len(t) {
		return false
	}
	*p = Packet{
		Kind:       KindTCP,
		Src:        src,
		Dst:        dst,
		SrcPort:    binary.BigEndian.Uint16(t[0:]),
		DstPort:    binary.BigEndian.Uint16(t[2:]),
		Seq:        binary.BigEndian.Uint32(t[4:]),
		Ack:        binary.BigEndian.Uint32(t[8:]),
		Flags:      t[13],
		IPID:       id,
		PayloadLen: uint16(len(t) - doff),
	}
	if p.Flags&SYN != 0 && doff > 20 {
		p.TSVal, p.HasTS = timestamp(t[20:doff])
	}
	return true
}

// enter counts one more encapsulation layer (a tag, a label, a tunnel) and
// tells whether it is allowed. Every path by which decoding can recurse
// passes through it.
func (s *state) enter() bool {
	s.depth++
	return s.depth <= MaxEncap
}

// ether decodes an Ethernet II frame.
func (s *state) ether(b []byte) Status {
	if len(b) < 14 {
		return Malformed
	}
	return s.etherType(binary.BigEndian.Uint16(b[12:]), b[14:])
}

// etherType decodes the payload b of a frame whose EtherType is et.
func (s *state) etherType(et uint16, b []byte) Status {
	for {
		switch et {
		case etIPv4:
			return s.ipv4(b)
		case etIPv6:
			return s.ipv6(b)
		case etVLAN, etQinQ, etQinQOld1, etQinQOld2:
			if len(b) < 4 || !s.enter() {
				return Malformed
			}
			et = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		case etMPLS, etMPLSMcast:
			return s.mpls(b)
		case etPPPoE:
			if !s.enter() {
				return Malformed
			}
			return s.pppoe(b)
		case etFabricPath:
			// FTag and TTL, then the original Ethernet frame.
			if len(b) < 2 || !s.enter() {
				return Malformed
			}
			return s.ether(b[2:])
		default:
			return Unusable
		}
	}
}

// rawIP decodes an IP packet whose version is in its first nibble.
func (s *state) rawIP(b []byte) Status {
	if len(b) < 1 {
		return Malformed
	}
	switch b[0] >> 4 {
	case 4:
		return s.ipv4(b)
	case 6:
		return s.ipv6(b)
	}
	return Unusable
}

// mpls decodes an MPLS label stack and what follows its bottom label: IPv4,
// IPv6, or an Ethernet pseudowire with a control word.
func (s *state) mpls(b []byte) Status {
	for {
		if len(b) < 4 || !s.enter() {
			return Malformed
		}
		bottom := b[2]&1 != 0
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) >= 1 && b[0]>>4 == 0 { // pseudowire control word, then Ethernet
		if len(b) < 4 {
			return Malformed
		}
		return s.ether(b[4:])
	}
	return s.rawIP(b)
}

// pppoe decodes a PPPoE session frame carrying IPv4 or IPv6.
func (s *state) pppoe(b []byte) Status {
	if len(b) < 8 {
		return Malformed
	}
	if b[0] != 0x11 || b[1] != 0 { // version 1, type 1, session data
		return Unusable
	}
	if n := int(binary.BigEndian.Uint16(b[4:])); n >= 2 && 6+n < len(b) {
		b = b[:6+n]
	}
	switch binary.BigEndian.Uint16(b[6:]) {
	case 0x0021:
		return s.ipv4(b[8:])
	case 0x0057:
		return s.ipv6(b[8:])
	}
	return Unusable
}

// ipv4 decodes an IPv4 packet.
func (s *state) ipv4(b []byte) Status {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Malformed
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return Malformed
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	l4len := total - ihl
	truncated := false
	switch {
	case total == 0:
		// Segmentation offload on the capturing host: the length is
		// filled in later. Use what was captured; the segment's length
		// is unknown.
		l4len = -1
		truncated = true
	case total < ihl:
		return Malformed
	case total <= len(b):
		b = b[:total] // Ethernet padding and trailers are not the packet
	default:
		truncated = true
	}
	fragOff := binary.BigEndian.Uint16(b[6:])
	if fragOff&0x1fff != 0 {
		return Unusable // only first fragments carry the transport header
	}
	if s.check >= CheckIP && !s.noVerify && checksum(b[:ihl], 0) != 0xffff {
		return BadChecksum
	}
	proto := b[9]
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := sourceRouteDst(b[20:ihl], netip.AddrFrom4([4]byte(b[16:20])))
	l4 := b[ihl:]
	verify := !truncated && fragOff&0x2000 == 0 // no more fragments
	switch proto {
	case protoTCP:
		st := s.tcp(l4, l4len, verify, src, dst)
		s.p.IPID = binary.BigEndian.Uint16(b[4:])
		return st
	case protoICMP:
		st := s.icmp4(l4, verify)
		s.p.Truncated = truncated
		return st
	}
	return s.tunnel(proto, l4)
}

// tunnel decodes the IP payload b of protocol proto when it is not TCP or
// ICMP: the tunnels that mirrored traffic arrives in.
func (s *state) tunnel(proto uint8, b []byte) Status {
	switch proto {
	case protoUDP:
		return s.udp(b)
	case protoIPIP:
		if !s.enter() {
			return Malformed
		}
		return s.ipv4(b)
	case protoIPv6:
		if !s.enter() {
			return Malformed
		}
		return s.ipv6(b)
	case protoGRE:
		return s.gre(b)
	}
	return Unusable
}

// ipv6Chain walks the extension headers that follow an IPv6 header. next is
// the Next Header field of the fixed header and b the bytes after it. It
// returns the upper-layer protocol, its bytes, and whether the packet is a
// first fragment (whose upper-layer checksum spans other fragments). A
// routing header with segments left replaces *dst with the final
// destination, which the upper layer's pseudo-header uses (RFC 8200 8.1).
func ipv6Chain(next uint8, b []byte, dst *netip.Addr) (proto uint8, l4 []byte, fragment bool, st Status) {
	for i := 0; ; i++ {
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(b) < 8 {
				return 0, nil, false, Malformed
			}
			n := (int(b[1]) + 1) * 8
			if n > len(b) {
				return 0, nil, false, Malformed
			}
			if next == 43 && b[3] != 0 {
				*dst = routingDst(b[:n], *dst)
			}
			next, b = b[0], b[n:]
		case 44: // fragment
			if len(b) < 8 {
				return 0, nil, false, Malformed
			}
			if binary.BigEndian.Uint16(b[2:])&0xfff8 != 0 {
				return 0, nil, false, Unusable
			}
			fragment = fragment || b[3]&1 != 0
			next, b = b[0], b[8:]
		case 51: // authentication header
			if len(b) < 8 {
				return 0, nil, false, Malformed
			}
			n := (int(b[1]) + 2) * 4
			if n > len(b) {
				return 0, nil, false, Malformed
			}
			next, b = b[0], b[n:]
		default:
			return next, b, fragment, OK
		}
		if i+1 > MaxIPv6ExtHeaders {
			return 0, nil, false, Malformed
		}
	}
}

// ipv6 decodes an IPv6 packet.
func (s *state) ipv6(b []byte) Status {
	if len(b) < 40 || b[0]>>4 != 6 {
		return Malformed
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	truncated := false
	switch {
	case plen == 0: // jumbogram or offload: use what was captured
		truncated = true
	case 40+plen <= len(b):
		b = b[:40+plen]
	default:
		truncated = true
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	proto, l4, fragment, st := ipv6Chain(b[6], b[40:], &dst)
	if st != OK {
		return st
	}
	verify := !truncated && !fragment
	switch proto {
	case protoTCP:
		l4len := -1 // unknown
		if plen != 0 {
			// The declared length, also when the frame was cut short.
			l4len = 40 + plen - (len(b) - len(l4))
		}
		return s.tcp(l4, l4len, verify, src, dst)
	case protoICMPv6:
		st := s.icmp6(l4, verify, src, dst)
		s.p.Truncated = truncated
		return st
	}
	return s.tunnel(proto, l4)
}

// tcp decodes a TCP segment b sent from src to dst. l4len is the segment's
// length as the IP header gives it, or -1 if it gives none (the segment is
// then taken as truncated); verify tells whether all of it was captured in
// this frame, so that its checksum can be verified.
func (s *state) tcp(b []byte, l4len int, verify bool, src, dst netip.Addr) Status {
	if len(b) < 14 { // ports, numbers, offset and flags
		return Malformed
	}
	p := s.p
	doff := int(b[12]>>4) * 4
	if doff < 20 || l4len >= 0 && doff > l4len {
		return Malformed
	}
	if l4len < 0 || len(b) < 20 || len(b) < l4len {
		p.Truncated = true
		verify = false
	}
	if verify && s.check >= CheckAll && !s.noVerify {
		if checksum(b[:l4len], pseudoSum(src, dst, protoTCP, l4len)) != 0xffff {
			return BadChecksum
		}
	}
	p.Kind = KindTCP
	p.Src, p.Dst = src, dst
	p.SrcPort = binary.BigEndian.Uint16(b[0:])
	p.DstPort = binary.BigEndian.Uint16(b[2:])
	p.Seq = binary.BigEndian.Uint32(b[4:])
	p.Ack = binary.BigEndian.Uint32(b[8:])
	p.Flags = b[13]
	if l4len < 0 {
		l4len = max(len(b), doff) // what was captured
	}
	p.PayloadLen = uint16(min(l4len-doff, 0xffff))
	if p.Flags&SYN != 0 && doff > 20 && len(b) > 20 {
		opts := b[20:min(doff, len(b))]
		p.TSVal, p.HasTS = timestamp(opts)
	}
	return OK
}

// timestamp finds the TSval of a TCP timestamp option in opts.
func timestamp(opts []byte) (uint32, bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return 0, false
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return 0, false
		}
		if opts[i] == 8 && n == 10 {
			return binary.BigEndian.Uint32(opts[i+2:]), true
		}
		i += n
	}
	return 0, false
}

// icmp4 decodes an ICMPv4 message; only destination unreachable (type 3)
// quoting a TCP segment is used.
func (s *state) icmp4(b []byte, verify bool) Status {
	if len(b) < 8 {
		return Malformed
	}
	if b[0] != 3 {
		return Unusable
	}
	if verify && s.check >= CheckAll && !s.noVerify && checksum(b, 0) != 0xffff {
		return BadChecksum
	}
	q := b[8:]
	if len(q) < 20 || q[0]>>4 != 4 {
		return Unusable
	}
	ihl := int(q[0]&0x0f) * 4
	if ihl < 20 || len(q) < ihl+8 || q[9] != protoTCP {
		return Unusable
	}
	if binary.BigEndian.Uint16(q[6:])&0x1fff != 0 {
		return Unusable
	}
	qdst := sourceRouteDst(q[20:ihl], netip.AddrFrom4([4]byte(q[16:20])))
	s.quote(b[0], b[1], netip.AddrFrom4([4]byte(q[12:16])), qdst, q[ihl:])
	return OK
}

// icmp6 decodes an ICMPv6 message; only destination unreachable (type 1)
// quoting a TCP segment is used.
func (s *state) icmp6(b []byte, verify bool, src, dst netip.Addr) Status {
	if len(b) < 8 {
		return Malformed
	}
	if b[0] != 1 {
		return Unusable
	}
	if verify && s.check >= CheckAll && !s.noVerify &&
		checksum(b, pseudoSum(src, dst, protoICMPv6, len(b))) != 0xffff {
		return BadChecksum
	}
	q := b[8:]
	if len(q) < 40 || q[0]>>4 != 6 {
		return Unusable
	}
	qdst := netip.AddrFrom16([16]byte(q[24:40]))
	proto, l4, _, st := ipv6Chain(q[6], q[40:], &qdst)
	if st != OK || proto != protoTCP || len(l4) < 8 {
		return Unusable
	}
	s.quote(b[0], b[1], netip.AddrFrom16([16]byte(q[8:24])), qdst, l4)
	return OK
}

// quote fills the packet from the quoted TCP header t (at least 8 bytes) of
// an ICMP error.
func (s *state) quote(typ, code uint8, src, dst netip.Addr, t []byte) {
	p := s.p
	p.Kind = KindICMP
	p.ICMPType, p.ICMPCode = typ, code
	p.Src, p.Dst = src, dst
	p.SrcPort = binary.BigEndian.Uint16(t[0:])
	p.DstPort = binary.BigEndian.Uint16(t[2:])
	p.Seq = binary.BigEndian.Uint32(t[4:])
}

// udp decodes the tunnels that arrive over UDP: VXLAN, Geneve and Teredo.
func (s *state) udp(b []byte) Status {
	if len(b) < 8 {
		return Malformed
	}
	sport := binary.BigEndian.Uint16(b[0:])
	dport := binary.BigEndian.Uint16(b[2:])
	b = b[8:]
	switch {
	case dport == portVXLAN:
		if len(b) < 8 || b[0]&0x08 == 0 { // the VNI-valid flag
			return Unusable
		}
		if !s.enter() {
			return Malformed
		}
		return s.ether(b[8:])
	case dport == portGeneve:
		if len(b) < 8 || b[0]>>6 != 0 {
			return Unusable
		}
		n := 8 + int(b[0]&0x3f)*4
		if n > len(b) {
			return Malformed
		}
		if !s.enter() {
			return Malformed
		}
		if et := binary.BigEndian.Uint16(b[2:]); et != etTEB {
			return s.etherType(et, b[n:])
		}
		return s.ether(b[n:])
	case dport == portTeredo || sport == portTeredo:
		return s.teredo(b)
	}
	return Unusable
}

// teredo decodes IPv6 in UDP (RFC 4380), after its optional authentication
// and origin indication headers.
func (s *state) teredo(b []byte) Status {
	if len(b) >= 2 && b[0] == 0 && b[1] == 1 { // authentication
		if len(b) < 4 {
			return Unusable
		}
		n := 4 + int(b[2]) + int(b[3]) + 9
		if n > len(b) {
			return Unusable
		}
		b = b[n:]
	}
	if len(b) >= 2 && b[0] == 0 && b[1] == 0 { // origin indication
		if len(b) < 8 {
			return Unusable
		}
		b = b[8:]
	}
	if len(b) < 40 || b[0]>>4 != 6 {
		return Unusable
	}
	if !s.enter() {
		return Malformed
	}
	return s.ipv6(b)
}

// gre decodes a GRE packet (version 0) carrying IP, Ethernet, ERSPAN or MPLS.
func (s *state) gre(b []byte) Status {
	if len(b) < 4 {
		return Malformed
	}
	flags := binary.BigEndian.Uint16(b[0:])
	proto := binary.BigEndian.Uint16(b[2:])
	if flags&0x7 != 0 || flags&0x4000 != 0 { // version 1 (PPTP), source routing
		return Unusable
	}
	n := 4
	if flags&0x8000 != 0 { // checksum present
		n += 4
	}
	if flags&0x2000 != 0 { // key present
		n += 4
	}
	seq := flags&0x1000 != 0
	if seq {
		n += 4
	}
	if n > len(b) {
		return Malformed
	}
	b = b[n:]
	if !s.enter() {
		return Malformed
	}
	switch proto {
	case etTEB:
		return s.ether(b)
	case etERSPAN2:
		if !seq { // ERSPAN type I: no header
			return s.ether(b)
		}
		if len(b) < 8 {
			return Malformed
		}
		return s.ether(b[8:])
	case etERSPAN3:
		if len(b) < 12 {
			return Malformed
		}
		n := 12
		if b[11]&1 != 0 { // platform-specific subheader
			n += 8
		}
		if n > len(b) {
			return Malformed
		}
		return s.ether(b[n:])
	}
	return s.etherType(proto, b)
}

// sourceRouteDst returns the final destination of an IPv4 packet to dst
// whose options opts hold a loose or strict source route with addresses left
// (RFC 791): the route's last address, which the upper layer's pseudo-header
// uses. Otherwise it returns dst.
func sourceRouteDst(opts []byte, dst netip.Addr) netip.Addr {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return dst
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 {
			return dst
		}
		n := int(opts[1])
		if n < 2 || n > len(opts) {
			return dst
		}
		if (opts[0] == 131 || opts[0] == 137) && n >= 7 && int(opts[2]) <= n {
			return netip.AddrFrom4([4]byte(opts[n-4 : n]))
		}
		opts = opts[n:]
	}
	return dst
}

// routingDst returns the final destination named by an IPv6 routing header
// rh with segments left: the last address of a type 0 or type 2 (RFC 6275)
// header, the first segment of a segment routing header (type 4, RFC 8754).
// For other types it returns dst.
func routingDst(rh []byte, dst netip.Addr) netip.Addr {
	k := (len(rh) - 8) / 16 // addresses
	if k == 0 {
		return dst
	}
	switch rh[2] {
	case 0, 2:
		return netip.AddrFrom16([16]byte(rh[8+16*(k-1):]))
	case 4:
		return netip.AddrFrom16([16]byte(rh[8:]))
	}
	return dst
}

// pseudoSum returns the unfolded ones' complement sum of the IPv4 or IPv6
// pseudo-header of an upper-layer packet of n bytes.
func pseudoSum(src, dst netip.Addr, proto uint8, n int) uint64 {
	var sum uint64
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		sum = uint64(binary.BigEndian.Uint32(a[:])) + uint64(binary.BigEndian.Uint32(b[:]))
	} else {
		a, b := src.As16(), dst.As16()
		for i := 0; i < 16; i += 4 {
			sum += uint64(binary.BigEndian.Uint32(a[i:])) + uint64(binary.BigEndian.Uint32(b[i:]))
		}
	}
	return sum + uint64(proto) + uint64(n)
}

// checksum returns the folded ones' complement sum of b plus initial; a
// packet whose checksum field is right sums to 0xffff.
func checksum(b []byte, initial uint64) uint16 {
	sum := initial
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		sum += v >> 32
		sum += v & 0xffffffff
		b = b[8:]
	}
	if len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
