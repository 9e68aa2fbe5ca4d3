package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Link types used by the fixtures.
const (
	ltNull     = 0
	ltEthernet = 1
	ltRaw      = 101
	ltSLL      = 113
	ltSLL2     = 276
)

// t0 is the base time of the fixtures: a whole second, so that offsets of
// whole microseconds survive a µs pcap file.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC).UnixNano()

// payload returns n deterministic bytes that differ for each seed.
func payload(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + 1)
	}
	return b
}

// fr builds an expected frame.
func fr(tm int64, lt uint32, data []byte, wire int) Frame {
	return Frame{Time: tm, LinkType: lt, Data: data, WireLen: wire}
}

// byteWriter appends integers in a chosen byte order.
type byteWriter struct {
	big bool
	b   []byte
}

func (w *byteWriter) order() binary.AppendByteOrder {
	if w.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (w *byteWriter) u16(v uint16) *byteWriter { w.b = w.order().AppendUint16(w.b, v); return w }
func (w *byteWriter) u32(v uint32) *byteWriter { w.b = w.order().AppendUint32(w.b, v); return w }
func (w *byteWriter) u64(v uint64) *byteWriter { w.b = w.order().AppendUint64(w.b, v); return w }
func (w *byteWriter) raw(p []byte) *byteWriter { w.b = append(w.b, p...); return w }
func (w *byteWriter) pad4() *byteWriter {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	return w
}

// pcapBuilder writes classic pcap files by hand.
type pcapBuilder struct {
	byteWriter
	modified bool
}

func newPcap(big bool, magic uint32, linkType uint32) *pcapBuilder {
	p := &pcapBuilder{byteWriter: byteWriter{big: big}, modified: magic == magicPcapModified}
	p.u32(magic).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(linkType)
	return p
}

// rec appends a record; frac is in µs or ns as the magic says.
func (p *pcapBuilder) rec(sec, frac uint32, data []byte, wire uint32) *pcapBuilder {
	p.u32(sec).u32(frac).u32(uint32(len(data))).u32(wire)
	if p.modified {
		p.u32(7).u16(0x0800).raw([]byte{0, 0})
	}
	p.raw(data)
	return p
}

// ngBuilder writes pcapng files by hand.
type ngBuilder struct {
	byteWriter
}

// block appends a block of type typ with the given body (padded to 4).
func (n *ngBuilder) block(typ uint32, body []byte) *ngBuilder {
	l := 12 + (len(body)+3)&^3
	n.u32(typ).u32(uint32(l)).raw(body).pad4().u32(uint32(l))
	return n
}

// body returns a byteWriter in the builder's byte order.
func (n *ngBuilder) body() *byteWriter { return &byteWriter{big: n.big} }

// shb starts a section in the given byte order.
func (n *ngBuilder) shb(big bool) *ngBuilder {
	n.big = big
	return n.block(blockSHB, n.body().u32(ngByteOrderMagic).u16(1).u16(0).u64(^uint64(0)).b)
}

// opt is a pcapng option.
type opt struct {
	code uint16
	val  []byte
}

func (n *ngBuilder) options(w *byteWriter, opts []opt) {
	if len(opts) == 0 {
		return
	}
	for _, o := range opts {
		w.u16(o.code).u16(uint16(len(o.val))).raw(o.val).pad4()
	}
	w.u32(0)
}

func (n *ngBuilder) idb(linkType uint16, snaplen uint32, opts ...opt) *ngBuilder {
	w := n.body().u16(linkType).u16(0).u32(snaplen)
	n.options(w, opts)
	return n.block(blockIDB, w.b)
}

func (n *ngBuilder) epb(iface uint32, ts uint64, data []byte, wire uint32, opts ...opt) *ngBuilder {
	w := n.body().u32(iface).u32(uint32(ts >> 32)).u32(uint32(ts)).u32(uint32(len(data))).u32(wire).raw(data).pad4()
	n.options(w, opts)
	return n.block(blockEPB, w.b)
}

func (n *ngBuilder) pb(iface uint16, ts uint64, data []byte, wire uint32) *ngBuilder {
	w := n.body().u16(iface).u16(0).u32(uint32(ts >> 32)).u32(uint32(ts)).u32(uint32(len(data))).u32(wire).raw(data)
	return n.block(blockPB, w.b)
}

func (n *ngBuilder) spb(wire uint32, data []byte) *ngBuilder {
	return n.block(blockSPB, n.body().u32(wire).raw(data).b)
}

// resolOpt and offsetOpt build if_tsresol and if_tsoffset options.
func resolOpt(v byte) opt { return opt{optTSResol, []byte{v}} }

func offsetOpt(big bool, sec int64) opt {
	w := &byteWriter{big: big}
	return opt{optTSOffset, w.u64(uint64(sec)).b}
}

func gzipBytes(tb testing.TB, p []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(p); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// pcapgoPcap writes frames (all of one link type) with pcapgo's Writer.
func pcapgoPcap(tb testing.TB, nanos bool, lt uint32, frames []Frame) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if nanos {
		w = pcapgo.NewWriterNanos(&b)
	}
	if err := w.WriteFileHeader(65536, layers.LinkType(lt)); err != nil {
		tb.Fatal(err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Time), CaptureLength: len(f.Data), Length: f.WireLen}
		if err := w.WritePacket(ci, f.Data); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Bytes()
}

// pcapgoNg writes frames with pcapgo's NgWriter, one interface per distinct
// link type, in order of first appearance.
func pcapgoNg(tb testing.TB, frames []Frame) []byte {
	tb.Helper()
	var b bytes.Buffer
	ids := map[uint32]int{}
	var w *pcapgo.NgWriter
	for _, f := range frames {
		id, ok := ids[f.LinkType]
		if !ok {
			intf := pcapgo.NgInterface{Name: "if", LinkType: layers.LinkType(f.LinkType), SnapLength: 65536}
			var err error
			if w == nil {
				w, err = pcapgo.NewNgWriterInterface(&b, intf, pcapgo.DefaultNgWriterOptions)
			} else {
				id, err = w.AddInterface(intf)
			}
			if err != nil {
				tb.Fatal(err)
			}
			ids[f.LinkType] = id
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Time), CaptureLength: len(f.Data), Length: f.WireLen, InterfaceIndex: id}
		if err := w.WritePacket(ci, f.Data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// readAll reads every frame of p with a FileReader, copying the data.
func readAll(tb testing.TB, src io.Reader) (*FileReader, []Frame, error) {
	tb.Helper()
	r, err := NewFileReader(src)
	if err != nil {
		return nil, nil, err
	}
	var out []Frame
	for {
		var f Frame
		err := r.Next(&f)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return r, out, err
		}
		f.Data = bytes.Clone(f.Data)
		out = append(out, f)
	}
}

// pcapgoAll reads every frame of p with pcapgo: its pcap Reader or its
// pcapng NgReader with mixed link types.
func pcapgoAll(tb testing.TB, p []byte) []Frame {
	tb.Helper()
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var rd reader
	lt := uint32(0)
	head := p
	if len(p) > 2 && p[0] == 0x1f && p[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			tb.Fatal(err)
		}
		head, _ = io.ReadAll(zr)
	}
	if len(head) >= 4 && binary.LittleEndian.Uint32(head) == blockSHB {
		r, err := pcapgo.NewNgReader(bytes.NewReader(p), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			tb.Fatalf("pcapgo: %v", err)
		}
		rd = r
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(p))
		if err != nil {
			tb.Fatalf("pcapgo: %v", err)
		}
		rd = r
		lt = uint32(r.LinkType())
	}
	var out []Frame
	for {
		data, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("pcapgo after %d frames: %v", len(out), err)
		}
		f := Frame{Time: ci.Timestamp.UnixNano(), LinkType: lt, Data: data, WireLen: ci.Length}
		if len(ci.AncillaryData) > 0 {
			if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				f.LinkType = uint32(l)
			}
		}
		out = append(out, f)
	}
}

// compareFrames reports the first difference between two frame lists.
func compareFrames(tb testing.TB, got, want []Frame) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("got %d frames, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Time != w.Time || g.LinkType != w.LinkType || g.WireLen != w.WireLen || !bytes.Equal(g.Data, w.Data) || g.NoVerify {
			tb.Errorf("frame %d: got time %d lt %d wire %d len %d data % x\n\t\twant time %d lt %d wire %d len %d data % x",
				i, g.Time, g.LinkType, g.WireLen, len(g.Data), head(g.Data), w.Time, w.LinkType, w.WireLen, len(w.Data), head(w.Data))
			return
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }
