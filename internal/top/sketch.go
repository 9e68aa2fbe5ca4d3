package top

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"
)

// key is a (peer, port) pair in a form with no pointer in it, so that a
// sketch of thousands of entries costs the garbage collector nothing to
// scan: the peer's 16-byte form (IPv4 addresses IPv4-mapped) as two
// little-endian halves, the port, and the address family.
type key struct {
	hi, lo uint64
	port   uint16
	fam    uint8 // famNone, fam4 or fam6
}

// Address families of a key. The family keeps 192.0.2.1 apart from
// ::ffff:192.0.2.1.
const (
	famNone uint8 = iota // the zero netip.Addr
	fam4
	fam6
)

func keyOf(a netip.Addr, port uint16) key {
	b := a.As16()
	k := key{hi: binary.LittleEndian.Uint64(b[:8]), lo: binary.LittleEndian.Uint64(b[8:]), port: port}
	switch {
	case a.Is4():
		k.fam = fam4
	case a.Is6():
		k.fam = fam6
	}
	return k
}

// addr returns the peer address of k, without a zone.
func (k key) addr() netip.Addr {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], k.hi)
	binary.LittleEndian.PutUint64(b[8:], k.lo)
	switch k.fam {
	case fam4:
		return netip.AddrFrom16(b).Unmap()
	case fam6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// mix is the multiply-fold of wyhash: a fast mixer with good avalanche.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashKey hashes k with a secret seed, so that peers cannot choose
// addresses that collide in the index of a sketch. Both factors of each
// multiplication hold a secret, so that no address zeroes a product.
func hashKey(k key, seed *[3]uint64) uint32 {
	h := mix(k.hi^seed[0], k.lo^seed[1])
	h = mix(h^(uint64(k.port)<<8|uint64(k.fam))^seed[2], seed[0]^0xa0761d6478bd642f)
	return uint32(h ^ h>>32)
}

// splitmix returns the next value of the SplitMix64 sequence at *x.
func splitmix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// entry is one monitored key of a sketch. Its count, the sketch's estimate
// of the key's failures, is that of its group. The per-result counts hold
// only the failures seen while the key was monitored, so that count minus
// their sum is the overcount error the key inherited when it replaced
// another one.
type entry struct {
	key  key
	hash uint32
	pos  int32 // position in sketch.order
	grp  int32 // index of its group in sketch.grp
	last int64 // time of its latest failure
	res  [numResults]uint64
}

// group is a run of entries with the same count: positions lo to hi,
// inclusive, of sketch.order.
type group struct {
	count  uint64
	lo, hi int32
}

// slot is a cell of a sketch's index: the key's hash in the high half, its
// entry's index + 1 in the low half; 0 is an empty cell.
type slot uint64

func makeSlot(h uint32, i int32) slot { return slot(uint64(h)<<32 | uint64(uint32(i)+1)) }
func (s slot) hash() uint32           { return uint32(s >> 32) }
func (s slot) entry() int32           { return int32(uint32(s)) - 1 }

// minIndex is the smallest index a sketch allocates.
const minIndex = 16

// sketch is a Space-Saving summary (Metwally, Agrawal and El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// ICDT 2005) of at most capacity keys.
//
// Every key seen goes to an entry: its own if it has one, else a free
// entry, else the entry with the smallest count, which the new key takes
// over with that count as its error. Hence, after total failures:
//   - the counts sum to total, so the smallest is at most total/capacity;
//   - a monitored key's true count lies between count - error and count;
//   - a key that is not monitored has a true count of at most the smallest
//     count (0 if no key was ever replaced), so every key with more than
//     total/capacity failures is monitored.
//
// The stream-summary structure makes each step O(1) without pointers:
// order lists the entries by count, descending, and the entries of equal
// count form a group, a contiguous run of order. Adding 1 to an entry
// swaps it with the first of its group, which then shrinks by one from the
// front, and puts it into the group in front (if that has count + 1) or a
// new group of its own: the order stays sorted and no search is needed.
// The entry with the smallest count is always the last of order. An
// open-addressing index (linear probing, at most half full, backward-shift
// deletion) finds a key's entry. A min-heap with an index would need
// O(log capacity) swaps for each failure; this needs a constant few.
//
// The slices grow as keys arrive, up to capacity; after that a sketch
// allocates nothing.
type sketch struct {
	capacity int32
	ent      []entry
	order    []int32 // entry indices, by count, descending
	grp      []group
	freeGrp  []int32 // indices of unused groups
	index    []slot
	total    uint64 // failures added
	replaced bool   // a key was replaced: a missing key may have had up to min()
}

// reset empties the sketch and keeps its memory.
func (s *sketch) reset() {
	s.ent = s.ent[:0]
	s.order = s.order[:0]
	s.grp = s.grp[:0]
	s.freeGrp = s.freeGrp[:0]
	clear(s.index)
	s.total = 0
	s.replaced = false
}

// min returns the smallest count, 0 if the sketch is empty.
func (s *sketch) min() uint64 {
	if len(s.order) == 0 {
		return 0
	}
	return s.grp[s.ent[s.order[len(s.order)-1]].grp].count
}

// missing returns the most failures a key that is not monitored may have
// had: the smallest count once some key was replaced, else 0.
func (s *sketch) missing() uint64 {
	if !s.replaced {
		return 0
	}
	return s.min()
}

// count returns the estimate of entry i.
func (s *sketch) count(i int32) uint64 { return s.grp[s.ent[i].grp].count }

// errorOf returns the overcount error of entry i.
func (s *sketch) errorOf(i int32) uint64 {
	e := &s.ent[i]
	var seen uint64
	for _, n := range e.res {
		seen += n
	}
	return s.count(i) - seen
}

// find returns the index of k's entry, or -1.
func (s *sketch) find(k key, h uint32) int32 {
	if len(s.index) == 0 {
		return -1
	}
	mask := uint32(len(s.index) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		c := s.index[p]
		if c == 0 {
			return -1
		}
		if c.hash() == h && s.ent[c.entry()].key == k {
			return c.entry()
		}
	}
}

// add counts one failure of key k (hash h) with result r at time t.
func (s *sketch) add(k key, h uint32, r Result, t int64) {
	s.total++
	i := s.find(k, h)
	switch {
	case i >= 0:
		e := &s.ent[i]
		e.res[r]++
		e.last = max(e.last, t)
		s.increment(i)
	case len(s.ent) < int(s.capacity):
		s.insert(k, h, r, t)
	default:
		// Take over the entry with the smallest count, the last of order.
		i = s.order[len(s.order)-1]
		e := &s.ent[i]
		s.unindex(e.key, e.hash)
		*e = entry{key: k, hash: h, pos: e.pos, grp: e.grp, last: t}
		e.res[r] = 1
		s.indexAdd(h, i)
		s.increment(i)
		s.replaced = true
	}
}

// insert gives k a new entry with count 1, at the end of order.
func (s *sketch) insert(k key, h uint32, r Result, t int64) {
	i := int32(len(s.ent))
	p := int32(len(s.order))
	e := entry{key: k, hash: h, pos: p, last: t}
	e.res[r] = 1
	if p > 0 && s.grp[s.ent[s.order[p-1]].grp].count == 1 {
		e.grp = s.ent[s.order[p-1]].grp
		s.grp[e.grp].hi = p
	} else {
		e.grp = s.newGroup(group{count: 1, lo: p, hi: p})
	}
	if 2*(len(s.ent)+1) > len(s.index) {
		s.growIndex()
	}
	s.ent = appendCapped(s.ent, e, s.capacity)
	s.order = appendCapped(s.order, i, s.capacity)
	s.indexAdd(h, i)
}

// increment adds 1 to the count of entry i, keeping order sorted.
func (s *sketch) increment(i int32) {
	e := &s.ent[i]
	g := e.grp
	lo := s.grp[g].lo
	c := s.grp[g].count + 1
	if p := e.pos; p != lo {
		j := s.order[lo]
		s.order[lo], s.order[p] = i, j
		s.ent[j].pos = p
		e.pos = lo
	}
	s.grp[g].lo++
	empty := s.grp[g].lo > s.grp[g].hi
	if lo > 0 {
		if prev := s.ent[s.order[lo-1]].grp; s.grp[prev].count == c {
			s.grp[prev].hi = lo
			e.grp = prev
			if empty {
				s.freeGrp = appendCapped(s.freeGrp, g, s.capacity)
			}
			return
		}
	}
	if empty {
		// The entry was alone in its group: the group moves up with it.
		s.grp[g] = group{count: c, lo: lo, hi: lo}
		return
	}
	e.grp = s.newGroup(group{count: c, lo: lo, hi: lo})
}

// newGroup stores g in an unused group and returns its index.
func (s *sketch) newGroup(g group) int32 {
	if n := len(s.freeGrp); n > 0 {
		i := s.freeGrp[n-1]
		s.freeGrp = s.freeGrp[:n-1]
		s.grp[i] = g
		return i
	}
	s.grp = appendCapped(s.grp, g, s.capacity)
	return int32(len(s.grp) - 1)
}

// appendCapped appends v to x, doubling the capacity when it must grow
// but never beyond limit elements (a sketch holds at most as many entries,
// groups or free groups as its capacity), so that a full sketch holds no
// slack that append's growth policy would add.
func appendCapped[T any](x []T, v T, limit int32) []T {
	if len(x) == cap(x) {
		n := min(max(2*cap(x), 16), int(limit))
		if n <= len(x) {
			n = len(x) + 1 // beyond the limit: a programming error, but no panic
		}
		y := make([]T, len(x), n)
		copy(y, x)
		x = y
	}
	return append(x, v)
}

// growIndex doubles the index (to minIndex cells at first) and reinserts
// every entry.
func (s *sketch) growIndex() {
	n := max(2*len(s.index), minIndex)
	s.index = make([]slot, n)
	for i := range s.ent {
		s.indexAdd(s.ent[i].hash, int32(i))
	}
}

// indexAdd puts entry i, whose key has hash h, into the index.
func (s *sketch) indexAdd(h uint32, i int32) {
	mask := uint32(len(s.index) - 1)
	p := h & mask
	for s.index[p] != 0 {
		p = (p + 1) & mask
	}
	s.index[p] = makeSlot(h, i)
}

// unindex removes key k, whose hash is h, from the index, moving back the
// cells after it that linear probing would no longer reach.
func (s *sketch) unindex(k key, h uint32) {
	mask := uint32(len(s.index) - 1)
	hole := h & mask
	for {
		c := s.index[hole]
		if c.hash() == h && s.ent[c.entry()].key == k {
			break
		}
		hole = (hole + 1) & mask
	}
	for p := (hole + 1) & mask; ; p = (p + 1) & mask {
		c := s.index[p]
		if c == 0 {
			break
		}
		// The cell stays if its home lies cyclically in (hole, p].
		if home := c.hash() & mask; (p-home)&mask < (p-hole)&mask {
			continue
		}
		s.index[hole] = c
		hole = p
	}
	s.index[hole] = 0
}

// bytes returns the memory the sketch holds.
func (s *sketch) bytes() int {
	return cap(s.ent)*int(unsafe.Sizeof(entry{})) + cap(s.order)*4 + cap(s.grp)*int(unsafe.Sizeof(group{})) +
		cap(s.freeGrp)*4 + cap(s.index)*int(unsafe.Sizeof(slot(0)))
}

// sketchMaxBytes returns what bytes returns for a full sketch of the
// given capacity whose groups and free groups reached their bound too.
func sketchMaxBytes(capacity int) int {
	index := minIndex
	for index < 2*capacity {
		index *= 2
	}
	per := int(unsafe.Sizeof(entry{})) + 4 + int(unsafe.Sizeof(group{})) + 4
	return capacity*per + index*int(unsafe.Sizeof(slot(0)))
}
