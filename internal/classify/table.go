package classify

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"
)

// addr is an IP address as the two halves of its 16-byte form (IPv4
// addresses in their IPv4-mapped form), read in little-endian order, which
// is a plain load on common CPUs; only equality and hashing use it. Unlike
// netip.Addr it holds no pointer, so a table of a million entries costs the
// garbage collector nothing to scan.
type addr [2]uint64

func addrOf(a netip.Addr) addr {
	b := a.As16()
	return addr{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

func (a addr) netip(v4 bool) netip.Addr {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], a[0])
	binary.LittleEndian.PutUint64(b[8:], a[1])
	ip := netip.AddrFrom16(b)
	if v4 {
		return ip.Unmap()
	}
	return ip
}

// States of a table entry.
const (
	statePending uint8 = iota // handshake in progress
	stateFailed               // ended as a failure, remembered for the timeout
	stateDone                 // completed, remembered for a second
	stateFree                 // on its chunk's free list
)

// Entry flag bits.
const (
	flagV4       uint8 = 1 << iota // IPv4 session
	flagSynAck                     // a SYN/ACK was seen
	flagSynTS                      // the last SYN had a timestamp option
	flagSynAckTS                   // the last SYN/ACK had a timestamp option
	flagReopened                   // opened again by a SYN of a displaced session
)

// entry is one session, pending or remembered. Entries live in a slab and
// are named by their index; nothing in them is a pointer. An entry is 128
// bytes, two cache lines, and the slab's chunks are page-aligned: the first
// line holds all that lookups and expiry lists touch, so that walking past
// an entry costs one cache miss, not two or three.
type entry struct {
	// The first cache line.
	ia, ra       addr   // initiator and responder addresses
	iport, rport uint16 // initiator and responder ports
	state        uint8
	flags        uint8
	list         uint8 // expiry list the entry is on
	_            uint8
	iisn, risn   uint32 // initiator and responder ISNs
	last         int64  // time the entry's deadline counts from
	prev, next   int32  // expiry list links; next also links a free list

	// The second cache line.
	start       int64  // time of the first SYN
	synack      int64  // time of the first SYN/ACK (flagSynAck)
	lastSyn     int64  // time of the last SYN (copy detection)
	lastSynAck  int64  // time of the last SYN/ACK (copy detection)
	synTS, saTS uint32 // TSval of the last SYN and SYN/ACK
	synID, saID uint16 // IPv4 ID of the last SYN and SYN/ACK
	synLen      uint16 // payload length of the first SYN (TCP Fast Open)
	dupSyn      uint32 // SYN retransmissions
	dupSynAck   uint32 // SYN/ACK retransmissions
	filters     uint64 // filters that count this session
}

// table is an open-addressing hash table (linear probing, backward-shift
// deletion) over a slab of entries, keyed by the unordered pair of
// endpoints, so that a lookup finds a session from either direction.
//
// Each index slot holds an entry's hash beside its slab index, so probing
// past other keys, and moving slots when one is deleted, never touches the
// entries themselves: on a table far bigger than the CPU caches, that is
// one cache miss less per probe. The slab is a list of fixed chunks, so it
// grows without copying what it holds.
//
// The index grows incrementally: a live capture cannot stop for the
// milliseconds that rehashing half a million slots takes (its ring holds a
// dozen milliseconds of packets at a million a second). When the index
// doubles, the old one stays beside the new, and each insertion moves a few
// of its slots over (migrateStep), front to back. Meanwhile a lookup tries
// the new index, then the old one, where the slots before migrated count
// as moved; a removal from the old index leaves a tombstone, since the old
// index is dropped once it is moved.
//
// The table also shrinks, so that the memory a SYN flood made it take is
// given back once the flood's sessions are gone; shrinking is work for
// maintain, which the classifier calls in small steps. Each chunk of the
// slab has its own free list, and allocation takes the lowest chunk with
// room, so live entries gather in the low chunks and the high ones empty as
// their entries end. When the slab holds more than twice the chunks its
// entries need (plus one), its last chunk is evacuated: its live entries,
// which a bitmap of the entries in use finds without reading the chunk,
// move to free entries below (move fixes the entry's index slot and its
// expiry-list neighbours), and the empty chunk is dropped for the garbage
// collector. When the index is less than a sixteenth full, it is replaced
// by one that is about a quarter full, at most 16 times smaller, and moved
// over incrementally like a growth. The factors leave room between growth
// and shrinking, so a steady load does not make the table oscillate, and
// shrinking starts only once the table has been too big for shrinkDelay of
// packet time, so a dip of the load does not either.
type table struct {
	seed     [3]uint64 // secret keys of the hash, from the classifier's seed
	index    []slot
	mask     uint32
	old      []slot // the previous index, until it is moved
	oldMask  uint32
	migrated int // old[:migrated] is moved into index
	step     int // slots of old each insertion moves
	used     int // entries in the index and the old index

	chunks []*[chunkSize]entry
	meta   []chunkMeta // of each chunk
	inUse  []uint64    // bit i: entry i is in use
	avail  []uint64    // bit k: chunk k has room and takes allocations
	low    int         // the lowest chunk with room, len(chunks) if none
	evac   int32       // while the last chunk is evacuated, its next word of inUse to look at; else -1

	lowWater int   // below this many entries, shrinking may be due
	maint    bool  // maintain has work to do
	oversize bool  // the table has been too big since lowSince
	lowSince int64 // packet time
	frozen   bool  // never shrink (tests compare with a table that does)

	// Counts of the rare events of growth and shrinking, for tests.
	chunkAdds, chunkDrops, moves, movesInOld, indexShrinks int
}

// chunkMeta is what the table knows of one chunk of its slab.
type chunkMeta struct {
	free int32 // head of the chunk's free list (slab index), -1 = none
	bump int32 // the chunk's entries [0, bump) have been handed out
	live int32 // entries in use
}

// slot is an index slot: the entry's hash in the high half, its slab index
// + 1 in the low half; 0 is an empty slot, tombstone a removed one (only in
// an old index).
type slot uint64

const tombstone = ^slot(0)

// migrateStep is how many slots of the old index each insertion moves after
// a growth. The new index has twice the slots, so it takes as many
// insertions to fill to the next growth as the old one has slots: 2 a time
// would finish in time. After a shrink, insertions move 2*migrateStep times
// as many slots as the old index is larger than the new one: the move takes
// n/16 insertions for a new index of n slots, which, at most a quarter full
// when it is made, takes n/4 insertions to grow.
const migrateStep = 8

func makeSlot(h uint32, i int32) slot { return slot(uint64(h)<<32 | uint64(uint32(i)+1)) }
func (s slot) hash() uint32           { return uint32(s >> 32) }
func (s slot) entry() int32           { return int32(uint32(s)) - 1 }

const (
	minTableSlots = 1024
	chunkBits     = 12 // 4096 entries a chunk
	chunkSize     = 1 << chunkBits
	// shrinkFactor bounds how many times smaller an index gets at once,
	// so that moving the old one over takes few slots per insertion.
	shrinkFactor = 16
	// shrinkDelay is how long the table must have been too big before
	// it starts shrinking.
	shrinkDelay = int64(10 * time.Second)
)

// Costs of maintenance work, in the units of maintain's budget: the work of
// moving one slot of an old index (a few nanoseconds).
const (
	costWord = 1   // looking at a word of the bitmap of a chunk being evacuated
	costMove = 256 // moving an entry: a few cache misses
	costDrop = 16  // dropping an empty chunk
)

func newTable(seed uint64) table {
	t := table{
		seed:   [3]uint64{splitmix(&seed), splitmix(&seed), splitmix(&seed)},
		index:  make([]slot, minTableSlots),
		mask:   minTableSlots - 1,
		step:   migrateStep,
		chunks: []*[chunkSize]entry{new([chunkSize]entry)}, // entry 0 exists: prefetching may touch it
		meta:   []chunkMeta{{free: -1}},
		inUse:  make([]uint64, chunkSize/64),
		avail:  []uint64{1},
		evac:   -1,
	}
	t.setLowWater()
	return t
}

// at returns entry i of the slab.
func (t *table) at(i int32) *entry {
	return &t.chunks[uint32(i)>>chunkBits][uint32(i)%chunkSize]
}

// mix is the multiply-fold of wyhash: a fast mixer with good avalanche.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// endpointHash hashes one endpoint. The session hash adds those of both
// ends, so it is the same from either direction. Both factors of each
// multiplication hold a secret key, so that no address can zero a product
// (mix(x, 0) is 0 whatever x), and the port is mixed in after the address
// rather than combined with its bits: no choice of addresses and ports
// collides whatever the keys, and a SYN flood cannot turn the table into a
// list.
func (t *table) endpointHash(a addr, port uint16) uint64 {
	h := mix(a[0]^t.seed[0], a[1]^t.seed[1])
	return mix(h^uint64(port)^t.seed[2], t.seed[0]^0xa0761d6478bd642f)
}

// splitmix returns the next value of the SplitMix64 sequence at *x.
func splitmix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (t *table) hashOf(a addr, ap uint16, b addr, bp uint16) uint32 {
	h := t.endpointHash(a, ap) + t.endpointHash(b, bp)
	return uint32(mix(h, 0x8ebc6af09c88c6e3))
}

// attemptHash identifies an attempt: the session hash h of its 4-tuple, the
// initiator's and responder's ports, which tell the direction, and the
// initiator's ISN. It is keyed by the table's secret.
func (t *table) attemptHash(h uint32, iport, rport uint16, isn uint32) uint64 {
	return mix(uint64(h)<<32|uint64(isn)^t.seed[1], uint64(iport)<<16|uint64(rport)^t.seed[2]|1<<63)
}

// lookup finds the entry of the segment sent from (src, sport) to (dst,
// dport), whose hash is h. It returns its slab index (or -1) and whether the
// segment was sent by the initiator.
func (t *table) lookup(h uint32, src addr, sport uint16, dst addr, dport uint16) (int32, bool) {
	for pos := h & t.mask; ; pos = (pos + 1) & t.mask {
		s := t.index[pos]
		if s == 0 {
			break
		}
		if s.hash() != h {
			continue
		}
		if i, fromInit, ok := t.match(s.entry(), src, sport, dst, dport); ok {
			return i, fromInit
		}
	}
	if t.old == nil {
		return -1, false
	}
	for pos := h & t.oldMask; ; pos = (pos + 1) & t.oldMask {
		s := t.old[pos]
		if s == 0 {
			return -1, false
		}
		if s == tombstone || s.hash() != h || int(pos) < t.migrated {
			continue // removed, another key, or moved (and not found there)
		}
		if i, fromInit, ok := t.match(s.entry(), src, sport, dst, dport); ok {
			return i, fromInit
		}
	}
}

// match tells whether entry i is the session of the segment sent from
// (src, sport) to (dst, dport), and whether the initiator sent it.
func (t *table) match(i int32, src addr, sport uint16, dst addr, dport uint16) (int32, bool, bool) {
	e := t.at(i)
	if e.iport == sport && e.rport == dport && e.ia == src && e.ra == dst {
		return i, true, true
	}
	if e.iport == dport && e.rport == sport && e.ia == dst && e.ra == src {
		return i, false, true
	}
	return -1, false, false
}

// alloc returns the index of a zeroed entry in the lowest chunk with room;
// the caller fills it and then calls insert.
func (t *table) alloc() int32 {
	k := t.low
	if k == len(t.chunks) {
		k = t.addChunk()
	}
	m := &t.meta[k]
	var i int32
	if m.free >= 0 {
		i = m.free
		e := t.at(i)
		m.free = e.next
		*e = entry{}
	} else {
		i = int32(k)<<chunkBits | m.bump // never used: still zero
		m.bump++
	}
	m.live++
	t.inUse[uint32(i)>>6] |= 1 << (i & 63)
	if m.free < 0 && m.bump == chunkSize {
		t.avail[k>>6] &^= 1 << (k & 63)
		t.low = t.nextAvail(k + 1)
	}
	return i
}

// addChunk makes room for an allocation and returns the chunk that has it:
// the last chunk if it was being evacuated (the table is not too big after
// all), else a new one.
func (t *table) addChunk() int {
	if t.evac >= 0 {
		t.stopEvacuation()
		if t.low < len(t.chunks) {
			return t.low
		}
	}
	k := len(t.chunks)
	t.chunks = append(t.chunks, new([chunkSize]entry))
	t.meta = append(t.meta, chunkMeta{free: -1})
	t.inUse = append(t.inUse, make([]uint64, chunkSize/64)...)
	if k>>6 == len(t.avail) {
		t.avail = append(t.avail, 0)
	}
	t.avail[k>>6] |= 1 << (k & 63)
	t.low = k
	t.chunkAdds++
	t.setLowWater()
	return k
}

// nextAvail returns the lowest chunk from k on that takes allocations, or
// len(t.chunks) if none does.
func (t *table) nextAvail(k int) int {
	for w := k >> 6; w < len(t.avail); w++ {
		word := t.avail[w]
		if w == k>>6 {
			word &= ^uint64(0) << (k & 63)
		}
		if word != 0 {
			return w<<6 | bits.TrailingZeros64(word)
		}
	}
	return len(t.chunks)
}

// release puts entry i, which is in no index, on its chunk's free list.
func (t *table) release(i int32) {
	k := int(uint32(i) >> chunkBits)
	m := &t.meta[k]
	e := t.at(i)
	e.state = stateFree
	e.next = m.free
	m.free = i
	m.live--
	t.inUse[uint32(i)>>6] &^= 1 << (i & 63)
	if t.avail[k>>6]&(1<<(k&63)) == 0 && (t.evac < 0 || k != len(t.chunks)-1) {
		t.avail[k>>6] |= 1 << (k & 63)
		t.low = min(t.low, k)
	}
}

// insert adds entry i, whose hash is h, to the index.
func (t *table) insert(i int32, h uint32) {
	if t.old != nil {
		t.migrate(t.step)
	}
	if (t.used+1)*2 > len(t.index) {
		t.grow()
	}
	t.place(makeSlot(h, i))
	t.used++
}

// place puts s in the first free slot of its probe sequence in the index.
func (t *table) place(s slot) {
	for pos := s.hash() & t.mask; ; pos = (pos + 1) & t.mask {
		if t.index[pos] == 0 {
			t.index[pos] = s
			return
		}
	}
}

// grow doubles the index. The old one is moved over by later insertions.
func (t *table) grow() {
	if t.old != nil {
		t.migrate(len(t.old)) // the one before: not in normal use (see migrateStep)
	}
	t.old, t.oldMask, t.migrated = t.index, t.mask, 0
	t.index = make([]slot, 2*len(t.old))
	t.mask = uint32(len(t.index) - 1)
	t.step = migrateStep
	t.setLowWater()
}

// indexUnder tells whether the index is to shrink.
func (t *table) indexUnder() bool {
	return t.old == nil && len(t.index) > minTableSlots && t.used*16 < len(t.index)
}

// shrinkIndex replaces the index with one about a quarter full, at most
// shrinkFactor times smaller. The old one is moved over by later
// insertions and maintenance.
func (t *table) shrinkIndex() {
	n := max(minTableSlots, len(t.index)/shrinkFactor, pow2(4*t.used))
	t.old, t.oldMask, t.migrated = t.index, t.mask, 0
	t.index = make([]slot, n)
	t.mask = uint32(n - 1)
	t.step = 2 * migrateStep * len(t.old) / n
	t.indexShrinks++
	t.setLowWater()
}

// pow2 returns the least power of two not below n.
func pow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// migrate moves up to n slots of the old index into the index, and drops
// the old index once it is all moved.
func (t *table) migrate(n int) {
	end := min(t.migrated+n, len(t.old))
	for _, s := range t.old[t.migrated:end] {
		if s != 0 && s != tombstone {
			t.place(s)
		}
	}
	t.migrated = end
	if end == len(t.old) {
		t.old, t.migrated = nil, 0
	}
}

// remove deletes entry i from the index and puts it on a free list.
func (t *table) remove(i int32) {
	e := t.at(i)
	h := t.hashOf(e.ia, e.iport, e.ra, e.rport)
	t.unindex(makeSlot(h, i))
	t.used--
	t.release(i)
	if t.used < t.lowWater {
		t.maint = true
	}
}

// unindex deletes slot s from the index or, if it is not moved yet, from the
// old index.
func (t *table) unindex(want slot) {
	pos := want.hash() & t.mask
	for t.index[pos] != want {
		if t.index[pos] == 0 {
			// Not moved yet: in the old index, from which it goes
			// with the rest.
			t.removeOld(want)
			return
		}
		pos = (pos + 1) & t.mask
	}
	// Backward-shift deletion: move later members of the cluster that may
	// live at pos into the hole, so that no tombstones are needed.
	hole := pos
	for j := (hole + 1) & t.mask; t.index[j] != 0; j = (j + 1) & t.mask {
		home := t.index[j].hash() & t.mask
		// The entry at j stays if its home lies cyclically in (hole, j].
		if hole <= j {
			if hole < home && home <= j {
				continue
			}
		} else if hole < home || home <= j {
			continue
		}
		t.index[hole] = t.index[j]
		hole = j
	}
	t.index[hole] = 0
}

// removeOld replaces slot s of the old index with a tombstone.
func (t *table) removeOld(s slot) {
	t.old[t.findOld(s)] = tombstone
}

// findOld returns the position of slot s, not moved yet, in the old index.
func (t *table) findOld(s slot) uint32 {
	pos := s.hash() & t.oldMask
	for t.old[pos] != s || int(pos) < t.migrated {
		pos = (pos + 1) & t.oldMask
	}
	return pos
}

// renumber replaces slot from with to, which names another entry of the
// same hash, in the index or the old index. It looks in the old index first:
// after a shrink, most slots are still there, and the new index's pages may
// not even have been touched yet (each first touch is a page fault).
func (t *table) renumber(from, to slot) {
	if t.old != nil {
		for pos := from.hash() & t.oldMask; t.old[pos] != 0; pos = (pos + 1) & t.oldMask {
			if t.old[pos] == from && int(pos) >= t.migrated {
				t.old[pos] = to
				t.movesInOld++
				return
			}
		}
	}
	for pos := from.hash() & t.mask; t.index[pos] != 0; pos = (pos + 1) & t.mask {
		if t.index[pos] == from {
			t.index[pos] = to
			return
		}
	}
}

// setLowWater sets the number of entries below which the slab or the index
// is to shrink (see slabOver and indexUnder).
func (t *table) setLowWater() {
	lw := 0
	if n := len(t.chunks); n >= 2 {
		lw = (n-2)/2*chunkSize + 1
	}
	if len(t.index) > minTableSlots {
		lw = max(lw, len(t.index)/16)
	}
	t.lowWater = lw
}

// slabOver tells whether the slab holds more than twice the chunks its
// entries need, plus one.
func (t *table) slabOver() bool {
	return len(t.chunks) > 1+2*((t.used+chunkSize-1)/chunkSize)
}

// maintain does up to budget units of the work of shrinking (see table) at
// packet time now, and tells whether some is left, or may be due later.
// Moving entries fixes their neighbours on the expiry lists, whose heads
// and tails are in lists.
func (t *table) maintain(now int64, budget int, lists *[numLists]list) bool {
	if t.frozen || !t.shrinkWanted() {
		t.oversize = false
		if t.evac >= 0 {
			t.stopEvacuation()
		}
		if t.old != nil {
			t.migrate(budget) // a growth
		}
		t.maint = t.old != nil
		return t.maint
	}
	if !t.oversize {
		t.oversize, t.lowSince = true, now
	}
	if now-t.lowSince < shrinkDelay {
		if t.old != nil {
			t.migrate(budget) // a growth, or a shrink begun before time went back
		}
		t.maint = true
		return true
	}
	// The slab first: it holds most of the memory.
	for budget > 0 {
		if !t.slabOver() {
			if t.evac >= 0 {
				t.stopEvacuation()
			}
			break
		}
		k := len(t.chunks) - 1
		if t.meta[k].live == 0 {
			t.dropChunk()
			budget -= costDrop
			continue
		}
		if t.evac < 0 {
			t.startEvacuation()
		}
		for t.evac >= 0 && t.evac < chunkSize/64 && budget > 0 {
			w := t.inUse[k*chunkSize/64+int(t.evac)]
			if w == 0 {
				t.evac++
				budget -= costWord
				continue
			}
			t.move(int32(k)<<chunkBits|t.evac<<6|int32(bits.TrailingZeros64(w)), lists) // clears its bit
			budget -= costMove
		}
		if t.evac < 0 {
			break // move found no room below: the table is not too big after all
		}
		if t.evac >= chunkSize/64 && t.meta[k].live > 0 {
			// Cannot happen: every live entry has its bit set. Look
			// again next time rather than loop here.
			t.evac = 0
			break
		}
	}
	if t.old != nil {
		if budget > 0 {
			t.migrate(budget)
		}
	} else if t.indexUnder() {
		t.shrinkIndex()
	}
	t.maint = t.old != nil || t.shrinkWanted()
	return t.maint
}

// shrinkWanted tells whether the table is too big, or shrinking its index.
func (t *table) shrinkWanted() bool {
	return t.slabOver() || t.indexUnder() || t.old != nil && len(t.old) > len(t.index)
}

// startEvacuation stops allocations from the last chunk, whose live entries
// maintain then moves out.
func (t *table) startEvacuation() {
	k := len(t.chunks) - 1
	t.evac = 0
	t.avail[k>>6] &^= 1 << (k & 63)
	if t.low == k {
		t.low = len(t.chunks) // no lower chunk has room
	}
}

// stopEvacuation lets the last chunk take allocations again.
func (t *table) stopEvacuation() {
	k := len(t.chunks) - 1
	t.evac = -1
	if m := &t.meta[k]; m.free >= 0 || m.bump < chunkSize {
		t.avail[k>>6] |= 1 << (k & 63)
		t.low = min(t.low, k)
	}
}

// dropChunk drops the last chunk, which holds no live entry.
func (t *table) dropChunk() {
	k := len(t.chunks) - 1
	t.chunks[k] = nil // garbage for the collector
	t.chunks = t.chunks[:k]
	t.meta = t.meta[:k]
	t.inUse = t.inUse[:k*chunkSize/64]
	t.avail[k>>6] &^= 1 << (k & 63)
	t.low = min(t.low, k)
	t.evac = -1
	t.chunkDrops++
	t.setLowWater()
}

// move moves live entry j to a free entry in a lower chunk, and fixes the
// index slot and the expiry-list links that name it.
func (t *table) move(j int32, lists *[numLists]list) {
	i := t.alloc()
	e := t.at(i)
	*e = *t.at(j)
	h := t.hashOf(e.ia, e.iport, e.ra, e.rport)
	t.renumber(makeSlot(h, j), makeSlot(h, i))
	l := &lists[e.list]
	if e.prev >= 0 {
		t.at(e.prev).next = i
	} else {
		l.head = i
	}
	if e.next >= 0 {
		t.at(e.next).prev = i
	} else {
		l.tail = i
	}
	t.release(j)
	t.moves++
}

// chunkCount returns the number of chunks in the slab.
func (t *table) chunkCount() int { return len(t.chunks) }

// bytes returns the heap the table holds: its chunks and indexes.
func (t *table) bytes() int {
	const entryBytes = int(unsafe.Sizeof(entry{}))
	return len(t.chunks)*chunkSize*entryBytes + (len(t.index)+len(t.old))*8
}

// list is a doubly linked list of entries in the order of their last field,
// which is also the order of their deadlines, since every entry of a list
// lives for the same duration after its last field. headLast is the head's
// last field, kept here so that checking for expiry reads no entry.
type list struct {
	head, tail int32
	n          int
	headLast   int64
}

func newList() list { return list{head: -1, tail: -1} }

func (t *table) pushBack(l *list, id uint8, i int32) {
	e := t.at(i)
	e.list = id
	e.prev, e.next = l.tail, -1
	if l.tail >= 0 {
		t.at(l.tail).next = i
	} else {
		l.head = i
		l.headLast = e.last
	}
	l.tail = i
	l.n++
}

func (t *table) unlink(l *list, i int32) {
	e := t.at(i)
	if e.prev >= 0 {
		t.at(e.prev).next = e.next
	} else {
		l.head = e.next
		if e.next >= 0 {
			l.headLast = t.at(e.next).last
		}
	}
	if e.next >= 0 {
		t.at(e.next).prev = e.prev
	} else {
		l.tail = e.prev
	}
	l.n--
}

// acksSyn tells whether n acknowledges the initiator's SYN: ISN+1, or past
// the data of a Fast Open SYN that the responder accepted.
func (e *entry) acksSyn(n uint32) bool {
	return n == e.iisn+1 || (e.synLen > 0 && n == e.iisn+1+uint32(e.synLen))
}
