package kfilter

// Values both filters test. The filters read the frame relative to the
// headers the kernel found (SKF_NET_OFF and SKF_LL_OFF loads in classic BPF
// and eBPF alike), so the same code serves every link type.
const (
	skfAdOff  = -0x1000   // SKF_AD_OFF: ancillary data (classic BPF)
	skfNetOff = -0x100000 // SKF_NET_OFF: loads relative to the network header
	skfLLOff  = -0x200000 // SKF_LL_OFF: loads relative to the link-layer header

	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10

	ipv4FragOff   = 0x1fff // fragment offset bits of the IPv4 flags word
	icmpUnreach   = 3
	icmpv6Unreach = 1

	packetOutgoing = 4 // PACKET_OUTGOING: a frame the host sends
	loopbackIndex  = 1 // LOOPBACK_IFINDEX: lo, in every network namespace

	// maxTags is how many VLAN tags left in the frame the filters look
	// through. The kernel moves a received frame's outermost tag into
	// metadata before the filter runs, so three tags on the wire pass.
	maxTags = 2
)

// Lists of values the filters accept whole or look through, in the order
// they are tested.
var (
	tagTypes     = []uint16{0x8100, 0x88a8, 0x9100, 0x9200}
	encapTypes   = []uint16{0x8847, 0x8848, 0x8864, 0x8903} // MPLS, MPLS multicast, PPPoE session, FabricPath
	tunnelProtos = []uint8{47, 4, 41}                       // GRE, IPv4 in IP, IPv6 in IP
	ipv6ExtHdrs  = []uint8{0, 43, 44, 60, 51, 135, 139, 140}
	udpDstPorts  = []uint16{4789, 6081, 3544} // VXLAN, Geneve, Teredo
	udpSrcPorts  = []uint16{3544}             // Teredo
)

// The L3 header a filter reads from: the network header, or, behind
// VLAN tags left in the frame, the link-layer header plus 14, 18 or 22.
type l3Base struct {
	name string
	off  int32 // SKF_NET_OFF or SKF_LL_OFF plus the header's offset
}

// l3Bases are the places an IP header is read from: first the network
// header, then behind 0, 1 or 2 tags in the frame.
var l3Bases = func() []l3Base {
	bs := []l3Base{{"net", skfNetOff}}
	for d := 0; d <= maxTags; d++ {
		bs = append(bs, l3Base{name: "ll" + string(rune('0'+d)), off: skfLLOff + 14 + 4*int32(d)})
	}
	return bs
}()
