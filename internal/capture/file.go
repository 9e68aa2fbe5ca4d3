package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
)

// Frame is one captured frame. Data is valid until the next call to Next.
type Frame struct {
	Time     int64  // Unix time in nanoseconds
	LinkType uint32 // pcap LINKTYPE_* value of the frame's interface
	Data     []byte // captured bytes (caplen)
	WireLen  int    // length on the wire (>= len(Data); if a file says less, use len(Data))
	NoVerify bool   // checksums not computed yet (live capture of outgoing packets); always false from files
}

// MaxRecordLen is the longest record a FileReader accepts: the captured
// length of a pcap record, or the total length of a pcapng block that must be
// parsed. Longer lengths are reported as corruption, so that a damaged length
// field never makes the reader allocate more than this.
const MaxRecordLen = 16 << 20

const (
	firstBufSize    = 64 << 10 // read buffer until the stream proves longer
	readBufSize     = 1 << 20  // read buffer after that
	maxBufSize      = MaxRecordLen + 64
	maxIfacesPerSHB = 1 << 16 // interface ids of obsolete Packet Blocks are 16 bits
	gzipBufSize     = 64 << 10
)

// Magic numbers, as read little-endian from the first four bytes.
const (
	magicPcapMicro      = 0xa1b2c3d4
	magicPcapMicroBE    = 0xd4c3b2a1
	magicPcapNano       = 0xa1b23c4d
	magicPcapNanoBE     = 0x4d3cb2a1
	magicPcapModified   = 0xa1b2cd34
	magicPcapModifiedBE = 0x34cdb2a1
	ngByteOrderMagic    = 0x1a2b3c4d
)

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

// FormatError reports a corrupt or truncated capture. Offset is the byte
// offset, in the uncompressed stream, of the record (pcap record or pcapng
// block) that is bad; for a bad file header it is 0.
type FormatError struct {
	Offset int64  // byte offset of the bad record in the uncompressed stream
	Msg    string // what is wrong with it
	// Truncated is true when the stream ends inside the record.
	Truncated bool
	// Err is the underlying error, if any (for example a gzip checksum error).
	Err error
}

// Error returns a message such as "corrupt capture at byte offset 1234:
// record length 4294967295 exceeds 16777216" or "capture truncated at byte
// offset 1234: packet record of 66 bytes is cut short after 20".
func (e *FormatError) Error() string {
	var s string
	if e.Truncated {
		s = fmt.Sprintf("capture truncated at byte offset %d: %s", e.Offset, e.Msg)
	} else {
		s = fmt.Sprintf("corrupt capture at byte offset %d: %s", e.Offset, e.Msg)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, or nil.
func (e *FormatError) Unwrap() error { return e.Err }

// countingReader counts the bytes read from the caller's reader, for
// BytesRead, and makes its first error sticky.
type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	err error
}

// Read reads from the caller's reader, counting the bytes.
func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n < 0 || n > len(p) {
		n, err = 0, fmt.Errorf("reader returned invalid count %d", n)
	}
	c.n.Add(int64(n))
	if err != nil {
		c.err = err
	}
	return n, err
}

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

// FileReader reads frames from a pcap or pcapng stream, possibly gzip
// compressed. It reads the underlying io.Reader in large chunks, never seeks,
// and returns frames that point into its buffer, so that Next does not
// allocate in the steady state.
type FileReader struct {
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	base int64 // stream offset of buf[0]

	src    io.Reader // the capture stream: cr, or a gzip reader over it
	cr     *countingReader
	srcErr error // sticky error from src (io.EOF at its end)
	gz     bool
	err    error // sticky error returned by Next

	ng     bool // pcapng, else pcap
	big    bool // byte order of the file or current section
	format string

	// pcap
	hdrLen   int   // record header length: 16, or 24 for the modified format
	tsMul    int64 // 1000 for µs, 1 for ns
	linkType uint32

	// pcapng
	ifaces   []ngIface
	lastTime int64 // timestamp of the last packet, for Simple Packet Blocks

	linkTypes []uint32
	seenLT    [1 << 16 / 64]uint64 // bitmap of link types in linkTypes
}

// NewFileReader reads and checks the file header of a pcap or pcapng stream,
// possibly gzip compressed, and returns a reader for its frames. For pcapng
// it also takes in the interface descriptions that follow the section header.
// The error names what was found if the stream is neither format.
func NewFileReader(src io.Reader) (*FileReader, error) {
	cr := &countingReader{r: src}
	r := &FileReader{buf: make([]byte, firstBufSize), src: cr, cr: cr}
	err := r.fill(4)
	if r.w-r.r >= 2 && r.buf[r.r] == 0x1f && r.buf[r.r+1] == 0x8b {
		// Hand what was read so far, then the rest, to the gzip reader,
		// and decompress into a fresh buffer.
		raw := r.buf[r.r:r.w]
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(raw), cr), gzipBufSize)
		r.gz = true
		zr, zerr := gzip.NewReader(br)
		if zerr != nil {
			return nil, r.readError(0, zerr, "gzip header", 10, 0)
		}
		r.src = zr
		r.buf = make([]byte, firstBufSize)
		r.r, r.w, r.base, r.srcErr = 0, 0, 0, nil
		err = r.fill(4)
	}
	if err != nil {
		return nil, r.headerShort(err)
	}
	b := r.buf[r.r:r.w]
	switch m := binary.LittleEndian.Uint32(b); m {
	case magicPcapMicro, magicPcapMicroBE:
		return r.pcapHeader("pcap", m == magicPcapMicroBE, 16, 1000)
	case magicPcapNano, magicPcapNanoBE:
		return r.pcapHeader("pcap (ns)", m == magicPcapNanoBE, 16, 1)
	case magicPcapModified, magicPcapModifiedBE:
		return r.pcapHeader("pcap (modified)", m == magicPcapModifiedBE, 24, 1000)
	case blockSHB:
		r.ng = true
		r.format = r.formatName("pcapng")
		// The first block must be a good section header; then take in
		// what follows it up to the first packet.
		if err := r.nextNg(nil, true); err != nil {
			return nil, err
		}
		_ = r.nextNg(nil, false) // errors are left for Next to report
		return r, nil
	}
	what := "not a pcap or pcapng file"
	if r.gz {
		what = "not a pcap or pcapng file inside gzip"
	}
	return nil, &FormatError{Msg: fmt.Sprintf("%s (starts with % x)", what, b[:4])}
}

// formatName returns s, marked as compressed if the stream is.
func (r *FileReader) formatName(s string) string {
	if r.gz {
		return s + " (gzip)"
	}
	return s
}

// headerShort turns a failure to read the first bytes into an error.
func (r *FileReader) headerShort(err error) error {
	if err != io.EOF {
		return r.readError(0, err, "file header", 4, r.w-r.r)
	}
	if r.w == r.r {
		return &FormatError{Truncated: true, Msg: "empty input, no capture file header"}
	}
	return &FormatError{Truncated: true, Msg: fmt.Sprintf("input of %d bytes is too short for a capture file header", r.w-r.r)}
}

// pcapHeader reads the 24-byte file header of a pcap file.
func (r *FileReader) pcapHeader(format string, big bool, hdrLen int, tsMul int64) (*FileReader, error) {
	if err := r.fill(24); err != nil {
		return nil, r.short(err, 24, "pcap file header", false)
	}
	b := r.buf[r.r : r.r+24]
	r.big = big
	major, minor := u16(b[4:], r.big), u16(b[6:], r.big)
	if major != 2 {
		return nil, &FormatError{Msg: fmt.Sprintf("unsupported pcap version %d.%d", major, minor)}
	}
	r.linkType = u32(b[20:], r.big) & 0xffff
	r.addLinkType(r.linkType)
	r.hdrLen, r.tsMul = hdrLen, tsMul
	r.format = r.formatName(format)
	r.r += 24
	return r, nil
}

// Format returns the format of the stream: "pcap", "pcap (ns)",
// "pcap (modified)" or "pcapng", followed by " (gzip)" when compressed.
func (r *FileReader) Format() string { return r.format }

// LinkTypes returns the distinct link types of the interfaces described so
// far, in order of first appearance. A pcap file has exactly one.
func (r *FileReader) LinkTypes() []uint32 {
	return append([]uint32(nil), r.linkTypes...)
}

// Offset returns the byte offset, in the uncompressed stream, of the next
// record to read, which is the number of bytes consumed so far.
func (r *FileReader) Offset() int64 { return r.base + int64(r.r) }

// BytesRead returns the number of bytes read so far from the underlying
// io.Reader (compressed bytes for a gzip stream). It may be called from
// another goroutine, for example by a progress display.
func (r *FileReader) BytesRead() int64 { return r.cr.n.Load() }

// addLinkType records a link type seen in the stream.
func (r *FileReader) addLinkType(lt uint32) {
	lt &= 0xffff
	if r.seenLT[lt/64]&(1<<(lt%64)) == 0 {
		r.seenLT[lt/64] |= 1 << (lt % 64)
		r.linkTypes = append(r.linkTypes, lt)
	}
}

// Next reads the next frame into f. It returns io.EOF at a clean end of the
// stream, a *FormatError for a corrupt or truncated stream, or a wrapped read
// error. Once Next has returned an error it returns the same error again.
// f.Data points into the reader's buffer and is valid until the next call.
func (r *FileReader) Next(f *Frame) error {
	if r.err != nil {
		return r.err
	}
	var err error
	if r.ng {
		if r.nextEPB(f) {
			return nil
		}
		err = r.nextNg(f, false)
	} else {
		err = r.nextPcap(f)
	}
	if err != nil {
		r.err = err
	}
	return err
}

// u16 decodes a 16-bit integer in the given byte order.
func u16(b []byte, big bool) uint16 {
	if big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

// u32 decodes a 32-bit integer in the given byte order.
func u32(b []byte, big bool) uint32 {
	if big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// u64 decodes a 64-bit integer in the given byte order.
func u64(b []byte, big bool) uint64 {
	if big {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// fill makes at least n (<= maxBufSize) bytes available in buf[r:w]. It
// returns nil if it did, else io.EOF if the stream ended first, or the read
// error. It moves the unread bytes to the front of the buffer before reading.
// The buffer starts small, so that short captures do not cost a large one;
// it grows to readBufSize once the stream proves longer, and beyond that only
// as the bytes of a record longer than the buffer actually arrive, so that a
// length field alone never makes it grow.
func (r *FileReader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.srcErr != nil {
		return r.srcErr
	}
	if len(r.buf) < readBufSize && r.base+int64(r.w) >= int64(len(r.buf)) {
		r.grow()
	} else if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.base += int64(r.r)
		r.r = 0
	}
	for empty := 0; r.w-r.r < n; {
		if r.w == len(r.buf) {
			r.grow() // r.r is 0 and r.w < n <= maxBufSize: this makes room
		}
		m, err := r.src.Read(r.buf[r.w:])
		if m < 0 || m > len(r.buf)-r.w {
			m, err = 0, fmt.Errorf("reader returned invalid count %d", m)
		}
		r.w += m
		if err != nil {
			r.srcErr = err
			if r.w-r.r >= n {
				return nil
			}
			return err
		}
		if m == 0 {
			if empty++; empty >= 100 {
				r.srcErr = io.ErrNoProgress
				return r.srcErr
			}
		}
	}
	return nil
}

// grow replaces the buffer by one twice as large (at least readBufSize, at
// most maxBufSize) holding the unread bytes at its front.
func (r *FileReader) grow() {
	nb := make([]byte, min(max(2*len(r.buf), readBufSize), maxBufSize))
	r.w = copy(nb, r.buf[r.r:r.w])
	r.base += int64(r.r)
	r.r = 0
	r.buf = nb
}

// short turns a failed fill of need bytes for what into the error to return:
// io.EOF if clean and the stream ended between records, a truncation error,
// or a read error.
func (r *FileReader) short(err error, need int, what string, clean bool) error {
	avail := r.w - r.r
	if err != io.EOF {
		return r.readError(r.Offset(), err, what, need, avail)
	}
	if clean && avail == 0 {
		return io.EOF
	}
	return &FormatError{Offset: r.Offset(), Truncated: true,
		Msg: fmt.Sprintf("%s of %d bytes is cut short after %d", what, need, avail)}
}

// readError wraps a read error met while reading what (need bytes, avail of
// them read) at offset off. Errors of the gzip reader that are not errors of
// the underlying reader are format errors of the compressed stream.
func (r *FileReader) readError(off int64, err error, what string, need, avail int) error {
	if r.gz && (r.cr.err == nil || err != r.cr.err) {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			msg := "gzip stream ends early"
			if avail > 0 {
				msg = fmt.Sprintf("%s of %d bytes is cut short after %d (gzip stream ends early)", what, need, avail)
			}
			return &FormatError{Offset: off, Truncated: true, Msg: msg, Err: err}
		}
		return &FormatError{Offset: off, Msg: "bad gzip data", Err: err}
	}
	return fmt.Errorf("reading capture at byte offset %d: %w", off, err)
}

// corrupt returns a FormatError for the record at the current offset.
func (r *FileReader) corrupt(format string, args ...any) error {
	return &FormatError{Offset: r.Offset(), Msg: fmt.Sprintf(format, args...)}
}

// nextPcap reads the next record of a pcap file.
func (r *FileReader) nextPcap(f *Frame) error {
	h := r.hdrLen
	if r.w-r.r < h {
		if err := r.fill(h); err != nil {
			return r.short(err, h, "record header", true)
		}
	}
	b := r.buf[r.r:r.w]
	var sec, frac, caplen, wire uint32
	if r.big {
		sec = binary.BigEndian.Uint32(b[0:])
		frac = binary.BigEndian.Uint32(b[4:])
		caplen = binary.BigEndian.Uint32(b[8:])
		wire = binary.BigEndian.Uint32(b[12:])
	} else {
		sec = binary.LittleEndian.Uint32(b[0:])
		frac = binary.LittleEndian.Uint32(b[4:])
		caplen = binary.LittleEndian.Uint32(b[8:])
		wire = binary.LittleEndian.Uint32(b[12:])
	}
	if caplen > MaxRecordLen {
		return r.corrupt("record length %d exceeds %d", caplen, MaxRecordLen)
	}
	n := h + int(caplen)
	if len(b) < n {
		if err := r.fill(n); err != nil {
			return r.short(err, n, "packet record", false)
		}
		b = r.buf[r.r:r.w]
	}
	f.Time = int64(sec)*1e9 + int64(frac)*r.tsMul
	f.LinkType = r.linkType
	f.Data = b[h:n:n]
	f.WireLen = int(max(wire, caplen))
	f.NoVerify = false
	r.r += n
	return nil
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
		if r.w-r.r < 8 {
			if peek && (len(r.ifaces) > 0 || r.srcErr != nil) {
				return nil
			}
			if err := r.fill(8); err != nil {
				if peek {
					return nil
				}
				return r.short(err, 8, "block header", !shbOnly)
			}
		}
		b := r.buf[r.r:r.w]
		big := r.big
		typ := u32(b, big)
		if shbOnly && typ != blockSHB {
			return r.corrupt("first block is not a section header block")
		}
		if peek && (typ == blockEPB || typ == blockSPB || typ == blockPB) {
			return nil
		}
		if typ == blockSHB {
			// The section header sets the byte order of its section.
			if len(b) < 12 {
				if peek && len(r.ifaces) > 0 {
					return nil
				}
				if err := r.fill(12); err != nil {
					if peek {
						return nil
					}
					return r.short(err, 12, "section header block", false)
				}
				b = r.buf[r.r:r.w]
			}
			switch {
			case binary.LittleEndian.Uint32(b[8:]) == ngByteOrderMagic:
				big = false
			case binary.BigEndian.Uint32(b[8:]) == ngByteOrderMagic:
				big = true
			default:
				if peek {
					return nil
				}
				return r.corrupt("section header block has a bad byte-order magic (% x)", b[8:12])
			}
		}
		blen := u32(b[4:], big)
		if blen < 12 || blen%4 != 0 || blen > MaxRecordLen {
			if peek {
				return nil
			}
			if blen < 12 {
				return r.corrupt("%s length %d is less than 12", blockName(typ), blen)
			}
			if blen%4 != 0 {
				return r.corrupt("%s length %d is not a multiple of 4", blockName(typ), blen)
			}
			switch typ {
			case blockSHB, blockIDB, blockEPB, blockSPB, blockPB:
				return r.corrupt("%s length %d exceeds %d", blockName(typ), blen, MaxRecordLen)
			}
			if err := r.skipLong(typ, blen, big); err != nil {
				return err
			}
			continue
		}
		n := int(blen)
		if len(b) < n {
			if peek && len(r.ifaces) > 0 {
				return nil
			}
			if err := r.fill(n); err != nil {
				if peek {
					return nil
				}
				return r.short(err, n, blockName(typ), false)
			}
			b = r.buf[r.r:r.w]
		}
		b = b[:n]
		if t := u32(b[n-4:], big); t != blen {
			if peek {
				return nil
			}
			return r.corrupt("%s trailing length %d differs from leading length %d", blockName(typ), t, blen)
		}
		switch typ {
		case blockEPB, blockPB:
			if n < 32 {
				if peek {
					return nil
				}
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
		case blockSPB:
			if n < 16 {
				if peek {
					return nil
				}
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
		case blockSHB:
			if n < 28 {
				if peek {
					return nil
				}
				return r.corrupt("section header block length %d is less than 28", n)
			}
			if major := u16(b[12:], big); major != 1 {
				if peek {
					return nil
				}
				return r.corrupt("unsupported pcapng version %d.%d", major, u16(b[14:], big))
			}
			r.big = big
			r.ifaces = r.ifaces[:0]
		case blockIDB:
			ifc, err := r.interfaceDescription(b, big)
			if err != nil {
				if peek {
					return nil
				}
				return err
			}
			r.ifaces = append(r.ifaces, ifc)
			r.addLinkType(ifc.linkType)
		}
		r.r += n
		if shbOnly {
			return nil
		}
	}
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

// Buffered tells whether the next record is already read whole (or the end
// of the stream or an error is known), so that Next will not wait for the
// underlying reader. A reader of a pipe uses it to hand over what it has
// before it blocks.
func (r *FileReader) Buffered() bool {
	if r.err != nil || r.srcErr != nil {
		return true
	}
	avail := r.buf[r.r:r.w]
	if r.ng {
		if len(avail) < 8 {
			return false
		}
		return int(u32(avail[4:], r.big)) <= len(avail)
	}
	if len(avail) < r.hdrLen {
		return false
	}
	return r.hdrLen+int(u32(avail[8:], r.big)) <= len(avail)
}
