package decode

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The test connection goes from the client cli to the server srv. Tunnels and
// ICMP senders use the out addresses, so that a test can tell which header a
// Packet was taken from.
var (
	cli4  = netip.MustParseAddr("192.0.2.10")
	srv4  = netip.MustParseAddr("198.51.100.20")
	cli6  = netip.MustParseAddr("2001:db8::10")
	srv6  = netip.MustParseAddr("2001:db8:1::20")
	out4a = netip.MustParseAddr("203.0.113.1")
	out4b = netip.MustParseAddr("203.0.113.2")
	out6a = netip.MustParseAddr("2001:db8:ffff::1")
	out6b = netip.MustParseAddr("2001:db8:ffff::2")

	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// Numbers of the test connection.
const (
	cliPort = 51000
	srvPort = 443
	cliISN  = 0x11223344
	srvISN  = 0xa0b0c0d0
	cliTS   = 0x01020304
	srvTS   = 0x0a0b0c0d
	ipID    = 0x4d2
	outerID = 0x0bad
)

// build serializes ls with lengths and checksums fixed, as a well-behaved
// sender would, and returns a copy of the bytes.
func build(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize %v: %v", ls, err)
	}
	return bytes.Clone(buf.Bytes())
}

// cat concatenates byte slices into a new slice.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// cut returns a copy of the first n bytes of b, as a capture with a snap
// length of n would hold them.
func cut(b []byte, n int) []byte { return bytes.Clone(b[:n]) }

// flip returns a copy of b with the byte at off inverted: a checksum or a
// field made wrong.
func flip(b []byte, off int) []byte {
	c := bytes.Clone(b)
	c[off] ^= 0xff
	return c
}

// fix4 recomputes the header checksum of the IPv4 header at the start of b
// in place, after a test changed a field of it, and returns b.
func fix4(b []byte) []byte {
	ihl := int(b[0]&0x0f) * 4
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], gopacket.FoldChecksum(gopacket.ComputeChecksum(b[:ihl], 0)))
	return b
}

// ip4Hdr returns an IPv4 header from src to dst carrying proto.
func ip4Hdr(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{
		Version: 4, TTL: 64, Id: ipID, Flags: layers.IPv4DontFragment,
		Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
	}
}

// outer4 returns the IPv4 header of a tunnel, between the out addresses.
func outer4(proto layers.IPProtocol) *layers.IPv4 {
	ip := ip4Hdr(out4a, out4b, proto)
	ip.Id = outerID
	return ip
}

// ip6Hdr returns an IPv6 header from src to dst whose Next Header is next.
func ip6Hdr(src, dst netip.Addr, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{
		Version: 6, HopLimit: 64, FlowLabel: 0x12345,
		NextHeader: next, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
	}
}

// seg describes one TCP segment of the test connection.
type seg struct {
	v6      bool  // IPv6 instead of IPv4
	flags   uint8 // TCP flag bits
	ts      bool  // a non-SYN segment carries a timestamp option too
	payload []byte
}

// fromSrv tells whether the segment goes from the server to the client:
// SYN/ACKs do, every other segment comes from the client.
func (s seg) fromSrv() bool { return s.flags&(SYN|ACK) == SYN|ACK }

// addrs returns the source and destination address of the segment.
func (s seg) addrs() (src, dst netip.Addr) {
	src, dst = cli4, srv4
	if s.v6 {
		src, dst = cli6, srv6
	}
	if s.fromSrv() {
		src, dst = dst, src
	}
	return src, dst
}

// ports returns the source and destination port of the segment.
func (s seg) ports() (src, dst uint16) {
	if s.fromSrv() {
		return srvPort, cliPort
	}
	return cliPort, srvPort
}

// numbers returns the sequence and acknowledgement numbers of the segment.
func (s seg) numbers() (seq, ack uint32) {
	switch {
	case s.fromSrv():
		return srvISN, cliISN + 1
	case s.flags&SYN != 0:
		return cliISN, 0
	case s.flags&ACK != 0:
		return cliISN + 1, srvISN + 1
	}
	return cliISN + 1, 0
}

// tsVal returns the TSval the segment carries.
func (s seg) tsVal() uint32 {
	if s.fromSrv() {
		return srvTS
	}
	return cliTS
}

// tcp returns the TCP header of the segment. A SYN carries the options of a
// Linux SYN: MSS, SACK permitted, timestamps, NOP and window scale.
func (s seg) tcp() *layers.TCP {
	sp, dp := s.ports()
	seq, ack := s.numbers()
	t := &layers.TCP{
		SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, Window: 64240,
		FIN: s.flags&FIN != 0, SYN: s.flags&SYN != 0, RST: s.flags&RST != 0, PSH: s.flags&PSH != 0,
		ACK: s.flags&ACK != 0, URG: s.flags&URG != 0, ECE: s.flags&ECE != 0, CWR: s.flags&CWR != 0,
	}
	tsData := binary.BigEndian.AppendUint32(nil, s.tsVal())
	tsData = binary.BigEndian.AppendUint32(tsData, 0x77777777)
	timestamps := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: tsData}
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
	switch {
	case s.flags&SYN != 0:
		t.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			timestamps,
			nop,
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}
	case s.ts:
		t.Options = []layers.TCPOption{nop, nop, timestamps}
	}
	return t
}

// l4 returns the TCP segment with its checksum computed over a pseudo-header
// from the segment's source to dst (the final destination).
func (s seg) l4(tb testing.TB, dst netip.Addr) []byte {
	src, _ := s.addrs()
	t := s.tcp()
	if s.v6 {
		t.SetNetworkLayerForChecksum(ip6Hdr(src, dst, layers.IPProtocolTCP))
	} else {
		t.SetNetworkLayerForChecksum(ip4Hdr(src, dst, layers.IPProtocolTCP))
	}
	return build(tb, t, gopacket.Payload(s.payload))
}

// ip returns the segment as an IP packet.
func (s seg) ip(tb testing.TB) []byte {
	src, dst := s.addrs()
	t := s.tcp()
	if s.v6 {
		ip := ip6Hdr(src, dst, layers.IPProtocolTCP)
		t.SetNetworkLayerForChecksum(ip)
		return build(tb, ip, t, gopacket.Payload(s.payload))
	}
	ip := ip4Hdr(src, dst, layers.IPProtocolTCP)
	t.SetNetworkLayerForChecksum(ip)
	return build(tb, ip, t, gopacket.Payload(s.payload))
}

// ip6Ext returns the segment as an IPv6 packet with the extension headers
// ext (see ext6) after the fixed header, whose Next Header is first.
func (s seg) ip6Ext(tb testing.TB, first layers.IPProtocol, ext []byte) []byte {
	src, dst := s.addrs()
	return build(tb, ip6Hdr(src, dst, first), gopacket.Payload(ext), gopacket.Payload(s.l4(tb, dst)))
}

// ether returns the segment in an Ethernet frame.
func (s seg) ether(tb testing.TB) []byte { return etherIP(tb, s.ip(tb)) }

// want returns the Packet that Decode should make of the segment.
func (s seg) want() Packet {
	src, dst := s.addrs()
	sp, dp := s.ports()
	seq, ack := s.numbers()
	p := Packet{
		Kind: KindTCP, Src: src, Dst: dst, SrcPort: sp, DstPort: dp,
		Seq: seq, Ack: ack, Flags: s.flags, PayloadLen: uint16(len(s.payload)),
	}
	if s.flags&SYN != 0 {
		p.HasTS, p.TSVal = true, s.tsVal()
	}
	if !s.v6 {
		p.IPID = ipID
	}
	return p
}

// Common segments.
var (
	syn4    = seg{flags: SYN}
	syn6    = seg{v6: true, flags: SYN}
	synack4 = seg{flags: SYN | ACK}
	synack6 = seg{v6: true, flags: SYN | ACK}
	ack4    = seg{flags: ACK, ts: true}
	ack6    = seg{v6: true, flags: ACK, ts: true}
)

// ext6 returns an IPv6 extension header of type typ (hop-by-hop, routing,
// destination options, mobility: 8*units bytes; fragment: 8 bytes; AH:
// 4*(units+2) bytes) whose Next Header is next. Options headers are filled
// with a PadN option; a routing header is type 4 (segment routing) with no
// segments left; a fragment header has offset 0 and M set.
func ext6(typ, next layers.IPProtocol, units int) []byte {
	var b []byte
	switch typ {
	case layers.IPProtocolIPv6Fragment:
		b = []byte{byte(next), 0, 0, 1, 0xde, 0xad, 0xbe, 0xef}
	case layers.IPProtocolAH:
		b = make([]byte, 4*(units+2))
		b[0], b[1] = byte(next), byte(units)
		binary.BigEndian.PutUint32(b[4:], 0x1000) // SPI
	default:
		b = make([]byte, 8*units)
		b[0], b[1] = byte(next), byte(units-1)
		switch typ {
		case layers.IPProtocolIPv6Routing:
			b[2], b[3] = 4, 0
		default:
			b[2], b[3] = 1, byte(len(b)-4) // PadN
		}
	}
	return b
}

// fragment6 returns an IPv6 fragment header with the given offset (in
// 8-byte units) and M flag.
func fragment6(next layers.IPProtocol, offset uint16, more bool) []byte {
	b := []byte{byte(next), 0, 0, 0, 0, 0, 0, 7}
	binary.BigEndian.PutUint16(b[2:], offset<<3)
	if more {
		b[3] |= 1
	}
	return b
}

// ether returns an Ethernet frame of type et carrying payload; gopacket pads
// frames to 60 bytes.
func ether(tb testing.TB, et layers.EthernetType, payload []byte) []byte {
	return build(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}, gopacket.Payload(payload))
}

// etherIP returns an Ethernet frame carrying the IP packet pkt.
func etherIP(tb testing.TB, pkt []byte) []byte { return ether(tb, ipType(pkt), pkt) }

// ipType returns the EtherType of the IP packet pkt.
func ipType(pkt []byte) layers.EthernetType {
	if pkt[0]>>4 == 6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// tagged returns an Ethernet frame with one tag per TPID in tpids (the first
// one is the frame's EtherType) around payload of EtherType et.
func tagged(tb testing.TB, tpids []layers.EthernetType, et layers.EthernetType, payload []byte) []byte {
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: tpids[0]}}
	for i := range tpids {
		next := et
		if i+1 < len(tpids) {
			next = tpids[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(10 + i), Type: next})
	}
	return build(tb, append(ls, gopacket.Payload(payload))...)
}

// vlans returns n 802.1Q TPIDs.
func vlans(n int) []layers.EthernetType {
	t := make([]layers.EthernetType, n)
	for i := range t {
		t[i] = layers.EthernetTypeDot1Q
	}
	return t
}

// mplsLabels returns n MPLS labels, the last one with the bottom-of-stack bit.
func mplsLabels(n int) []gopacket.SerializableLayer {
	ls := make([]gopacket.SerializableLayer, n)
	for i := range ls {
		ls[i] = &layers.MPLS{Label: uint32(100 + i), TTL: 64, StackBottom: i == n-1}
	}
	return ls
}

// mplsFrame returns an Ethernet frame with n MPLS labels around payload.
func mplsFrame(tb testing.TB, n int, payload []byte) []byte {
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast}}
	ls = append(ls, mplsLabels(n)...)
	return build(tb, append(ls, gopacket.Payload(payload))...)
}

// pppoe returns a PPPoE session frame carrying the IP packet pkt inside the
// given tags.
func pppoe(tb testing.TB, tpids []layers.EthernetType, pkt []byte) []byte {
	proto := layers.PPPTypeIPv4
	if pkt[0]>>4 == 6 {
		proto = layers.PPPTypeIPv6
	}
	session := build(tb,
		&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 0x1234},
		&layers.PPP{PPPType: proto}, gopacket.Payload(pkt))
	if len(tpids) == 0 {
		return ether(tb, layers.EthernetTypePPPoESession, session)
	}
	return tagged(tb, tpids, layers.EthernetTypePPPoESession, session)
}

// udp4 returns an outer IPv4/UDP packet from sport to dport carrying ls.
func udp4(tb testing.TB, sport, dport uint16, ls ...gopacket.SerializableLayer) []byte {
	ip := outer4(layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return build(tb, append([]gopacket.SerializableLayer{ip, u}, ls...)...)
}

// udp6 returns an outer IPv6/UDP packet from sport to dport carrying ls.
func udp6(tb testing.TB, sport, dport uint16, ls ...gopacket.SerializableLayer) []byte {
	ip := ip6Hdr(out6a, out6b, layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return build(tb, append([]gopacket.SerializableLayer{ip, u}, ls...)...)
}

// vxlan returns an Ethernet frame carrying frame in VXLAN over IPv4.
func vxlan(tb testing.TB, frame []byte) []byte {
	return etherIP(tb, udp4(tb, 49152, 4789, &layers.VXLAN{ValidIDFlag: true, VNI: 4242}, gopacket.Payload(frame)))
}

// gre4 returns an Ethernet frame carrying payload in GRE over IPv4.
func gre4(tb testing.TB, g *layers.GRE, payload []byte) []byte {
	return etherIP(tb, build(tb, outer4(layers.IPProtocolGRE), g, gopacket.Payload(payload)))
}

// erspan3 returns an ERSPAN type III header (12 bytes, or 20 with the
// platform-specific subheader).
func erspan3(platform bool) []byte {
	b := []byte{0x20, 0x0a, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00}
	if platform {
		b[11] |= 1
		b = append(b, 0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0x01)
	}
	return b
}

// sll returns a Linux cooked capture (v1) frame of protocol et.
func sll(et layers.EthernetType, payload []byte) []byte {
	h := []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0}
	return cat(h, binary.BigEndian.AppendUint16(nil, uint16(et)), payload)
}

// sll2 returns a Linux cooked capture v2 frame of protocol et.
func sll2(et layers.EthernetType, payload []byte) []byte {
	h := binary.BigEndian.AppendUint16(nil, uint16(et))
	h = append(h, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0)
	return cat(h, payload)
}

// null returns a BSD loopback frame with address family af in byte order o.
func null(o binary.AppendByteOrder, af uint32, pkt []byte) []byte {
	return cat(o.AppendUint32(nil, af), pkt)
}

// icmp4Msg returns an IPv4 ICMP message of the given type and code from a
// router to the client, with quote after its 8-byte header.
func icmp4Msg(tb testing.TB, typ, code uint8, quote []byte) []byte {
	return build(tb, ip4Hdr(out4a, cli4, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, gopacket.Payload(quote))
}

// icmp6Msg returns an ICMPv6 message of the given type and code from a
// router to the client, with quote after its 8-byte header.
func icmp6Msg(tb testing.TB, typ, code uint8, quote []byte) []byte {
	ip := ip6Hdr(out6a, cli6, layers.IPProtocolICMPv6)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	if err := ic.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return build(tb, ip, ic, gopacket.Payload(cat(make([]byte, 4), quote)))
}

// wantICMP returns the Packet of an ICMP error quoting the client's SYN.
func wantICMP(v6 bool, typ, code uint8) Packet {
	p := syn4.want()
	if v6 {
		p = syn6.want()
	}
	return Packet{
		Kind: KindICMP, Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort,
		Seq: p.Seq, ICMPType: typ, ICMPCode: code,
	}
}

// truncated returns p with Truncated set.
func truncated(p Packet) Packet {
	p.Truncated = true
	return p
}

// noTS returns p without a timestamp.
func noTS(p Packet) Packet {
	p.HasTS, p.TSVal = false, 0
	return p
}
