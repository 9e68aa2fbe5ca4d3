package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// fileCase is a capture and the frames it holds.
type fileCase struct {
	name      string
	data      []byte
	format    string
	linkTypes []uint32
	want      []Frame
	pcapgo    bool // pcapgo reads the same frames
}

func fileCases(t testing.TB) []fileCase {
	eth1, eth2, eth3 := payload(1, 66), payload(2, 60), payload(3, 1514)
	raw, sll, null := payload(4, 40), payload(5, 80), payload(6, 44)
	us := int64(1000)

	basic := []Frame{
		fr(t0+1*us, ltEthernet, eth1, 66),
		fr(t0+2500*us, ltEthernet, eth2, 1514), // truncated by the snap length
		fr(t0+999999*us, ltEthernet, eth3, 1514),
		fr(t0+3_000_000*us, ltEthernet, []byte{}, 60),
	}
	nanos := []Frame{
		fr(t0+123456789, ltEthernet, eth1, 66),
		fr(t0+999999999, ltEthernet, eth2, 60),
	}
	mixed := []Frame{
		fr(t0+1, ltEthernet, eth1, 66),
		fr(t0+2, ltRaw, raw, 40),
		fr(t0+3, ltSLL, sll, 80),
		fr(t0+4, ltEthernet, eth2, 60),
		fr(t0+5, ltNull, null, 44),
		fr(t0+6, ltSLL2, sll, 1500),
	}
	sec, usec := uint32(t0/1e9), uint32(1234)

	// Hand-written pcapng files.
	le, be := false, true
	bigNg := (&ngBuilder{}).shb(be).idb(ltEthernet, 0).idb(ltRaw, 0, resolOpt(9)).
		epb(0, uint64(t0/1000+7), eth1, 66).
		epb(1, uint64(t0+8), raw, 40)
	spbNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 64).idb(ltRaw, 0).
		spb(60, eth2).
		epb(1, uint64(t0/1000+5), raw, 40).
		spb(66, eth1[:64]). // snap length 64
		spb(1514, eth3[:64]).
		spb(30, eth2[:30])
	pbNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 0).idb(ltSLL, 0).
		pb(1, uint64(t0/1000+1), sll, 80).
		pb(0, uint64(t0/1000+2), eth1, 66)
	nrb := (&byteWriter{}).u16(1).u16(8).raw([]byte{10, 0, 0, 1, 'a', 0, 0, 0}).u16(0).u16(0).b
	isb := (&byteWriter{}).u32(0).u32(0).u32(1).b
	dsb := (&byteWriter{}).u32(0x544c534b).u32(5).raw([]byte("hello")).b
	unknownNg := (&ngBuilder{}).shb(le).block(blockNRB, nrb).idb(ltEthernet, 0).
		block(0x00000bad, []byte("custom")).
		epb(0, uint64(t0/1000+1), eth1, 66, opt{1, []byte("a comment")}, opt{2, []byte{1, 0, 0, 0}}).
		block(blockISB, isb).block(blockDSB, dsb).block(0x40000bad, []byte("x")).block(0x80000001, nil).
		block(7, nil).block(8, []byte("y")).
		epb(0, uint64(t0/1000+2), eth2, 60)
	sectionsNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 0).epb(0, uint64(t0/1000+1), eth1, 66).
		shb(be).idb(ltSLL, 0).idb(ltRaw, 0).epb(1, uint64(t0/1000+2), raw, 40).epb(0, uint64(t0/1000+3), sll, 80).
		shb(le).idb(ltNull, 0).epb(0, uint64(t0/1000+4), null, 44)
	bin := uint64(sec)<<20 | 0x81234
	binNs := t0 + int64((uint64(0x81234)*1e9)>>20)
	// pcapgo reads if_tsresol 0 as 6 and rounds binary fractions.
	binNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 0, resolOpt(0x80|20)).idb(ltRaw, 0, resolOpt(0x80)).
		idb(ltNull, 0, opt{2, []byte("eth0")}, resolOpt(0)).idb(ltSLL, 0, resolOpt(0x80|63)).
		epb(0, bin, eth1, 66).epb(1, uint64(sec), raw, 40).epb(2, uint64(sec), null, 44).
		epb(3, 1<<63|1<<62, sll, 80)
	decNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 0, resolOpt(3)).idb(ltRaw, 0, resolOpt(9)).
		idb(ltSLL, 0, resolOpt(12)).idb(ltNull, 0, opt{2, []byte("eth0")}, resolOpt(19)).
		epb(0, uint64(t0/1e6+17), eth1, 66).epb(1, uint64(t0+18), raw, 40).
		epb(2, 5e12+19999, sll, 80).epb(3, 1e19-1, null, 44)
	offNg := (&ngBuilder{}).shb(le).idb(ltEthernet, 0, offsetOpt(le, int64(sec)), resolOpt(6)).
		epb(0, 1_500_000, eth1, 66)
	offBE := (&ngBuilder{}).shb(be).idb(ltEthernet, 0, offsetOpt(be, int64(sec))).
		epb(0, 2_500_000, eth1, 66)
	negOff := (&ngBuilder{}).shb(le).idb(ltEthernet, 0, offsetOpt(le, -10)).
		epb(0, uint64(t0/1000), eth1, 66)

	return []fileCase{
		{name: "pcapgo µs", data: pcapgoPcap(t, false, ltEthernet, basic), format: "pcap",
			linkTypes: []uint32{ltEthernet}, want: basic, pcapgo: true},
		{name: "pcapgo ns", data: pcapgoPcap(t, true, ltRaw, nanosWith(nanos, ltRaw)), format: "pcap (ns)",
			linkTypes: []uint32{ltRaw}, want: nanosWith(nanos, ltRaw), pcapgo: true},
		{name: "empty pcap", data: pcapgoPcap(t, false, ltEthernet, nil), format: "pcap",
			linkTypes: []uint32{ltEthernet}, pcapgo: true},
		{name: "big-endian pcap µs",
			data:   newPcap(be, magicPcapMicro, ltSLL).rec(sec, usec, sll, 80).rec(sec+1, 999999, eth1, 1500).b,
			format: "pcap", linkTypes: []uint32{ltSLL}, pcapgo: true,
			want: []Frame{fr(t0+int64(usec)*us, ltSLL, sll, 80), fr(t0+1e9+999999*us, ltSLL, eth1, 1500)}},
		{name: "big-endian pcap ns",
			data:   newPcap(be, magicPcapNano, ltEthernet).rec(sec, 123456789, eth1, 66).b,
			format: "pcap (ns)", linkTypes: []uint32{ltEthernet}, pcapgo: true,
			want: []Frame{fr(t0+123456789, ltEthernet, eth1, 66)}},
		{name: "modified pcap",
			data:   newPcap(le, magicPcapModified, ltEthernet).rec(sec, usec, eth1, 66).rec(sec, usec+1, eth2, 60).b,
			format: "pcap (modified)", linkTypes: []uint32{ltEthernet},
			want: []Frame{fr(t0+int64(usec)*us, ltEthernet, eth1, 66), fr(t0+int64(usec+1)*us, ltEthernet, eth2, 60)}},
		{name: "big-endian modified pcap",
			data:   newPcap(be, magicPcapModified, ltRaw).rec(sec, usec, raw, 40).b,
			format: "pcap (modified)", linkTypes: []uint32{ltRaw},
			want: []Frame{fr(t0+int64(usec)*us, ltRaw, raw, 40)}},
		{name: "pcap link type with FCS bits",
			data:   newPcap(le, magicPcapMicro, 0x14000000|ltEthernet).rec(sec, usec, eth1, 66).b,
			format: "pcap", linkTypes: []uint32{ltEthernet},
			want: []Frame{fr(t0+int64(usec)*us, ltEthernet, eth1, 66)}},
		{name: "pcap wire length below captured length",
			data:   newPcap(le, magicPcapMicro, ltEthernet).rec(sec, usec, eth1, 10).b,
			format: "pcap", linkTypes: []uint32{ltEthernet},
			want: []Frame{fr(t0+int64(usec)*us, ltEthernet, eth1, 66)}},
		{name: "pcapgo pcapng mixed link types", data: pcapgoNg(t, mixed), format: "pcapng",
			linkTypes: []uint32{ltEthernet, ltRaw, ltSLL, ltNull, ltSLL2}, want: mixed, pcapgo: true},
		{name: "empty pcapng", data: (&ngBuilder{}).shb(le).b, format: "pcapng", pcapgo: true},
		{name: "pcapng interfaces only", data: (&ngBuilder{}).shb(be).idb(ltRaw, 0).b, format: "pcapng",
			linkTypes: []uint32{ltRaw}, pcapgo: true},
		{name: "big-endian pcapng", data: bigNg.b, format: "pcapng", linkTypes: []uint32{ltEthernet, ltRaw}, pcapgo: true,
			want: []Frame{fr(t0+7*us, ltEthernet, eth1, 66), fr(t0+8, ltRaw, raw, 40)}},
		{name: "simple packet blocks", data: spbNg.b, format: "pcapng", linkTypes: []uint32{ltEthernet, ltRaw},
			want: []Frame{
				fr(0, ltEthernet, eth2, 60),
				fr(t0+5*us, ltRaw, raw, 40),
				fr(t0+5*us, ltEthernet, eth1[:64], 66),
				fr(t0+5*us, ltEthernet, eth3[:64], 1514),
				fr(t0+5*us, ltEthernet, eth2[:30], 30),
			}},
		{name: "obsolete packet blocks", data: pbNg.b, format: "pcapng", linkTypes: []uint32{ltEthernet, ltSLL}, pcapgo: true,
			want: []Frame{fr(t0+1*us, ltSLL, sll, 80), fr(t0+2*us, ltEthernet, eth1, 66)}},
		{name: "unknown blocks skipped", data: unknownNg.b, format: "pcapng", linkTypes: []uint32{ltEthernet}, pcapgo: true,
			want: []Frame{fr(t0+1*us, ltEthernet, eth1, 66), fr(t0+2*us, ltEthernet, eth2, 60)}},
		{name: "three sections", data: sectionsNg.b, format: "pcapng",
			linkTypes: []uint32{ltEthernet, ltSLL, ltRaw, ltNull}, pcapgo: true,
			want: []Frame{fr(t0+1*us, ltEthernet, eth1, 66), fr(t0+2*us, ltRaw, raw, 40),
				fr(t0+3*us, ltSLL, sll, 80), fr(t0+4*us, ltNull, null, 44)}},
		{name: "if_tsresol power of 2 and 0", data: binNg.b, format: "pcapng",
			linkTypes: []uint32{ltEthernet, ltRaw, ltNull, ltSLL}, want: []Frame{fr(binNs, ltEthernet, eth1, 66),
				fr(t0, ltRaw, raw, 40), fr(t0, ltNull, null, 44), fr(1_500_000_000, ltSLL, sll, 80)}},
		{name: "if_tsresol power of 10", data: decNg.b, format: "pcapng",
			linkTypes: []uint32{ltEthernet, ltRaw, ltSLL, ltNull}, pcapgo: true,
			want: []Frame{fr(t0+17e6, ltEthernet, eth1, 66), fr(t0+18, ltRaw, raw, 40),
				fr(5e9+19, ltSLL, sll, 80), fr(999_999_999, ltNull, null, 44)}},
		{name: "if_tsoffset", data: offNg.b, format: "pcapng", linkTypes: []uint32{ltEthernet}, pcapgo: true,
			want: []Frame{fr(t0+1_500_000*us, ltEthernet, eth1, 66)}},
		{name: "big-endian if_tsoffset", data: offBE.b, format: "pcapng", linkTypes: []uint32{ltEthernet}, pcapgo: true,
			want: []Frame{fr(t0+2_500_000*us, ltEthernet, eth1, 66)}},
		{name: "negative if_tsoffset", data: negOff.b, format: "pcapng", linkTypes: []uint32{ltEthernet},
			want: []Frame{fr(t0-10e9, ltEthernet, eth1, 66)}},
	}
}

func nanosWith(fs []Frame, lt uint32) []Frame {
	out := slices.Clone(fs)
	for i := range out {
		out[i].LinkType = lt
	}
	return out
}

func TestFileReaderFormats(t *testing.T) {
	for _, tc := range fileCases(t) {
		for _, gz := range []bool{false, true} {
			name, data, format := tc.name, tc.data, tc.format
			if gz {
				name, data, format = name+" gzip", gzipBytes(t, data), format+" (gzip)"
			}
			t.Run(name, func(t *testing.T) {
				r, got, err := readAll(t, bytes.NewReader(data))
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				compareFrames(t, got, tc.want)
				if r.Format() != format {
					t.Errorf("Format() = %q, want %q", r.Format(), format)
				}
				if !slices.Equal(r.LinkTypes(), tc.linkTypes) {
					t.Errorf("LinkTypes() = %v, want %v", r.LinkTypes(), tc.linkTypes)
				}
				if !gz && r.Offset() != int64(len(data)) {
					t.Errorf("Offset() at the end = %d, want %d", r.Offset(), len(data))
				}
				if r.BytesRead() != int64(len(data)) {
					t.Errorf("BytesRead() at the end = %d, want %d", r.BytesRead(), len(data))
				}
				var f Frame
				if err := r.Next(&f); err != io.EOF {
					t.Errorf("Next after the end = %v, want io.EOF", err)
				}
			})
		}
	}
}

// TestFileReaderMatchesPcapgo checks that every frame equals what pcapgo's
// readers return for the same file.
func TestFileReaderMatchesPcapgo(t *testing.T) {
	for _, tc := range fileCases(t) {
		if !tc.pcapgo {
			continue
		}
		for _, gz := range []bool{false, true} {
			name, data := tc.name, tc.data
			if gz {
				name, data = name+" gzip", gzipBytes(t, data)
			}
			t.Run(name, func(t *testing.T) {
				_, got, err := readAll(t, bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				compareFrames(t, got, pcapgoAll(t, data))
			})
		}
	}
}

// TestFileReaderChunking reads every case through readers that return few
// bytes at a time, or data together with io.EOF.
func TestFileReaderChunking(t *testing.T) {
	wrappers := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for _, tc := range fileCases(t) {
		for wname, wrap := range wrappers {
			t.Run(tc.name+"/"+wname, func(t *testing.T) {
				_, got, err := readAll(t, wrap(bytes.NewReader(tc.data)))
				if err != nil {
					t.Fatal(err)
				}
				compareFrames(t, got, tc.want)
			})
		}
	}
}

// TestFileReaderLinkTypesAtOpen checks that the interfaces described before
// the first packet are known as soon as the reader is made.
func TestFileReaderLinkTypesAtOpen(t *testing.T) {
	data := (&ngBuilder{}).shb(false).idb(ltEthernet, 0).idb(ltRaw, 0).block(blockNRB, []byte{0, 0, 0, 0}).idb(ltSLL, 0).
		epb(0, 1, payload(1, 60), 60).idb(ltNull, 0).b
	r, err := NewFileReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{ltEthernet, ltRaw, ltSLL}; !slices.Equal(r.LinkTypes(), want) {
		t.Errorf("LinkTypes() at open = %v, want %v", r.LinkTypes(), want)
	}
	if r.Offset() != 28+20+20+16+20 {
		t.Errorf("Offset() at open = %d, want %d", r.Offset(), 28+20+20+16+20)
	}
	var f Frame
	for r.Next(&f) == nil {
	}
	if want := []uint32{ltEthernet, ltRaw, ltSLL, ltNull}; !slices.Equal(r.LinkTypes(), want) {
		t.Errorf("LinkTypes() at the end = %v, want %v", r.LinkTypes(), want)
	}
}

// TestFileReaderLargeRecords reads records longer than the read buffer, and
// skips a block of an unknown type longer than MaxRecordLen.
func TestFileReaderLargeRecords(t *testing.T) {
	big1, big2 := payload(7, 3<<20), payload(8, MaxRecordLen-16)
	small := payload(9, 70)
	p := newPcap(false, magicPcapNano, ltEthernet).rec(1, 2, small, 70).rec(1, 3, big1, 1<<30).rec(1, 4, small, 70).
		rec(1, 5, big2, uint32(len(big2)))
	want := []Frame{
		fr(1e9+2, ltEthernet, small, 70), fr(1e9+3, ltEthernet, big1, 1<<30),
		fr(1e9+4, ltEthernet, small, 70), fr(1e9+5, ltEthernet, big2, len(big2)),
	}
	_, got, err := readAll(t, bytes.NewReader(p.b))
	if err != nil {
		t.Fatal(err)
	}
	compareFrames(t, got, want)

	hugeBody := make([]byte, MaxRecordLen+1000)
	ng := (&ngBuilder{}).shb(false).idb(ltEthernet, 0, resolOpt(9)).epb(0, 5, small, 70).
		block(0x00000bad, hugeBody).epb(0, 6, big1, uint32(len(big1))).epb(0, 7, small, 70)
	for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.HalfReader} {
		_, got, err = readAll(t, wrap(bytes.NewReader(ng.b)))
		if err != nil {
			t.Fatal(err)
		}
		compareFrames(t, got, []Frame{fr(5, ltEthernet, small, 70), fr(6, ltEthernet, big1, len(big1)), fr(7, ltEthernet, small, 70)})
	}
}

// gzipStored compresses p without compression, so that a cut at byte
// 10+5+k of the result leaves exactly k bytes of p readable.
func gzipStored(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.NoCompression)
	zw.Write(p)
	zw.Close()
	return b.Bytes()
}

// errorCase is a corrupt or truncated capture and the error it gives.
type errorCase struct {
	name   string
	data   []byte
	frames int // frames read before the error; -1: NewFileReader fails
	msg    string
}

func errorCases(t testing.TB) []errorCase {
	le := false
	eth := payload(1, 60)
	pcap1 := newPcap(le, magicPcapMicro, ltEthernet).rec(1, 2, eth, 60).b // 100 bytes
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	ng1 := (&ngBuilder{}).shb(le).idb(ltEthernet, 0).epb(0, 1, eth, 60).b // SHB 28 + IDB 20 + EPB 92 = 140 bytes
	epb := (&ngBuilder{}).epb(0, 2, eth, 60).b                            // 92 bytes
	patch := func(b []byte, off int, v ...byte) []byte {
		b = slices.Clone(b)
		copy(b[off:], v)
		return b
	}
	le32 := func(v uint32) []byte { return (&byteWriter{}).u32(v).b }
	badVersion := patch(pcap1, 4, 3, 0)
	gzPcap := gzipStored(t, cat(pcap1, (&pcapBuilder{byteWriter: byteWriter{}}).rec(3, 4, eth, 60).b)) // 176 bytes inside
	gzBadSum := gzipBytes(t, pcap1)
	gzBadSum[len(gzBadSum)-8] ^= 0xff

	return []errorCase{
		{"empty input", nil, -1, "capture truncated at byte offset 0: empty input, no capture file header"},
		{"too short for a magic", []byte{0xd4, 0xc3}, -1,
			"capture truncated at byte offset 0: input of 2 bytes is too short for a capture file header"},
		{"garbage magic", []byte("<!DOCTYPE html>"), -1,
			"corrupt capture at byte offset 0: not a pcap or pcapng file (starts with 3c 21 44 4f)"},
		{"truncated pcap header", pcap1[:10], -1,
			"capture truncated at byte offset 0: pcap file header of 24 bytes is cut short after 10"},
		{"bad pcap version", badVersion, -1, "corrupt capture at byte offset 0: unsupported pcap version 3.4"},
		{"truncated record header", cat(pcap1, pcap1[24:29]), 1,
			"capture truncated at byte offset 100: record header of 16 bytes is cut short after 5"},
		{"truncated record data", cat(pcap1, pcap1[24:44]), 1,
			"capture truncated at byte offset 100: packet record of 76 bytes is cut short after 20"},
		{"absurd record length", cat(pcap1, patch(pcap1[24:], 8, 0xff, 0xff, 0xff, 0xff)), 1,
			"corrupt capture at byte offset 100: record length 4294967295 exceeds 16777216"},
		{"record length just over the bound", cat(pcap1, patch(pcap1[24:], 8, le32(MaxRecordLen+1)...)), 1,
			"corrupt capture at byte offset 100: record length 16777217 exceeds 16777216"},
		{"truncated modified record header",
			newPcap(le, magicPcapModified, ltEthernet).rec(1, 2, eth, 60).b[:24+20], 0,
			"capture truncated at byte offset 24: record header of 24 bytes is cut short after 20"},

		{"truncated section header", ng1[:20], -1,
			"capture truncated at byte offset 0: section header block of 28 bytes is cut short after 20"},
		{"truncated section header magic", ng1[:10], -1,
			"capture truncated at byte offset 0: section header block of 12 bytes is cut short after 10"},
		{"bad byte-order magic", patch(ng1, 8, 0x44, 0x33, 0x22, 0x11), -1,
			"corrupt capture at byte offset 0: section header block has a bad byte-order magic (44 33 22 11)"},
		{"unsupported pcapng version", patch(ng1, 12, 2, 0), -1,
			"corrupt capture at byte offset 0: unsupported pcapng version 2.0"},
		{"first section header length not a multiple of 4", patch(ng1, 4, 30), -1,
			"corrupt capture at byte offset 0: section header block length 30 is not a multiple of 4"},
		{"truncated block header", cat(ng1, epb[:3]), 1,
			"capture truncated at byte offset 140: block header of 8 bytes is cut short after 3"},
		{"truncated block", cat(ng1, epb[:40]), 1,
			"capture truncated at byte offset 140: enhanced packet block of 92 bytes is cut short after 40"},
		{"block length not a multiple of 4", cat(ng1, patch(epb, 4, 102)), 1,
			"corrupt capture at byte offset 140: enhanced packet block length 102 is not a multiple of 4"},
		{"block length less than 12", cat(ng1, patch(epb, 4, 8)), 1,
			"corrupt capture at byte offset 140: enhanced packet block length 8 is less than 12"},
		{"enhanced packet block too short", cat(ng1, (&ngBuilder{}).block(blockEPB, make([]byte, 16)).b), 1,
			"corrupt capture at byte offset 140: enhanced packet block length 28 is less than 32"},
		{"absurd block length", cat(ng1, patch(epb, 4, 0xfc, 0xff, 0xff, 0xff)), 1,
			"corrupt capture at byte offset 140: enhanced packet block length 4294967292 exceeds 16777216"},
		{"mismatched trailing length", cat(ng1, patch(epb, 88, 96)), 1,
			"corrupt capture at byte offset 140: enhanced packet block trailing length 96 differs from leading length 92"},
		{"captured length overruns the block", cat(ng1, patch(epb, 20, 61)), 1,
			"corrupt capture at byte offset 140: enhanced packet block captured length 61 overruns the block length 92"},
		{"packet on undescribed interface", cat(ng1, patch(epb, 8, 2)), 1,
			"corrupt capture at byte offset 140: enhanced packet block for undescribed interface 2 (the section describes 1)"},
		{"obsolete packet on undescribed interface", cat(ng1, (&ngBuilder{}).pb(1, 2, eth, 60).b), 1,
			"corrupt capture at byte offset 140: packet block for undescribed interface 1 (the section describes 1)"},
		{"simple packet without interface", (&ngBuilder{}).shb(le).spb(60, eth).b, 0,
			"corrupt capture at byte offset 28: simple packet block for undescribed interface 0 (the section describes 0)"},
		{"new section forgets interfaces", cat(ng1, (&ngBuilder{}).shb(true).epb(0, 2, eth, 60).b), 1,
			"corrupt capture at byte offset 168: enhanced packet block for undescribed interface 0 (the section describes 0)"},
		{"bad byte-order magic in second section", cat(ng1, patch(ng1[:28], 8, 1, 2, 3, 4)), 1,
			"corrupt capture at byte offset 140: section header block has a bad byte-order magic (01 02 03 04)"},
		{"interface option overruns the block",
			(&ngBuilder{}).shb(le).block(blockIDB, (&byteWriter{}).u16(1).u16(0).u32(0).u16(optTSResol).u16(200).u32(6).b).b, 0,
			"corrupt capture at byte offset 28: interface description block option 9 of 200 bytes overruns the block"},
		{"unsupported if_tsresol", (&ngBuilder{}).shb(le).idb(ltEthernet, 0, resolOpt(0x7f)).b, 0,
			"corrupt capture at byte offset 28: unsupported if_tsresol 0x7f"},
		{"unsupported binary if_tsresol", (&ngBuilder{}).shb(le).idb(ltEthernet, 0, resolOpt(0xc0)).b, 0,
			"corrupt capture at byte offset 28: unsupported if_tsresol 0xc0"},
		{"interface description block too short", (&ngBuilder{}).shb(le).block(blockIDB, []byte{1, 0, 0, 0}).b, 0,
			"corrupt capture at byte offset 28: interface description block length 16 is less than 20"},
		{"huge unknown block truncated", cat(ng1, le32(0xbad), le32(20<<20), make([]byte, 92)), 1,
			"capture truncated at byte offset 140: block of type 0x00000bad of 20971520 bytes is cut short after 100"},
		{"huge unknown block with bad trailer", cat(ng1, le32(0xbad), le32(20<<20), make([]byte, 20<<20-8)), 1,
			"corrupt capture at byte offset 140: block of type 0x00000bad trailing length 0 differs from leading length 20971520"},
		{"huge packet block", cat(ng1, le32(blockEPB), le32(20<<20)), 1,
			"corrupt capture at byte offset 140: enhanced packet block length 20971520 exceeds 16777216"},

		{"gzip header only", []byte{0x1f, 0x8b, 8}, -1,
			"capture truncated at byte offset 0: gzip stream ends early: unexpected EOF"},
		{"gzip of nothing", gzipBytes(t, nil), -1, "capture truncated at byte offset 0: empty input, no capture file header"},
		{"gzip of garbage", gzipBytes(t, []byte("hello, world")), -1,
			"corrupt capture at byte offset 0: not a pcap or pcapng file inside gzip (starts with 68 65 6c 6c)"},
		{"truncated gzip stream in a record", gzPcap[:15+130], 1,
			"capture truncated at byte offset 100: packet record of 76 bytes is cut short after 30 (gzip stream ends early): unexpected EOF"},
		{"truncated gzip stream between records", gzPcap[:15+176], 2,
			"capture truncated at byte offset 176: gzip stream ends early: unexpected EOF"},
		{"gzip checksum error", gzBadSum, 1,
			"corrupt capture at byte offset 100: bad gzip data: gzip: invalid checksum"},
	}
}

func TestFileReaderErrors(t *testing.T) {
	for _, tc := range errorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewFileReader(bytes.NewReader(tc.data))
			n := -1
			if err == nil {
				n = 0
				var f Frame
				for {
					if err = r.Next(&f); err != nil {
						break
					}
					n++
				}
				var f2 Frame
				if err2 := r.Next(&f2); err2 != err {
					t.Errorf("second Next after the error = %v, want the same error", err2)
				}
			}
			if err == nil || err.Error() != tc.msg {
				t.Errorf("error = %v\n\t\t  want %s", err, tc.msg)
			}
			if n != tc.frames {
				t.Errorf("read %d frames before the error, want %d", n, tc.frames)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			if !strings.Contains(tc.msg, " offset "+strconv.FormatInt(fe.Offset, 10)+":") {
				t.Errorf("FormatError.Offset = %d, not the one in %q", fe.Offset, tc.msg)
			}
		})
	}
}

// errAfter returns the bytes of p, then err.
type errAfter struct {
	p   []byte
	err error
}

func (e *errAfter) Read(b []byte) (int, error) {
	if len(e.p) == 0 {
		return 0, e.err
	}
	n := copy(b, e.p)
	e.p = e.p[n:]
	return n, nil
}

func TestFileReaderReadError(t *testing.T) {
	eth := payload(1, 60)
	p := newPcap(false, magicPcapMicro, ltEthernet).rec(1, 2, eth, 60).rec(1, 3, eth, 60).b
	ng := (&ngBuilder{}).shb(false).idb(ltEthernet, 0).epb(0, 1, eth, 60).epb(0, 2, eth, 60).b
	boom := errors.New("disk on fire")
	tests := []struct {
		name string
		src  io.Reader
		msg  string
	}{
		{"pcap", &errAfter{p: p[:130], err: boom}, "reading capture at byte offset 100: disk on fire"},
		{"pcapng", &errAfter{p: ng[:150], err: boom}, "reading capture at byte offset 140: disk on fire"},
		{"gzip", &errAfter{p: gzipStored(t, p)[:15+130], err: boom}, "reading capture at byte offset 100: disk on fire"},
		{"at open", &errAfter{err: boom}, "reading capture at byte offset 0: disk on fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := readAll(t, tc.src)
			if err == nil || err.Error() != tc.msg {
				t.Errorf("error = %v, want %s", err, tc.msg)
			}
			if !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the read error", err)
			}
			if tc.name != "at open" && len(got) != 1 {
				t.Errorf("read %d frames, want 1", len(got))
			}
		})
	}
}

// TestFileReaderNoProgress checks that a reader returning nothing forever
// ends in an error rather than a hang.
func TestFileReaderNoProgress(t *testing.T) {
	_, err := NewFileReader(iotest.ErrReader(nil))
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("error = %v, want io.ErrNoProgress", err)
	}
}

// TestFileReaderBytesRead reads BytesRead from another goroutine while the
// file is read (run with -race).
func TestFileReaderBytesRead(t *testing.T) {
	frames := benchFrames(20000)
	for _, gz := range []bool{false, true} {
		data := pcapgoNg(t, frames)
		if gz {
			data = gzipBytes(t, data)
		}
		r, err := NewFileReader(iotest.HalfReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := r.BytesRead()
				if n < last || n > int64(len(data)) {
					t.Errorf("BytesRead() = %d after %d (size %d)", n, last, len(data))
					return
				}
				last = n
			}
		})
		var f Frame
		n := 0
		for r.Next(&f) == nil {
			n++
		}
		close(stop)
		wg.Wait()
		if n != len(frames) || r.BytesRead() != int64(len(data)) {
			t.Errorf("gzip %v: read %d frames, %d bytes; want %d, %d", gz, n, r.BytesRead(), len(frames), len(data))
		}
	}
}

// TestFileReaderNoAllocs checks that Next does not allocate in the steady
// state.
func TestFileReaderNoAllocs(t *testing.T) {
	frames := benchFrames(50000)
	files := map[string][]byte{
		"pcap":   pcapgoPcap(t, false, ltEthernet, frames),
		"pcapng": pcapgoNg(t, frames),
	}
	files["pcap gzip"] = gzipBytes(t, files["pcap"])
	files["pcapng gzip"] = gzipBytes(t, files["pcapng"])
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			r, err := NewFileReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var f Frame
			for range 100 {
				if err := r.Next(&f); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(20000, func() {
				if err := r.Next(&f); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Next allocates %.2f times per call", allocs)
			}
		})
	}
}

// referenceDir holds the reference captures shared by the project.
const referenceDir = "../../../shared/testdata/pcap"

// TestFileReaderReferenceCaptures reads every reference capture and compares
// it frame by frame with pcapgo.
func TestFileReaderReferenceCaptures(t *testing.T) {
	entries, err := os.ReadDir(referenceDir)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("the reference captures in ../shared are not present (%s)", referenceDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".pcap") || strings.HasSuffix(e.Name(), ".pcapng") ||
			strings.HasSuffix(e.Name(), ".gz")) {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(referenceDir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			want := pcapgoAll(t, data)
			for _, gz := range []bool{false, true} {
				src := data
				if gz {
					src = gzipBytes(t, data)
				}
				r, got, err := readAll(t, bytes.NewReader(src))
				if err != nil {
					t.Fatalf("gzip %v: %v", gz, err)
				}
				compareFrames(t, got, want)
				if len(got) == 0 {
					t.Errorf("no frames")
				}
				if len(r.LinkTypes()) == 0 {
					t.Errorf("no link types")
				}
			}
		})
	}
	if n == 0 {
		t.Skipf("no capture files in %s", referenceDir)
	}
}

// TestFileReaderLengthDoesNotAllocate checks that a record claiming the
// largest accepted length in a short stream does not make the buffer grow
// beyond what arrives.
func TestFileReaderLengthDoesNotAllocate(t *testing.T) {
	p := newPcap(false, magicPcapMicro, ltEthernet).b
	p = (&byteWriter{b: p}).u32(1).u32(2).u32(MaxRecordLen).u32(MaxRecordLen).raw(make([]byte, 100)).b
	ng := (&ngBuilder{}).shb(false).idb(ltEthernet, 0).b
	ng = (&byteWriter{b: ng}).u32(blockEPB).u32(MaxRecordLen).raw(make([]byte, 100)).b
	for _, data := range [][]byte{p, ng} {
		r, err := NewFileReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var f Frame
		err = r.Next(&f)
		var fe *FormatError
		if !errors.As(err, &fe) || !fe.Truncated {
			t.Errorf("error = %v, want a truncation", err)
		}
		if len(r.buf) > readBufSize {
			t.Errorf("buffer grew to %d bytes for a stream of %d", len(r.buf), len(data))
		}
	}
}
