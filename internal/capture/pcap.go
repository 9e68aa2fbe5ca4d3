package capture

import (
	"encoding/binary"
	"fmt"
)

// pcap magic numbers, as read little-endian from the first four bytes.
const (
	magicPcapMicro      = 0xa1b2c3d4
	magicPcapMicroBE    = 0xd4c3b2a1
	magicPcapNano       = 0xa1b23c4d
	magicPcapNanoBE     = 0x4d3cb2a1
	magicPcapModified   = 0xa1b2cd34
	magicPcapModifiedBE = 0x34cdb2a1
)

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
