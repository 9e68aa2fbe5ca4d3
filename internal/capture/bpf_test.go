package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"

	"github.com/tcpeek/tcpeek/internal/decode"
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

// bpfCase is a kind of frame and whether the filter accepts it.
type bpfCase struct {
	name  string
	fams  string // "4", "6" or "46": the IP versions to build; "" for non-IP frames
	build bpfL3
	want  bool
}

// bpfCases is the filter's policy, case by case.
var bpfCases = []bpfCase{
	{"SYN", "46", bpfTCPSeg("S", 0, bpfTimestamps), true},
	{"SYN without options", "46", bpfTCPSeg("S", 0), true},
	{"SYN/ACK", "46", bpfTCPSeg("SA", 0, bpfTimestamps), true},
	{"SYN ECE CWR", "46", bpfTCPSeg("SEC", 0), true},
	{"SYN/ACK ECE", "46", bpfTCPSeg("SAE", 0), true},
	{"SYN with TFO payload", "46", bpfTCPSeg("S", 100, bpfTimestamps), true},
	{"SYN with 1000 bytes", "46", bpfTCPSeg("S", 1000), true},
	{"RST", "46", bpfTCPSeg("R", 0), true},
	{"RST/ACK", "46", bpfTCPSeg("RA", 0), true},
	{"FIN/ACK", "46", bpfTCPSeg("FA", 0), true},
	{"FIN/ACK/PSH with data", "46", bpfTCPSeg("FAP", 200), true},
	{"pure ACK", "46", bpfTCPSeg("A", 0), true},
	{"pure ACK with timestamps", "46", bpfTCPSeg("A", 0, bpfTimestamps), true},
	{"pure ACK ECE", "46", bpfTCPSeg("AE", 0), true},
	{"ACK/PSH 1 byte", "46", bpfTCPSeg("AP", 1), false},
	{"ACK/PSH 1 byte with timestamps", "46", bpfTCPSeg("AP", 1, bpfTimestamps), false},
	{"ACK/PSH 1400 bytes", "46", bpfTCPSeg("AP", 1400, bpfTimestamps), false},
	{"ACK 1400 bytes", "46", bpfTCPSeg("A", 1400), false},
	{"URG/ACK with data", "46", bpfTCPSeg("UA", 10), false},
	{"ACK/ECE/CWR with data", "46", bpfTCPSeg("AEC", 10), false},
	{"no flags", "46", bpfTCPSeg("", 0), false},
	{"PSH only, no payload", "46", bpfTCPSeg("P", 0), false},
	{"IHL 6 SYN", "4", bpfTCPSeg("S", 0, bpfIHL6), true},
	{"IHL 6 pure ACK", "4", bpfTCPSeg("A", 0, bpfIHL6), true},
	{"IHL 6 data", "4", bpfTCPSeg("AP", 50, bpfIHL6), false},
	{"IHL 15 SYN", "4", bpfTCPSeg("S", 0, bpfIHL15, bpfTimestamps), true},
	{"IHL 15 pure ACK", "4", bpfTCPSeg("A", 0, bpfIHL15, bpfTimestamps), true},
	{"IHL 15 data", "4", bpfTCPSeg("AP", 50, bpfIHL15), false},
	{"non-first fragment", "4", bpfTCPSeg("S", 100, bpfFrag(0, 185)), false},
	{"non-first fragment with MF", "4", bpfTCPSeg("S", 100, bpfFrag(layers.IPv4MoreFragments, 1)), false},
	{"first fragment with MF, SYN", "4", bpfTCPSeg("S", 100, bpfFrag(layers.IPv4MoreFragments, 0)), true},
	{"first fragment with MF, data", "4", bpfTCPSeg("AP", 100, bpfFrag(layers.IPv4MoreFragments, 0)), false},
	{"DF pure ACK", "4", bpfTCPSeg("A", 0, bpfFrag(layers.IPv4DontFragment, 0)), true},
	{"ICMP 3/3", "4", bpfICMP(3, 0, 3), true},
	{"ICMP 3/13", "4", bpfICMP(3, 0, 13), true},
	{"ICMP 3/4", "4", bpfICMP(3, 0, 4), true},
	{"ICMP 3/3 IHL 6", "4", bpfWithIPOpts(bpfICMP(3, 0, 3), bpfIHL6), true},
	{"ICMP 3/1 IHL 15", "4", bpfWithIPOpts(bpfICMP(3, 0, 1), bpfIHL15), true},
	{"ICMP echo", "46", bpfICMP(8, 128, 0), false},
	{"ICMP echo IHL 6", "4", bpfWithIPOpts(bpfICMP(8, 0, 0), bpfIHL6), false},
	{"ICMP time exceeded", "46", bpfICMP(11, 3, 0), false},
	{"ICMPv6 1/4", "6", bpfICMP(0, 1, 4), true},
	{"ICMPv6 1/1", "6", bpfICMP(0, 1, 1), true},
	{"ICMPv6 135 NS", "6", bpfICMP(0, 135, 0), false},
	{"IPv6 hop-by-hop", "6", bpfIPv6Ext(layers.IPProtocolIPv6HopByHop, []byte{6, 0, 1, 4, 0, 0, 0, 0}), true},
	{"IPv6 fragment header", "6", bpfIPv6Ext(layers.IPProtocolIPv6Fragment, []byte{6, 0, 0, 1, 0, 0, 0, 9}), true},
	{"IPv6 destination options", "6", bpfIPv6Ext(layers.IPProtocolIPv6Destination, []byte{6, 0, 1, 4, 0, 0, 0, 0}), true},
	{"UDP 53", "46", bpfUDP(53000, 53, bpfDNS), false},
	{"UDP from 53", "46", bpfUDP(53, 53000, bpfDNS), false},
	{"UDP from 4789", "46", bpfUDP(4789, 53000, bpfDNS), false},
	{"UDP to 4789 (VXLAN)", "46", bpfUDP(53000, 4789, bpfVXLAN), true},
	{"UDP to 4789 IHL 6", "4", bpfWithIPOpts(bpfUDP(53000, 4789, bpfVXLAN), bpfIHL6), true},
	{"UDP from 3544 IHL 15", "4", bpfWithIPOpts(bpfUDP(3544, 53000, bpfTeredo), bpfIHL15), true},
	{"UDP 53 IHL 6", "4", bpfWithIPOpts(bpfUDP(53000, 53, bpfDNS), bpfIHL6), false},
	{"UDP to 6081 (Geneve)", "46", bpfUDP(53000, 6081, bpfGeneve), true},
	{"UDP to 3544 (Teredo)", "46", bpfUDP(53000, 3544, bpfTeredo), true},
	{"UDP from 3544 (Teredo)", "46", bpfUDP(3544, 53000, bpfTeredo), true},
	{"GRE", "46", bpfTunnel(layers.IPProtocolGRE, []byte{0, 0, 0x08, 0x00}, false), true},
	{"IPv4 in IP", "46", bpfTunnel(layers.IPProtocolIPv4, nil, false), true},
	{"IPv6 in IP", "46", bpfTunnel(layers.IPProtocolIPv6, nil, true), true},
	{"SCTP", "46", bpfTunnel(layers.IPProtocolSCTP, nil, false), false},
	{"ARP", "", bpfL2(layers.EthernetTypeARP, bpfARP), false},
	{"LLDP", "", bpfL2(layers.EthernetTypeLinkLayerDiscovery, bpfDNS), false},
	{"MPLS", "", bpfL2(layers.EthernetTypeMPLSUnicast, bpfMPLS), true},
	{"MPLS multicast", "", bpfL2(layers.EthernetTypeMPLSMulticast, bpfMPLS), true},
	{"PPPoE session", "", bpfL2(layers.EthernetTypePPPoESession, bpfPPPoE), true},
	{"PPPoE discovery", "", bpfL2(layers.EthernetTypePPPoEDiscovery, bpfDNS), false},
	{"FabricPath", "", bpfL2(0x8903, bpfFabricPath), true},
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

// bpfFrame is a named test frame and whether the filter accepts it.
type bpfFrame struct {
	name string
	data []byte
	want bool
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
				fs = append(fs, bpfFrame{name + "/" + ts.name, bpfEther(tb, ts.tags, et, ls...), c.want})
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
		{"0x9100 SYN", bpfEther(tb, tags(t91), et, syn...), true},
		{"0x9100+802.1Q SYN", bpfEther(tb, tags(t91, q), et, syn...), true},
		{"0x9200 SYN", bpfEther(tb, tags(t92), et, syn...), true},
		{"0x9200+802.1Q IPv6 SYN", bpfEther(tb, tags(t92, q), layers.EthernetTypeIPv6, syn6...), true},
		{"802.1ad+802.1ad data", bpfEther(tb, tags(ad, ad), et, data...), false},
		{"3 tags SYN", bpfEther(tb, tags(ad, q, q), et, syn...), false},
		{"3 tags MPLS", bpfEther(tb, tags(ad, q, q), layers.EthernetTypeMPLSUnicast, gopacket.Payload(bpfMPLS(tb))), false},
		{"2 tags MPLS", bpfEther(tb, tags(ad, q), layers.EthernetTypeMPLSUnicast, gopacket.Payload(bpfMPLS(tb))), true},
	}
}

// bpfTruncFrames returns frames cut at every length, with the verdict: the
// filter judges a frame cut after the fields it reads as if it were whole,
// and drops a frame cut before them (a load beyond the frame ends the
// program with 0, in the VM as in the kernel).
func bpfTruncFrames(tb testing.TB) []bpfFrame {
	type whole struct {
		name string
		l3   bpfL3
		v6   bool
		tags int
		need int // bytes after the IP header the filter reads (IPv4: +IHL)
		want bool
	}
	var fs []bpfFrame
	for _, w := range []whole{
		{"SYN", bpfTCPSeg("S", 0), false, 0, 14, true},
		{"SYN", bpfTCPSeg("S", 0), true, 0, 14, true},
		{"SYN", bpfTCPSeg("S", 0, bpfIHL15), false, 2, 14, true},
		{"SYN", bpfTCPSeg("S", 0), true, 2, 14, true},
		{"pure ACK", bpfTCPSeg("A", 0, bpfTimestamps), false, 1, 14, true},
		{"pure ACK", bpfTCPSeg("A", 0, bpfTimestamps), true, 1, 14, true},
		{"data", bpfTCPSeg("AP", 100), false, 0, 0, false},
		{"data", bpfTCPSeg("AP", 100), true, 0, 0, false},
		{"ICMP 3/3", bpfICMP(3, 0, 3), false, 0, 1, true},
		{"ICMPv6 1/4", bpfICMP(0, 1, 4), true, 0, 1, true},
		{"VXLAN", bpfUDP(53000, 4789, bpfVXLAN), false, 0, 4, true},
		{"VXLAN", bpfUDP(53000, 4789, bpfVXLAN), true, 0, 4, true},
	} {
		et, ls := w.l3(tb, w.v6)
		f := bpfEther(tb, bpfTagStacks[w.tags].tags, et, ls...)
		l3 := 14 + 4*w.tags
		least := l3 + 40 + w.need
		if !w.v6 {
			least = l3 + int(f[l3]&0xf)*4 + w.need
		}
		for n := 0; n <= len(f); n++ {
			name := fmt.Sprintf("%s/IPv4/%s/cut %d", w.name, bpfTagStacks[w.tags].name, n)
			if w.v6 {
				name = strings.Replace(name, "IPv4", "IPv6", 1)
			}
			fs = append(fs, bpfFrame{name, f[:n:n], w.want && n >= least})
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

// bpfNewVM returns a VM running the filter.
func bpfNewVM(tb testing.TB) *bpf.VM {
	tb.Helper()
	vm, err := bpf.NewVM(FilterInstructions())
	if err != nil {
		tb.Fatalf("bpf.NewVM: %v", err)
	}
	return vm
}

// bpfRun runs the filter on frame and tells whether it accepts it; any
// verdict but 0 and SnapLen fails the test.
func bpfRun(tb testing.TB, vm *bpf.VM, frame []byte) bool {
	tb.Helper()
	n, err := vm.Run(frame)
	if err != nil {
		tb.Fatalf("vm.Run: %v", err)
	}
	if n != 0 && n != SnapLen {
		tb.Fatalf("filter returned %d, want 0 or SnapLen (%d)", n, SnapLen)
	}
	return n == SnapLen
}

// bpfUsed tells whether the classifier uses a packet the decoder decoded
// (with ICMP on): the packets the filter exists to let through.
func bpfUsed(p *decode.Packet) bool {
	switch p.Kind {
	case decode.KindICMP:
		return true
	case decode.KindTCP:
		return p.Flags&(decode.SYN|decode.RST|decode.FIN) != 0 ||
			p.Flags&decode.ACK != 0 && p.PayloadLen == 0
	}
	return false
}

// bpfOutOfPolicy tells whether frame is one the filter is allowed to drop
// although the decoder decodes it into a packet the classifier uses: more
// tags than the filter looks through, or an IP length of 0 (segmentation
// offload on the capturing host, which only data segments use).
func bpfOutOfPolicy(frame []byte) bool {
	for off, tags := 12, 0; len(frame) >= off+2; off, tags = off+4, tags+1 {
		switch binary.BigEndian.Uint16(frame[off:]) {
		case 0x8100, 0x88a8, 0x9100, 0x9200:
			if tags == bpfMaxTags {
				return true
			}
			continue
		case 0x0800:
			return len(frame) >= off+6 && binary.BigEndian.Uint16(frame[off+4:]) == 0
		case 0x86dd:
			return len(frame) >= off+8 && binary.BigEndian.Uint16(frame[off+6:]) == 0
		}
		return false
	}
	return false
}

// bpfCheckDecoder fails the test if the decoder makes of frame a packet the
// classifier uses and the filter dropped it.
func bpfCheckDecoder(tb testing.TB, frame []byte, accepted bool) {
	tb.Helper()
	var p decode.Packet
	st := (&decode.Decoder{}).Decode(&p, decode.LinkEthernet, frame, false)
	if st == decode.OK && bpfUsed(&p) && !accepted && !bpfOutOfPolicy(frame) {
		tb.Errorf("filter drops a frame the classifier uses: %v\n% x", &p, frame)
	}
}

func TestFilterPolicy(t *testing.T) {
	vm := bpfNewVM(t)
	fs := bpfAllFrames(t)
	for _, f := range fs {
		got := bpfRun(t, vm, f.data)
		if got != f.want {
			t.Errorf("%s: accepted %v, want %v\n% x", f.name, got, f.want, f.data)
		}
		bpfCheckDecoder(t, f.data, got)
	}
	t.Logf("%d frames", len(fs))
}

// TestFilterFrameShapes checks that the test frames have the headers their
// names claim, so that the policy test tests what it says.
func TestFilterFrameShapes(t *testing.T) {
	l3 := func(f []byte, tags int) []byte { return f[14+4*tags:] }
	one := func(c bpfL3, v6 bool) []byte {
		et, ls := c(t, v6)
		return bpfEther(t, nil, et, ls...)
	}
	if ihl := l3(one(bpfTCPSeg("S", 0, bpfIHL6), false), 0)[0] & 0xf; ihl != 6 {
		t.Errorf("IHL %d, want 6", ihl)
	}
	f := l3(one(bpfTCPSeg("S", 0, bpfIHL15), false), 0)
	if ihl := f[0] & 0xf; ihl != 15 {
		t.Errorf("IHL %d, want 15", ihl)
	}
	if doff := l3(one(bpfTCPSeg("A", 0, bpfTimestamps), true), 0)[40+12] >> 4; doff != 8 {
		t.Errorf("data offset %d, want 8", doff)
	}
	f = one(bpfTCPSeg("A", 0), false)
	if len(f) != 60 || binary.BigEndian.Uint16(f[16:]) != 40 {
		t.Errorf("pure ACK frame of %d bytes, IP length %d: want 60 (padded) and 40", len(f), binary.BigEndian.Uint16(f[16:]))
	}
	f = bpfEther(t, bpfTagStacks[2].tags, layers.EthernetTypeIPv4)
	if got := binary.BigEndian.Uint16(f[12:]); got != 0x88a8 {
		t.Errorf("outer tag %#x", got)
	}
	if got := binary.BigEndian.Uint16(f[16:]); got != 0x8100 {
		t.Errorf("inner tag %#x", got)
	}
	if got := binary.BigEndian.Uint16(f[20:]); got != 0x0800 {
		t.Errorf("EtherType %#x", got)
	}
	// The decoder agrees on what the accepted handshake frames are.
	for _, f := range bpfCaseFrames(t) {
		if !f.want || strings.Contains(f.name, "fragment") {
			continue
		}
		var p decode.Packet
		if st := (&decode.Decoder{Checksum: decode.CheckAll}).Decode(&p, decode.LinkEthernet, f.data, false); st != decode.OK {
			t.Errorf("%s: decoder says %v", f.name, st)
		}
	}
}

func TestFilterEthernetOnly(t *testing.T) {
	vm := bpfNewVM(t)
	for _, et := range []uint16{0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806} {
		f := make([]byte, 14)
		copy(f, bpfMAC2)
		copy(f[6:], bpfMAC1)
		binary.BigEndian.PutUint16(f[12:], et)
		if bpfRun(t, vm, f) {
			t.Errorf("14-byte frame of EtherType %#04x accepted", et)
		}
	}
	// Encapsulations are accepted whole, even when empty: the decoder
	// rejects them.
	f := make([]byte, 14)
	binary.BigEndian.PutUint16(f[12:], 0x8847)
	if !bpfRun(t, vm, f) {
		t.Errorf("14-byte MPLS frame dropped")
	}
	for n := range 14 {
		if bpfRun(t, vm, f[:n]) {
			t.Errorf("%d-byte frame accepted", n)
		}
	}
}

func TestFilterProgram(t *testing.T) {
	ins := FilterInstructions()
	raw, err := Filter()
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	again, err := bpf.Assemble(ins)
	if err != nil {
		t.Fatalf("bpf.Assemble: %v", err)
	}
	if len(raw) != len(ins) || !slices.Equal(raw, again) {
		t.Fatalf("Filter and FilterInstructions differ")
	}
	if len(ins) >= 200 {
		t.Errorf("%d instructions, want fewer than 200", len(ins))
	}
	dis, ok := bpf.Disassemble(raw)
	if !ok {
		t.Errorf("bpf.Disassemble could not decode every instruction")
	}
	if re, err := bpf.Assemble(dis); err != nil || !slices.Equal(re, raw) {
		t.Errorf("disassembly does not assemble back: %v", err)
	}

	// The kernel's rules for classic BPF (bpf_check_classic): at most
	// BPF_MAXINSNS instructions, every jump forward and inside the
	// program, the last instruction a return, scratch memory written before
	// it is read.
	if len(raw) == 0 || len(raw) > 4096 {
		t.Fatalf("%d instructions", len(raw))
	}
	const (
		classLD, classLDX, classST, classSTX, classALU, classJMP, classRET, classMISC = 0, 1, 2, 3, 4, 5, 6, 7
		opJA, opDIV, opMOD, srcK                                                      = 0x00, 0x30, 0x90, 0x00
		modeMEM                                                                       = 0x60
	)
	for pc, r := range raw {
		class := r.Op & 7
		switch class {
		case classJMP:
			if r.Op&0xf0 == opJA {
				if uint64(pc)+1+uint64(r.K) >= uint64(len(raw)) {
					t.Errorf("%d: ja out of the program", pc)
				}
			} else if pc+1+int(r.Jt) >= len(raw) || pc+1+int(r.Jf) >= len(raw) {
				t.Errorf("%d: jump out of the program", pc)
			}
		case classALU:
			if (r.Op&0xf0 == opDIV || r.Op&0xf0 == opMOD) && r.Op&8 == srcK && r.K == 0 {
				t.Errorf("%d: division by constant 0", pc)
			}
		case classST, classSTX:
			t.Errorf("%d: scratch memory used (check it is written before read)", pc)
		case classLD, classLDX:
			if r.Op&0xe0 == modeMEM {
				t.Errorf("%d: scratch memory used (check it is written before read)", pc)
			}
		}
	}
	if last := raw[len(raw)-1]; last.Op&7 != classRET {
		t.Errorf("last instruction %v is not a return", dis[len(dis)-1])
	}
}

func TestFilterDisassembly(t *testing.T) {
	var sb strings.Builder
	for i, in := range FilterInstructions() {
		fmt.Fprintf(&sb, "%3d  %v\n", i, in)
	}
	t.Logf("%d instructions:\n%s", len(FilterInstructions()), sb.String())
}

// TestFilterMutations checks, on random corruptions of the test frames,
// that the filter never drops a frame the decoder makes into a packet the
// classifier uses (but for the drops of bpfOutOfPolicy), and never returns
// anything but 0 and SnapLen.
func TestFilterMutations(t *testing.T) {
	vm := bpfNewVM(t)
	seeds := bpfCaseFrames(t)
	r := rand.New(rand.NewPCG(1, 2))
	iters := 50000
	if testing.Short() {
		iters = 5000
	}
	var buf []byte
	for range iters {
		f := seeds[r.IntN(len(seeds))].data
		buf = append(buf[:0], f...)
		for range 1 + r.IntN(3) {
			// Mostly the headers: the first 100 bytes.
			i := r.IntN(min(len(buf), 100))
			if r.IntN(4) == 0 {
				buf[i] = byte(r.IntN(256))
			} else {
				buf[i] ^= 1 << r.IntN(8)
			}
		}
		if r.IntN(8) == 0 {
			buf = buf[:r.IntN(len(buf)+1)]
		}
		bpfCheckDecoder(t, buf, bpfRun(t, vm, buf))
		if t.Failed() {
			return
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, fr := range bpfCaseFrames(f) {
		f.Add(fr.data)
	}
	vm := bpfNewVM(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		bpfCheckDecoder(t, frame, bpfRun(t, vm, frame))
	})
}

// TestFilterKernel runs the filter in the kernel. A socket filter on a UDP
// socket sees the datagram from its UDP header on, and reads no byte of the
// first 12 of an Ethernet frame: sending bytes 8 and on of a test frame in a
// datagram over the loopback makes the kernel judge the frame. Each frame is
// followed by a marker datagram the filter accepts, so that a dropped frame
// is told from a slow one.
func TestFilterKernel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket filters are tested on Linux")
	}
	raw, err := Filter()
	if err != nil {
		t.Fatal(err)
	}
	in, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	defer in.Close()
	if err := ipv4.NewPacketConn(in).SetBPF(raw); err != nil {
		t.Fatalf("the kernel refuses the filter: %v", err)
	}
	out, err := net.DialUDP("udp4", nil, in.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	marker := make([]byte, 14, 64)
	binary.BigEndian.PutUint16(marker[12:], 0x8847) // accepted whole
	marker = append(marker, "tcpeek BPF test marker"...)
	vm := bpfNewVM(t)
	buf := make([]byte, 1<<16)
	read := func() []byte {
		t.Helper()
		if err := in.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := in.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		return buf[:n]
	}
	tested, accepted := 0, 0
	for _, f := range bpfAllFrames(t) {
		if len(f.data) < 8 {
			continue // the UDP header stands for the first 8 bytes
		}
		want := bpfRun(t, vm, f.data)
		if _, err := out.Write(f.data[8:]); err != nil {
			t.Fatal(err)
		}
		if _, err := out.Write(marker[8:]); err != nil {
			t.Fatal(err)
		}
		got := read()
		ok := !bytes.Equal(got, marker[8:])
		if ok {
			// The kernel keeps SnapLen bytes of the "frame".
			if kept := f.data[8:min(len(f.data), SnapLen)]; !bytes.Equal(got, kept) {
				t.Errorf("%s: kernel kept %d bytes, want %d", f.name, 8+len(got), 8+len(kept))
			}
			if m := read(); !bytes.Equal(m, marker[8:]) {
				t.Fatalf("%s: expected the marker, read % x", f.name, m)
			}
		}
		if ok != want {
			t.Errorf("%s: kernel accepted %v, VM %v", f.name, ok, want)
		}
		tested++
		if ok {
			accepted++
		}
	}
	t.Logf("%d frames judged by the kernel, %d accepted", tested, accepted)
}

func TestBPFAsmErrors(t *testing.T) {
	ret := bpf.RetConstant{Val: 0}
	for _, c := range []struct {
		name  string
		build func(p *bpfAsm)
		err   string
	}{
		{"undefined label", func(p *bpfAsm) { p.ja("nowhere"); p.op(ret) }, "undefined"},
		{"backward jump", func(p *bpfAsm) { p.label("x"); p.op(ret); p.jeq(1, "x", ""); p.op(ret) }, "backwards"},
		{"jump to itself", func(p *bpfAsm) { p.label("x"); p.jeq(1, "x", ""); p.op(ret) }, "backwards"},
		{"past the end", func(p *bpfAsm) { p.jeq(1, "end", ""); p.op(ret); p.label("end") }, "past the end"},
		{"too long", func(p *bpfAsm) {
			p.jset(1, "", "far")
			for range 256 {
				p.op(ret)
			}
			p.label("far")
			p.op(ret)
		}, "too long"},
		{"no return at the end", func(p *bpfAsm) { p.op(bpf.TAX{}) }, "return"},
		{"empty", func(*bpfAsm) {}, "empty"},
	} {
		var p bpfAsm
		c.build(&p)
		_, err := p.resolve()
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.err)
		}
	}

	// The longest jumps that fit.
	var p bpfAsm
	p.jset(1, "", "far")
	for range 255 {
		p.op(ret)
	}
	p.label("far")
	p.op(ret)
	ins, err := p.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if j := ins[0].(bpf.JumpIf); j.SkipTrue != 0 || j.SkipFalse != 255 {
		t.Errorf("jump %+v, want skips 0 and 255", j)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("a label defined twice does not panic")
		}
	}()
	var q bpfAsm
	q.label("x")
	q.label("x")
}

// BenchmarkFilterVM runs the filter in x/net/bpf's VM on a mix of frames
// (informational: the kernel runs it JIT-compiled, far faster).
func BenchmarkFilterVM(b *testing.B) {
	vm := bpfNewVM(b)
	var frames [][]byte
	for _, name := range []string{"ACK/PSH 1400 bytes/IPv4/untagged", "pure ACK/IPv4/untagged", "SYN/IPv6/802.1Q", "UDP 53/IPv4/untagged"} {
		for _, f := range bpfCaseFrames(b) {
			if f.name == name {
				frames = append(frames, f.data)
			}
		}
	}
	if len(frames) != 4 {
		b.Fatalf("found %d frames", len(frames))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := vm.Run(frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
	}
}
