package kfilter

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// golang.org/x/net/bpf's VM knows no ancillary data but the length, and no
// loads relative to the network or link-layer header, which the classic
// program is made of. Two ways to run it stand in: runClassic, a small
// interpreter of the instructions the program uses, and classicToEBPF, a
// translation to eBPF that the kernel runs (BPF_PROG_TEST_RUN), as it runs
// the classic program itself after converting it the same way. The tests
// check that both agree on every test frame.

// skbMeta is what a classic program reads besides the frame: the socket
// buffer's metadata.
type skbMeta struct {
	protocol uint16 // the EtherType the link layer found
	pktType  uint32
	ifindex  uint32
	net      int // offset of the network header in the frame
}

// testRunMeta returns the metadata the kernel's BPF_PROG_TEST_RUN gives an
// Ethernet frame: eth_type_trans on the loopback device finds the protocol
// at offset 12 and the network header at 14, and a unicast to another
// address is PACKET_OTHERHOST.
func testRunMeta(frame []byte) skbMeta {
	m := skbMeta{pktType: 3, ifindex: loopbackIndex, net: 14}
	if len(frame) >= 14 {
		m.protocol = binary.BigEndian.Uint16(frame[12:])
		if m.protocol < 0x600 {
			m.protocol = 0x0004 // ETH_P_802_2
		}
	}
	return m
}

// runClassic runs a classic program on frame as the kernel does: loads
// relative to the network header (SKF_NET_OFF) or the link-layer header
// (SKF_LL_OFF, the frame's start), ancillary loads of the protocol, packet
// type and interface, and a load beyond the frame ends it with 0. It
// returns an error for an instruction it does not know.
func runClassic(prog []bpf.Instruction, frame []byte, m skbMeta) (uint32, error) {
	var a, x uint32
	load := func(k int32, size int) (uint32, bool) {
		var p int
		switch {
		case k >= skfNetOff && k < skfAdOff:
			p = m.net + int(k-skfNetOff)
		case k >= skfLLOff && k < skfNetOff:
			p = int(k - skfLLOff)
		case k >= 0:
			p = m.net + int(k) // skb->data, at the network header in a test run
		default:
			return 0, false
		}
		if p < 0 || p+size > len(frame) {
			return 0, false
		}
		b := frame[p : p+size]
		switch size {
		case 1:
			return uint32(b[0]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(b)), true
		}
		return binary.BigEndian.Uint32(b), true
	}
	for pc := 0; pc < len(prog); pc++ {
		var ok = true
		switch in := prog[pc].(type) {
		case bpf.LoadExtension:
			switch in.Num {
			case bpf.ExtProto:
				a = uint32(m.protocol)
			case bpf.ExtType:
				a = m.pktType
			case bpf.ExtInterfaceIndex:
				a = m.ifindex
			case bpf.ExtLen:
				a = uint32(len(frame) - m.net)
			default:
				return 0, fmt.Errorf("%d: extension %v", pc, in.Num)
			}
		case bpf.LoadAbsolute:
			a, ok = load(int32(in.Off), in.Size)
		case bpf.LoadIndirect:
			a, ok = load(int32(in.Off+x), in.Size)
		case bpf.LoadMemShift:
			var b uint32
			b, ok = load(int32(in.Off), 1)
			x = (b & 0xf) * 4
		case bpf.LoadConstant:
			if in.Dst == bpf.RegA {
				a = in.Val
			} else {
				x = in.Val
			}
		case bpf.TAX:
			x = a
		case bpf.TXA:
			a = x
		case bpf.ALUOpConstant:
			a = aluOp(in.Op, a, in.Val)
		case bpf.ALUOpX:
			a = aluOp(in.Op, a, x)
		case bpf.Jump:
			pc += int(in.Skip)
		case bpf.JumpIf:
			pc += jumpSkip(in.Cond, a, in.Val, in.SkipTrue, in.SkipFalse)
		case bpf.JumpIfX:
			pc += jumpSkip(in.Cond, a, x, in.SkipTrue, in.SkipFalse)
		case bpf.RetConstant:
			return in.Val, nil
		case bpf.RetA:
			return a, nil
		default:
			return 0, fmt.Errorf("%d: instruction %v", pc, in)
		}
		if !ok {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("the program runs past its end")
}

// aluOp applies a classic ALU operation.
func aluOp(op bpf.ALUOp, a, v uint32) uint32 {
	switch op {
	case bpf.ALUOpAdd:
		return a + v
	case bpf.ALUOpSub:
		return a - v
	case bpf.ALUOpMul:
		return a * v
	case bpf.ALUOpOr:
		return a | v
	case bpf.ALUOpAnd:
		return a & v
	case bpf.ALUOpShiftLeft:
		return a << (v & 31)
	case bpf.ALUOpShiftRight:
		return a >> (v & 31)
	case bpf.ALUOpXor:
		return a ^ v
	case bpf.ALUOpDiv:
		if v == 0 {
			return 0
		}
		return a / v
	case bpf.ALUOpMod:
		if v == 0 {
			return 0
		}
		return a % v
	}
	panic(fmt.Sprintf("ALU operation %v", op))
}

// jumpSkip returns how many instructions a conditional jump skips.
func jumpSkip(c bpf.JumpTest, a, v uint32, yes, no uint8) int {
	var t bool
	switch c {
	case bpf.JumpEqual:
		t = a == v
	case bpf.JumpNotEqual:
		t = a != v
	case bpf.JumpGreaterThan:
		t = a > v
	case bpf.JumpLessThan:
		t = a < v
	case bpf.JumpGreaterOrEqual:
		t = a >= v
	case bpf.JumpLessOrEqual:
		t = a <= v
	case bpf.JumpBitsSet:
		t = a&v != 0
	case bpf.JumpBitsNotSet:
		t = a&v == 0
	}
	if t {
		return int(yes)
	}
	return int(no)
}

// classicToEBPF translates a classic program into eBPF for a socket filter,
// instruction by instruction, as the kernel's bpf_convert_filter does: A is
// R0 (where LD_ABS and LD_IND leave their result), X is R7, the context R6.
func classicToEBPF(prog []bpf.Instruction) (asm.Instructions, error) {
	var out asm.Instructions
	label := func(i int) string { return fmt.Sprintf("c%d", i) }
	A, X, T := asm.R0, asm.R7, asm.R8
	emit := func(pc int, ins ...asm.Instruction) {
		if len(ins) > 0 {
			ins[0] = ins[0].WithSymbol(label(pc))
		}
		out = append(out, ins...)
	}
	size := func(n int) asm.Size {
		switch n {
		case 1:
			return asm.Byte
		case 2:
			return asm.Half
		}
		return asm.Word
	}
	jmp := func(op asm.JumpOp, src bool, v uint32, to string) asm.Instruction {
		if src {
			return op.Reg32(A, X, to)
		}
		return op.Imm32(A, int32(v), to)
	}
	cond := func(pc int, c bpf.JumpTest, src bool, v uint32, yes, no uint8) ([]asm.Instruction, error) {
		t, f := label(pc+1+int(yes)), label(pc+1+int(no))
		var op asm.JumpOp
		switch c {
		case bpf.JumpEqual:
			op = asm.JEq
		case bpf.JumpNotEqual:
			op = asm.JNE
		case bpf.JumpGreaterThan:
			op = asm.JGT
		case bpf.JumpLessThan:
			op = asm.JLT
		case bpf.JumpGreaterOrEqual:
			op = asm.JGE
		case bpf.JumpLessOrEqual:
			op = asm.JLE
		case bpf.JumpBitsSet:
			op = asm.JSet
		case bpf.JumpBitsNotSet:
			op, t, f = asm.JSet, f, t
		default:
			return nil, fmt.Errorf("%d: jump condition %v", pc, c)
		}
		return []asm.Instruction{jmp(op, src, v, t), asm.Ja.Label(f)}, nil
	}
	alu := func(op bpf.ALUOp) (asm.ALUOp, error) {
		switch op {
		case bpf.ALUOpAdd:
			return asm.Add, nil
		case bpf.ALUOpSub:
			return asm.Sub, nil
		case bpf.ALUOpMul:
			return asm.Mul, nil
		case bpf.ALUOpOr:
			return asm.Or, nil
		case bpf.ALUOpAnd:
			return asm.And, nil
		case bpf.ALUOpShiftLeft:
			return asm.LSh, nil
		case bpf.ALUOpShiftRight:
			return asm.RSh, nil
		case bpf.ALUOpXor:
			return asm.Xor, nil
		}
		return 0, fmt.Errorf("ALU operation %v", op)
	}
	out = append(out, asm.Mov.Reg(asm.R6, asm.R1), asm.Mov.Imm32(A, 0), asm.Mov.Imm32(X, 0))
	for pc, in := range prog {
		switch in := in.(type) {
		case bpf.LoadExtension:
			switch in.Num {
			case bpf.ExtProto:
				emit(pc, asm.LoadMem(A, asm.R6, skbProtocol, asm.Word), asm.HostTo(asm.BE, A, asm.Half))
			case bpf.ExtType:
				emit(pc, asm.LoadMem(A, asm.R6, skbPktType, asm.Word))
			case bpf.ExtInterfaceIndex:
				emit(pc, asm.LoadMem(A, asm.R6, skbIfindex, asm.Word))
			default:
				return nil, fmt.Errorf("%d: extension %v", pc, in.Num)
			}
		case bpf.LoadAbsolute:
			emit(pc, asm.LoadAbs(int32(in.Off), size(in.Size)))
		case bpf.LoadIndirect:
			emit(pc, asm.LoadInd(asm.R0, X, int32(in.Off), size(in.Size)))
		case bpf.LoadMemShift:
			emit(pc,
				asm.Mov.Reg(T, A),
				asm.LoadAbs(int32(in.Off), asm.Byte),
				asm.Mov.Reg32(X, asm.R0),
				asm.And.Imm32(X, 0xf),
				asm.LSh.Imm32(X, 2),
				asm.Mov.Reg(A, T),
			)
		case bpf.LoadConstant:
			r := A
			if in.Dst == bpf.RegX {
				r = X
			}
			emit(pc, asm.Mov.Imm32(r, int32(in.Val)))
		case bpf.TAX:
			emit(pc, asm.Mov.Reg32(X, A))
		case bpf.TXA:
			emit(pc, asm.Mov.Reg32(A, X))
		case bpf.ALUOpConstant:
			op, err := alu(in.Op)
			if err != nil {
				return nil, err
			}
			emit(pc, op.Imm32(A, int32(in.Val)))
		case bpf.ALUOpX:
			op, err := alu(in.Op)
			if err != nil {
				return nil, err
			}
			emit(pc, op.Reg32(A, X))
		case bpf.Jump:
			emit(pc, asm.Ja.Label(label(pc+1+int(in.Skip))))
		case bpf.JumpIf:
			ins, err := cond(pc, in.Cond, false, in.Val, in.SkipTrue, in.SkipFalse)
			if err != nil {
				return nil, err
			}
			emit(pc, ins...)
		case bpf.JumpIfX:
			ins, err := cond(pc, in.Cond, true, 0, in.SkipTrue, in.SkipFalse)
			if err != nil {
				return nil, err
			}
			emit(pc, ins...)
		case bpf.RetConstant:
			emit(pc, asm.Mov.Imm32(A, int32(in.Val)), asm.Return())
		case bpf.RetA:
			emit(pc, asm.Return())
		default:
			return nil, fmt.Errorf("%d: instruction %v", pc, in)
		}
	}
	return out, nil
}
