package top

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// check verifies the structure of s: order sorted by count with groups
// that are exactly its runs of equal counts, positions and the index in
// agreement with the entries, counts that sum to the total, per-result
// counts no greater than the count.
func (s *sketch) check(t *testing.T) {
	t.Helper()
	if len(s.ent) != len(s.order) || len(s.ent) > int(s.capacity) {
		t.Fatalf("%d entries, %d in order, capacity %d", len(s.ent), len(s.order), s.capacity)
	}
	var sum uint64
	live := map[int32]bool{}
	for p, i := range s.order {
		e := &s.ent[i]
		if e.pos != int32(p) {
			t.Fatalf("entry %d at position %d says %d", i, p, e.pos)
		}
		g := s.grp[e.grp]
		if int32(p) < g.lo || int32(p) > g.hi {
			t.Fatalf("entry %d at position %d in group %d [%d, %d]", i, p, e.grp, g.lo, g.hi)
		}
		if p > 0 {
			prev := s.grp[s.ent[s.order[p-1]].grp]
			if prev.count < g.count || (prev.count == g.count && s.ent[s.order[p-1]].grp != e.grp) {
				t.Fatalf("position %d: count %d after %d (groups %d, %d)", p, g.count, prev.count, s.ent[s.order[p-1]].grp, e.grp)
			}
		}
		if g.count == 0 {
			t.Fatalf("entry %d has count 0", i)
		}
		var seen uint64
		for _, n := range e.res {
			seen += n
		}
		if seen == 0 || seen > g.count {
			t.Fatalf("entry %d: results sum to %d, count %d", i, seen, g.count)
		}
		sum += g.count
		live[e.grp] = true
		if got := s.find(e.key, e.hash); got != i {
			t.Fatalf("index finds entry %d for entry %d", got, i)
		}
	}
	if sum != s.total {
		t.Fatalf("counts sum to %d, total %d", sum, s.total)
	}
	if len(live)+len(s.freeGrp) != len(s.grp) {
		t.Fatalf("%d live groups + %d free != %d", len(live), len(s.freeGrp), len(s.grp))
	}
	for _, g := range s.freeGrp {
		if live[g] {
			t.Fatalf("group %d is both live and free", g)
		}
	}
	var cells int
	for _, c := range s.index {
		if c != 0 {
			cells++
			if s.ent[c.entry()].hash != c.hash() {
				t.Fatalf("index cell for entry %d has the wrong hash", c.entry())
			}
		}
	}
	if cells != len(s.ent) {
		t.Fatalf("index holds %d cells for %d entries", cells, len(s.ent))
	}
}

var testSeed = [3]uint64{1, 2, 3}

// TestSketchStructure adds random streams to small sketches, checking the
// structure after every step, so that every path of increment, insertion,
// replacement and index deletion is taken in many orders.
func TestSketchStructure(t *testing.T) {
	for _, tc := range []struct {
		capacity, keys, steps int
		seed                  uint64
	}{
		{1, 3, 200, 1},
		{2, 5, 500, 2},
		{8, 8, 500, 3},   // never full
		{8, 30, 3000, 4}, // replacements
		{64, 1000, 20000, 5},
	} {
		s := sketch{capacity: int32(tc.capacity)}
		r := rand.New(rand.NewPCG(tc.seed, 0))
		for step := range tc.steps {
			k := keyOf(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(tc.keys))}), uint16(r.IntN(3)))
			k.lo ^= uint64(r.IntN(2)) << 40 // more keys than one byte gives
			s.add(k, hashKey(k, &testSeed), Result(r.IntN(int(numResults))), int64(step))
			s.check(t)
		}
	}
}

// TestIndexCollisions fills a sketch whose keys all share one hash, the
// worst case for linear probing, and replaces them in turn: deletion must
// keep every remaining key reachable.
func TestIndexCollisions(t *testing.T) {
	s := sketch{capacity: 6}
	for step := range 300 {
		k := key{lo: uint64(step % 11), fam: fam6}
		s.add(k, 42, Reject, int64(step))
		for i := range s.ent {
			if s.find(s.ent[i].key, 42) != int32(i) {
				t.Fatalf("step %d: entry %d unreachable", step, i)
			}
		}
	}
	// Mixed hashes that wrap around the end of the index.
	s = sketch{capacity: 7}
	for step := range 500 {
		k := key{lo: uint64(step % 13), fam: fam6}
		s.add(k, uint32(13+k.lo%3), Reject, int64(step))
		s.check(t)
	}
}

// TestKeyRoundTrip checks that a key gives back its address and keeps
// IPv4 and IPv4-mapped IPv6 apart.
func TestKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "::", "0.0.0.0", "fe80::1%eth0"} {
		a := netip.MustParseAddr(s)
		got := keyOf(a, 80).addr()
		if got != a.WithZone("") {
			t.Errorf("%s: got %s", s, got)
		}
	}
	if keyOf(netip.MustParseAddr("192.0.2.1"), 1) == keyOf(netip.MustParseAddr("::ffff:192.0.2.1"), 1) {
		t.Error("IPv4 and IPv4-mapped IPv6 share a key")
	}
	if got := keyOf(netip.Addr{}, 1).addr(); got.IsValid() {
		t.Errorf("zero address comes back as %s", got)
	}
}
