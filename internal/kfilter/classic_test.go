package kfilter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/net/bpf"
	"syscall"

	"github.com/tcpeek/tcpeek/internal/decode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// classicProg returns the classic program for the allow-list ifindexes.
func classicProg(tb testing.TB, ifindexes []int) []bpf.Instruction {
	tb.Helper()
	ins, err := classicInstructions(ifindexes)
	if err != nil {
		tb.Fatalf("classicInstructions: %v", err)
	}
	return ins
}

// classicRun runs prog on frame with metadata m and tells whether it
// accepts it; any verdict but 0 and SnapLen fails the test.
func classicRun(tb testing.TB, prog []bpf.Instruction, frame []byte, m skbMeta) bool {
	tb.Helper()
	n, err := runClassic(prog, frame, m)
	if err != nil {
		tb.Fatalf("runClassic: %v", err)
	}
	if n != 0 && n != SnapLen {
		tb.Fatalf("filter returned %d, want 0 or SnapLen (%d)", n, SnapLen)
	}
	return n == SnapLen
}

// bpfUsed tells whether the classifier uses a packet the decoder decoded
// (with ICMP on) and the classic filter exists to let through.
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

// bpfOutOfPolicy tells whether frame is one the filters may drop although
// the decoder decodes it into a packet the classifier uses: more tags than
// they look through, or an IP length of 0 (segmentation offload on the
// capturing host, which only data segments use).
func bpfOutOfPolicy(frame []byte) bool {
	for off, tags := 12, 0; len(frame) >= off+2; off, tags = off+4, tags+1 {
		switch binary.BigEndian.Uint16(frame[off:]) {
		case 0x8100, 0x88a8, 0x9100, 0x9200:
			if tags == maxTags {
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

// bpfCheckDecoder fails the test if the decoder makes of frame a packet
// that used tells the filter must let through, and the filter dropped it.
func bpfCheckDecoder(tb testing.TB, frame []byte, accepted bool, used func(*decode.Packet) bool) {
	tb.Helper()
	var p decode.Packet
	st := (&decode.Decoder{}).Decode(&p, decode.LinkEthernet, frame, false)
	if st == decode.OK && used(&p) && !accepted && !bpfOutOfPolicy(frame) {
		tb.Errorf("filter drops a frame the classifier uses: %v\n% x", &p, frame)
	}
}

func TestClassicPolicy(t *testing.T) {
	prog := classicProg(t, nil)
	fs := bpfAllFrames(t)
	for _, f := range fs {
		got := classicRun(t, prog, f.data, testRunMeta(f.data))
		if got != f.want {
			t.Errorf("%s: accepted %v, want %v\n% x", f.name, got, f.want, f.data)
		}
		bpfCheckDecoder(t, f.data, got, bpfUsed)
	}
	t.Logf("%d frames", len(fs))
}

// TestClassicLinkTypes checks that the filter reads the IP header where the
// kernel says the network header is, whatever precedes it: nothing (a
// tunnel, PPP), a loopback or Ethernet header, or the 4 bytes of an
// IPoIB-like header.
func TestClassicLinkTypes(t *testing.T) {
	prog := classicProg(t, nil)
	for _, c := range []struct {
		name     string
		l3       bpfL3
		v6, want bool
	}{
		{"SYN", bpfTCPSeg("S", 0), false, true},
		{"SYN", bpfTCPSeg("S", 0), true, true},
		{"pure ACK", bpfTCPSeg("A", 0), false, true},
		{"data", bpfTCPSeg("AP", 100), true, false},
		{"ICMP 3/3", bpfICMP(3, 0, 3), false, true},
	} {
		_, ls := c.l3(t, c.v6)
		ip := bpfSerialize(t, ls...)
		et := uint16(etherIPv4)
		if c.v6 {
			et = etherIPv6
		}
		for _, hdr := range []int{0, 4, 14, 16} {
			frame := append(bytes.Repeat([]byte{0xee}, hdr), ip...)
			m := skbMeta{protocol: et, pktType: 0, ifindex: 5, net: hdr}
			if got := classicRun(t, prog, frame, m); got != c.want {
				t.Errorf("%s/IPv%d behind %d bytes: accepted %v, want %v", c.name, map[bool]int{false: 4, true: 6}[c.v6], hdr, got, c.want)
			}
		}
	}
}

// TestClassicInterfaces checks the loopback's outgoing copies and the
// allow-list.
func TestClassicInterfaces(t *testing.T) {
	et, ls := bpfTCPSeg("S", 0)(t, false)
	syn := bpfEther(t, nil, et, ls...)
	many := make([]int, 1000)
	for i := range many {
		many[i] = 10 + 3*i
	}
	for _, c := range []struct {
		name    string
		list    []int
		pktType uint32
		ifindex uint32
		want    bool
	}{
		{"lo incoming", nil, 0, 1, true},
		{"lo outgoing", nil, packetOutgoing, 1, false},
		{"eth outgoing", nil, packetOutgoing, 2, true},
		{"lo outgoing, lo allowed", []int{1}, packetOutgoing, 1, false},
		{"lo incoming, lo allowed", []int{1}, 0, 1, true},
		{"allowed", []int{3, 7}, 0, 7, true},
		{"allowed, outgoing", []int{3, 7}, packetOutgoing, 3, true},
		{"not allowed", []int{3, 7}, 0, 5, false},
		{"empty list", []int{}, 0, 7, false},
		{"1000 interfaces, first", many, 0, 10, true},
		{"1000 interfaces, 200th", many, 0, uint32(many[199]), true},
		{"1000 interfaces, 201st", many, 0, uint32(many[200]), true},
		{"1000 interfaces, last", many, 0, uint32(many[999]), true},
		{"1000 interfaces, none", many, 0, 11, false},
	} {
		m := skbMeta{protocol: etherIPv4, pktType: c.pktType, ifindex: c.ifindex, net: 14}
		if got := classicRun(t, classicProg(t, c.list), syn, m); got != c.want {
			t.Errorf("%s: accepted %v, want %v", c.name, got, c.want)
		}
	}
	for _, bad := range [][]int{{0}, {-1}, {1 << 32}, make([]int, 4000)} {
		if _, err := ClassicProgram(bad); err == nil {
			t.Errorf("ClassicProgram(%d interfaces starting %v): no error", len(bad), bad[0])
		}
	}
}

// TestClassicFrameShapes checks that the test frames have the headers their
// names claim, so that the policy test tests what it says.
func TestClassicFrameShapes(t *testing.T) {
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
	f = bpfEther(t, bpfTagStacks[2].tags, 0x0800)
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

func TestClassicShortFrames(t *testing.T) {
	prog := classicProg(t, nil)
	for _, et := range []uint16{0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806} {
		f := make([]byte, 14)
		copy(f, bpfMAC2)
		copy(f[6:], bpfMAC1)
		binary.BigEndian.PutUint16(f[12:], et)
		if classicRun(t, prog, f, testRunMeta(f)) {
			t.Errorf("14-byte frame of EtherType %#04x accepted", et)
		}
	}
	// Encapsulations are accepted whole, even when empty: the decoder
	// rejects them.
	f := make([]byte, 14)
	binary.BigEndian.PutUint16(f[12:], 0x8847)
	if !classicRun(t, prog, f, testRunMeta(f)) {
		t.Errorf("14-byte MPLS frame dropped")
	}
	for n := range 14 {
		if classicRun(t, prog, f[:n], testRunMeta(f[:n])) {
			t.Errorf("%d-byte frame accepted", n)
		}
	}
}

func TestClassicProgram(t *testing.T) {
	ins := classicProg(t, nil)
	raw, err := ClassicProgram(nil)
	if err != nil {
		t.Fatalf("ClassicProgram: %v", err)
	}
	again, err := bpf.Assemble(ins)
	if err != nil {
		t.Fatalf("bpf.Assemble: %v", err)
	}
	if !slices.Equal(raw, again) {
		t.Fatalf("ClassicProgram and classicInstructions differ")
	}
	if len(ins) >= 250 {
		t.Errorf("%d instructions, want fewer than 250", len(ins))
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
	// it is read; ancillary loads of words only.
	for _, list := range [][]int{nil, {2}, make([]int, 3000)} {
		for i := range list {
			list[i] = i + 1
		}
		raw, err := ClassicProgram(list)
		if err != nil {
			t.Fatalf("%d interfaces: %v", len(list), err)
		}
		checkClassic(t, raw)
	}
}

// checkClassic checks raw against the kernel's rules for classic BPF.
func checkClassic(t *testing.T, raw []bpf.RawInstruction) {
	t.Helper()
	if len(raw) == 0 || len(raw) > 4096 {
		t.Fatalf("%d instructions", len(raw))
	}
	const (
		classLD, classLDX, classST, classSTX, classALU, classJMP, classRET = 0, 1, 2, 3, 4, 5, 6
		opJA, opDIV, opMOD, srcK                                           = 0x00, 0x30, 0x90, 0x00
		modeABS, modeMEM                                                   = 0x20, 0x60
		sizeW                                                              = 0x00
	)
	for pc, r := range raw {
		switch r.Op & 7 {
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
			if k := int32(r.K); r.Op&0xe0 == modeABS && k >= skfAdOff && k < 0 && r.Op&0x18 != sizeW {
				t.Errorf("%d: ancillary load not of a word", pc)
			}
		}
	}
	if last := raw[len(raw)-1]; last.Op&7 != classRET {
		t.Errorf("last instruction is not a return")
	}
}

// classicListing prints a program with the loads relative to a header
// named: ld [net+9], ldx 4*([ll+14]&0xf).
func classicListing(ins []bpf.Instruction) string {
	rel := func(off uint32) string {
		k := int32(off)
		switch {
		case k >= skfNetOff && k < skfAdOff:
			return fmt.Sprintf("net+%d", k-skfNetOff)
		case k >= skfLLOff && k < skfNetOff:
			return fmt.Sprintf("ll+%d", k-skfLLOff)
		}
		return fmt.Sprint(off)
	}
	var sb strings.Builder
	for i, in := range ins {
		s := fmt.Sprint(in)
		switch in := in.(type) {
		case bpf.LoadAbsolute:
			s = fmt.Sprintf("ld%s [%s]", map[int]string{1: "b", 2: "h", 4: ""}[in.Size], rel(in.Off))
		case bpf.LoadIndirect:
			s = fmt.Sprintf("ld%s [x + %s]", map[int]string{1: "b", 2: "h", 4: ""}[in.Size], rel(in.Off))
		case bpf.LoadMemShift:
			s = fmt.Sprintf("ldx 4*([%s]&0xf)", rel(in.Off))
		}
		fmt.Fprintf(&sb, "%3d  %s\n", i, s)
	}
	return sb.String()
}

// TestClassicDisassembly compares the program, disassembled, with
// testdata/classic.golden (go test -update rewrites it): any change to the
// program shows in review as a change of that file.
func TestClassicDisassembly(t *testing.T) {
	for _, c := range []struct {
		file string
		list []int
	}{{"classic.golden", nil}, {"classic-allow.golden", []int{2, 7}}} {
		got := classicListing(classicProg(t, c.list))
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: the program differs from the golden listing (go test -update rewrites it):\n%s", path, got)
		}
	}
}

// TestClassicMutations checks, on random corruptions of the test frames,
// that the filter never drops a frame the decoder makes into a packet the
// classifier uses (but for the drops of bpfOutOfPolicy), and never returns
// anything but 0 and SnapLen.
func TestClassicMutations(t *testing.T) {
	prog := classicProg(t, nil)
	seeds := bpfCaseFrames(t)
	r := rand.New(rand.NewPCG(1, 2))
	iters := 50000
	if testing.Short() {
		iters = 5000
	}
	var buf []byte
	for range iters {
		buf = mutate(r, append(buf[:0], seeds[r.IntN(len(seeds))].data...))
		bpfCheckDecoder(t, buf, classicRun(t, prog, buf, testRunMeta(buf)), bpfUsed)
		if t.Failed() {
			return
		}
	}
}

// mutate flips or replaces 1 to 3 bytes of the first 100 of buf, and cuts
// it short one time in eight.
func mutate(r *rand.Rand, buf []byte) []byte {
	for range 1 + r.IntN(3) {
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
	return buf
}

func FuzzClassic(f *testing.F) {
	for _, fr := range bpfCaseFrames(f) {
		f.Add(fr.data)
	}
	prog := classicProg(f, nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		bpfCheckDecoder(t, frame, classicRun(t, prog, frame, testRunMeta(frame)), bpfUsed)
	})
}

// loadClassic loads the translation of the classic program for the
// allow-list ifindexes into the kernel, or skips the test.
func loadClassic(tb testing.TB, ifindexes []int) *ebpf.Program {
	tb.Helper()
	ins, err := classicToEBPF(classicProg(tb, ifindexes))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "MIT", Instructions: ins})
	if err != nil {
		skipNoBPF(tb, err)
		tb.Fatalf("loading the translated classic program: %v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// skipNoBPF skips the test if err says the kernel refuses eBPF here.
func skipNoBPF(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) {
		tb.Skipf("eBPF cannot be loaded here (needs root or CAP_BPF, and bpf() allowed): %v", err)
	}
}

// errTooShort is testRun's error for a frame too short for the kernel's
// test run.
var errTooShort = errors.New("frame too short for BPF_PROG_TEST_RUN")

// testRun runs prog once on frame in the kernel (BPF_PROG_TEST_RUN), with
// the context ctx if not nil. The kernel refuses frames shorter than an
// Ethernet header and, of IPv4 or IPv6, shorter than its fixed IP header:
// for those it returns errTooShort.
func testRun(prog *ebpf.Program, frame []byte, ctx any) (uint32, error) {
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame, Context: ctx})
	if errors.Is(err, syscall.EINVAL) && len(frame) < 14+40 {
		return 0, errTooShort
	}
	return ret, err
}

// TestClassicKernel runs the classic program in the kernel
// (BPF_PROG_TEST_RUN, through classicToEBPF) on every test frame the kernel
// takes and checks that the kernel, the interpreter and
// the expectation agree, the length kept included.
func TestClassicKernel(t *testing.T) {
	prog := loadClassic(t, nil)
	ins := classicProg(t, nil)
	tested, accepted := 0, 0
	for _, f := range bpfAllFrames(t) {
		ret, err := testRun(prog, f.data, nil)
		if errors.Is(err, errTooShort) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		vm, _ := runClassic(ins, f.data, testRunMeta(f.data))
		if ret != vm || (ret == SnapLen) != f.want {
			t.Errorf("%s: kernel returned %d, interpreter %d, want accepted %v", f.name, ret, vm, f.want)
		}
		tested++
		if ret != 0 {
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
