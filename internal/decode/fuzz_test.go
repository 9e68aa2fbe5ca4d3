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

// fuzzLinks are the link types that FuzzDecode picks from: its link argument
// is an index into this table, modulo its length.
var fuzzLinks = [...]uint32{
	LinkEthernet, LinkNull, LinkRaw12, LinkRaw14, LinkRaw, LinkLoop,
	LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2,
}

// linkIndex returns the index of link in fuzzLinks, and false for a link
// type that is not in it.
func linkIndex(link uint32) (uint32, bool) {
	for i, l := range fuzzLinks {
		if l == link {
			return uint32(i), true
		}
	}
	return 0, false
}

// edgeFrames returns Ethernet frames (and one raw IPv6 packet) built to hit
// the bounds of the decoder: lengths that point beyond the frame, header
// loops, deep encapsulation.
func edgeFrames(tb testing.TB) map[string][]byte {
	p4, p6 := syn4.ip(tb), syn6.ip(tb)
	m := map[string][]byte{}

	ihl15 := bytes.Clone(p4[:20])
	ihl15[0] = 0x4f
	m["IHL 15, no options"] = ether(tb, layers.EthernetTypeIPv4, ihl15)
	ihl0 := bytes.Clone(p4)
	ihl0[0] = 0x40
	m["IHL 0"] = etherIP(tb, ihl0)
	long := bytes.Clone(p4)
	binary.BigEndian.PutUint16(long[2:], 0xffff)
	m["total length beyond the frame"] = etherIP(tb, fix4(long))
	long6 := bytes.Clone(p6)
	binary.BigEndian.PutUint16(long6[4:], 0xffff)
	m["payload length beyond the frame"] = etherIP(tb, long6)

	// Every extension header points to another.
	var loop []byte
	for range 50 {
		loop = append(loop, ext6(layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Destination, 1)...)
	}
	m["IPv6 header loop"] = etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6Destination), gopacket.Payload(loop)))
	frags := bytes.Repeat(fragment6(layers.IPProtocolIPv6Fragment, 0, false), 50)
	m["IPv6 fragment header loop"] = etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6Fragment), gopacket.Payload(frags)))
	m["IPv6 extension length 255 at the end"] = etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6HopByHop), gopacket.Payload([]byte{6, 255, 1, 4, 0, 0, 0, 0})))
	m["IPv6 AH length 255 at the end"] = etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolAH), gopacket.Payload([]byte{6, 255, 0, 0, 0, 0, 0, 1})))

	m["GRE with every flag bit"] = etherIP(tb, build(tb, outer4(layers.IPProtocolGRE), gopacket.Payload(cat([]byte{0xff, 0xff, 0x88, 0xbe}, make([]byte, 8)))))
	m["GRE with every header but routing"] = etherIP(tb, build(tb, outer4(layers.IPProtocolGRE), gopacket.Payload(cat([]byte{0xb0, 0x00, 0x22, 0xeb}, make([]byte, 12), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}))))
	m["Geneve option length 63"] = etherIP(tb, udp4(tb, 1, 6081, gopacket.Payload([]byte{0x3f, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 1, 2, 3})))
	m["VXLAN cut"] = etherIP(tb, udp4(tb, 1, 4789, gopacket.Payload([]byte{0x08, 0, 0, 0, 0, 0, 1, 0, 2, 0})))
	m["Teredo authentication lengths 255"] = etherIP(tb, udp4(tb, 3544, 1, gopacket.Payload([]byte{0, 1, 255, 255, 0, 0, 0, 0})))
	m["Teredo origin indication cut"] = etherIP(tb, udp4(tb, 3544, 1, gopacket.Payload([]byte{0, 0, 1, 2})))

	q := cat([]byte{0x4f}, p4[1:20], p4[20:28])
	m["ICMP quote with IHL 15 and 8 bytes"] = etherIP(tb, icmp4Msg(tb, 3, 1, q))
	m["ICMP quote cut in the TCP ports"] = etherIP(tb, icmp4Msg(tb, 3, 1, p4[:24]))
	m["ICMPv6 quote with extension length 255"] = etherIP(tb, icmp6Msg(tb, 1, 4, cat(build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6HopByHop)), []byte{6, 255, 0, 0, 0, 0, 0, 0})))
	m["ICMPv6 quote header loop"] = etherIP(tb, icmp6Msg(tb, 1, 4, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6Destination), gopacket.Payload(loop))))

	m["40 VLAN tags"] = tagged(tb, vlans(40), layers.EthernetTypeIPv4, p4)
	noBottom := mplsFrame(tb, 1, nil)
	for i := 14; i+4 <= len(noBottom); i += 4 {
		noBottom[i+2] &^= 1
	}
	m["MPLS without bottom of stack"] = noBottom
	m["MPLS pseudowire cut"] = mplsFrame(tb, 1, []byte{0, 0, 0})
	m["PPPoE length 0xffff"] = ether(tb, layers.EthernetTypePPPoESession, cat([]byte{0x11, 0, 0, 1, 0xff, 0xff, 0, 0x21}, p4))
	m["PPPoE length 1"] = ether(tb, layers.EthernetTypePPPoESession, cat([]byte{0x11, 0, 0, 1, 0, 1, 0, 0x21}, p4))
	m["FabricPath in FabricPath"] = ether(tb, 0x8903, cat([]byte{0, 0}, ether(tb, 0x8903, cat([]byte{0, 0}, syn4.ether(tb)))))
	m["ERSPAN III with the platform bit and no subheader"] = gre4(tb, &layers.GRE{SeqPresent: true, Protocol: 0x22eb}, erspan3(false)[:11])
	m["IP in IP in a truncated frame"] = cut(etherIP(tb, build(tb, outer4(layers.IPProtocolIPv4), gopacket.Payload(p4))), 14+20+10)
	m["TCP data offset 15 in a short segment"] = func() []byte {
		f := syn4.ether(tb)
		f[14+20+12] = 0xf0
		return f
	}()
	m["TCP options all NOP"] = func() []byte {
		f := syn4.ether(tb)
		copy(f[14+20+20:], bytes.Repeat([]byte{1}, 20))
		return f
	}()
	m["LSRR with a pointer beyond the option"] = etherIP(tb, ipv4Opts(tb, syn4, []layers.IPv4Option{{OptionType: 131, OptionLength: 7, OptionData: []byte{255, 1, 2, 3, 4}}}, srv4))
	m["routing header with segments left and no address"] = etherIP(tb, build(tb, ip6Hdr(cli6, srv6, layers.IPProtocolIPv6Routing), gopacket.Payload([]byte{6, 0, 4, 9, 0, 0, 0, 0}), gopacket.Payload(syn6.l4(tb, srv6))))
	return m
}

// FuzzDecode checks that Decode never panics and that what it returns is
// consistent, on any frame of any known link type, and that it agrees with
// gopacket on plain Ethernet/IP/TCP frames.
func FuzzDecode(f *testing.F) {
	for _, c := range allCases(f) {
		if i, ok := linkIndex(c.link); ok {
			f.Add(i, c.frame, uint8(c.check), c.noVerify)
		}
	}
	for _, frame := range edgeFrames(f) {
		for check := range uint8(3) {
			f.Add(uint32(0), frame, check, false)
		}
	}
	raw, _ := linkIndex(LinkRaw)
	f.Add(raw, []byte{0x45}, uint8(2), false)
	f.Add(raw, []byte{0x60}, uint8(2), false)
	null, _ := linkIndex(LinkNull)
	f.Add(null, []byte{0xff, 0xff, 0xff, 0xff, 0x45}, uint8(0), false)

	f.Fuzz(func(t *testing.T, li uint32, frame []byte, check uint8, noVerify bool) {
		link := fuzzLinks[li%uint32(len(fuzzLinks))]
		d := Decoder{Checksum: Checksum(check % 3)}
		orig := bytes.Clone(frame)
		p := dirty
		st := d.Decode(&p, link, frame, noVerify)
		// The fast path must give what the general path gives.
		var slow Packet
		if st2 := d.decode(&slow, link, frame, noVerify); st2 != st || slow != p {
			t.Fatalf("fast path: %v %+v; general path: %v %+v", st, p, st2, slow)
		}
		if !bytes.Equal(frame, orig) {
			t.Fatal("Decode modified the frame")
		}
		checkPacket(t, st, &p)
		if st == BadChecksum && (noVerify || d.Checksum == CheckNone) {
			t.Fatalf("bad checksum with checksum level %d, noVerify %v", d.Checksum, noVerify)
		}

		// Decoding is a function of its arguments.
		var again Packet
		if st2 := d.Decode(&again, link, frame, noVerify); st2 != st || again != p {
			t.Fatalf("second Decode: %v %+v, first %v %+v", st2, again, st, p)
		}

		// Verifying more only turns OK into BadChecksum.
		var none, all Packet
		stNone := (&Decoder{Checksum: CheckNone}).Decode(&none, link, frame, noVerify)
		stAll := (&Decoder{Checksum: CheckAll}).Decode(&all, link, frame, noVerify)
		if stAll == OK && (stNone != OK || none != all) {
			t.Fatalf("CheckAll %v %+v, CheckNone %v %+v", stAll, all, stNone, none)
		}
		if stNone == OK && stAll != OK && stAll != BadChecksum {
			t.Fatalf("CheckNone OK, CheckAll %v", stAll)
		}
		if stNone != OK && stAll != stNone && stAll != BadChecksum {
			t.Fatalf("CheckNone %v, CheckAll %v", stNone, stAll)
		}

		if link == LinkEthernet {
			crossCheck(t, frame)
		}
	})
}

// checkPacket checks the invariants of a decoded Packet.
func checkPacket(t *testing.T, st Status, p *Packet) {
	t.Helper()
	switch st {
	case OK:
		if p.Kind != KindTCP && p.Kind != KindICMP {
			t.Fatalf("OK with kind %d", p.Kind)
		}
		if !p.Src.IsValid() || !p.Dst.IsValid() || p.Src.Is4() != p.Dst.Is4() {
			t.Fatalf("OK with addresses %v %v", p.Src, p.Dst)
		}
		if p.Src.Zone() != "" || p.Dst.Zone() != "" {
			t.Fatalf("addresses with a zone: %v %v", p.Src, p.Dst)
		}
		if p.Is6() && p.IPID != 0 {
			t.Fatalf("IPv6 packet with IPID %d", p.IPID)
		}
		if p.HasTS && p.Flags&SYN == 0 {
			t.Fatalf("timestamp on a segment without SYN: %+v", p)
		}
		if !p.HasTS && p.TSVal != 0 {
			t.Fatalf("TSVal without HasTS: %+v", p)
		}
		switch p.Kind {
		case KindICMP:
			if p.Flags != 0 || p.Ack != 0 || p.HasTS || p.PayloadLen != 0 || p.IPID != 0 {
				t.Fatalf("ICMP packet with TCP fields: %+v", p)
			}
			if want := uint8(3); p.Is6() && p.ICMPType != 1 || !p.Is6() && p.ICMPType != want {
				t.Fatalf("ICMP type %d in %+v", p.ICMPType, p)
			}
		case KindTCP:
			if p.ICMPType != 0 || p.ICMPCode != 0 {
				t.Fatalf("TCP packet with ICMP fields: %+v", p)
			}
		}
	case Unusable, Malformed, BadChecksum:
		if *p != (Packet{}) {
			t.Fatalf("status %v with packet %+v", st, p)
		}
	default:
		t.Fatalf("unknown status %d", st)
	}
}

// crossCheck decodes an Ethernet frame with gopacket too. When gopacket finds
// a plain Ethernet, IPv4 or IPv6 (with extension headers), TCP frame, Decode
// must find the same segment.
func crossCheck(t *testing.T, frame []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	ls := pkt.Layers()
	if len(ls) < 3 || ls[0].LayerType() != layers.LayerTypeEthernet {
		return
	}
	var (
		tcp      *layers.TCP
		src, dst net.IP
		ext      int
		routed   bool
		ipid     uint16
		version  byte
	)
	switch ip := ls[1].(type) {
	case *layers.IPv4:
		src, dst, ipid, version = ip.SrcIP, ip.DstIP, ip.Id, 4
		routed = len(ip.Options) > 0
	case *layers.IPv6:
		src, dst, version = ip.SrcIP, ip.DstIP, 6
	default:
		return
	}
	if frame[14]>>4 != version {
		return // gopacket does not look at the version field
	}
	if et := binary.BigEndian.Uint16(frame[12:]); version == 4 && et != etIPv4 || version == 6 && et != etIPv6 {
		return // gopacket decodes EtherType 0xffff as IPv4
	}
layers:
	for i, l := range ls[2:] {
		switch l := l.(type) {
		case *layers.TCP:
			if i+3 < len(ls) && ls[i+3].LayerType() == gopacket.LayerTypeDecodeFailure {
				return // gopacket keeps a TCP layer that failed to decode
			}
			tcp = l
			break layers
		case *layers.IPv6HopByHop, *layers.IPv6Destination, *layers.IPv6Fragment:
			ext++
		case *layers.IPv6Routing:
			ext++
			routed = true
		case *layers.IPSecAH:
			if version != 6 {
				return // Decode skips AH in IPv6 only
			}
			ext++
		default:
			return
		}
	}
	if tcp == nil || ext > MaxIPv6ExtHeaders {
		return
	}

	var p Packet
	st := (&Decoder{}).Decode(&p, LinkEthernet, frame, false)
	if st != OK || p.Kind != KindTCP {
		t.Fatalf("gopacket decodes %v, Decode: %v %+v", ls, st, p)
	}
	var flags uint8
	for _, b := range []struct {
		set bool
		bit uint8
	}{
		{tcp.FIN, FIN}, {tcp.SYN, SYN}, {tcp.RST, RST}, {tcp.PSH, PSH},
		{tcp.ACK, ACK}, {tcp.URG, URG}, {tcp.ECE, ECE}, {tcp.CWR, CWR},
	} {
		if b.set {
			flags |= b.bit
		}
	}
	want := Packet{
		Kind: KindTCP, SrcPort: uint16(tcp.SrcPort), DstPort: uint16(tcp.DstPort),
		Seq: tcp.Seq, Ack: tcp.Ack, Flags: flags, IPID: ipid,
	}
	got := Packet{
		Kind: p.Kind, SrcPort: p.SrcPort, DstPort: p.DstPort,
		Seq: p.Seq, Ack: p.Ack, Flags: p.Flags, IPID: p.IPID,
	}
	if got != want {
		t.Fatalf("Decode %+v, gopacket %+v", p, tcp)
	}
	if a, _ := netip.AddrFromSlice(src); a.Unmap() != p.Src.Unmap() {
		t.Fatalf("source %v, gopacket %v", p.Src, src)
	}
	if a, _ := netip.AddrFromSlice(dst); !routed && a.Unmap() != p.Dst.Unmap() {
		t.Fatalf("destination %v, gopacket %v", p.Dst, dst)
	}
	if !pkt.Metadata().Truncated && !p.Truncated && int(p.PayloadLen) != len(tcp.Payload) {
		t.Fatalf("payload length %d, gopacket %d", p.PayloadLen, len(tcp.Payload))
	}
	if tcp.SYN {
		for _, o := range tcp.Options {
			if o.OptionType == layers.TCPOptionKindTimestamps && o.OptionLength == 10 {
				if !p.HasTS || p.TSVal != binary.BigEndian.Uint32(o.OptionData) {
					t.Fatalf("timestamp %v %d, gopacket %x", p.HasTS, p.TSVal, o.OptionData)
				}
				break
			}
		}
	}
}
