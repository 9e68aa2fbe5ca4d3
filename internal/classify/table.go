package classify

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
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
)

// Entry flag bits.
const (
	flagV4       uint8 = 1 << iota // IPv4 session
	flagSynAck                     // a SYN/ACK was seen
	flagSynTS                      // the last SYN had a timestamp option
	flagSynAckTS                   // the last SYN/ACK had a timestamp option
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
	prev, next   int32  // expiry list links; next also links the free list

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
type table struct {
	seed     [3]uint64 // secret keys of the hash, from the classifier's seed
	index    []slot
	mask     uint32
	old      []slot // the index before the last growth, until it is moved
	oldMask  uint32
	migrated int // old[:migrated] is moved into index
	chunks   []*[chunkSize]entry
	n        int32 // entries ever allocated
	free     int32 // head of the free list, -1 = none
	used     int   // entries in the index and the old index
}

// slot is an index slot: the entry's hash in the high half, its slab index
// + 1 in the low half; 0 is an empty slot, tombstone a removed one (only in
// an old index).
type slot uint64

const tombstone = ^slot(0)

// migrateStep is how many slots of the old index each insertion moves. The
// new index has twice the slots, so it takes as many insertions to fill to
// the next growth as the old one has slots: 2 a time would finish in time.
const migrateStep = 8

func makeSlot(h uint32, i int32) slot { return slot(uint64(h)<<32 | uint64(uint32(i)+1)) }
func (s slot) hash() uint32           { return uint32(s >> 32) }
func (s slot) entry() int32           { return int32(uint32(s)) - 1 }

const (
	minTableSlots = 1024
	chunkBits     = 12 // 4096 entries a chunk
	chunkSize     = 1 << chunkBits
)

func newTable(seed uint64) table {
	return table{
		seed:   [3]uint64{splitmix(&seed), splitmix(&seed), splitmix(&seed)},
		index:  make([]slot, minTableSlots),
		mask:   minTableSlots - 1,
		free:   -1,
		chunks: []*[chunkSize]entry{new([chunkSize]entry)}, // entry 0 exists: prefetching may touch it
	}
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

// alloc returns the index of a zeroed entry; the caller fills it and then
// calls insert.
func (t *table) alloc() int32 {
	if t.free >= 0 {
		i := t.free
		e := t.at(i)
		t.free = e.next
		*e = entry{}
		return i
	}
	if int(t.n)>>chunkBits == len(t.chunks) {
		t.chunks = append(t.chunks, new([chunkSize]entry))
	}
	t.n++
	return t.n - 1
}

// insert adds entry i, whose hash is h, to the index.
func (t *table) insert(i int32, h uint32) {
	if t.old != nil {
		t.migrate(migrateStep)
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

// remove deletes entry i from the index and puts it on the free list.
func (t *table) remove(i int32) {
	e := t.at(i)
	h := t.hashOf(e.ia, e.iport, e.ra, e.rport)
	want := makeSlot(h, i)
	pos := h & t.mask
	for t.index[pos] != want {
		if t.index[pos] == 0 {
			// Not moved yet: in the old index, from which it goes
			// with the rest.
			t.removeOld(want)
			t.used--
			e.next = t.free
			t.free = i
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
	t.used--
	e.next = t.free
	t.free = i
}

// removeOld replaces slot s of the old index with a tombstone.
func (t *table) removeOld(s slot) {
	pos := s.hash() & t.oldMask
	for t.old[pos] != s || int(pos) < t.migrated {
		pos = (pos + 1) & t.oldMask
	}
	t.old[pos] = tombstone
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
