package kfilter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Classic is the classic BPF filter: stateless, so it keeps SYN, FIN and RST
// segments and pure ACKs, and misses the handshakes whose completing ACK
// carries data (ClassicMisses). Any process that may open a packet socket
// may attach it. A Classic serves one socket at a time.
type Classic struct{}

// NewClassic returns the classic filter.
func NewClassic() (*Classic, error) {
	if _, err := ClassicProgram(nil); err != nil {
		return nil, err
	}
	return &Classic{}, nil
}

// Name returns "classic".
func (*Classic) Name() string { return NameClassic }

// Attach attaches the program for the allow-list ifindexes (nil: every
// interface) to the socket fd with SO_ATTACH_FILTER, which replaces the
// program in place, so a new list takes over with no gap.
func (*Classic) Attach(fd int, ifindexes []int) error {
	prog, err := ClassicProgram(ifindexes)
	if err != nil {
		return err
	}
	return attachClassic(fd, prog)
}

// Close does nothing: the classic filter holds nothing in the process.
func (*Classic) Close() error { return nil }

// ClassicProgram returns the classic BPF program for SO_ATTACH_FILTER on a
// packet socket. It lets through only the frames the handshake classifier
// can use, keeps SnapLen bytes of each and drops the rest in the kernel,
// before they cost a copy into the ring. With ifindexes non-nil it accepts
// only frames of those interfaces.
//
// The classifier needs the SYN, the SYN/ACK, RSTs, ICMP destination
// unreachable messages and the ACK that completes the handshake. Stacks
// usually send that ACK without payload, so the filter keeps pure ACKs and
// drops data segments, the bulk of any busy link; a stateless filter cannot
// tell the data segment that completes a handshake from the others. FIN
// segments are kept because a FIN+ACK with seq = ISN+1 can complete a
// handshake seen one way only (SPEC §4 rule 4). The filter accepts:
//
//   - IPv4 TCP segments with SYN, RST or FIN set (whatever the other flags
//     and the payload), and pure ACKs: ACK set and IP total length - IP
//     header length - TCP data offset = 0. Any IPv4 header length (options)
//     is allowed. Non-first fragments are dropped, first fragments judged
//     like whole packets.
//   - IPv4 ICMP type 3 (destination unreachable), every code.
//   - IPv6 TCP segments by the same rule (pure ACK: payload length = TCP
//     data offset) and ICMPv6 type 1 (destination unreachable), every code.
//     IPv6 packets whose first Next Header is an extension header
//     (hop-by-hop, routing, fragment, destination options, AH, mobility,
//     HIP, shim6) are accepted whole: the filter does not walk the chain,
//     and such packets are rare.
//   - Encapsulations the decoder peels, accepted whole because the filter
//     cannot cheaply look inside: MPLS (0x8847, 0x8848), PPPoE session
//     (0x8864) and FabricPath (0x8903) frames; GRE (IP protocol 47), IP in
//     IP (4) and IPv6 in IP (41) over IPv4 or IPv6; UDP to port 4789
//     (VXLAN) or 6081 (Geneve), or from or to port 3544 (Teredo).
//
// Everything else is dropped: ARP, other UDP, TCP segments that carry data
// with only ACK, PSH, URG, ECE or CWR set, ICMP echo, ICMPv6 neighbour
// discovery, frames with three tags or more left in the frame, and the
// loopback's outgoing copy of every frame. A frame too short for a field the
// filter reads is dropped too: in the kernel a load beyond the packet ends
// the program with 0.
//
// The EtherType is the socket buffer's protocol, and the IP header is read
// at the network header, wherever the link layer put it (Ethernet, the
// loopback, tunnels and PPP without link-layer header). When the protocol is
// a VLAN tag, the tag is still in the frame (an inner tag of a received
// frame: the kernel moves the outermost one into metadata; or a tag inserted
// in software on the way out), and the EtherType is read behind it, from
// the link-layer header.
func ClassicProgram(ifindexes []int) ([]bpf.RawInstruction, error) {
	ins, err := classicInstructions(ifindexes)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(ins)
}

// Labels of the shared parts of the program.
const (
	lblAccept  = "accept"
	lblDrop    = "drop"
	lblLink    = "link"    // after the interface checks
	lblEncap   = "encap"   // EtherType in A: accept encapsulations
	lblIPv6Ext = "ipv6ext" // IPv6 Next Header in A: accept extension headers, then tunnels
	lblTunnel  = "tunnel"  // IP protocol in A: accept tunnels
	lblUDP     = "udp"     // UDP ports in A: accept tunnels
)

// allowChunk is how many interface comparisons share one trampoline to the
// rest of the program: a conditional jump reaches at most 255 instructions.
const allowChunk = 200

// classicInstructions builds the program of ClassicProgram. The IP code is
// laid out once for each place the IP header may be (the network header, or
// behind 0, 1 or 2 tags in the frame), with constant offsets, so that a
// packet runs only the loads and tests its own headers need; the tests that
// depend on no offset are shared.
func classicInstructions(ifindexes []int) ([]bpf.Instruction, error) {
	var p bpfAsm

	// The loopback shows each frame twice, going out and coming in: keep
	// the incoming copy.
	p.op(bpf.LoadExtension{Num: bpf.ExtType})
	p.jeq(packetOutgoing, "", "allow")
	p.op(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
	p.jeq(loopbackIndex, "", "allow")
	p.op(bpf.RetConstant{Val: 0})
	p.label("allow")
	if ifindexes != nil {
		p.op(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
		for c := 0; c == 0 || c*allowChunk < len(ifindexes); c++ {
			if c > 0 {
				p.label(fmt.Sprintf("chunk%d", c))
			}
			ok := fmt.Sprintf("ok%d", c)
			for _, idx := range ifindexes[c*allowChunk : min(len(ifindexes), (c+1)*allowChunk)] {
				if idx <= 0 || int64(idx) > 1<<31-1 {
					return nil, fmt.Errorf("kfilter: bad interface index %d", idx)
				}
				p.jeq(uint32(idx), ok, "")
			}
			if (c+1)*allowChunk < len(ifindexes) {
				p.ja(fmt.Sprintf("chunk%d", c+1))
			} else {
				p.op(bpf.RetConstant{Val: 0})
			}
			p.label(ok)
			p.ja(lblLink)
		}
	}

	// The EtherType: the protocol, or behind the tags left in the frame.
	p.label(lblLink)
	p.op(bpf.LoadExtension{Num: bpf.ExtProto})
	p.jeq(etherIPv4, "ipv4/net", "")
	p.jeq(etherIPv6, "ipv6/net", "")
	for _, et := range tagTypes {
		p.jeq(uint32(et), "tag0", "")
	}
	p.ja(lblEncap)
	for d := 0; d <= maxTags; d++ {
		p.label(fmt.Sprintf("tag%d", d))
		p.op(bpf.LoadAbsolute{Off: uint32(skfLLOff + 12 + 4*int32(d)), Size: 2})
		p.jeq(etherIPv4, "ipv4/"+l3Bases[1+d].name, "")
		p.jeq(etherIPv6, "ipv6/"+l3Bases[1+d].name, "")
		if d < maxTags {
			for _, et := range tagTypes {
				p.jeq(uint32(et), fmt.Sprintf("tag%d", d+1), "")
			}
		}
		p.ja(lblEncap)
	}
	p.label(lblEncap)
	for _, et := range encapTypes {
		p.jeq(uint32(et), lblAccept, "")
	}
	p.op(bpf.RetConstant{Val: 0})

	for i, b := range l3Bases {
		p.ipv4(b)
		p.ipv6(b, i == len(l3Bases)-1)
	}

	// UDP: A holds the source port (high half) and the destination port.
	p.label(lblUDP)
	p.op(bpf.TAX{})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffff})
	for _, port := range udpDstPorts {
		p.jeq(uint32(port), lblAccept, "")
	}
	p.op(bpf.TXA{})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	for _, port := range udpSrcPorts {
		p.jeq(uint32(port), lblAccept, "")
	}
	p.op(bpf.RetConstant{Val: 0})

	p.label(lblIPv6Ext)
	for _, nh := range ipv6ExtHdrs {
		p.jeq(uint32(nh), lblAccept, "")
	}
	p.label(lblTunnel)
	for _, proto := range tunnelProtos {
		p.jeq(uint32(proto), lblAccept, "")
	}
	p.label(lblDrop)
	p.op(bpf.RetConstant{Val: 0})
	p.label(lblAccept)
	p.op(bpf.RetConstant{Val: SnapLen})
	return p.resolve()
}

// ipv4 lays out the code for an IPv4 header at b.
func (p *bpfAsm) ipv4(b l3Base) {
	n := uint32(b.off)
	l := func(s string) string { return s + "4/" + b.name }
	p.label(l("ipv"))
	p.op(bpf.LoadAbsolute{Off: n + 6, Size: 2}) // flags and fragment offset
	p.jset(ipv4FragOff, lblDrop, "")
	p.op(bpf.LoadMemShift{Off: n}) // X = IP header length
	p.op(bpf.LoadAbsolute{Off: n + 9, Size: 1})
	p.jeq(protoTCP, "", l("other"))
	// TCP: X is the IP header length.
	p.op(bpf.LoadIndirect{Off: n + 13, Size: 1}) // flags
	p.jset(tcpSYN|tcpRST|tcpFIN, lblAccept, "")
	p.jset(tcpACK, "", lblDrop)
	p.op(bpf.LoadIndirect{Off: n + 12, Size: 1}) // data offset << 4
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	p.op(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	p.op(bpf.TAX{}) // X = IP header length + TCP header length
	p.op(bpf.LoadAbsolute{Off: n + 2, Size: 2})
	p.jeqX(lblAccept, lblDrop) // total length: no payload
	p.label(l("other"))
	p.jeq(protoICMP, "", l("udp"))
	p.op(bpf.LoadIndirect{Off: n, Size: 1}) // ICMP type
	p.jeq(icmpUnreach, lblAccept, lblDrop)
	p.label(l("udp"))
	p.jeq(protoUDP, "", lblTunnel)
	p.op(bpf.LoadIndirect{Off: n, Size: 4}) // source and destination ports
	p.ja(lblUDP)
}

// ipv6 lays out the code for an IPv6 header at b; last tells that the UDP
// tail follows.
func (p *bpfAsm) ipv6(b l3Base, last bool) {
	n := uint32(b.off)
	l := func(s string) string { return s + "6/" + b.name }
	p.label(l("ipv"))
	p.op(bpf.LoadAbsolute{Off: n + 6, Size: 1}) // next header
	p.jeq(protoTCP, "", l("other"))
	p.op(bpf.LoadAbsolute{Off: n + 40 + 13, Size: 1}) // flags
	p.jset(tcpSYN|tcpRST|tcpFIN, lblAccept, "")
	p.jset(tcpACK, "", lblDrop)
	p.op(bpf.LoadAbsolute{Off: n + 40 + 12, Size: 1}) // data offset << 4
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	p.op(bpf.TAX{}) // X = TCP header length
	p.op(bpf.LoadAbsolute{Off: n + 4, Size: 2})
	p.jeqX(lblAccept, lblDrop) // payload length: no payload
	p.label(l("other"))
	p.jeq(protoICMPv6, "", l("udp"))
	p.op(bpf.LoadAbsolute{Off: n + 40, Size: 1}) // ICMPv6 type
	p.jeq(icmpv6Unreach, lblAccept, lblDrop)
	p.label(l("udp"))
	p.jeq(protoUDP, "", lblIPv6Ext)
	p.op(bpf.LoadAbsolute{Off: n + 40, Size: 4}) // source and destination ports
	if !last {
		p.ja(lblUDP)
	}
}
