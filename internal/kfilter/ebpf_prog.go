package kfilter

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// The program is written with cilium/ebpf's asm package rather than in C:
// its constants (the timeout, SnapLen, the maps) are known when it is
// loaded and go straight into the instructions; it needs no clang, no
// generated object to keep current and no BTF; and it reads like the
// classic program beside it, label by label.

// Offsets of the fields of struct __sk_buff the program reads.
const (
	skbPktType  = 4
	skbProtocol = 16
	skbIfindex  = 40
)

// bpf_skb_load_bytes_relative's start_header.
const (
	hdrStartMAC = 0
	hdrStartNet = 1
)

// The program's stack, below the frame pointer R10.
const (
	fpKey    = -40 // tupleKey: AddrA
	fpKeyB   = -24 // AddrB
	fpPortA  = -8
	fpPortB  = -6
	fpFamily = -4
	fpVal    = -56  // tupleValue, for an insertion
	fpIP     = -96  // the IP header (40 bytes)
	fpTCP    = -116 // the TCP header up to the flags (14 bytes), or the first bytes of ICMP or UDP
	fpL4Len  = -120 // u32: the IP payload's length, as the IP header gives it
	fpU32    = -124 // u32: a key of the interface maps
)

// Offsets of the fields of a tupleValue.
const (
	vISN    = 0
	vRISN   = 4
	vTime   = 8
	vSynLen = 12
	vFlags  = 14
)

// ackWindow bounds how far beyond the responder's ISN+1 an initiator's
// acknowledgement may reach and still complete the handshake: the
// classifier's rule (the segment that first acknowledged the SYN/ACK was not
// seen), which the filter follows so that it forgets a handshake exactly
// when the classifier decides it.
const ackWindow = 1 << 30

// ebpfAsm collects instructions and puts a pending label on the next one.
type ebpfAsm struct {
	ins   asm.Instructions
	label string
	clock asm.BuiltinFunc // the helper now calls
}

// at names the next instruction.
func (a *ebpfAsm) at(label string) {
	if a.label != "" {
		panic("kfilter: two labels on one eBPF instruction: " + a.label + ", " + label)
	}
	a.label = label
}

// emit appends instructions.
func (a *ebpfAsm) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		if a.label != "" {
			in = in.WithSymbol(a.label)
			a.label = ""
		}
		a.ins = append(a.ins, in)
	}
}

// loadRel copies n bytes of the packet, from offset R7 of the header R8
// (hdrStartNet or hdrStartMAC), to the stack at fp; a packet too short
// ends the program with 0.
func (a *ebpfAsm) loadRel(fp int16, n int32) {
	a.emit(
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, int32(fp)),
		asm.Mov.Imm(asm.R4, n),
		asm.Mov.Reg(asm.R5, asm.R8),
		asm.FnSkbLoadBytesRelative.Call(),
		asm.JNE.Imm(asm.R0, 0, lblDrop),
	)
}

// keyArg sets R1 and R2 to the tuple map and the key, for a map helper.
func (a *ebpfAsm) keyArg(tuples int) {
	a.emit(
		asm.LoadMapPtr(asm.R1, tuples),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, fpKey),
	)
}

// be loads the big-endian field of size at the stack offset fp into dst, in
// host order.
func (a *ebpfAsm) be(dst asm.Register, fp int16, size asm.Size) {
	a.emit(asm.LoadMem(dst, asm.R10, fp, size), asm.HostTo(asm.BE, dst, size))
}

// now sets R0 to CLOCK_MONOTONIC in the map's unit.
func (a *ebpfAsm) now() {
	a.emit(a.clock.Call(), asm.RSh.Imm(asm.R0, tsShift))
}

// ebpfProgram returns the eBPF program for the maps tuples, ifaces and
// control (file descriptors) and a timeout in units of 2^tsShift ns.
//
// It lets through, cut to SnapLen bytes, what ClassicProgram does but for
// TCP, and judges TCP with the tuple map:
//
//   - A SYN (ACK, RST, FIN clear) passes and enters its tuple with the
//     initiator's ISN, or refreshes it (a retransmission: same ISN). A SYN
//     the other way round while a handshake is in progress changes nothing.
//   - A SYN/ACK passes; from the responder, acknowledging the SYN (ISN+1, or
//     beyond it by the SYN's payload), it records the responder's ISN or
//     refreshes the tuple (a retransmission).
//   - An RST passes; one whose numbers end the handshake (the classifier's
//     reject and abort rules) removes the tuple.
//   - Any other segment passes if its tuple is in the map, and is dropped
//     otherwise: pure ACKs, data and FINs of established connections never
//     leave the kernel. A segment from the initiator that completes the
//     handshake (it acknowledges the responder's ISN+1, or beyond it with a
//     sequence number that fits; without a SYN/ACK seen, its sequence number
//     is ISN+1) removes the tuple.
//
// A tuple whose last SYN or SYN/ACK is older than the timeout counts as
// absent (and is removed when met).
//
// clock is the helper that reads the time: bpf_ktime_get_coarse_ns (Linux
// 5.11 and later), whose tick-sized resolution is plenty for timeouts of
// seconds and which reads no clock source (measured on a virtual machine:
// about 70 ns a call for bpf_ktime_get_ns, which three segments of a
// handshake make); or bpf_ktime_get_ns where the kernel lacks it.
func ebpfProgram(tuples, ifaces, control int, timeout int64, clock asm.BuiltinFunc) asm.Instructions {
	a := ebpfAsm{clock: clock}
	R0, R1, R2, R3, R4, R5 := asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5
	R6, R7, R8, R9, R10 := asm.R6, asm.R7, asm.R8, asm.R9, asm.R10

	// R6 is the context throughout (LD_ABS needs it there).
	a.emit(asm.Mov.Reg(R6, R1))

	// The loopback shows each frame twice, going out and coming in: keep
	// the incoming copy.
	a.emit(
		asm.LoadMem(R2, R6, skbPktType, asm.Word),
		asm.JNE.Imm(R2, packetOutgoing, "allow"),
		asm.LoadMem(R2, R6, skbIfindex, asm.Word),
		asm.JEq.Imm(R2, loopbackIndex, lblDrop),
	)

	// The allow-list, when control[0] says it applies.
	a.at("allow")
	a.emit(
		asm.StoreImm(R10, fpU32, 0, asm.Word),
		asm.LoadMapPtr(R1, control),
		asm.Mov.Reg(R2, R10),
		asm.Add.Imm(R2, fpU32),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(R0, 0, lblDrop),
		asm.LoadMem(R2, R0, 0, asm.Word),
		asm.JEq.Imm(R2, 0, lblLink),
		asm.LoadMem(R2, R6, skbIfindex, asm.Word),
		asm.StoreMem(R10, fpU32, R2, asm.Word),
		asm.LoadMapPtr(R1, ifaces),
		asm.Mov.Reg(R2, R10),
		asm.Add.Imm(R2, fpU32),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(R0, 0, lblDrop),
	)

	// The EtherType, in R2: the protocol, with the IP header at the network
	// header (R8 = hdrStartNet, R7 = 0); or, for a tag left in the frame,
	// behind the tags, with the IP header read from the link-layer header
	// (R8 = hdrStartMAC, R7 = its offset).
	a.at(lblLink)
	a.emit(
		asm.LoadMem(R2, R6, skbProtocol, asm.Word),
		asm.HostTo(asm.BE, R2, asm.Half),
		asm.Mov.Imm(R7, 0),
		asm.Mov.Imm(R8, hdrStartNet),
		asm.JEq.Imm(R2, etherIPv4, "ipv4"),
		asm.JEq.Imm(R2, etherIPv6, "ipv6"),
	)
	for _, et := range tagTypes {
		a.emit(asm.JEq.Imm(R2, int32(et), "tag0"))
	}
	a.emit(asm.Ja.Label(lblEncap))
	for d := int32(0); d <= maxTags; d++ {
		a.at(fmt.Sprintf("tag%d", d))
		if d == 0 {
			a.emit(asm.Mov.Imm(R8, hdrStartMAC))
		}
		a.emit(
			asm.LoadAbs(skfLLOff+12+4*d, asm.Half), // R0
			asm.Mov.Reg(R2, R0),
			asm.Mov.Imm(R7, 14+4*d),
			asm.JEq.Imm(R2, etherIPv4, "ipv4"),
			asm.JEq.Imm(R2, etherIPv6, "ipv6"),
		)
		if d < maxTags {
			for _, et := range tagTypes {
				a.emit(asm.JEq.Imm(R2, int32(et), fmt.Sprintf("tag%d", d+1)))
			}
		}
		a.emit(asm.Ja.Label(lblEncap))
	}
	a.at(lblEncap)
	for _, et := range encapTypes {
		a.emit(asm.JEq.Imm(R2, int32(et), lblAccept))
	}
	a.emit(asm.Ja.Label(lblDrop))

	// IPv4: R9 is the header length, R7 moves to the payload.
	a.at("ipv4")
	a.loadRel(fpIP, 20)
	a.be(R2, fpIP+6, asm.Half)
	a.emit(
		asm.And.Imm(R2, ipv4FragOff),
		asm.JNE.Imm(R2, 0, lblDrop), // not a first fragment
		asm.LoadMem(R9, R10, fpIP, asm.Byte),
		asm.And.Imm(R9, 0xf),
		asm.LSh.Imm(R9, 2),
		asm.Add.Reg(R7, R9),
		asm.LoadMem(R2, R10, fpIP+9, asm.Byte),
		asm.JEq.Imm(R2, protoICMP, "icmp4"),
		asm.JEq.Imm(R2, protoUDP, lblUDP),
	)
	for _, p := range tunnelProtos {
		a.emit(asm.JEq.Imm(R2, int32(p), lblAccept))
	}
	a.emit(asm.JNE.Imm(R2, protoTCP, lblDrop))
	a.be(R2, fpIP+2, asm.Half)
	a.emit(
		asm.Sub.Reg(R2, R9),
		asm.StoreMem(R10, fpL4Len, R2, asm.Word),
		asm.Mov.Imm(R3, 0),
		asm.StoreMem(R10, fpKey, R3, asm.DWord),
		asm.StoreMem(R10, fpKey+8, R3, asm.DWord),
		asm.StoreMem(R10, fpKeyB, R3, asm.DWord),
		asm.StoreMem(R10, fpKeyB+8, R3, asm.DWord),
		asm.StoreMem(R10, fpPortA, R3, asm.DWord),
		asm.StoreImm(R10, fpFamily, 4, asm.Byte),
		asm.LoadMem(R2, R10, fpIP+12, asm.Word),
		asm.StoreMem(R10, fpKey, R2, asm.Word),
		asm.LoadMem(R2, R10, fpIP+16, asm.Word),
		asm.StoreMem(R10, fpKeyB, R2, asm.Word),
		asm.Ja.Label("tcp"),
	)
	a.at("icmp4")
	a.loadRel(fpTCP, 1)
	a.emit(
		asm.LoadMem(R2, R10, fpTCP, asm.Byte),
		asm.JEq.Imm(R2, icmpUnreach, lblAccept),
		asm.Ja.Label(lblDrop),
	)

	// IPv6: R7 moves to the payload (extension headers are accepted
	// whole).
	a.at("ipv6")
	a.loadRel(fpIP, 40)
	a.be(R2, fpIP+4, asm.Half)
	a.emit(
		asm.StoreMem(R10, fpL4Len, R2, asm.Word),
		asm.Add.Imm(R7, 40),
		asm.LoadMem(R2, R10, fpIP+6, asm.Byte),
		asm.JEq.Imm(R2, protoICMPv6, "icmp6"),
		asm.JEq.Imm(R2, protoUDP, lblUDP),
	)
	for _, nh := range ipv6ExtHdrs {
		a.emit(asm.JEq.Imm(R2, int32(nh), lblAccept))
	}
	for _, p := range tunnelProtos {
		a.emit(asm.JEq.Imm(R2, int32(p), lblAccept))
	}
	a.emit(asm.JNE.Imm(R2, protoTCP, lblDrop))
	for off := int16(0); off < 32; off += 8 {
		a.emit(
			asm.LoadMem(R2, R10, fpIP+8+off, asm.DWord),
			asm.StoreMem(R10, fpKey+off, R2, asm.DWord),
		)
	}
	a.emit(
		asm.Mov.Imm(R3, 0),
		asm.StoreMem(R10, fpPortA, R3, asm.DWord),
		asm.StoreImm(R10, fpFamily, 6, asm.Byte),
		asm.Ja.Label("tcp"),
	)
	a.at("icmp6")
	a.loadRel(fpTCP, 1)
	a.emit(
		asm.LoadMem(R2, R10, fpTCP, asm.Byte),
		asm.JEq.Imm(R2, icmpv6Unreach, lblAccept),
		asm.Ja.Label(lblDrop),
	)

	// UDP: the tunnels' ports.
	a.at(lblUDP)
	a.loadRel(fpTCP, 4)
	a.be(R2, fpTCP+2, asm.Half)
	for _, port := range udpDstPorts {
		a.emit(asm.JEq.Imm(R2, int32(port), lblAccept))
	}
	a.be(R2, fpTCP, asm.Half)
	for _, port := range udpSrcPorts {
		a.emit(asm.JEq.Imm(R2, int32(port), lblAccept))
	}
	a.emit(asm.Ja.Label(lblDrop))

	// TCP: the key holds the addresses; add the ports, put the endpoints in
	// the canonical order, R9 = 1 if that swapped them (the sender is
	// endpoint B).
	a.at("tcp")
	a.loadRel(fpTCP, 14) // up to the flags
	a.emit(
		asm.LoadMem(R2, R10, fpTCP, asm.Half),
		asm.StoreMem(R10, fpPortA, R2, asm.Half),
		asm.LoadMem(R2, R10, fpTCP+2, asm.Half),
		asm.StoreMem(R10, fpPortB, R2, asm.Half),
		asm.Mov.Imm(R9, 0),
		asm.LoadMem(R2, R10, fpKey, asm.DWord),
		asm.LoadMem(R3, R10, fpKeyB, asm.DWord),
		asm.JLT.Reg(R2, R3, "ordered"),
		asm.JGT.Reg(R2, R3, "swap"),
		asm.LoadMem(R2, R10, fpKey+8, asm.DWord),
		asm.LoadMem(R3, R10, fpKeyB+8, asm.DWord),
		asm.JLT.Reg(R2, R3, "ordered"),
		asm.JGT.Reg(R2, R3, "swap"),
		asm.LoadMem(R2, R10, fpPortA, asm.Half),
		asm.LoadMem(R3, R10, fpPortB, asm.Half),
		asm.JLE.Reg(R2, R3, "ordered"),
	)
	a.at("swap")
	a.emit(asm.Mov.Imm(R9, 1))
	for off := int16(0); off < 16; off += 8 {
		a.emit(
			asm.LoadMem(R2, R10, fpKey+off, asm.DWord),
			asm.LoadMem(R3, R10, fpKeyB+off, asm.DWord),
			asm.StoreMem(R10, fpKey+off, R3, asm.DWord),
			asm.StoreMem(R10, fpKeyB+off, R2, asm.DWord),
		)
	}
	a.emit(
		asm.LoadMem(R2, R10, fpPortA, asm.Half),
		asm.LoadMem(R3, R10, fpPortB, asm.Half),
		asm.StoreMem(R10, fpPortA, R3, asm.Half),
		asm.StoreMem(R10, fpPortB, R2, asm.Half),
	)

	// R7: the handshake in progress, or 0.
	a.at("ordered")
	a.keyArg(tuples)
	a.emit(
		asm.FnMapLookupElem.Call(),
		asm.Mov.Reg(R7, R0),
		asm.JEq.Imm(R7, 0, "flags"),
	)
	a.now()
	a.emit(
		asm.LoadMem(R2, R7, vTime, asm.Word),
		asm.Sub.Reg32(R0, R2),
		asm.JLE.Imm(R0, int32(timeout), "flags"),
	)
	a.keyArg(tuples) // too old: forget it
	a.emit(
		asm.FnMapDeleteElem.Call(),
		asm.Mov.Imm(R7, 0),
	)

	// R2: the TCP flags.
	a.at("flags")
	a.emit(
		asm.LoadMem(R2, R10, fpTCP+13, asm.Byte),
		asm.JSet.Imm(R2, tcpRST, "rst"),
		asm.JSet.Imm(R2, tcpSYN, "syn"),
		asm.JEq.Imm(R7, 0, lblDrop),
		// A segment of a handshake in progress passes. From the
		// initiator, with ACK set, it may complete the handshake.
		asm.LoadMem(R3, R7, vFlags, asm.Byte),
		asm.And.Imm(R3, flagInitB),
		asm.JNE.Reg(R3, R9, lblAccept),
		asm.And.Imm(R2, tcpACK),
		asm.JEq.Imm(R2, 0, lblAccept),
	)
	a.be(R2, fpTCP+4, asm.Word) // seq
	a.be(R3, fpTCP+8, asm.Word) // ack
	a.emit(
		asm.LoadMem(R4, R7, vFlags, asm.Byte),
		asm.And.Imm(R4, flagSynAck),
		asm.JEq.Imm(R4, 0, "oneway"),
		// ack - (RISN+1): 0 completes; less than ackWindow too, if
		// seq - (ISN+1) is.
		asm.LoadMem(R4, R7, vRISN, asm.Word),
		asm.Add.Imm32(R4, 1),
		asm.Sub.Reg32(R3, R4),
		asm.JEq.Imm(R3, 0, "decided"),
		asm.JGE.Imm(R3, ackWindow, lblAccept),
		asm.LoadMem(R4, R7, vISN, asm.Word),
		asm.Add.Imm32(R4, 1),
		asm.Sub.Reg32(R2, R4),
		asm.JGE.Imm(R2, ackWindow, lblAccept),
		asm.Ja.Label("decided"),
	)
	// No SYN/ACK seen: seq = ISN+1 (beyond the SYN's payload).
	a.at("oneway")
	a.emit(
		asm.LoadMem(R4, R7, vISN, asm.Word),
		asm.Add.Imm32(R4, 1),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.LoadMem(R5, R7, vSynLen, asm.Half),
		asm.JEq.Imm(R5, 0, lblAccept),
		asm.Add.Reg32(R4, R5),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.Ja.Label(lblAccept),
	)
	a.at("decided")
	a.keyArg(tuples)
	a.emit(
		asm.FnMapDeleteElem.Call(),
		asm.Ja.Label(lblAccept),
	)

	// An RST passes. From the initiator with seq = ISN, ISN+1 (or beyond
	// the SYN's payload) it aborts the handshake; from the responder it
	// rejects it if it acknowledges the SYN, or has seq = RISN or RISN+1.
	a.at("rst")
	a.emit(asm.JEq.Imm(R7, 0, lblAccept))
	a.be(R2, fpTCP+4, asm.Word) // seq
	a.be(R3, fpTCP+8, asm.Word) // ack
	a.emit(
		asm.LoadMem(R4, R7, vFlags, asm.Byte),
		asm.And.Imm(R4, flagInitB),
		asm.JNE.Reg(R4, R9, "rstresp"),
		asm.LoadMem(R4, R7, vISN, asm.Word),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.Add.Imm32(R4, 1),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.LoadMem(R5, R7, vSynLen, asm.Half),
		asm.JEq.Imm(R5, 0, lblAccept),
		asm.Add.Reg32(R4, R5),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.Ja.Label(lblAccept),
	)
	a.at("rstresp")
	a.emit(
		asm.LoadMem(R4, R10, fpTCP+13, asm.Byte),
		asm.And.Imm(R4, tcpACK),
		asm.JEq.Imm(R4, 0, "rstseq"),
		asm.LoadMem(R4, R7, vISN, asm.Word),
		asm.Add.Imm32(R4, 1),
		asm.JEq.Reg(R3, R4, "decided"),
		asm.LoadMem(R5, R7, vSynLen, asm.Half),
		asm.JEq.Imm(R5, 0, "rstseq"),
		asm.Add.Reg32(R4, R5),
		asm.JEq.Reg(R3, R4, "decided"),
	)
	a.at("rstseq")
	a.emit(
		asm.LoadMem(R4, R7, vFlags, asm.Byte),
		asm.And.Imm(R4, flagSynAck),
		asm.JEq.Imm(R4, 0, lblAccept),
		asm.LoadMem(R4, R7, vRISN, asm.Word),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.Add.Imm32(R4, 1),
		asm.JEq.Reg(R2, R4, "decided"),
		asm.Ja.Label(lblAccept),
	)

	// A SYN passes, and enters or refreshes its tuple.
	a.at("syn")
	a.emit(
		asm.JSet.Imm(R2, tcpACK, "synack"),
		asm.JSet.Imm(R2, tcpFIN, lblAccept),
	)
	a.be(R2, fpTCP+4, asm.Word) // seq
	a.emit(
		asm.JEq.Imm(R7, 0, "insert"),
		asm.LoadMem(R3, R7, vFlags, asm.Byte),
		asm.And.Imm(R3, flagInitB),
		asm.JNE.Reg(R3, R9, lblAccept), // the other way round: a simultaneous open
		asm.LoadMem(R3, R7, vISN, asm.Word),
		asm.JNE.Reg(R2, R3, "insert"), // a new attempt
		asm.Ja.Label("refresh"),       // a retransmission
	)
	a.at("insert")
	a.emit(
		asm.StoreMem(R10, fpVal+vISN, R2, asm.Word),
		asm.StoreImm(R10, fpVal+vRISN, 0, asm.Word),
		// The SYN's payload: the IP payload less the TCP header, 0 if
		// that makes no sense.
		asm.LoadMem(R3, R10, fpL4Len, asm.Word),
		asm.LoadMem(R4, R10, fpTCP+12, asm.Byte),
		asm.RSh.Imm(R4, 4),
		asm.LSh.Imm(R4, 2),
		asm.Mov.Imm(R5, 0),
		asm.JLT.Reg(R3, R4, "synlen"),
		asm.Sub.Reg(R3, R4),
		asm.JGT.Imm(R3, 0xffff, "synlen"),
		asm.Mov.Reg(R5, R3),
	)
	a.at("synlen")
	a.emit(
		asm.StoreMem(R10, fpVal+vSynLen, R5, asm.Half),
		asm.StoreMem(R10, fpVal+vFlags, R9, asm.Byte),
		asm.StoreImm(R10, fpVal+vFlags+1, 0, asm.Byte),
	)
	a.now()
	a.emit(asm.StoreMem(R10, fpVal+vTime, R0, asm.Word))
	a.keyArg(tuples)
	a.emit(
		asm.Mov.Reg(R3, R10),
		asm.Add.Imm(R3, fpVal),
		asm.Mov.Imm(R4, 0), // BPF_ANY
		asm.FnMapUpdateElem.Call(),
		asm.Ja.Label(lblAccept),
	)

	// A SYN/ACK passes; from the responder, acknowledging the SYN, it
	// records the responder's ISN, or refreshes the tuple.
	a.at("synack")
	a.emit(
		asm.JEq.Imm(R7, 0, lblAccept),
		asm.LoadMem(R3, R7, vFlags, asm.Byte),
		asm.And.Imm(R3, flagInitB),
		asm.JEq.Reg(R3, R9, lblAccept), // from the initiator: no answer
	)
	a.be(R3, fpTCP+8, asm.Word) // ack
	a.emit(
		asm.LoadMem(R4, R7, vISN, asm.Word),
		asm.Add.Imm32(R4, 1),
		asm.JEq.Reg(R3, R4, "acksyn"),
		asm.LoadMem(R5, R7, vSynLen, asm.Half),
		asm.JEq.Imm(R5, 0, lblAccept),
		asm.Add.Reg32(R4, R5),
		asm.JNE.Reg(R3, R4, lblAccept),
	)
	a.at("acksyn")
	a.be(R2, fpTCP+4, asm.Word) // seq
	a.emit(
		asm.LoadMem(R3, R7, vFlags, asm.Byte),
		asm.Mov.Reg(R4, R3),
		asm.And.Imm(R4, flagSynAck),
		asm.JNE.Imm(R4, 0, "again"),
		asm.StoreMem(R7, vRISN, R2, asm.Word),
		asm.Or.Imm(R3, flagSynAck),
		asm.StoreMem(R7, vFlags, R3, asm.Byte),
		asm.Ja.Label("refresh"),
	)
	a.at("again")
	a.emit(
		asm.LoadMem(R4, R7, vRISN, asm.Word),
		asm.JNE.Reg(R2, R4, lblAccept),
	)
	a.at("refresh")
	a.now()
	a.emit(asm.StoreMem(R7, vTime, R0, asm.Word))

	a.at(lblAccept)
	a.emit(asm.Mov.Imm(R0, SnapLen), asm.Return())
	a.at(lblDrop)
	a.emit(asm.Mov.Imm(R0, 0), asm.Return())
	return a.ins
}
