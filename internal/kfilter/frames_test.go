package kfilter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Addresses and ports of the test packets.
var (
	bpfMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	bpfMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	bpfSrc4 = net.IP{192, 0, 2, 1}
	bpfDst4 = net.IP{198, 51, 100, 2}
	bpfSrc6 = net.ParseIP("2001:db8::1")
	bpfDst6 = net.ParseIP("2001:db8::2")
)

// bpfSerialize serializes ls with lengths and checksums fixed.
func bpfSerialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serializing: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// bpfEther returns an Ethernet frame with the VLAN tags of the EtherTypes
// tags (outermost first), then EtherType et, then ls.
func bpfEther(tb testing.TB, tags []layers.EthernetType, et layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: bpfMAC1, DstMAC: bpfMAC2, EthernetType: et}
	all := []gopacket.SerializableLayer{eth}
	if len(tags) > 0 {
		eth.EthernetType = tags[0]
	}
	for i := range tags {
		next := et
		if i+1 < len(tags) {
			next = tags[i+1]
		}
		all = append(all, &layers.Dot1Q{VLANIdentifier: uint16(100 + i), Type: next})
	}
	return bpfSerialize(tb, append(all, ls...)...)
}

// bpfL3 builds what follows the EtherType of a test frame: the EtherType
// and the layers. v6 asks for the IPv6 variant of an IP packet.
type bpfL3 func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer)

// bpfIP returns the header of an IP packet of protocol proto and its
// EtherType.
func bpfIP(v6 bool, proto layers.IPProtocol) (layers.EthernetType, *layers.IPv4, *layers.IPv6) {
	if v6 {
		return layers.EthernetTypeIPv6, nil, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: bpfSrc6, DstIP: bpfDst6}
	}
	return layers.EthernetTypeIPv4, &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: bpfSrc4, DstIP: bpfDst4}, nil
}

// bpfTCPHeader returns a TCP header with the flags named by the letters of
// flags (S, A, R, F, P, U, E, C).
func bpfTCPHeader(flags string) *layers.TCP {
	t := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1000, Ack: 2000, Window: 64240}
	for _, c := range flags {
		switch c {
		case 'S':
			t.SYN = true
		case 'A':
			t.ACK = true
		case 'R':
			t.RST = true
		case 'F':
			t.FIN = true
		case 'P':
			t.PSH = true
		case 'U':
			t.URG = true
		case 'E':
			t.ECE = true
		case 'C':
			t.CWR = true
		default:
			panic("bad TCP flag " + string(c))
		}
	}
	return t
}

// bpfPayload returns n bytes of payload.
func bpfPayload(n int) gopacket.Payload { return bytes.Repeat([]byte{'x'}, n) }

// bpfTCPSeg returns a TCP segment with flags and n bytes of payload; the
// mods adjust its headers (ip4 is nil for IPv6, ip6 for IPv4).
func bpfTCPSeg(flags string, n int, mods ...func(ip4 *layers.IPv4, ip6 *layers.IPv6, t *layers.TCP)) bpfL3 {
	return func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		et, ip4, ip6 := bpfIP(v6, layers.IPProtocolTCP)
		t := bpfTCPHeader(flags)
		for _, m := range mods {
			m(ip4, ip6, t)
		}
		var ls []gopacket.SerializableLayer
		if v6 {
			_ = t.SetNetworkLayerForChecksum(ip6)
			ls = append(ls, ip6, t)
		} else {
			_ = t.SetNetworkLayerForChecksum(ip4)
			ls = append(ls, ip4, t)
		}
		if n > 0 {
			ls = append(ls, bpfPayload(n))
		}
		return et, ls
	}
}

// bpfTimestamps adds the timestamps option (with two NOPs: data offset 8).
func bpfTimestamps(_ *layers.IPv4, _ *layers.IPv6, t *layers.TCP) {
	t.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}},
	}
}

// bpfIHL6 adds a router alert option: IHL 6.
func bpfIHL6(ip4 *layers.IPv4, _ *layers.IPv6, _ *layers.TCP) {
	ip4.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
}

// bpfIHL15 adds a record route option and an end of options: IHL 15.
func bpfIHL15(ip4 *layers.IPv4, _ *layers.IPv6, _ *layers.TCP) {
	rr := make([]byte, 37)
	rr[0] = 4 // pointer: the first slot
	ip4.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 39, OptionData: rr}, {OptionType: 0}}
}

// bpfFrag makes the IPv4 packet a fragment.
func bpfFrag(flags layers.IPv4Flag, off uint16) func(*layers.IPv4, *layers.IPv6, *layers.TCP) {
	return func(ip4 *layers.IPv4, _ *layers.IPv6, _ *layers.TCP) {
		ip4.Flags, ip4.FragOffset = flags, off
	}
}

// bpfNumbers sets the sequence and acknowledgement numbers.
func bpfNumbers(seq, ack uint32) func(*layers.IPv4, *layers.IPv6, *layers.TCP) {
	return func(_ *layers.IPv4, _ *layers.IPv6, t *layers.TCP) { t.Seq, t.Ack = seq, ack }
}

// bpfReverse makes the segment go the other way: from the responder
// (198.51.100.2 or 2001:db8::2, port 443) to the initiator.
func bpfReverse(ip4 *layers.IPv4, ip6 *layers.IPv6, t *layers.TCP) {
	if ip4 != nil {
		ip4.SrcIP, ip4.DstIP = ip4.DstIP, ip4.SrcIP
	}
	if ip6 != nil {
		ip6.SrcIP, ip6.DstIP = ip6.DstIP, ip6.SrcIP
	}
	t.SrcPort, t.DstPort = t.DstPort, t.SrcPort
}

// bpfPorts sets the initiator's port (the responder's is 443).
func bpfPorts(sport uint16) func(*layers.IPv4, *layers.IPv6, *layers.TCP) {
	return func(_ *layers.IPv4, _ *layers.IPv6, t *layers.TCP) { t.SrcPort = layers.TCPPort(sport) }
}

// bpfIPBytes returns an IPv4 or IPv6 TCP segment with flags and n bytes of
// payload, as bytes.
func bpfIPBytes(tb testing.TB, v6 bool, flags string, n int) []byte {
	_, ls := bpfTCPSeg(flags, n)(tb, v6)
	return bpfSerialize(tb, ls...)
}

// bpfICMP returns an ICMPv4 (ICMPv6 for IPv6) message of type typ and code
// code, quoting a TCP SYN for an error, and the payload of an echo
// otherwise.
func bpfICMP(typ4, typ6, code uint8) bpfL3 {
	return func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		isErr := typ4 == 3 || typ6 == 1
		if v6 {
			et, _, ip6 := bpfIP(true, layers.IPProtocolICMPv6)
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ6, code)}
			_ = icmp.SetNetworkLayerForChecksum(ip6)
			body := make([]byte, 4) // unused, or the NS reserved word
			switch {
			case isErr:
				body = append(body, bpfIPBytes(tb, true, "S", 0)[:48]...)
			case typ6 == 135:
				body = append(body, bpfDst6...)
			default:
				body = append(body, bpfPayload(32)...)
			}
			return et, []gopacket.SerializableLayer{ip6, icmp, gopacket.Payload(body)}
		}
		et, ip4, _ := bpfIP(false, layers.IPProtocolICMPv4)
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ4, code), Id: 7, Seq: 1}
		var body []byte
		if isErr {
			icmp.Id, icmp.Seq = 0, 0
			body = bpfIPBytes(tb, false, "S", 0)[:28]
		} else {
			body = bpfPayload(32)
		}
		return et, []gopacket.SerializableLayer{ip4, icmp, gopacket.Payload(body)}
	}
}

// bpfUDP returns a UDP datagram from sport to dport carrying body.
func bpfUDP(sport, dport uint16, body func(tb testing.TB) []byte) bpfL3 {
	return func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		et, ip4, ip6 := bpfIP(v6, layers.IPProtocolUDP)
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		var ip gopacket.SerializableLayer = ip4
		if v6 {
			_ = u.SetNetworkLayerForChecksum(ip6)
			ip = ip6
		} else {
			_ = u.SetNetworkLayerForChecksum(ip4)
		}
		return et, []gopacket.SerializableLayer{ip, u, gopacket.Payload(body(tb))}
	}
}

// bpfInnerFrame returns an Ethernet frame carrying an IPv4 TCP data segment
// (which the filter would drop if it saw it).
func bpfInnerFrame(tb testing.TB) []byte {
	et, ls := bpfTCPSeg("AP", 100)(tb, false)
	return bpfEther(tb, nil, et, ls...)
}

// bpfVXLAN returns a VXLAN header and an inner frame.
func bpfVXLAN(tb testing.TB) []byte {
	return append([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, bpfInnerFrame(tb)...)
}

// bpfGeneve returns a Geneve header and an inner frame.
func bpfGeneve(tb testing.TB) []byte {
	return append([]byte{0, 0, 0x65, 0x58, 0, 0, 42, 0}, bpfInnerFrame(tb)...)
}

// bpfTeredo returns an IPv6 TCP data segment.
func bpfTeredo(tb testing.TB) []byte { return bpfIPBytes(tb, true, "AP", 100) }

// bpfDNS returns a DNS query's worth of bytes.
func bpfDNS(testing.TB) []byte { return bpfPayload(29) }

// bpfTunnel returns an IP packet of protocol proto carrying inner, a data
// segment of the other or the same family.
func bpfTunnel(proto layers.IPProtocol, prefix []byte, innerV6 bool) bpfL3 {
	return func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		et, ip4, ip6 := bpfIP(v6, proto)
		inner := append(bytes.Clone(prefix), bpfIPBytes(tb, innerV6, "AP", 100)...)
		if v6 {
			return et, []gopacket.SerializableLayer{ip6, gopacket.Payload(inner)}
		}
		return et, []gopacket.SerializableLayer{ip4, gopacket.Payload(inner)}
	}
}

// bpfIPv6Ext returns an IPv6 TCP data segment behind the extension header
// hdr (whose first byte, Next Header, is TCP).
func bpfIPv6Ext(nh layers.IPProtocol, hdr []byte) bpfL3 {
	return func(tb testing.TB, _ bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		et, _, ip6 := bpfIP(true, nh)
		t := bpfTCPHeader("AP")
		_ = t.SetNetworkLayerForChecksum(ip6)
		return et, []gopacket.SerializableLayer{ip6, gopacket.Payload(hdr), t, bpfPayload(100)}
	}
}

// bpfWithIPOpts returns l3 with the IPv4 header of its IPv4 variant changed
// by mod.
func bpfWithIPOpts(l3 bpfL3, mod func(*layers.IPv4, *layers.IPv6, *layers.TCP)) bpfL3 {
	return func(tb testing.TB, v6 bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		et, ls := l3(tb, v6)
		if ip4, ok := ls[0].(*layers.IPv4); ok {
			mod(ip4, nil, nil)
		}
		return et, ls
	}
}

// bpfL2 returns a frame of EtherType et whose payload is body.
func bpfL2(et layers.EthernetType, body func(tb testing.TB) []byte) bpfL3 {
	return func(tb testing.TB, _ bool) (layers.EthernetType, []gopacket.SerializableLayer) {
		return et, []gopacket.SerializableLayer{gopacket.Payload(body(tb))}
	}
}

// bpfMPLS returns one MPLS label and an IPv4 data segment.
func bpfMPLS(tb testing.TB) []byte {
	return append([]byte{0, 0x01, 0x01, 64}, bpfIPBytes(tb, false, "AP", 100)...) // label 16, bottom
}

// bpfPPPoE returns a PPPoE session header, PPP IPv4, and an IPv4 data
// segment.
func bpfPPPoE(tb testing.TB) []byte {
	ip := bpfIPBytes(tb, false, "AP", 100)
	h := []byte{0x11, 0, 0, 1, 0, 0, 0x00, 0x21}
	binary.BigEndian.PutUint16(h[4:], uint16(2+len(ip)))
	return append(h, ip...)
}

// bpfFabricPath returns the FabricPath FTag/TTL word and an inner frame.
func bpfFabricPath(tb testing.TB) []byte { return append([]byte{0, 0x3f}, bpfInnerFrame(tb)...) }

// bpfARP returns an ARP request.
func bpfARP(tb testing.TB) []byte {
	return bpfSerialize(tb, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: bpfMAC1, SourceProtAddress: bpfSrc4,
		DstHwAddress: make([]byte, 6), DstProtAddress: bpfDst4,
	})
}

// bpfCase is a kind of frame, whether the classic filter accepts it, and
// whether the eBPF filter judges it by its map of handshakes in progress (a
// TCP segment with neither SYN nor RST): it accepts the others as the
// classic filter does, and drops these when their tuple is not in the map.
type bpfCase struct {
	name     string
	fams     string // "4", "6" or "46": the IP versions to build; "" for non-IP frames
	build    bpfL3
	want     bool
	stateful bool
}

// bpfCases is the filters' policy, case by case.
var bpfCases = []bpfCase{
	{"SYN", "46", bpfTCPSeg("S", 0, bpfTimestamps), true, false},
	{"SYN without options", "46", bpfTCPSeg("S", 0), true, false},
	{"SYN/ACK", "46", bpfTCPSeg("SA", 0, bpfTimestamps), true, false},
	{"SYN ECE CWR", "46", bpfTCPSeg("SEC", 0), true, false},
	{"SYN/ACK ECE", "46", bpfTCPSeg("SAE", 0), true, false},
	{"SYN with TFO payload", "46", bpfTCPSeg("S", 100, bpfTimestamps), true, false},
	{"SYN with 1000 bytes", "46", bpfTCPSeg("S", 1000), true, false},
	{"SYN/FIN", "46", bpfTCPSeg("SF", 0), true, false},
	{"RST", "46", bpfTCPSeg("R", 0), true, false},
	{"RST/ACK", "46", bpfTCPSeg("RA", 0), true, false},
	{"FIN/ACK", "46", bpfTCPSeg("FA", 0), true, true},
	{"FIN/ACK/PSH with data", "46", bpfTCPSeg("FAP", 200), true, true},
	{"pure ACK", "46", bpfTCPSeg("A", 0), true, true},
	{"pure ACK with timestamps", "46", bpfTCPSeg("A", 0, bpfTimestamps), true, true},
	{"pure ACK ECE", "46", bpfTCPSeg("AE", 0), true, true},
	{"ACK/PSH 1 byte", "46", bpfTCPSeg("AP", 1), false, true},
	{"ACK/PSH 1 byte with timestamps", "46", bpfTCPSeg("AP", 1, bpfTimestamps), false, true},
	{"ACK/PSH 1400 bytes", "46", bpfTCPSeg("AP", 1400, bpfTimestamps), false, true},
	{"ACK 1400 bytes", "46", bpfTCPSeg("A", 1400), false, true},
	{"URG/ACK with data", "46", bpfTCPSeg("UA", 10), false, true},
	{"ACK/ECE/CWR with data", "46", bpfTCPSeg("AEC", 10), false, true},
	{"no flags", "46", bpfTCPSeg("", 0), false, true},
	{"PSH only, no payload", "46", bpfTCPSeg("P", 0), false, true},
	{"IHL 6 SYN", "4", bpfTCPSeg("S", 0, bpfIHL6), true, false},
	{"IHL 6 pure ACK", "4", bpfTCPSeg("A", 0, bpfIHL6), true, true},
	{"IHL 6 data", "4", bpfTCPSeg("AP", 50, bpfIHL6), false, true},
	{"IHL 15 SYN", "4", bpfTCPSeg("S", 0, bpfIHL15, bpfTimestamps), true, false},
	{"IHL 15 pure ACK", "4", bpfTCPSeg("A", 0, bpfIHL15, bpfTimestamps), true, true},
	{"IHL 15 data", "4", bpfTCPSeg("AP", 50, bpfIHL15), false, true},
	{"non-first fragment", "4", bpfTCPSeg("S", 100, bpfFrag(0, 185)), false, false},
	{"non-first fragment with MF", "4", bpfTCPSeg("S", 100, bpfFrag(layers.IPv4MoreFragments, 1)), false, false},
	{"first fragment with MF, SYN", "4", bpfTCPSeg("S", 100, bpfFrag(layers.IPv4MoreFragments, 0)), true, false},
	{"first fragment with MF, data", "4", bpfTCPSeg("AP", 100, bpfFrag(layers.IPv4MoreFragments, 0)), false, true},
	{"DF pure ACK", "4", bpfTCPSeg("A", 0, bpfFrag(layers.IPv4DontFragment, 0)), true, true},
	{"ICMP 3/3", "4", bpfICMP(3, 0, 3), true, false},
	{"ICMP 3/13", "4", bpfICMP(3, 0, 13), true, false},
	{"ICMP 3/4", "4", bpfICMP(3, 0, 4), true, false},
	{"ICMP 3/3 IHL 6", "4", bpfWithIPOpts(bpfICMP(3, 0, 3), bpfIHL6), true, false},
	{"ICMP 3/1 IHL 15", "4", bpfWithIPOpts(bpfICMP(3, 0, 1), bpfIHL15), true, false},
	{"ICMP echo", "46", bpfICMP(8, 128, 0), false, false},
	{"ICMP echo IHL 6", "4", bpfWithIPOpts(bpfICMP(8, 0, 0), bpfIHL6), false, false},
	{"ICMP time exceeded", "46", bpfICMP(11, 3, 0), false, false},
	{"ICMPv6 1/4", "6", bpfICMP(0, 1, 4), true, false},
	{"ICMPv6 1/1", "6", bpfICMP(0, 1, 1), true, false},
	{"ICMPv6 135 NS", "6", bpfICMP(0, 135, 0), false, false},
	{"IPv6 hop-by-hop", "6", bpfIPv6Ext(layers.IPProtocolIPv6HopByHop, []byte{6, 0, 1, 4, 0, 0, 0, 0}), true, false},
	{"IPv6 fragment header", "6", bpfIPv6Ext(layers.IPProtocolIPv6Fragment, []byte{6, 0, 0, 1, 0, 0, 0, 9}), true, false},
	{"IPv6 destination options", "6", bpfIPv6Ext(layers.IPProtocolIPv6Destination, []byte{6, 0, 1, 4, 0, 0, 0, 0}), true, false},
	{"UDP 53", "46", bpfUDP(53000, 53, bpfDNS), false, false},
	{"UDP from 53", "46", bpfUDP(53, 53000, bpfDNS), false, false},
	{"UDP from 4789", "46", bpfUDP(4789, 53000, bpfDNS), false, false},
	{"UDP to 4789 (VXLAN)", "46", bpfUDP(53000, 4789, bpfVXLAN), true, false},
	{"UDP to 4789 IHL 6", "4", bpfWithIPOpts(bpfUDP(53000, 4789, bpfVXLAN), bpfIHL6), true, false},
	{"UDP from 3544 IHL 15", "4", bpfWithIPOpts(bpfUDP(3544, 53000, bpfTeredo), bpfIHL15), true, false},
	{"UDP 53 IHL 6", "4", bpfWithIPOpts(bpfUDP(53000, 53, bpfDNS), bpfIHL6), false, false},
	{"UDP to 6081 (Geneve)", "46", bpfUDP(53000, 6081, bpfGeneve), true, false},
	{"UDP to 3544 (Teredo)", "46", bpfUDP(53000, 3544, bpfTeredo), true, false},
	{"UDP from 3544 (Teredo)", "46", bpfUDP(3544, 53000, bpfTeredo), true, false},
	{"GRE", "46", bpfTunnel(layers.IPProtocolGRE, []byte{0, 0, 0x08, 0x00}, false), true, false},
	{"GRE ERSPAN", "46", bpfTunnel(layers.IPProtocolGRE, append([]byte{0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 0}, bpfInnerFrameHeader()...), false), true, false},
	{"IPv4 in IP", "46", bpfTunnel(layers.IPProtocolIPv4, nil, false), true, false},
	{"IPv6 in IP", "46", bpfTunnel(layers.IPProtocolIPv6, nil, true), true, false},
	{"SCTP", "46", bpfTunnel(layers.IPProtocolSCTP, nil, false), false, false},
	{"ARP", "", bpfL2(layers.EthernetTypeARP, bpfARP), false, false},
	{"LLDP", "", bpfL2(layers.EthernetTypeLinkLayerDiscovery, bpfDNS), false, false},
	{"MPLS", "", bpfL2(layers.EthernetTypeMPLSUnicast, bpfMPLS), true, false},
	{"MPLS multicast", "", bpfL2(layers.EthernetTypeMPLSMulticast, bpfMPLS), true, false},
	{"PPPoE session", "", bpfL2(layers.EthernetTypePPPoESession, bpfPPPoE), true, false},
	{"PPPoE discovery", "", bpfL2(layers.EthernetTypePPPoEDiscovery, bpfDNS), false, false},
	{"FabricPath", "", bpfL2(0x8903, bpfFabricPath), true, false},
}

// bpfInnerFrameHeader returns the Ethernet header of an inner frame (the
// rest of a GRE ERSPAN test packet is the inner IP packet).
func bpfInnerFrameHeader() []byte {
	return []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
}

// bpfTagStacks are the tag stacks every case is tried with.
var bpfTagStacks = []struct {
	name string
	tags []layers.EthernetType
}{
	{"untagged", nil},
	{"802.1Q", []layers.EthernetType{layers.EthernetTypeDot1Q}},
	{"802.1ad+802.1Q", []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}},
}

// bpfFrame is a named test frame, whether the classic filter accepts it,
// and whether the eBPF filter accepts it with its map empty.
type bpfFrame struct {
	name           string
	data           []byte
	want, wantEBPF bool
}

// bpfCaseFrames returns the frames of bpfCases, with every tag stack.
func bpfCaseFrames(tb testing.TB) []bpfFrame {
	var fs []bpfFrame
	for _, c := range bpfCases {
		fams := c.fams
		if fams == "" {
			fams = "-"
		}
		for _, fam := range fams {
			for _, ts := range bpfTagStacks {
				et, ls := c.build(tb, fam == '6')
				name := c.name
				if fam != '-' {
					name += "/IPv" + string(fam)
				}
				fs = append(fs, bpfFrame{name + "/" + ts.name, bpfEther(tb, ts.tags, et, ls...), c.want, c.want && !c.stateful})
			}
		}
	}
	return fs
}

// bpfTagFrames returns frames with the other tag EtherTypes, and with too
// many tags.
func bpfTagFrames(tb testing.TB) []bpfFrame {
	et, syn := bpfTCPSeg("S", 0)(tb, false)
	_, data := bpfTCPSeg("AP", 100)(tb, false)
	_, syn6 := bpfTCPSeg("S", 0)(tb, true)
	q, ad := layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ
	t91, t92 := layers.EthernetType(0x9100), layers.EthernetType(0x9200)
	tags := func(ts ...layers.EthernetType) []layers.EthernetType { return ts }
	return []bpfFrame{
		{"0x9100 SYN", bpfEther(tb, tags(t91), et, syn...), true, true},
		{"0x9100+802.1Q SYN", bpfEther(tb, tags(t91, q), et, syn...), true, true},
		{"0x9200 SYN", bpfEther(tb, tags(t92), et, syn...), true, true},
		{"0x9200+802.1Q IPv6 SYN", bpfEther(tb, tags(t92, q), layers.EthernetTypeIPv6, syn6...), true, true},
		{"802.1ad+802.1ad data", bpfEther(tb, tags(ad, ad), et, data...), false, false},
		{"3 tags SYN", bpfEther(tb, tags(ad, q, q), et, syn...), false, false},
		{"3 tags MPLS", bpfEther(tb, tags(ad, q, q), layers.EthernetTypeMPLSUnicast, gopacket.Payload(bpfMPLS(tb))), false, false},
		{"2 tags MPLS", bpfEther(tb, tags(ad, q), layers.EthernetTypeMPLSUnicast, gopacket.Payload(bpfMPLS(tb))), true, true},
	}
}

// bpfTruncFrames returns frames cut at every length, with the verdicts: a
// filter judges a frame cut after the fields it reads as if it were whole,
// and drops a frame cut before them (a load beyond the frame ends the
// program with 0). Both read TCP up to the flags (14 bytes); the eBPF
// filter copies the IP header's first 20 or 40 bytes.
func bpfTruncFrames(tb testing.TB) []bpfFrame {
	type whole struct {
		name           string
		l3             bpfL3
		v6             bool
		tags           int
		need, needEBPF int // bytes after the IP header each filter reads (IPv4: +IHL)
		want, wantEBPF bool
	}
	var fs []bpfFrame
	for _, w := range []whole{
		{"SYN", bpfTCPSeg("S", 0), false, 0, 14, 14, true, true},
		{"SYN", bpfTCPSeg("S", 0), true, 0, 14, 14, true, true},
		{"SYN", bpfTCPSeg("S", 0, bpfIHL15), false, 2, 14, 14, true, true},
		{"SYN", bpfTCPSeg("S", 0), true, 2, 14, 14, true, true},
		{"pure ACK", bpfTCPSeg("A", 0, bpfTimestamps), false, 1, 14, 14, true, false},
		{"pure ACK", bpfTCPSeg("A", 0, bpfTimestamps), true, 1, 14, 14, true, false},
		{"data", bpfTCPSeg("AP", 100), false, 0, 0, 0, false, false},
		{"data", bpfTCPSeg("AP", 100), true, 0, 0, 0, false, false},
		{"ICMP 3/3", bpfICMP(3, 0, 3), false, 0, 1, 1, true, true},
		{"ICMPv6 1/4", bpfICMP(0, 1, 4), true, 0, 1, 1, true, true},
		{"VXLAN", bpfUDP(53000, 4789, bpfVXLAN), false, 0, 4, 4, true, true},
		{"VXLAN", bpfUDP(53000, 4789, bpfVXLAN), true, 0, 4, 4, true, true},
	} {
		et, ls := w.l3(tb, w.v6)
		f := bpfEther(tb, bpfTagStacks[w.tags].tags, et, ls...)
		l3 := 14 + 4*w.tags
		hdr := 40
		if !w.v6 {
			hdr = int(f[l3]&0xf) * 4
		}
		for n := 0; n <= len(f); n++ {
			name := fmt.Sprintf("%s/IPv4/%s/cut %d", w.name, bpfTagStacks[w.tags].name, n)
			if w.v6 {
				name = strings.Replace(name, "IPv4", "IPv6", 1)
			}
			fs = append(fs, bpfFrame{name, f[:n:n], w.want && n >= l3+hdr+w.need, w.wantEBPF && n >= l3+hdr+w.needEBPF})
		}
	}
	return fs
}

// bpfAllFrames returns every test frame.
func bpfAllFrames(tb testing.TB) []bpfFrame {
	fs := bpfCaseFrames(tb)
	fs = append(fs, bpfTagFrames(tb)...)
	return append(fs, bpfTruncFrames(tb)...)
}
