package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// ngByteOrderMagic is the byte-order magic of a section header block.
const ngByteOrderMagic = 0x1a2b3c4d

// pcapng block types.
const (
	blockIDB = 0x00000001
	blockPB  = 0x00000002
	blockSPB = 0x00000003
	blockNRB = 0x00000004
	blockISB = 0x00000005
	blockEPB = 0x00000006
	blockDSB = 0x0000000a
	blockSHB = 0x0a0d0d0a
)

// pcapng interface description options.
const (
	optEndOfOpt = 0
	optTSResol  = 9
	optTSOffset = 14
)

// maxIfacesPerSHB bounds the interfaces of a section: the interface ids of
// obsolete Packet Blocks are 16 bits.
const maxIfacesPerSHB = 1 << 16

// ngIface is a pcapng interface: its link type, snap length and how to turn
// its timestamps into nanoseconds.
type ngIface struct {
	linkType uint32
	snaplen  uint32
	kind     uint8  // tsMul, tsDiv or tsBin
	shift    uint8  // tsBin: timestamps count units of 2^-shift s
	mul      int64  // tsMul: ns = ts*mul
	div      uint64 // tsDiv: ns = ts/div
	off      int64  // if_tsoffset, in ns
}

const (
	tsMul = iota // decimal resolution of 10^-9 s or coarser
	tsDiv        // decimal resolution finer than 10^-9 s
	tsBin        // binary resolution
)

// nanos converts a raw pcapng timestamp to Unix nanoseconds.
func (ifc *ngIface) nanos(ts uint64) int64 {
	switch ifc.kind {
	case tsMul:
		return int64(ts)*ifc.mul + ifc.off
	case tsDiv:
		return int64(ts/ifc.div) + ifc.off
	}
	sec := ts >> ifc.shift
	frac := ts & (1<<ifc.shift - 1)
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, 1<<ifc.shift) // hi < 1<<shift since frac < 1<<shift
	return int64(sec)*1e9 + int64(ns) + ifc.off
}

// nextEPB is the fast path of nextNg: it reads an Enhanced Packet Block
// that is whole in the buffer and correct. It returns false, having changed
// nothing, for anything else, which nextNg then handles or reports.
func (r *FileReader) nextEPB(f *Frame) bool {
	b := r.buf[r.r:r.w]
	if len(b) < 32 {
		return false
	}
	big := r.big
	blen := u32(b[4:], big)
	if u32(b, big) != blockEPB || blen < 32 || blen%4 != 0 || uint64(blen) > uint64(len(b)) {
		return false
	}
	n := int(blen)
	id, caplen := u32(b[8:], big), u32(b[20:], big)
	if u32(b[n-4:], big) != blen || id >= uint32(len(r.ifaces)) || caplen > blen-32 {
		return false
	}
	ifc := &r.ifaces[id]
	t := ifc.nanos(uint64(u32(b[12:], big))<<32 | uint64(u32(b[16:], big)))
	r.lastTime = t
	f.Time = t
	f.LinkType = ifc.linkType
	f.Data = b[28 : 28+caplen : 28+caplen]
	f.WireLen = int(max(u32(b[24:], big), caplen))
	f.NoVerify = false
	r.r += n
	return true
}

// blockName names a pcapng block type for error messages.
func blockName(t uint32) string {
	switch t {
	case blockSHB:
		return "section header block"
	case blockIDB:
		return "interface description block"
	case blockPB:
		return "packet block"
	case blockSPB:
		return "simple packet block"
	case blockNRB:
		return "name resolution block"
	case blockISB:
		return "interface statistics block"
	case blockEPB:
		return "enhanced packet block"
	case blockDSB:
		return "decryption secrets block"
	}
	return fmt.Sprintf("block of type 0x%08x", t)
}

// nextNg reads pcapng blocks until a packet, which it stores in f.
//
// With peek set (f is then nil) it only takes in non-packet blocks: it stops
// without error before a packet block, at the end of the stream or before
// anything wrong (leaving that for Next to report), and once an interface is
// known it does not wait for more input. With shbOnly set it reads exactly
// one block, which must be a section header.
func (r *FileReader) nextNg(f *Frame, shbOnly bool) error {
	peek := f == nil && !shbOnly
	for {
		b, typ, big, err := r.ngBlock(peek, shbOnly)
		if b == nil || err != nil {
			if peek {
				return nil
			}
			return err
		}
		switch typ {
		case blockEPB, blockPB, blockSPB: // never in peek mode
			return r.ngPacket(f, typ, b, big)
		case blockSHB:
			err = r.ngSection(b, big)
		case blockIDB:
			err = r.ngInterface(b, big)
		}
		if err != nil {
			if peek {
				return nil
			}
			return err
		}
		r.r += len(b)
		if shbOnly {
			return nil
		}
	}
}

// ngBlock returns the next block, whole in the buffer, with its type and
// byte order, once its lengths are checked. Blocks longer than
// MaxRecordLen that the reader does not parse are skipped on the way. In
// peek mode it returns no block and no error where nextNg stops (before a
// packet block, or for want of input once an interface is known), and an
// error where the block is bad.
func (r *FileReader) ngBlock(peek, shbOnly bool) (b []byte, typ uint32, big bool, err error) {
	for {
		if ok, err := r.ngNeed(8, peek, "block header", !shbOnly); !ok {
			return nil, 0, false, err
		}
		b = r.buf[r.r:r.w]
		big = r.big
		typ = u32(b, big)
		if shbOnly && typ != blockSHB {
			return nil, 0, false, r.corrupt("first block is not a section header block")
		}
		if peek && (typ == blockEPB || typ == blockSPB || typ == blockPB) {
			return nil, 0, false, nil
		}
		if typ == blockSHB {
			// The section header sets the byte order of its section.
			if ok, err := r.ngNeed(12, peek, "section header block", false); !ok {
				return nil, 0, false, err
			}
			b = r.buf[r.r:r.w]
			if big, err = sectionOrder(b); err != nil {
				return nil, 0, false, r.corrupt("%v", err)
			}
		}
		blen := u32(b[4:], big)
		if blen < 12 || blen%4 != 0 {
			return nil, 0, false, r.badLength(typ, blen)
		}
		if blen > MaxRecordLen {
			switch {
			case peek:
				return nil, 0, false, nil
			case typ == blockSHB || typ == blockIDB || typ == blockEPB || typ == blockSPB || typ == blockPB:
				return nil, 0, false, r.corrupt("%s length %d exceeds %d", blockName(typ), blen, MaxRecordLen)
			}
			if err := r.skipLong(typ, blen, big); err != nil {
				return nil, 0, false, err
			}
			continue
		}
		n := int(blen)
		if ok, err := r.ngNeed(n, peek, blockName(typ), false); !ok {
			return nil, 0, false, err
		}
		b = r.buf[r.r : r.r+n]
		if t := u32(b[n-4:], big); t != blen {
			return nil, 0, false, r.corrupt("%s trailing length %d differs from leading length %d", blockName(typ), t, blen)
		}
		return b, typ, big, nil
	}
}

// ngNeed makes n bytes from the current block's start available, and
// tells whether it did. In peek mode it does not wait for input once an
// interface is known, and a stream cut short is no error (Next reports it
// later); clean tells that a stream ending before the block is its clean
// end.
func (r *FileReader) ngNeed(n int, peek bool, what string, clean bool) (bool, error) {
	if r.w-r.r >= n {
		return true, nil
	}
	if peek && len(r.ifaces) > 0 {
		return false, nil
	}
	if err := r.fill(n); err != nil {
		if peek {
			return false, nil
		}
		return false, r.short(err, n, what, clean)
	}
	return true, nil
}

// sectionOrder returns the byte order of the section whose header block
// starts b (at least 12 bytes): true for big-endian.
func sectionOrder(b []byte) (bool, error) {
	switch {
	case binary.LittleEndian.Uint32(b[8:]) == ngByteOrderMagic:
		return false, nil
	case binary.BigEndian.Uint32(b[8:]) == ngByteOrderMagic:
		return true, nil
	}
	return false, fmt.Errorf("section header block has a bad byte-order magic (% x)", b[8:12])
}

// badLength reports a block length that is not a multiple of 4 or less
// than 12.
func (r *FileReader) badLength(typ, blen uint32) error {
	if blen < 12 {
		return r.corrupt("%s length %d is less than 12", blockName(typ), blen)
	}
	return r.corrupt("%s length %d is not a multiple of 4", blockName(typ), blen)
}

// ngPacket stores in f the packet of block b: an Enhanced, obsolete or
// Simple Packet Block.
func (r *FileReader) ngPacket(f *Frame, typ uint32, b []byte, big bool) error {
	n := len(b)
	if typ == blockSPB {
		if n < 16 {
			return r.corrupt("simple packet block length %d is less than 16", n)
		}
		if len(r.ifaces) == 0 {
			return r.corrupt("simple packet block for undescribed interface 0 (the section describes 0)")
		}
		ifc := &r.ifaces[0]
		wire := u32(b[8:], big)
		caplen := min(wire, uint32(n-16))
		if ifc.snaplen != 0 {
			caplen = min(caplen, ifc.snaplen)
		}
		f.Time = r.lastTime
		f.LinkType = ifc.linkType
		f.Data = b[12 : 12+caplen : 12+caplen]
		f.WireLen = int(wire)
		f.NoVerify = false
		r.r += n
		return nil
	}
	if n < 32 {
		return r.corrupt("%s length %d is less than 32", blockName(typ), n)
	}
	var id uint32
	if typ == blockEPB {
		id = u32(b[8:], big)
	} else {
		id = uint32(u16(b[8:], big))
	}
	ts := uint64(u32(b[12:], big))<<32 | uint64(u32(b[16:], big))
	caplen, wire := u32(b[20:], big), u32(b[24:], big)
	if id >= uint32(len(r.ifaces)) {
		return r.corrupt("%s for undescribed interface %d (the section describes %d)", blockName(typ), id, len(r.ifaces))
	}
	if caplen > uint32(n-32) {
		return r.corrupt("%s captured length %d overruns the block length %d", blockName(typ), caplen, n)
	}
	ifc := &r.ifaces[id]
	t := ifc.nanos(ts)
	r.lastTime = t
	f.Time = t
	f.LinkType = ifc.linkType
	f.Data = b[28 : 28+caplen : 28+caplen]
	f.WireLen = int(max(wire, caplen))
	f.NoVerify = false
	r.r += n
	return nil
}

// ngSection takes in a Section Header Block: a new byte order, and no
// interface yet.
func (r *FileReader) ngSection(b []byte, big bool) error {
	if len(b) < 28 {
		return r.corrupt("section header block length %d is less than 28", len(b))
	}
	if major := u16(b[12:], big); major != 1 {
		return r.corrupt("unsupported pcapng version %d.%d", major, u16(b[14:], big))
	}
	r.big = big
	r.ifaces = r.ifaces[:0]
	return nil
}

// ngInterface takes in an Interface Description Block.
func (r *FileReader) ngInterface(b []byte, big bool) error {
	ifc, err := r.interfaceDescription(b, big)
	if err != nil {
		return err
	}
	r.ifaces = append(r.ifaces, ifc)
	r.addLinkType(ifc.linkType)
	return nil
}

// interfaceDescription parses an Interface Description Block.
func (r *FileReader) interfaceDescription(b []byte, big bool) (ngIface, error) {
	n := len(b)
	if n < 20 {
		return ngIface{}, r.corrupt("interface description block length %d is less than 20", n)
	}
	if len(r.ifaces) >= maxIfacesPerSHB {
		return ngIface{}, r.corrupt("more than %d interfaces in a section", maxIfacesPerSHB)
	}
	ifc := ngIface{
		linkType: uint32(u16(b[8:], big)),
		snaplen:  u32(b[12:], big),
	}
	resol := byte(6)
	var off int64
	opts := b[16 : n-4]
	for len(opts) >= 4 {
		code, l := u16(opts, big), int(u16(opts[2:], big))
		if code == optEndOfOpt {
			break
		}
		if 4+l > len(opts) {
			return ngIface{}, r.corrupt("interface description block option %d of %d bytes overruns the block", code, l)
		}
		v := opts[4 : 4+l]
		switch {
		case code == optTSResol && l >= 1:
			resol = v[0]
		case code == optTSOffset && l >= 8:
			off = int64(u64(v, big))
		}
		opts = opts[min(4+(l+3)&^3, len(opts)):]
	}
	exp := resol & 0x7f
	switch {
	case resol&0x80 != 0:
		if exp > 63 {
			return ngIface{}, r.corrupt("unsupported if_tsresol 0x%02x", resol)
		}
		ifc.kind, ifc.shift = tsBin, exp
	case exp <= 9:
		ifc.kind, ifc.mul = tsMul, 1
		for range 9 - exp {
			ifc.mul *= 10
		}
	case exp <= 19:
		ifc.kind, ifc.div = tsDiv, 1
		for range exp - 9 {
			ifc.div *= 10
		}
	default:
		return ngIface{}, r.corrupt("unsupported if_tsresol 0x%02x", resol)
	}
	ifc.off = off * 1e9
	return ifc, nil
}

// skipLong skips a block longer than MaxRecordLen of a type the reader does
// not parse, without buffering it whole.
func (r *FileReader) skipLong(typ, blen uint32, big bool) error {
	start := r.Offset()
	left := int64(blen) - 4 // all but the trailing length
	truncated := func(err error) error {
		got := int64(blen) - 4 - left + int64(r.w-r.r)
		if err != io.EOF {
			return r.readError(start, err, blockName(typ), int(blen), int(got))
		}
		return &FormatError{Offset: start, Truncated: true,
			Msg: fmt.Sprintf("%s of %d bytes is cut short after %d", blockName(typ), blen, got)}
	}
	for left > 0 {
		if r.w == r.r {
			if err := r.fill(1); err != nil {
				return truncated(err)
			}
		}
		k := min(left, int64(r.w-r.r))
		r.r += int(k)
		left -= k
	}
	if err := r.fill(4); err != nil {
		return truncated(err)
	}
	if t := u32(r.buf[r.r:], big); t != blen {
		return &FormatError{Offset: start,
			Msg: fmt.Sprintf("%s trailing length %d differs from leading length %d", blockName(typ), t, blen)}
	}
	r.r += 4
	return nil
}
