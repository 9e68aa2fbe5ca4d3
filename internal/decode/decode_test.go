package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// decodeCase is one frame and what Decode must make of it.
type decodeCase struct {
	name     string
	link     uint32
	frame    []byte
	check    Checksum
	noVerify bool
	status   Status
	// want is the whole Packet after Decode: the zero Packet unless status
	// is OK.
	want Packet
}

// runCases decodes each case in a subtest and compares the status and the
// whole Packet. The Packet is dirtied first so that a field Decode forgets to
// reset shows up, and the frame must come back unmodified.
func runCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decoder{Checksum: c.check}
			p := dirty
			orig := bytes.Clone(c.frame)
			st := d.Decode(&p, c.link, c.frame, c.noVerify)
			if st != c.status {
				t.Errorf("status %v, want %v (packet %v)", st, c.status, &p)
			}
			if p != c.want {
				t.Errorf("packet\n got %+v\nwant %+v", p, c.want)
			}
			if !bytes.Equal(orig, c.frame) {
				t.Error("Decode modified the frame")
			}
		})
	}
}

// dirty is a Packet with every field set, to decode into.
var dirty = Packet{
	Kind: KindICMP, Src: out6a, Dst: out4b, SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4,
	Flags: 0xff, HasTS: true, TSVal: 5, IPID: 6, PayloadLen: 9, ICMPType: 7, ICMPCode: 8, Truncated: true,
}

// ok returns a case that decodes to want with every checksum verified.
func ok(name string, link uint32, frame []byte, want Packet) decodeCase {
	return decodeCase{name: name, link: link, frame: frame, check: CheckAll, status: OK, want: want}
}

// fails returns a case that decodes to status st with every checksum
// verified.
func fails(name string, link uint32, frame []byte, st Status) decodeCase {
	return decodeCase{name: name, link: link, frame: frame, check: CheckAll, status: st}
}

// caseGroups are the groups of table-driven cases.
var caseGroups = []struct {
	name  string
	cases func(testing.TB) []decodeCase
}{
	{"TCP", tcpCases}, {"IPv4", ipv4Cases}, {"IPv6", ipv6Cases}, {"Truncated", truncatedCases},
	{"LinkTypes", linkCases}, {"Encap", encapCases}, {"Tunnels", tunnelCases}, {"Depth", depthCases},
	{"ICMP", icmpCases}, {"Checksums", checksumCases}, {"Unusable", unusableCases},
}

// allCases returns every case of the table-driven tests, for the fuzz corpus.
func allCases(tb testing.TB) []decodeCase {
	var all []decodeCase
	for _, g := range caseGroups {
		all = append(all, g.cases(tb)...)
	}
	return all
}

// tcpCases are plain Ethernet/IP/TCP segments of every kind the classifier
// looks at.
func tcpCases(tb testing.TB) []decodeCase {
	payload := bytes.Repeat([]byte("0123456789"), 140)
	tfo := seg{flags: SYN | ECE | CWR, payload: []byte("fast open data")}
	big4 := seg{flags: ACK | PSH, payload: payload}
	big6 := seg{v6: true, flags: ACK | PSH, payload: payload}
	odd4 := seg{flags: ACK | PSH, payload: []byte("1234567")}
	odd6 := seg{v6: true, flags: ACK | PSH, payload: []byte("1234567")}
	one := seg{flags: ACK | PSH, payload: []byte("x")}
	fin := seg{flags: FIN | PSH | URG | ACK, payload: []byte("bye")}
	return []decodeCase{
		ok("IPv4 SYN with MSS, SACK-permitted, timestamps, window scale", LinkEthernet, syn4.ether(tb), syn4.want()),
		ok("IPv4 SYN/ACK", LinkEthernet, synack4.ether(tb), synack4.want()),
		// The timestamp is decoded on SYN segments only.
		ok("IPv4 ACK with a timestamp has no TSVal", LinkEthernet, ack4.ether(tb), ack4.want()),
		ok("IPv6 SYN", LinkEthernet, syn6.ether(tb), syn6.want()),
		ok("IPv6 SYN/ACK", LinkEthernet, synack6.ether(tb), synack6.want()),
		ok("IPv6 ACK with a timestamp has no TSVal", LinkEthernet, ack6.ether(tb), ack6.want()),
		ok("SYN with ECE, CWR and data (TCP Fast Open)", LinkEthernet, tfo.ether(tb), tfo.want()),
		ok("RST", LinkEthernet, seg{flags: RST}.ether(tb), seg{flags: RST}.want()),
		ok("RST/ACK", LinkEthernet, seg{flags: RST | ACK}.ether(tb), seg{flags: RST | ACK}.want()),
		ok("FIN/PSH/URG/ACK with data", LinkEthernet, fin.ether(tb), fin.want()),
		ok("IPv4 1400-byte payload", LinkEthernet, big4.ether(tb), big4.want()),
		ok("IPv6 1400-byte payload", LinkEthernet, big6.ether(tb), big6.want()),
		ok("IPv4 odd-length payload", LinkEthernet, odd4.ether(tb), odd4.want()),
		ok("IPv6 odd-length payload", LinkEthernet, odd6.ether(tb), odd6.want()),
		ok("IPv4 1-byte payload", LinkEthernet, one.ether(tb), one.want()),
	}
}

// ipv4Opts returns the client's SYN in an IPv4 packet with options.
func ipv4Opts(tb testing.TB, s seg, opts []layers.IPv4Option, ipDst netip.Addr) []byte {
	src, _ := s.addrs()
	ip := ip4Hdr(src, ipDst, layers.IPProtocolTCP)
	ip.Options = opts
	t := s.tcp()
	if err := t.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return build(tb, ip, t, gopacket.Payload(s.payload))
}

// nops returns n IPv4 no-operation options.
func nops(n int) []layers.IPv4Option {
	o := make([]layers.IPv4Option, n)
	for i := range o {
		o[i] = layers.IPv4Option{OptionType: 1, OptionLength: 1}
	}
	return o
}

// sourceRoute returns a loose source route option listing addrs, pointing
// at the address with index next (past the end: the route is used up).
func sourceRoute(next int, addrs ...netip.Addr) layers.IPv4Option {
	data := []byte{byte(4 + 4*next)}
	for _, a := range addrs {
		data = append(data, a.AsSlice()...)
	}
	return layers.IPv4Option{OptionType: 131, OptionLength: uint8(2 + len(data)), OptionData: data}
}

// ipv4Cases exercise the IPv4 header: options, lengths, padding,
// fragments and source routes.
func ipv4Cases(tb testing.TB) []decodeCase {
	var cs []decodeCase
	for ihl := 6; ihl <= 15; ihl++ {
		pkt := ipv4Opts(tb, syn4, nops(4*(ihl-5)), srv4)
		if int(pkt[0]&0x0f) != ihl {
			tb.Fatalf("built IHL %d, want %d", pkt[0]&0x0f, ihl)
		}
		cs = append(cs, ok(fmt.Sprintf("IHL %d", ihl), LinkEthernet, etherIP(tb, pkt), syn4.want()))
	}
	ihl15 := etherIP(tb, ipv4Opts(tb, syn4, nops(40), srv4))

	setIHL := func(ihl byte) []byte {
		f := syn4.ether(tb)
		f[14] = 0x40 | ihl
		fix4(f[14:])
		return f
	}
	setTotal := func(f []byte, total uint16) []byte {
		f = bytes.Clone(f)
		binary.BigEndian.PutUint16(f[14+2:], total)
		fix4(f[14:])
		return f
	}

	// An ACK without options is a 40-byte packet: gopacket pads the frame to
	// 60 bytes. Non-zero padding would spoil the checksums if it entered
	// them.
	padded := seg{flags: ACK}.ether(tb)
	if len(padded) != 60 {
		tb.Fatalf("padded frame is %d bytes", len(padded))
	}
	copy(padded[54:], bytes.Repeat([]byte{0xaa}, 6))
	trailer := cat(syn4.ether(tb), []byte{0xde, 0xad, 0xbe, 0xef})

	// A first fragment: the TCP checksum covers fragments not in this frame.
	data := seg{flags: ACK | PSH, payload: bytes.Repeat([]byte{0x5a}, 400)}
	first := ip4Hdr(cli4, srv4, layers.IPProtocolTCP)
	first.Flags = layers.IPv4MoreFragments
	firstFrag := etherIP(tb, build(tb, first, gopacket.Payload(data.l4(tb, srv4)[:256])))
	later := ip4Hdr(cli4, srv4, layers.IPProtocolTCP)
	later.FragOffset = 32
	laterFrag := etherIP(tb, build(tb, later, gopacket.Payload(data.l4(tb, srv4)[256:])))
	last := ip4Hdr(cli4, srv4, layers.IPProtocolTCP)
	last.FragOffset, last.Flags = 32, layers.IPv4MoreFragments
	middleFrag := etherIP(tb, build(tb, last, gopacket.Payload(data.l4(tb, srv4)[256:])))

	offload := setTotal(syn4.ether(tb), 0)
	offloadSeg := seg{flags: ACK, payload: bytes.Repeat([]byte{1}, 100)}
	offloadData := setTotal(flip(offloadSeg.ether(tb), 14+20+16), 0)
	// PayloadLen counts what this fragment holds (256 bytes of TCP).
	firstWant := data.want()
	firstWant.PayloadLen = 256 - 20

	// A loose source route with an address left: the TCP checksum uses the
	// final destination (RFC 791, RFC 9293 3.1), and so does the Packet,
	// since the server answers from that address.
	lsrr := etherIP(tb, ipv4Opts(tb, syn4, []layers.IPv4Option{sourceRoute(0, out4b, srv4)}, out4a))
	lsrrDone := etherIP(tb, ipv4Opts(tb, syn4, []layers.IPv4Option{sourceRoute(2, out4a, out4b)}, srv4))

	cs = append(cs,
		fails("IHL 15, frame cut inside the options", LinkEthernet, cut(ihl15, 14+40), Malformed),
		fails("IHL 15, frame cut after the options inside TCP", LinkEthernet, cut(ihl15, 14+60+10), Malformed),
		fails("IHL 4", LinkEthernet, setIHL(4), Malformed),
		fails("IHL 0", LinkEthernet, setIHL(0), Malformed),
		fails("total length 19", LinkEthernet, setTotal(syn4.ether(tb), 19), Malformed),
		fails("total length below IHL 6", LinkEthernet, setTotal(etherIP(tb, ipv4Opts(tb, syn4, nops(4), srv4)), 23), Malformed),
		fails("total length 20 leaves no TCP header", LinkEthernet, setTotal(syn4.ether(tb), 20), Malformed),
		fails("total length 39 cuts the TCP options", LinkEthernet, setTotal(syn4.ether(tb), 39), Malformed),
		fails("version 6 in an IPv4 EtherType", LinkEthernet, ether(tb, layers.EthernetTypeIPv4, syn6.ip(tb)), Malformed),
		ok("total length 0 (segmentation offload)", LinkEthernet, offload, truncated(syn4.want())),
		ok("total length 0, TCP options cut", LinkEthernet, cut(offload, 14+20+30), truncated(noTS(syn4.want()))),
		ok("total length 0, data with a wrong checksum is not judged", LinkEthernet, offloadData, truncated(offloadSeg.want())),
		ok("60-byte frame with non-zero padding after a 40-byte packet", LinkEthernet, padded, seg{flags: ACK}.want()),
		ok("trailer after the packet", LinkEthernet, trailer, syn4.want()),
		ok("first fragment, checksum not judged", LinkEthernet, firstFrag, firstWant),
		fails("non-first fragment", LinkEthernet, laterFrag, Unusable),
		fails("non-first fragment with more fragments", LinkEthernet, middleFrag, Unusable),
		ok("loose source route, an address left", LinkEthernet, lsrr, syn4.want()),
		ok("loose source route used up", LinkEthernet, lsrrDone, syn4.want()),
	)
	return cs
}

// routingHdr returns an IPv6 routing header of type typ with one segment
// left, listing addrs, followed by TCP.
func routingHdr(typ byte, addrs ...netip.Addr) []byte {
	b := []byte{byte(layers.IPProtocolTCP), byte(2 * len(addrs)), typ, 1, 0, 0, 0, 0}
	for _, a := range addrs {
		b = append(b, a.AsSlice()...)
	}
	return b
}

// routedSYN returns the client's IPv6 SYN to srv6, sent to ipDst with the
// routing header rh.
func routedSYN(tb testing.TB, ipDst netip.Addr, rh []byte) []byte {
	return build(tb, ip6Hdr(cli6, ipDst, layers.IPProtocolIPv6Routing), gopacket.Payload(rh), gopacket.Payload(syn6.l4(tb, srv6)))
}

// ipv6Cases exercise IPv6 extension headers, fragments, routing headers
// and lengths.
func ipv6Cases(tb testing.TB) []decodeCase {
	const (
		hbh  = layers.IPProtocolIPv6HopByHop
		dst  = layers.IPProtocolIPv6Destination
		rt   = layers.IPProtocolIPv6Routing
		frag = layers.IPProtocolIPv6Fragment
		ah   = layers.IPProtocolAH
		tcp  = layers.IPProtocolTCP
	)
	chain := cat(ext6(hbh, dst, 1), ext6(dst, rt, 2), ext6(rt, frag, 5), fragment6(tcp, 0, true))
	// The checksum of a first fragment covers data in later fragments:
	// make it wrong to show that it is not judged.
	firstFrag := syn6.ip6Ext(tb, hbh, chain)
	firstFrag = flip(firstFrag, len(firstFrag)-40+16)
	atomic := syn6.ip6Ext(tb, frag, fragment6(tcp, 0, false))
	nonFirst := build(tb, ip6Hdr(cli6, srv6, frag), gopacket.Payload(fragment6(tcp, 100, true)), gopacket.Payload(make([]byte, 64)))
	lastFrag := build(tb, ip6Hdr(cli6, srv6, frag), gopacket.Payload(fragment6(tcp, 100, false)), gopacket.Payload(make([]byte, 64)))

	// nExt returns the SYN behind n destination options headers.
	nExt := func(n int) []byte {
		var ext []byte
		for i := range n {
			next := dst
			if i == n-1 {
				next = tcp
			}
			ext = append(ext, ext6(dst, next, 1)...)
		}
		return syn6.ip6Ext(tb, dst, ext)
	}
	longExt := syn6.ip6Ext(tb, hbh, ext6(hbh, tcp, 1))
	longExt[40+1] = 255 // 2048 bytes, beyond the packet

	// Routing headers with segments left: the final destination is in the
	// routing header; the TCP checksum uses it (RFC 8200 8.1), and so does
	// the Packet, since the server answers from it.
	srh, routed := routingHdr, func(ipDst netip.Addr, rh []byte) []byte { return routedSYN(tb, ipDst, rh) }
	tfo := seg{v6: true, flags: SYN, payload: []byte("fast open")}
	tfoExt := etherIP(tb, tfo.ip6Ext(tb, dst, ext6(dst, tcp, 2)))
	noLen := syn6.ether(tb)
	noLen[14+4], noLen[14+5] = 0, 0

	return []decodeCase{
		ok("hop-by-hop, destination options, routing, first fragment", LinkEthernet, etherIP(tb, firstFrag), syn6.want()),
		ok("atomic fragment is verified", LinkEthernet, etherIP(tb, atomic), syn6.want()),
		fails("atomic fragment with a bad checksum", LinkEthernet, flip(etherIP(tb, atomic), 14+48+16), BadChecksum),
		fails("non-first fragment", LinkEthernet, etherIP(tb, nonFirst), Unusable),
		fails("non-first last fragment", LinkEthernet, etherIP(tb, lastFrag), Unusable),
		ok("authentication header", LinkEthernet, etherIP(tb, syn6.ip6Ext(tb, ah, ext6(ah, tcp, 4))), syn6.want()),
		ok("one destination options header", LinkEthernet, etherIP(tb, nExt(1)), syn6.want()),
		ok("MaxIPv6ExtHeaders extension headers", LinkEthernet, etherIP(tb, nExt(MaxIPv6ExtHeaders)), syn6.want()),
		fails("MaxIPv6ExtHeaders+1 extension headers", LinkEthernet, etherIP(tb, nExt(MaxIPv6ExtHeaders+1)), Malformed),
		fails("50 extension headers", LinkEthernet, etherIP(tb, nExt(50)), Malformed),
		fails("extension header longer than the packet", LinkEthernet, etherIP(tb, longExt), Malformed),
		ok("segment routing header, a segment left", LinkEthernet, etherIP(tb, routed(out6b, srh(4, srv6, out6b))), syn6.want()),
		ok("type 0 routing header, an address left", LinkEthernet, etherIP(tb, routed(out6b, srh(0, out6a, srv6))), syn6.want()),
		ok("type 2 routing header (home address)", LinkEthernet, etherIP(tb, routed(out6b, srh(2, srv6))), syn6.want()),
		ok("payload length 0 (jumbogram or offload)", LinkEthernet, noLen, truncated(syn6.want())),
		ok("payload length 0, TCP options cut", LinkEthernet, cut(noLen, 14+40+30), truncated(noTS(syn6.want()))),
		ok("SYN with data behind a destination options header", LinkEthernet, tfoExt, tfo.want()),
		ok("SYN with data behind a destination options header, cut", LinkEthernet, cut(tfoExt, len(tfoExt)-3), truncated(tfo.want())),
		ok("trailer after the packet", LinkEthernet, cat(syn6.ether(tb), []byte{0xde, 0xad, 0xbe, 0xef}), syn6.want()),
		fails("version 4 in an IPv6 EtherType", LinkEthernet, ether(tb, layers.EthernetTypeIPv6, cat(syn4.ip(tb), make([]byte, 20))), Malformed),
		fails("ESP", LinkEthernet, etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolESP), gopacket.Payload(make([]byte, 32)))), Unusable),
		fails("no next header", LinkEthernet, etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolNoNextHeader))), Unusable),
	}
}

// truncatedCases are frames cut short by the snap length: what the
// captured headers hold is decoded and no checksum is judged.
func truncatedCases(tb testing.TB) []decodeCase {
	f4 := syn4.ether(tb) // 14 + 20 + 40
	f6 := syn6.ether(tb) // 14 + 40 + 40
	data := seg{flags: ACK | PSH, ts: true, payload: bytes.Repeat([]byte{0x77}, 1000)}
	data4 := flip(data.ether(tb), 14+20+16)
	data6seg := seg{v6: true, flags: ACK | PSH, payload: data.payload}
	data6 := flip(data6seg.ether(tb), 14+40+16)
	quote := icmp4Msg(tb, 3, 1, syn4.ip(tb))
	quote6 := icmp6Msg(tb, 1, 4, syn6.ip(tb))
	return []decodeCase{
		ok("TCP header cut to 14 bytes", LinkEthernet, cut(f4, 14+20+14), truncated(noTS(syn4.want()))),
		ok("TCP header cut to 19 bytes", LinkEthernet, cut(f4, 14+20+19), truncated(noTS(syn4.want()))),
		ok("TCP header cut to 20 bytes, options lost", LinkEthernet, cut(f4, 14+20+20), truncated(noTS(syn4.want()))),
		ok("TCP options cut inside the timestamp", LinkEthernet, cut(f4, 14+20+30), truncated(noTS(syn4.want()))),
		ok("TCP options cut after the timestamp", LinkEthernet, cut(f4, 14+20+36), truncated(syn4.want())),
		fails("TCP header cut to 13 bytes", LinkEthernet, cut(f4, 14+20+13), Malformed),
		fails("IPv4 header cut", LinkEthernet, cut(f4, 14+19), Malformed),
		fails("Ethernet header cut", LinkEthernet, cut(f4, 13), Malformed),
		ok("IPv4 data cut, wrong checksum not judged", LinkEthernet, cut(data4, 14+20+32+100), truncated(data.want())),
		ok("IPv6 TCP header cut to 14 bytes", LinkEthernet, cut(f6, 14+40+14), truncated(noTS(syn6.want()))),
		fails("IPv6 TCP header cut to 13 bytes", LinkEthernet, cut(f6, 14+40+13), Malformed),
		fails("IPv6 header cut", LinkEthernet, cut(f6, 14+39), Malformed),
		ok("IPv6 data cut, wrong checksum not judged", LinkEthernet, cut(data6, 14+40+20+100), truncated(data6seg.want())),
		ok("ICMPv4 cut inside the quote", LinkEthernet, cut(etherIP(tb, quote), 14+20+8+20+8), truncated(wantICMP(false, 3, 1))),
		ok("ICMPv6 cut inside the quote", LinkEthernet, cut(etherIP(tb, quote6), 14+40+8+40+8), truncated(wantICMP(true, 1, 4))),
		// The IPv4 header was captured whole: its checksum is still judged.
		{name: "cut frame with a bad IPv4 header checksum", link: LinkEthernet, frame: flip(cut(data4, 100), 14+10), check: CheckIP, status: BadChecksum},
	}
}

// linkCases cover every link type Decode knows.
func linkCases(tb testing.TB) []decodeCase {
	p4, p6 := syn4.ip(tb), syn6.ip(tb)
	w4, w6 := syn4.want(), syn6.want()
	le, be := binary.LittleEndian, binary.BigEndian
	return []decodeCase{
		ok("Linux SLL IPv4", LinkLinuxSLL, sll(layers.EthernetTypeIPv4, p4), w4),
		ok("Linux SLL IPv6", LinkLinuxSLL, sll(layers.EthernetTypeIPv6, p6), w6),
		ok("Linux SLL VLAN", LinkLinuxSLL, sll(layers.EthernetTypeDot1Q, cat([]byte{0, 10, 0x08, 0}, p4)), w4),
		fails("Linux SLL cut", LinkLinuxSLL, sll(layers.EthernetTypeIPv4, nil)[:15], Malformed),
		fails("Linux SLL ARP", LinkLinuxSLL, sll(layers.EthernetTypeARP, make([]byte, 28)), Unusable),
		ok("Linux SLL2 IPv4", LinkLinuxSLL2, sll2(layers.EthernetTypeIPv4, p4), w4),
		ok("Linux SLL2 IPv6", LinkLinuxSLL2, sll2(layers.EthernetTypeIPv6, p6), w6),
		fails("Linux SLL2 cut", LinkLinuxSLL2, sll2(layers.EthernetTypeIPv4, nil)[:19], Malformed),
		ok("raw IPv4 (101)", LinkRaw, p4, w4),
		ok("raw IPv6 (101)", LinkRaw, p6, w6),
		ok("raw IPv4 (12)", LinkRaw12, p4, w4),
		ok("raw IPv6 (12)", LinkRaw12, p6, w6),
		ok("raw IPv4 (14)", LinkRaw14, p4, w4),
		ok("raw IPv6 (14)", LinkRaw14, p6, w6),
		ok("IPv4 (228)", LinkIPv4, p4, w4),
		ok("IPv6 (229)", LinkIPv6, p6, w6),
		fails("IPv6 on link type 228", LinkIPv4, p6, Malformed),
		fails("IPv4 on link type 229", LinkIPv6, cat(p4, make([]byte, 40)), Malformed),
		fails("raw IP version 5", LinkRaw, cat([]byte{0x50}, p4[1:]), Unusable),
		fails("raw IP empty", LinkRaw, nil, Malformed),
		ok("NULL AF_INET little-endian", LinkNull, null(le, 2, p4), w4),
		ok("NULL AF_INET big-endian", LinkNull, null(be, 2, p4), w4),
		ok("NULL AF_INET6 24 little-endian", LinkNull, null(le, 24, p6), w6),
		ok("NULL AF_INET6 24 big-endian", LinkNull, null(be, 24, p6), w6),
		ok("NULL AF_INET6 28 little-endian", LinkNull, null(le, 28, p6), w6),
		ok("NULL AF_INET6 28 big-endian", LinkNull, null(be, 28, p6), w6),
		ok("NULL AF_INET6 30 little-endian", LinkNull, null(le, 30, p6), w6),
		ok("NULL AF_INET6 30 big-endian", LinkNull, null(be, 30, p6), w6),
		fails("NULL unknown family", LinkNull, null(le, 7, p4), Unusable),
		fails("NULL cut", LinkNull, []byte{2, 0, 0}, Malformed),
		ok("LOOP AF_INET", LinkLoop, null(be, 2, p4), w4),
		ok("LOOP AF_INET6 24", LinkLoop, null(be, 24, p6), w6),
		fails("LOOP little-endian family", LinkLoop, null(le, 2, p4), Unusable),
		fails("unknown link type 999", 999, syn4.ether(tb), Unusable),
	}
}

// encapCases cover VLAN tags, MPLS, PPPoE and FabricPath.
func encapCases(tb testing.TB) []decodeCase {
	p4, p6 := syn4.ip(tb), syn6.ip(tb)
	w4, w6 := syn4.want(), syn6.want()
	qinq := []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}
	three := []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q, layers.EthernetTypeDot1Q}
	old := []layers.EthernetType{0x9100, layers.EthernetTypeDot1Q}

	// A short ACK in a tagged frame with non-zero padding.
	ack := seg{flags: ACK}
	paddedTag := tagged(tb, vlans(1), layers.EthernetTypeIPv4, ack.ip(tb))
	copy(paddedTag[14+4+40:], bytes.Repeat([]byte{0xaa}, len(paddedTag)-(14+4+40)))
	// PPPoE trims the packet to its own length too.
	paddedPPPoE := cat(pppoe(tb, nil, ack.ip(tb)), bytes.Repeat([]byte{0xaa}, 8))

	pw := func(inner []byte) []byte {
		return mplsFrame(tb, 2, cat([]byte{0, 0, 0, 0}, inner))
	}
	fabricPath := ether(tb, 0x8903, cat([]byte{0x04, 0x3f}, syn4.ether(tb)))
	lcp := ether(tb, layers.EthernetTypePPPoESession, build(tb,
		&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodeSession, SessionId: 1},
		&layers.PPP{PPPType: 0xc021}, gopacket.Payload(make([]byte, 10))))
	discovery := ether(tb, layers.EthernetTypePPPoESession, build(tb,
		&layers.PPPoE{Version: 1, Type: 1, Code: layers.PPPoECodePADI, SessionId: 0},
		&layers.PPP{PPPType: layers.PPPTypeIPv4}, gopacket.Payload(p4)))

	return []decodeCase{
		ok("802.1Q IPv4", LinkEthernet, tagged(tb, vlans(1), layers.EthernetTypeIPv4, p4), w4),
		ok("802.1Q IPv6", LinkEthernet, tagged(tb, vlans(1), layers.EthernetTypeIPv6, p6), w6),
		ok("QinQ 0x88a8+0x8100 IPv4", LinkEthernet, tagged(tb, qinq, layers.EthernetTypeIPv4, p4), w4),
		ok("QinQ 0x88a8+0x8100 IPv6", LinkEthernet, tagged(tb, qinq, layers.EthernetTypeIPv6, p6), w6),
		ok("three tags", LinkEthernet, tagged(tb, three, layers.EthernetTypeIPv4, p4), w4),
		ok("old QinQ 0x9100", LinkEthernet, tagged(tb, old, layers.EthernetTypeIPv6, p6), w6),
		ok("802.1Q padding not in the checksum", LinkEthernet, paddedTag, ack.want()),
		fails("802.1Q cut", LinkEthernet, cut(tagged(tb, vlans(1), layers.EthernetTypeIPv4, p4), 16), Malformed),
		ok("MPLS 1 label IPv4", LinkEthernet, mplsFrame(tb, 1, p4), w4),
		ok("MPLS 3 labels IPv4", LinkEthernet, mplsFrame(tb, 3, p4), w4),
		ok("MPLS 1 label IPv6", LinkEthernet, mplsFrame(tb, 1, p6), w6),
		ok("MPLS 3 labels IPv6", LinkEthernet, mplsFrame(tb, 3, p6), w6),
		ok("MPLS in 802.1Q", LinkEthernet, tagged(tb, vlans(1), layers.EthernetTypeMPLSUnicast, build(tb, append(mplsLabels(2), gopacket.Payload(p4))...)), w4),
		ok("MPLS pseudowire with control word, Ethernet IPv4", LinkEthernet, pw(syn4.ether(tb)), w4),
		ok("MPLS pseudowire with control word, 802.1Q IPv6", LinkEthernet, pw(tagged(tb, vlans(1), layers.EthernetTypeIPv6, p6)), w6),
		fails("MPLS bottom label then nothing", LinkEthernet, cut(mplsFrame(tb, 1, p4), 18), Malformed),
		fails("MPLS payload of version 5", LinkEthernet, mplsFrame(tb, 1, cat([]byte{0x50}, p4[1:])), Unusable),
		ok("PPPoE IPv4", LinkEthernet, pppoe(tb, nil, p4), w4),
		ok("PPPoE IPv6", LinkEthernet, pppoe(tb, nil, p6), w6),
		ok("PPPoE IPv4 in QinQ", LinkEthernet, pppoe(tb, qinq, p4), w4),
		ok("PPPoE IPv6 in QinQ", LinkEthernet, pppoe(tb, qinq, p6), w6),
		ok("PPPoE with trailer not in the checksum", LinkEthernet, paddedPPPoE, ack.want()),
		fails("PPPoE LCP", LinkEthernet, lcp, Unusable),
		fails("PPPoE code not session data", LinkEthernet, discovery, Unusable),
		ok("Cisco FabricPath", LinkEthernet, fabricPath, w4),
		ok("Cisco FabricPath in SLL", LinkLinuxSLL, sll(0x8903, cat([]byte{0x04, 0x3f}, syn6.ether(tb))), w6),
		fails("Cisco FabricPath cut", LinkEthernet, ether(tb, 0x8903, nil)[:15], Malformed),
	}
}

// tunnelCases cover the tunnels that mirrored traffic arrives in; the
// Packet holds the inner addresses, ports and IPv4 ID.
func tunnelCases(tb testing.TB) []decodeCase {
	p4, p6 := syn4.ip(tb), syn6.ip(tb)
	e4, e6 := syn4.ether(tb), syn6.ether(tb)
	w4, w6 := syn4.want(), syn6.want()
	const teb = layers.EthernetTypeTransparentEthernetBridging

	geneveOpts := []*layers.GeneveOption{
		{Class: 0x0102, Type: 0x80, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Class: 0xffff, Type: 1, Data: []byte{9, 9, 9, 9}},
	}
	geneve := func(proto layers.EthernetType, payload []byte) []byte {
		return etherIP(tb, udp4(tb, 49152, 6081, &layers.Geneve{Protocol: proto, VNI: 77, Options: geneveOpts}, gopacket.Payload(payload)))
	}
	teredo := func(hdr []byte, pkt []byte) []byte {
		return etherIP(tb, udp4(tb, 3544, 40000, gopacket.Payload(hdr), gopacket.Payload(pkt)))
	}
	origin := []byte{0, 0, 0xf2, 0x3f, 0xbf, 0xff, 0xff, 0xfe}
	auth := []byte{0, 1, 2, 3, 'i', 'd', 'a', 'u', 't', 1, 2, 3, 4, 5, 6, 7, 8, 0}
	badVXLAN := etherIP(tb, udp4(tb, 49152, 4789, &layers.VXLAN{VNI: 1}, gopacket.Payload(e4)))
	vxlan6 := etherIP(tb, udp6(tb, 49152, 4789, &layers.VXLAN{ValidIDFlag: true, VNI: 1}, gopacket.Payload(e6)))

	return []decodeCase{
		ok("VXLAN Ethernet IPv4", LinkEthernet, vxlan(tb, e4), w4),
		ok("VXLAN Ethernet IPv6", LinkEthernet, vxlan(tb, e6), w6),
		ok("VXLAN over IPv6", LinkEthernet, vxlan6, w6),
		ok("VXLAN 802.1Q IPv4", LinkEthernet, vxlan(tb, tagged(tb, vlans(1), layers.EthernetTypeIPv4, p4)), w4),
		ok("VXLAN in 802.1Q", LinkEthernet, tagged(tb, vlans(1), layers.EthernetTypeIPv4, udp4(tb, 1, 4789, &layers.VXLAN{ValidIDFlag: true}, gopacket.Payload(e4))), w4),
		fails("VXLAN without the VNI flag", LinkEthernet, badVXLAN, Unusable),
		ok("Geneve with options, Ethernet", LinkEthernet, geneve(teb, e4), w4),
		ok("Geneve with options, IPv4", LinkEthernet, geneve(layers.EthernetTypeIPv4, p4), w4),
		ok("Geneve with options, IPv6", LinkEthernet, geneve(layers.EthernetTypeIPv6, p6), w6),
		ok("GRE IPv4", LinkEthernet, gre4(tb, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, p4), w4),
		ok("GRE IPv6", LinkEthernet, gre4(tb, &layers.GRE{Protocol: layers.EthernetTypeIPv6}, p6), w6),
		ok("GRE with checksum", LinkEthernet, gre4(tb, &layers.GRE{ChecksumPresent: true, Protocol: layers.EthernetTypeIPv4}, p4), w4),
		ok("GRE with key and sequence, Ethernet (TEB)", LinkEthernet, gre4(tb, &layers.GRE{KeyPresent: true, Key: 7, SeqPresent: true, Seq: 9, Protocol: teb}, e4), w4),
		ok("GRE MPLS", LinkEthernet, gre4(tb, &layers.GRE{Protocol: layers.EthernetTypeMPLSUnicast}, build(tb, append(mplsLabels(1), gopacket.Payload(p6))...)), w6),
		fails("GRE version 1 (PPTP)", LinkEthernet, gre4(tb, &layers.GRE{Version: 1, KeyPresent: true, Protocol: layers.EthernetTypeIPv4}, p4), Unusable),
		fails("GRE with routing", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolGRE), gopacket.Payload(cat([]byte{0x40, 0, 0x08, 0, 0, 0, 0, 0}, p4)))), Unusable),
		fails("GRE cut", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolGRE), gopacket.Payload([]byte{0x30, 0, 0x08, 0, 0, 0, 0, 1}))), Malformed),
		ok("ERSPAN type II", LinkEthernet, gre4(tb, &layers.GRE{SeqPresent: true, Seq: 1, Protocol: layers.EthernetTypeERSPAN}, cat(build(tb, &layers.ERSPANII{Version: 1, VLANIdentifier: 10, SessionID: 5, Index: 3}), e4)), w4),
		ok("ERSPAN type I", LinkEthernet, gre4(tb, &layers.GRE{Protocol: layers.EthernetTypeERSPAN}, e6), w6),
		ok("ERSPAN type III", LinkEthernet, gre4(tb, &layers.GRE{SeqPresent: true, Seq: 1, Protocol: 0x22eb}, cat(erspan3(false), e4)), w4),
		ok("ERSPAN type III with platform subheader", LinkEthernet, gre4(tb, &layers.GRE{SeqPresent: true, Seq: 1, Protocol: 0x22eb}, cat(erspan3(true), e6)), w6),
		fails("ERSPAN type III cut", LinkEthernet, gre4(tb, &layers.GRE{SeqPresent: true, Protocol: 0x22eb}, erspan3(false)[:11]), Malformed),
		ok("IP in IP", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolIPv4), gopacket.Payload(p4))), w4),
		ok("6in4", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolIPv6), gopacket.Payload(p6))), w6),
		ok("IPv6 in IPv6", LinkEthernet, etherIP(tb, build(tb, ip6Hdr(out6a, out6b, layers.IPProtocolIPv6), gopacket.Payload(p6))), w6),
		ok("IPv4 in IPv6", LinkEthernet, etherIP(tb, build(tb, ip6Hdr(out6a, out6b, layers.IPProtocolIPv4), gopacket.Payload(p4))), w4),
		ok("GRE over IPv6", LinkEthernet, etherIP(tb, build(tb, ip6Hdr(out6a, out6b, layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, gopacket.Payload(p4))), w4),
		ok("Teredo with origin indication", LinkEthernet, teredo(origin, p6), w6),
		ok("Teredo with authentication and origin indication", LinkEthernet, teredo(cat(auth, origin), p6), w6),
		ok("Teredo bare", LinkEthernet, teredo(nil, p6), w6),
		ok("Teredo to the server port", LinkEthernet, etherIP(tb, udp4(tb, 40000, 3544, gopacket.Payload(p6))), w6),
		fails("Teredo carrying IPv4", LinkEthernet, teredo(origin, cat(p4, make([]byte, 20))), Unusable),
	}
}

// depthCases check the MaxEncap bound: MaxEncap tags, labels or tunnels
// are decoded, one more is malformed.
func depthCases(tb testing.TB) []decodeCase {
	p4 := syn4.ip(tb)
	w4 := syn4.want()
	nestVXLAN := func(n int) []byte {
		f := syn4.ether(tb)
		for range n {
			f = vxlan(tb, f)
		}
		return f
	}
	nestIPIP := func(n int) []byte {
		p := p4
		for range n {
			p = build(tb, outer4(layers.IPProtocolIPv4), gopacket.Payload(p))
		}
		return etherIP(tb, p)
	}
	nestGRE := func(n int) []byte {
		p := p4
		for range n {
			p = build(tb, outer4(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, gopacket.Payload(p))
		}
		return etherIP(tb, p)
	}
	noBottom := mplsFrame(tb, 3, nil)
	noBottom = noBottom[:14+12]
	noBottom[14+8+2] &^= 1
	deepNoBottom := mplsFrame(tb, 40, p4)
	deepNoBottom[14+39*4+2] &^= 1
	mixed := tagged(tb, vlans(MaxEncap/2), layers.EthernetTypeIPv4,
		udp4(tb, 1, 4789, &layers.VXLAN{ValidIDFlag: true}, gopacket.Payload(tagged(tb, vlans(MaxEncap/2), layers.EthernetTypeIPv4, p4))))

	return []decodeCase{
		ok("MaxEncap VLAN tags", LinkEthernet, tagged(tb, vlans(MaxEncap), layers.EthernetTypeIPv4, p4), w4),
		fails("MaxEncap+1 VLAN tags", LinkEthernet, tagged(tb, vlans(MaxEncap+1), layers.EthernetTypeIPv4, p4), Malformed),
		fails("20 VLAN tags", LinkEthernet, tagged(tb, vlans(20), layers.EthernetTypeIPv4, p4), Malformed),
		fails("40 VLAN tags", LinkEthernet, tagged(tb, vlans(40), layers.EthernetTypeIPv4, p4), Malformed),
		ok("MaxEncap MPLS labels", LinkEthernet, mplsFrame(tb, MaxEncap, p4), w4),
		fails("MaxEncap+1 MPLS labels", LinkEthernet, mplsFrame(tb, MaxEncap+1, p4), Malformed),
		fails("MPLS without bottom of stack", LinkEthernet, noBottom, Malformed),
		fails("40 MPLS labels without bottom of stack", LinkEthernet, deepNoBottom, Malformed),
		ok("VXLAN nested MaxEncap times", LinkEthernet, nestVXLAN(MaxEncap), w4),
		fails("VXLAN nested MaxEncap+1 times", LinkEthernet, nestVXLAN(MaxEncap+1), Malformed),
		fails("VXLAN nested 20 times", LinkEthernet, nestVXLAN(20), Malformed),
		ok("IP in IP nested MaxEncap times", LinkEthernet, nestIPIP(MaxEncap), w4),
		fails("IP in IP nested 20 times", LinkEthernet, nestIPIP(20), Malformed),
		ok("GRE nested MaxEncap times", LinkEthernet, nestGRE(MaxEncap), w4),
		fails("GRE nested 20 times", LinkEthernet, nestGRE(20), Malformed),
		fails("tags, VXLAN, tags: MaxEncap+1 layers", LinkEthernet, mixed, Malformed),
	}
}

// icmpCases cover ICMPv4 and ICMPv6 destination-unreachable messages and
// the ICMP messages that are not used.
func icmpCases(tb testing.TB) []decodeCase {
	p4, p6 := syn4.ip(tb), syn6.ip(tb)
	var cs []decodeCase
	for _, code := range []uint8{1, 3, 13, 4} {
		cs = append(cs,
			ok(fmt.Sprintf("ICMPv4 3/%d quoting 20 TCP bytes", code), LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, code, p4[:20+20])), wantICMP(false, 3, code)),
			ok(fmt.Sprintf("ICMPv4 3/%d quoting 8 TCP bytes", code), LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, code, p4[:20+8])), wantICMP(false, 3, code)),
		)
	}
	for _, code := range []uint8{1, 3, 4} {
		cs = append(cs,
			ok(fmt.Sprintf("ICMPv6 1/%d quoting the SYN", code), LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, code, p6)), wantICMP(true, 1, code)),
			ok(fmt.Sprintf("ICMPv6 1/%d quoting 8 TCP bytes", code), LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, code, p6[:40+8])), wantICMP(true, 1, code)),
		)
	}
	withOpts := ipv4Opts(tb, syn4, nops(4), srv4)
	udpQuote := build(tb, ip4Hdr(cli4, srv4, layers.IPProtocolUDP), gopacket.Payload(make([]byte, 8)))
	ihl15Quote := cat([]byte{0x4f}, p4[1:20], p4[20:28])
	fragQuote := fix4(cat(p4[:6], []byte{0, 10}, p4[8:28]))
	extQuote := syn6.ip6Ext(tb, layers.IPProtocolIPv6Destination, ext6(layers.IPProtocolIPv6Destination, layers.IPProtocolTCP, 1))
	udp6Quote := build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolUDP), gopacket.Payload(make([]byte, 8)))
	trailer := cat(etherIP(tb, icmp4Msg(tb, 3, 3, p4[:28])), bytes.Repeat([]byte{0xaa}, 7))
	tiny := etherIP(tb, build(tb, ip4Hdr(out4a, cli4, layers.IPProtocolICMPv4), gopacket.Payload([]byte{3, 1, 0, 0})))

	lsrr := ipv4Opts(tb, syn4, []layers.IPv4Option{sourceRoute(0, out4b, srv4)}, out4a)
	srhQuote := routedSYN(tb, out6b, routingHdr(4, srv6, out6b))
	return append(cs,
		ok("ICMPv4 quoting a source-routed SYN", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, lsrr[:32+8])), wantICMP(false, 3, 1)),
		ok("ICMPv6 quoting a SYN with a segment routing header", LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, 1, srhQuote)), wantICMP(true, 1, 1)),
		ok("ICMPv4 quoting the whole SYN", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, p4)), wantICMP(false, 3, 1)),
		ok("ICMPv4 quote with IP options", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 10, withOpts[:24+8])), wantICMP(false, 3, 10)),
		ok("ICMPv4 with a trailer after it", LinkEthernet, trailer, wantICMP(false, 3, 3)),
		ok("ICMPv4 in VXLAN", LinkEthernet, vxlan(tb, etherIP(tb, icmp4Msg(tb, 3, 1, p4[:28]))), wantICMP(false, 3, 1)),
		ok("ICMPv4 in raw IP", LinkRaw, icmp4Msg(tb, 3, 2, p4[:28]), wantICMP(false, 3, 2)),
		fails("ICMPv4 quoting UDP", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 3, udpQuote)), Unusable),
		fails("ICMPv4 echo request", LinkEthernet, etherIP(tb, icmp4Msg(tb, 8, 0, p4[:28])), Unusable),
		fails("ICMPv4 time exceeded", LinkEthernet, etherIP(tb, icmp4Msg(tb, 11, 0, p4[:28])), Unusable),
		fails("ICMPv4 quoting 7 TCP bytes", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, p4[:27])), Unusable),
		fails("ICMPv4 quote with IHL 15 and 8 bytes", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, ihl15Quote)), Unusable),
		fails("ICMPv4 quoting a non-first fragment", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, fragQuote)), Unusable),
		fails("ICMPv4 quoting IPv6", LinkEthernet, etherIP(tb, icmp4Msg(tb, 3, 1, p6)), Unusable),
		fails("ICMPv4 shorter than its header", LinkEthernet, tiny, Malformed),
		ok("ICMPv6 quote with a destination options header", LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, 4, extQuote)), wantICMP(true, 1, 4)),
		ok("ICMPv6 in 6in4", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolIPv6), gopacket.Payload(icmp6Msg(tb, 1, 1, p6)))), wantICMP(true, 1, 1)),
		fails("ICMPv6 quoting 7 TCP bytes", LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, 4, p6[:47])), Unusable),
		fails("ICMPv6 quoting UDP", LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, 4, udp6Quote)), Unusable),
		fails("ICMPv6 packet too big", LinkEthernet, etherIP(tb, icmp6Msg(tb, 2, 0, p6)), Unusable),
		fails("ICMPv6 echo request", LinkEthernet, etherIP(tb, icmp6Msg(tb, 128, 0, p6)), Unusable),
		fails("ICMPv6 quoting IPv4", LinkEthernet, etherIP(tb, icmp6Msg(tb, 1, 4, cat(p4, make([]byte, 40)))), Unusable),
	)
}

// checkLevels returns a case for each checksum level and for noVerify, with
// the statuses that a frame with one wrong checksum gets: none, ip and all
// for CheckNone, CheckIP and CheckAll; noVerify frames are never judged.
func checkLevels(name string, frame []byte, want Packet, none, ip, all Status) []decodeCase {
	c := func(level string, check Checksum, noVerify bool, st Status) decodeCase {
		w := want
		if st != OK {
			w = Packet{}
		}
		return decodeCase{name: name + ", " + level, link: LinkEthernet, frame: frame, check: check, noVerify: noVerify, status: st, want: w}
	}
	return []decodeCase{
		c("CheckNone", CheckNone, false, none),
		c("CheckIP", CheckIP, false, ip),
		c("CheckAll", CheckAll, false, all),
		c("CheckAll noVerify", CheckAll, true, OK),
	}
}

// checksumCases check what each checksum level and noVerify reject.
func checksumCases(tb testing.TB) []decodeCase {
	data4 := seg{flags: ACK | PSH, payload: []byte("odd")}
	data6 := seg{v6: true, flags: ACK | PSH, payload: []byte("odd")}
	icmp4 := etherIP(tb, icmp4Msg(tb, 3, 3, syn4.ip(tb)[:28]))
	icmp6 := etherIP(tb, icmp6Msg(tb, 1, 4, syn6.ip(tb)[:48]))
	inner := vxlan(tb, syn4.ether(tb))
	innerTCP := len(inner) - len(syn4.ether(tb)) + 14 + 20 + 16
	var cs []decodeCase
	cs = append(cs, checkLevels("bad IPv4 header checksum", flip(syn4.ether(tb), 14+10), syn4.want(), OK, BadChecksum, BadChecksum)...)
	cs = append(cs, checkLevels("bad IPv4 TCP checksum", flip(syn4.ether(tb), 14+20+16), syn4.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad IPv4 TCP checksum, odd payload", flip(data4.ether(tb), 14+20+17), data4.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad IPv6 TCP checksum", flip(syn6.ether(tb), 14+40+16), syn6.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad IPv6 TCP checksum, odd payload", flip(data6.ether(tb), 14+40+17), data6.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad ICMPv4 checksum", flip(icmp4, 14+20+2), wantICMP(false, 3, 3), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad ICMPv6 checksum", flip(icmp6, 14+40+2), wantICMP(true, 1, 4), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad TCP checksum in VXLAN", flip(inner, innerTCP), syn4.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("bad outer IPv4 header checksum in VXLAN", flip(inner, 14+10), syn4.want(), OK, BadChecksum, BadChecksum)...)
	cs = append(cs, checkLevels("TCP payload changed", flip(data4.ether(tb), 14+20+20), data4.want(), OK, OK, BadChecksum)...)
	cs = append(cs, checkLevels("IPv6 address changed", flip(syn6.ether(tb), 14+8), Packet{}, OK, OK, BadChecksum)[2:3]...)
	cs = append(cs, checkLevels("good ICMPv4", icmp4, wantICMP(false, 3, 3), OK, OK, OK)...)
	cs = append(cs, checkLevels("good ICMPv6", icmp6, wantICMP(true, 1, 4), OK, OK, OK)...)
	return cs
}

// unusableCases are frames that carry nothing the classifier uses.
func unusableCases(tb testing.TB) []decodeCase {
	arp := ether(tb, layers.EthernetTypeARP, build(tb, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: cli4.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: srv4.AsSlice(),
	}))
	llc := build(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeLLC, Length: 1},
		gopacket.Payload(cat([]byte{0x42, 0x42, 0x03}, make([]byte, 35))))
	return []decodeCase{
		fails("ARP", LinkEthernet, arp, Unusable),
		fails("UDP to port 53", LinkEthernet, etherIP(tb, udp4(tb, 5353, 53, gopacket.Payload("query"))), Unusable),
		fails("IPv6 UDP to port 53", LinkEthernet, etherIP(tb, udp6(tb, 5353, 53, gopacket.Payload("query"))), Unusable),
		fails("UDP cut", LinkEthernet, etherIP(tb, build(tb, outer4(layers.IPProtocolUDP), gopacket.Payload([]byte{0, 53, 0, 53}))), Malformed),
		fails("IPv4 protocol 89", LinkEthernet, etherIP(tb, build(tb, ip4Hdr(cli4, srv4, 89), gopacket.Payload(make([]byte, 40)))), Unusable),
		fails("unknown link type 999", 999, syn4.ip(tb), Unusable),
		fails("802.3 length field", LinkEthernet, llc, Unusable),
		fails("unknown EtherType", LinkEthernet, ether(tb, 0x88cc, make([]byte, 46)), Unusable),
		fails("empty frame", LinkEthernet, nil, Malformed),
	}
}

// TestDecode runs every group of table-driven cases in a subtest.
func TestDecode(t *testing.T) {
	for _, g := range caseGroups {
		t.Run(g.name, func(t *testing.T) { runCases(t, g.cases(t)) })
	}
}

// TestDecodeReset decodes frames one after another into the same Packet:
// nothing of an earlier frame may survive into a later one.
func TestDecodeReset(t *testing.T) {
	steps := []decodeCase{
		ok("SYN", LinkEthernet, syn4.ether(t), syn4.want()),
		fails("ARP", LinkEthernet, ether(t, layers.EthernetTypeARP, make([]byte, 28)), Unusable),
		ok("truncated SYN", LinkEthernet, cut(syn4.ether(t), 14+20+14), truncated(noTS(syn4.want()))),
		ok("IPv6 ACK", LinkEthernet, ack6.ether(t), ack6.want()),
		ok("ICMP", LinkEthernet, etherIP(t, icmp4Msg(t, 3, 1, syn4.ip(t)[:28])), wantICMP(false, 3, 1)),
		ok("SYN/ACK", LinkEthernet, synack4.ether(t), synack4.want()),
		fails("bad TCP checksum", LinkEthernet, flip(syn4.ether(t), 14+20+16), BadChecksum),
		ok("IPv6 SYN", LinkEthernet, syn6.ether(t), syn6.want()),
		fails("TCP header too short", LinkEthernet, cut(syn4.ether(t), 14+20+10), Malformed),
		ok("ACK", LinkEthernet, ack4.ether(t), ack4.want()),
		fails("non-first fragment", LinkEthernet, etherIP(t, build(t, ip6Hdr(cli6, srv6, 44), gopacket.Payload(fragment6(6, 1, false)), gopacket.Payload(make([]byte, 20)))), Unusable),
		ok("ICMPv6", LinkEthernet, etherIP(t, icmp6Msg(t, 1, 3, syn6.ip(t))), wantICMP(true, 1, 3)),
	}
	var p Packet
	d := Decoder{Checksum: CheckAll}
	for _, c := range steps {
		if st := d.Decode(&p, c.link, c.frame, false); st != c.status || p != c.want {
			t.Errorf("%s: %v %+v, want %v %+v", c.name, st, p, c.status, c.want)
		}
	}
}

// TestDecodeAllocs checks that Decode allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	frames := []struct {
		name  string
		frame []byte
	}{
		{"IPv4 SYN", syn4.ether(t)},
		{"IPv4 data", seg{flags: ACK, payload: make([]byte, 1400)}.ether(t)},
		{"IPv6 SYN", syn6.ether(t)},
		{"VLAN", tagged(t, vlans(2), layers.EthernetTypeIPv4, syn4.ip(t))},
		{"VXLAN", vxlan(t, syn6.ether(t))},
		{"ICMP", etherIP(t, icmp4Msg(t, 3, 1, syn4.ip(t)))},
		{"ICMPv6", etherIP(t, icmp6Msg(t, 1, 4, syn6.ip(t)))},
		{"ARP", ether(t, layers.EthernetTypeARP, make([]byte, 28))},
	}
	d := Decoder{Checksum: CheckAll}
	for _, f := range frames {
		var p Packet
		n := testing.AllocsPerRun(100, func() { d.Decode(&p, LinkEthernet, f.frame, false) })
		if n != 0 {
			t.Errorf("%s: %v allocations per Decode", f.name, n)
		}
	}
}

// TestChecksum compares the ones' complement sum with gopacket's for every
// length and alignment up to 100 bytes.
func TestChecksum(t *testing.T) {
	buf := make([]byte, 104)
	for i := range buf {
		buf[i] = byte(i*37 + 11)
	}
	for off := range 4 {
		for n := 0; n <= 100; n++ {
			b := buf[off : off+n]
			for _, initial := range []uint64{0, 0xffff, 0x1234567} {
				got := checksum(b, initial)
				want := ^gopacket.FoldChecksum(gopacket.ComputeChecksum(b, uint32(initial)))
				if got != want {
					t.Fatalf("checksum(%d bytes at %d, %#x) = %#x, want %#x", n, off, initial, got, want)
				}
			}
		}
	}
	if got := checksum(bytes.Repeat([]byte{0xff}, 70000), 0); got != 0xffff {
		t.Errorf("checksum of 70000 0xff bytes = %#x", got)
	}
}

// TestTimestamp covers the TCP option walk.
func TestTimestamp(t *testing.T) {
	ts := []byte{8, 10, 1, 2, 3, 4, 0, 0, 0, 0}
	cases := []struct {
		name string
		opts []byte
		val  uint32
		ok   bool
	}{
		{"alone", ts, 0x01020304, true},
		{"after NOPs", cat([]byte{1, 1}, ts), 0x01020304, true},
		{"after MSS and SACK-permitted", cat([]byte{2, 4, 5, 0xb4, 4, 2}, ts), 0x01020304, true},
		{"after end of options", cat([]byte{0}, ts), 0, false},
		{"after a zero length", cat([]byte{2, 0}, ts), 0, false},
		{"after a length 1", cat([]byte{2, 1}, ts), 0, false},
		{"cut", ts[:9], 0, false},
		{"kind only", []byte{8}, 0, false},
		{"wrong length skipped", cat([]byte{8, 6, 9, 9, 9, 9}, ts), 0x01020304, true},
		{"length past the end", []byte{3, 40, 8, 10}, 0, false},
		{"none", []byte{1, 1, 1, 0}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, c := range cases {
		v, ok := timestamp(c.opts)
		if v != c.val || ok != c.ok {
			t.Errorf("%s: %#x %v, want %#x %v", c.name, v, ok, c.val, c.ok)
		}
	}
}

// TestStatusString checks the names of the statuses.
func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{
		OK: "ok", Unusable: "unusable", Malformed: "malformed", BadChecksum: "bad checksum", 9: "status(9)",
	} {
		if got := st.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", st, got, want)
		}
	}
}

// TestFlagString checks flag renderings on which FlagString and tcpdump
// agree.
func TestFlagString(t *testing.T) {
	for f, want := range map[uint8]string{
		0: "none", SYN: "S", SYN | ACK: "S.", ACK: ".", FIN | ACK: "F.", RST: "R", RST | ACK: "R.",
		PSH | ACK: "P.", SYN | ECE | CWR: "SEW", FIN | PSH | ACK: "FP.",
	} {
		if got := FlagString(f); got != want {
			t.Errorf("FlagString(%#x) = %q, want %q", f, got, want)
		}
	}
}

// TestPacketString checks the one-line descriptions and Is6.
func TestPacketString(t *testing.T) {
	tcp, icmp := syn4.want(), wantICMP(true, 1, 4)
	for _, c := range []struct {
		p    *Packet
		want string
	}{
		{&tcp, "TCP 192.0.2.10:51000 > 198.51.100.20:443 [S] seq=287454020 ack=0 id=1234 ts=true/16909060"},
		{&icmp, "ICMP type 1 code 4 quoting [2001:db8::10]:51000 > [2001:db8:1::20]:443 seq=287454020"},
		{&Packet{}, "none"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
	if tcp.Is6() || !icmp.Is6() {
		t.Error("Is6 wrong")
	}
}
