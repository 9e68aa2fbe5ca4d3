package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// SnapLen is how many bytes of each accepted packet the filter keeps: enough
// for every header the decoder reads (tunnels included).
const SnapLen = 256

// Filter returns the classic BPF program, for SO_ATTACH_FILTER on a packet
// socket of an Ethernet (ARPHRD_ETHER) interface, that lets through only the
// frames the handshake classifier can use. It keeps SnapLen bytes of an
// accepted frame and drops the rest in the kernel, before they cost a copy
// into the ring.
//
// The classifier needs the SYN, the SYN/ACK, RSTs, ICMP destination
// unreachable messages and the ACK that completes the handshake. Stacks send
// that ACK as a pure ACK, without payload, so the filter keeps pure ACKs and
// drops data segments, the bulk of any busy link: they never leave the
// kernel. FIN segments are kept because a FIN+ACK with seq = ISN+1 can
// complete a handshake seen one way only (SPEC §4 rule 4). The filter accepts,
// after zero, one or two 802.1Q/802.1ad tags (EtherTypes 0x8100, 0x88a8,
// 0x9100, 0x9200):
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
// discovery, frames with three tags or more. A frame too short for a field
// the filter reads (cut in the middle of a header) is dropped too: in the
// kernel a load beyond the packet ends the program with 0.
//
// On Linux the kernel usually moves the outermost VLAN tag of a frame into
// packet metadata before the filter runs; the filter then sees the frame
// without it, and so also accepts frames that had three tags on the wire.
func Filter() ([]bpf.RawInstruction, error) {
	ins, err := filterProgram()
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(ins)
}

// FilterInstructions returns the program of Filter as bpf.Instruction values,
// for a BPF virtual machine and for printing.
func FilterInstructions() []bpf.Instruction {
	ins, err := filterProgram()
	if err != nil {
		panic(err) // a bug in the program below; the tests catch it
	}
	return ins
}

// Values the filter tests.
const (
	bpfEtherIPv4     = 0x0800
	bpfEtherIPv6     = 0x86dd
	bpfProtoICMP     = 1
	bpfProtoTCP      = 6
	bpfProtoUDP      = 17
	bpfProtoICMPv6   = 58
	bpfTCPSynRstFin  = 0x07 // SYN|RST|FIN in the TCP flags byte
	bpfTCPAck        = 0x10
	bpfIPv4FragOff   = 0x1fff // fragment offset bits of the IPv4 flags word
	bpfICMPUnreach   = 3
	bpfICMPv6Unreach = 1
	bpfMaxTags       = 2 // VLAN tags looked through in the frame
)

// Lists of values the filter accepts whole, in the order they are tested.
var (
	bpfTagTypes     = []uint32{0x8100, 0x88a8, 0x9100, 0x9200}
	bpfEncapTypes   = []uint32{0x8847, 0x8848, 0x8864, 0x8903} // MPLS, MPLS multicast, PPPoE session, FabricPath
	bpfTunnelProtos = []uint32{47, 4, 41}                      // GRE, IPv4 in IP, IPv6 in IP
	bpfIPv6ExtHdrs  = []uint32{0, 43, 44, 60, 51, 135, 139, 140}
	bpfUDPDstPorts  = []uint32{4789, 6081, 3544} // VXLAN, Geneve, Teredo
	bpfUDPSrcPorts  = []uint32{3544}             // Teredo
)

// Labels of the shared tail of the program.
const (
	lblAccept  = "accept"
	lblDrop    = "drop"
	lblEncap   = "encap"   // EtherType in A: accept encapsulations
	lblIPv6Ext = "ipv6ext" // IPv6 Next Header in A: accept extension headers, then tunnels
	lblTunnel  = "tunnel"  // IP protocol in A: accept tunnels
	lblUDP     = "udp"     // UDP ports in A: accept tunnels
)

// filterProgram builds the program of Filter. The IP code is laid out once
// for each tag depth, with constant offsets, so that a packet runs only the
// loads and tests its own headers need (an untagged IPv4 TCP data segment
// runs 18 instructions); the tests that depend on no offset are shared.
func filterProgram() ([]bpf.Instruction, error) {
	var p bpfAsm

	// EtherType dispatch, through up to bpfMaxTags tags.
	for d := 0; d <= bpfMaxTags; d++ {
		p.label(fmt.Sprintf("tag%d", d))
		p.op(bpf.LoadAbsolute{Off: uint32(12 + 4*d), Size: 2})
		p.jeq(bpfEtherIPv4, fmt.Sprintf("ipv4/%d", d), "")
		p.jeq(bpfEtherIPv6, fmt.Sprintf("ipv6/%d", d), "")
		if d < bpfMaxTags {
			for _, et := range bpfTagTypes {
				p.jeq(et, fmt.Sprintf("tag%d", d+1), "")
			}
			p.ja(lblEncap)
		}
	}
	p.label(lblEncap)
	for _, et := range bpfEncapTypes {
		p.jeq(et, lblAccept, "")
	}
	p.op(bpf.RetConstant{Val: 0})

	for d := 0; d <= bpfMaxTags; d++ {
		p.ipv4(d, uint32(14+4*d))
		p.ipv6(d, uint32(14+4*d))
	}

	// UDP: A holds the source port (high half) and the destination port.
	p.label(lblUDP)
	p.op(bpf.TAX{})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffff})
	for _, port := range bpfUDPDstPorts {
		p.jeq(port, lblAccept, "")
	}
	p.op(bpf.TXA{})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	for _, port := range bpfUDPSrcPorts {
		p.jeq(port, lblAccept, "")
	}
	p.op(bpf.RetConstant{Val: 0})

	p.label(lblIPv6Ext)
	for _, nh := range bpfIPv6ExtHdrs {
		p.jeq(nh, lblAccept, "")
	}
	p.label(lblTunnel)
	for _, proto := range bpfTunnelProtos {
		p.jeq(proto, lblAccept, "")
	}
	p.label(lblDrop)
	p.op(bpf.RetConstant{Val: 0})
	p.label(lblAccept)
	p.op(bpf.RetConstant{Val: SnapLen})
	return p.resolve()
}

// ipv4 lays out the code for an IPv4 header at offset n of the frame (tag
// depth d).
func (p *bpfAsm) ipv4(d int, n uint32) {
	l := func(s string) string { return fmt.Sprintf("%s4/%d", s, d) }
	p.label(l("ipv"))
	p.op(bpf.LoadAbsolute{Off: n + 6, Size: 2}) // flags and fragment offset
	p.jset(bpfIPv4FragOff, lblDrop, "")
	p.op(bpf.LoadMemShift{Off: n}) // X = IP header length
	p.op(bpf.LoadAbsolute{Off: n + 9, Size: 1})
	p.jeq(bpfProtoTCP, "", l("other"))
	// TCP: X is the IP header length.
	p.op(bpf.LoadIndirect{Off: n + 13, Size: 1}) // flags
	p.jset(bpfTCPSynRstFin, lblAccept, "")
	p.jset(bpfTCPAck, "", lblDrop)
	p.op(bpf.LoadIndirect{Off: n + 12, Size: 1}) // data offset << 4
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	p.op(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	p.op(bpf.TAX{}) // X = IP header length + TCP header length
	p.op(bpf.LoadAbsolute{Off: n + 2, Size: 2})
	p.jeqX(lblAccept, lblDrop) // total length: no payload
	p.label(l("other"))
	p.jeq(bpfProtoICMP, "", l("udp"))
	p.op(bpf.LoadIndirect{Off: n, Size: 1}) // ICMP type
	p.jeq(bpfICMPUnreach, lblAccept, lblDrop)
	p.label(l("udp"))
	p.jeq(bpfProtoUDP, "", lblTunnel)
	p.op(bpf.LoadIndirect{Off: n, Size: 4}) // source and destination ports
	p.ja(lblUDP)
}

// ipv6 lays out the code for an IPv6 header at offset n of the frame (tag
// depth d).
func (p *bpfAsm) ipv6(d int, n uint32) {
	l := func(s string) string { return fmt.Sprintf("%s6/%d", s, d) }
	p.label(l("ipv"))
	p.op(bpf.LoadAbsolute{Off: n + 6, Size: 1}) // next header
	p.jeq(bpfProtoTCP, "", l("other"))
	p.op(bpf.LoadAbsolute{Off: n + 40 + 13, Size: 1}) // flags
	p.jset(bpfTCPSynRstFin, lblAccept, "")
	p.jset(bpfTCPAck, "", lblDrop)
	p.op(bpf.LoadAbsolute{Off: n + 40 + 12, Size: 1}) // data offset << 4
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	p.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	p.op(bpf.TAX{}) // X = TCP header length
	p.op(bpf.LoadAbsolute{Off: n + 4, Size: 2})
	p.jeqX(lblAccept, lblDrop) // payload length: no payload
	p.label(l("other"))
	p.jeq(bpfProtoICMPv6, "", l("udp"))
	p.op(bpf.LoadAbsolute{Off: n + 40, Size: 1}) // ICMPv6 type
	p.jeq(bpfICMPv6Unreach, lblAccept, lblDrop)
	p.label(l("udp"))
	p.jeq(bpfProtoUDP, "", lblIPv6Ext)
	p.op(bpf.LoadAbsolute{Off: n + 40, Size: 4}) // source and destination ports
	if d < bpfMaxTags {
		p.ja(lblUDP)
	} // else the UDP tail follows
}

// bpfAsm assembles a classic BPF program whose jumps name their targets by
// label. Labels are resolved to relative offsets by resolve, which checks that
// every jump goes forward and that conditional offsets fit in a uint8.
type bpfAsm struct {
	ins    []bpf.Instruction
	labels map[string]int
	jumps  []bpfJump
}

// bpfJump is a jump instruction waiting for its offsets. An empty label is
// the next instruction.
type bpfJump struct {
	at      int
	yes, no string
}

// label names the next instruction.
func (p *bpfAsm) label(name string) {
	if p.labels == nil {
		p.labels = make(map[string]int)
	}
	if _, dup := p.labels[name]; dup {
		panic("capture: BPF label defined twice: " + name)
	}
	p.labels[name] = len(p.ins)
}

// op appends an instruction that does not jump.
func (p *bpfAsm) op(ins bpf.Instruction) { p.ins = append(p.ins, ins) }

// jump appends a jump instruction whose offsets resolve fills in.
func (p *bpfAsm) jump(ins bpf.Instruction, yes, no string) {
	p.jumps = append(p.jumps, bpfJump{at: len(p.ins), yes: yes, no: no})
	p.ins = append(p.ins, ins)
}

// jeq jumps to yes if A == val, else to no.
func (p *bpfAsm) jeq(val uint32, yes, no string) {
	p.jump(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val}, yes, no)
}

// jset jumps to yes if A & mask != 0, else to no.
func (p *bpfAsm) jset(mask uint32, yes, no string) {
	p.jump(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: mask}, yes, no)
}

// jeqX jumps to yes if A == X, else to no.
func (p *bpfAsm) jeqX(yes, no string) {
	p.jump(bpf.JumpIfX{Cond: bpf.JumpEqual}, yes, no)
}

// ja jumps to to.
func (p *bpfAsm) ja(to string) { p.jump(bpf.Jump{}, to, "") }

// resolve returns the program with the offsets of its jumps filled in.
func (p *bpfAsm) resolve() ([]bpf.Instruction, error) {
	skip := func(at int, label string) (uint32, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := p.labels[label]
		if !ok {
			return 0, fmt.Errorf("capture: BPF instruction %d jumps to undefined label %q", at, label)
		}
		if to <= at {
			return 0, fmt.Errorf("capture: BPF instruction %d jumps backwards to %q", at, label)
		}
		if to >= len(p.ins) {
			return 0, fmt.Errorf("capture: BPF instruction %d jumps past the end to %q", at, label)
		}
		return uint32(to - at - 1), nil
	}
	skip8 := func(at int, label string) (uint8, error) {
		s, err := skip(at, label)
		if err == nil && s > 0xff {
			err = fmt.Errorf("capture: BPF instruction %d: jump to %q too long (%d)", at, label, s)
		}
		return uint8(s), err
	}
	ins := append([]bpf.Instruction(nil), p.ins...)
	for _, j := range p.jumps {
		var err error
		switch in := ins[j.at].(type) {
		case bpf.Jump:
			in.Skip, err = skip(j.at, j.yes)
			ins[j.at] = in
		case bpf.JumpIf:
			var e2 error
			in.SkipTrue, err = skip8(j.at, j.yes)
			in.SkipFalse, e2 = skip8(j.at, j.no)
			err = firstErr(err, e2)
			ins[j.at] = in
		case bpf.JumpIfX:
			var e2 error
			in.SkipTrue, err = skip8(j.at, j.yes)
			in.SkipFalse, e2 = skip8(j.at, j.no)
			err = firstErr(err, e2)
			ins[j.at] = in
		}
		if err != nil {
			return nil, err
		}
	}
	if len(ins) > bpfMaxInsns {
		return nil, fmt.Errorf("capture: BPF program of %d instructions, more than %d", len(ins), bpfMaxInsns)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("capture: empty BPF program")
	}
	switch ins[len(ins)-1].(type) {
	case bpf.RetConstant, bpf.RetA:
	default:
		return nil, fmt.Errorf("capture: BPF program does not end in a return")
	}
	return ins, nil
}

// bpfMaxInsns is the kernel's limit on the length of a classic BPF program
// (BPF_MAXINSNS).
const bpfMaxInsns = 4096

// firstErr returns the first non-nil error of a and b.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
