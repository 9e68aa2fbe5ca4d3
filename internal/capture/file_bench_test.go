package capture

import (
	"bytes"
	"io"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// benchPackets is the number of frames in the benchmark captures.
const benchPackets = 100_000

// benchFrames returns n 66-byte Ethernet frames (the size of a bare TCP
// segment with timestamps), 10 µs apart.
func benchFrames(n int) []Frame {
	frames := make([]Frame, n)
	data := payload(1, 66*16)
	for i := range frames {
		d := data[i%16*66 : i%16*66+66]
		frames[i] = fr(t0+int64(i)*10_000, ltEthernet, d, 66)
	}
	return frames
}

// benchReader reads one frame per benchmark iteration from an in-memory
// capture, starting over (outside the timer) at its end.
func benchReader(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data) / benchPackets))
	b.ReportAllocs()
	var f Frame
	r, err := NewFileReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := r.Next(&f); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			b.StopTimer()
			r, _ = NewFileReader(bytes.NewReader(data))
			b.StartTimer()
			if err := r.Next(&f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFileReaderPcap reads a pcap file of 66-byte frames; one op is
// one frame.
func BenchmarkFileReaderPcap(b *testing.B) {
	benchReader(b, pcapgoPcap(b, false, ltEthernet, benchFrames(benchPackets)))
}

// BenchmarkFileReaderPcapng reads a pcapng file of 66-byte frames; one op
// is one frame.
func BenchmarkFileReaderPcapng(b *testing.B) {
	benchReader(b, pcapgoNg(b, benchFrames(benchPackets)))
}

// BenchmarkFileReaderPcapGzip reads a gzip-compressed pcap file.
func BenchmarkFileReaderPcapGzip(b *testing.B) {
	benchReader(b, gzipBytes(b, pcapgoPcap(b, false, ltEthernet, benchFrames(benchPackets))))
}

// BenchmarkPcapgoBaseline reads the same captures with gopacket's pcapgo
// readers (ZeroCopyReadPacketData), for comparison.
func BenchmarkPcapgoBaseline(b *testing.B) {
	b.Run("pcap", func(b *testing.B) {
		data := pcapgoPcap(b, false, ltEthernet, benchFrames(benchPackets))
		b.SetBytes(int64(len(data) / benchPackets))
		b.ReportAllocs()
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				b.StopTimer()
				r, _ = pcapgo.NewReader(bytes.NewReader(data))
				b.StartTimer()
				if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("pcapng", func(b *testing.B) {
		data := pcapgoNg(b, benchFrames(benchPackets))
		b.SetBytes(int64(len(data) / benchPackets))
		b.ReportAllocs()
		opts := pcapgo.NgReaderOptions{WantMixedLinkType: true}
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), opts)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				b.StopTimer()
				r, _ = pcapgo.NewNgReader(bytes.NewReader(data), opts)
				b.StartTimer()
				if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
