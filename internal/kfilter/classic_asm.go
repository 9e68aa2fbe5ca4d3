package kfilter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

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
		panic("kfilter: BPF label defined twice: " + name)
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
			return 0, fmt.Errorf("kfilter: BPF instruction %d jumps to undefined label %q", at, label)
		}
		if to <= at {
			return 0, fmt.Errorf("kfilter: BPF instruction %d jumps backwards to %q", at, label)
		}
		if to >= len(p.ins) {
			return 0, fmt.Errorf("kfilter: BPF instruction %d jumps past the end to %q", at, label)
		}
		return uint32(to - at - 1), nil
	}
	skip8 := func(at int, label string) (uint8, error) {
		s, err := skip(at, label)
		if err == nil && s > 0xff {
			err = fmt.Errorf("kfilter: BPF instruction %d: jump to %q too long (%d)", at, label, s)
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
		return nil, fmt.Errorf("kfilter: BPF program of %d instructions, more than %d", len(ins), bpfMaxInsns)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("kfilter: empty BPF program")
	}
	switch ins[len(ins)-1].(type) {
	case bpf.RetConstant, bpf.RetA:
	default:
		return nil, fmt.Errorf("kfilter: BPF program does not end in a return")
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
