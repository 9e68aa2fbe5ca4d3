package top_test

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/tcpeek/tcpeek/internal/top"
)

// peerN returns the n-th of many distinct peers: IPv4 for even n, IPv6
// for odd n.
func peerN(n uint64) netip.Addr {
	if n%2 == 0 {
		return netip.AddrFrom4([4]byte{10, byte(n >> 17), byte(n >> 9), byte(n >> 1)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

var services = [...]uint16{22, 80, 443, 5432, 6379, 8080}

// TestMemoryFlat adds failures of ever more distinct peers (one failure
// each, 125 a second of packet time, so that by 10^4 peers every span of
// the window has been used and filled) and checks that the memory the Top holds stops growing once its
// sketches are full: the same at 10^5 and 10^6 peers as at 10^4, and
// below MaxBytes. The heap, measured after a collection, grows by no more
// than the Top's own memory does.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("adds a million failures")
	}
	cfg := top.Config{Filters: 1, Seed: 1}
	tp := top.New(cfg)
	var heap0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap0)
	var n uint64
	var bytes []int
	for _, upto := range []uint64{1e3, 1e4, 1e5, 1e6} {
		for ; n < upto; n++ {
			tp.Add(0, peerN(n), services[n%uint64(len(services))], top.Result(n%4), t0+int64(n)*8e6)
		}
		bytes = append(bytes, tp.Bytes())
		t.Logf("%8d peers: %d bytes", n, tp.Bytes())
	}
	if bytes[1] != bytes[2] || bytes[2] != bytes[3] {
		t.Errorf("memory grows with peers: %v bytes at 10^3..10^6 peers", bytes)
	}
	if limit := top.MaxBytes(cfg); bytes[3] > limit {
		t.Errorf("%d bytes, more than MaxBytes %d", bytes[3], limit)
	}
	var heap1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap1)
	if grew := int64(heap1.HeapAlloc) - int64(heap0.HeapAlloc); grew > int64(bytes[3])+1<<20 {
		t.Errorf("the heap grew by %d bytes, the Top holds %d", grew, bytes[3])
	}
	runtime.KeepAlive(tp)
}

// TestAddNoAllocs checks that once the sketches are full, adding failures
// of new peers, of known ones, and in new periods of the window allocates
// nothing.
func TestAddNoAllocs(t *testing.T) {
	tp := top.New(top.Config{Filters: 2, Capacity: 256, WindowCapacity: 64, Seed: 1})
	var n uint64
	at := t0
	add := func() {
		tp.AddSet(3, peerN(n%5000), services[n%uint64(len(services))], top.Result(n%4), at)
		n++
		at += 10e6 // 100 failures a second: every span fills
	}
	for range 20000 {
		add()
	}
	if a := testing.AllocsPerRun(5000, add); a != 0 {
		t.Errorf("Add allocates %.2f times per failure", a)
	}
}
