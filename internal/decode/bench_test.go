package decode

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// benchDecode decodes frame b.N times and fails if it is not a usable packet
// or if decoding allocates.
func benchDecode(b *testing.B, check Checksum, frame []byte) {
	d := Decoder{Checksum: check}
	var p Packet
	if st := d.Decode(&p, LinkEthernet, frame, false); st != OK {
		b.Fatalf("decode: %v", st)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		d.Decode(&p, LinkEthernet, frame, false)
	}
}

// BenchmarkDecodeIPv4SYN decodes an Ethernet/IPv4 SYN with Linux's options.
func BenchmarkDecodeIPv4SYN(b *testing.B) { benchDecode(b, CheckNone, syn4.ether(b)) }

// BenchmarkDecodeIPv4Data decodes a segment with a 1400-byte payload.
func BenchmarkDecodeIPv4Data(b *testing.B) {
	benchDecode(b, CheckNone, seg{flags: ACK | PSH, ts: true, payload: bytes.Repeat([]byte{0x42}, 1400)}.ether(b))
}

// BenchmarkDecodeIPv4DataChecksum decodes the same segment and verifies its
// IPv4 and TCP checksums.
func BenchmarkDecodeIPv4DataChecksum(b *testing.B) {
	benchDecode(b, CheckAll, seg{flags: ACK | PSH, ts: true, payload: bytes.Repeat([]byte{0x42}, 1400)}.ether(b))
}

// BenchmarkDecodeIPv6SYN decodes an Ethernet/IPv6 SYN.
func BenchmarkDecodeIPv6SYN(b *testing.B) { benchDecode(b, CheckNone, syn6.ether(b)) }

// BenchmarkDecodeVLAN decodes a SYN behind 802.1ad and 802.1Q tags.
func BenchmarkDecodeVLAN(b *testing.B) {
	tpids := []layers.EthernetType{layers.EthernetTypeQinQ, layers.EthernetTypeDot1Q}
	benchDecode(b, CheckNone, tagged(b, tpids, layers.EthernetTypeIPv4, syn4.ip(b)))
}

// BenchmarkDecodeVXLAN decodes a SYN in VXLAN.
func BenchmarkDecodeVXLAN(b *testing.B) { benchDecode(b, CheckNone, vxlan(b, syn4.ether(b))) }

// BenchmarkDecodeICMP decodes an ICMP port unreachable quoting a SYN.
func BenchmarkDecodeICMP(b *testing.B) {
	benchDecode(b, CheckNone, etherIP(b, icmp4Msg(b, 3, 3, syn4.ip(b)[:28])))
}

// BenchmarkGopacketDecodingLayerParser is the baseline: gopacket's fastest
// decoder, with preallocated layers, on the frame of BenchmarkDecodeIPv4SYN.
func BenchmarkGopacketDecodingLayerParser(b *testing.B) {
	frame := syn4.ether(b)
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &payload)
	decoded := make([]gopacket.LayerType, 0, 8)
	if err := parser.DecodeLayers(frame, &decoded); err != nil || len(decoded) < 3 {
		b.Fatalf("decode: %v %v", decoded, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := parser.DecodeLayers(frame, &decoded); err != nil {
			b.Fatal(err)
		}
	}
}
