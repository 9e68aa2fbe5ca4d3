package classify

import (
	"fmt"
	"math/bits"
)

// handedOut returns how many entries of the slab were ever handed out.
func handedOut(t *table) int {
	n := 0
	for _, m := range t.meta {
		n += int(m.bump)
	}
	return n
}

// checkTable checks the table's own invariants: the slab's chunks, free
// lists and allocation bitmap, and that the index holds exactly the live
// entries, each findable from both directions.
func checkTable(t *table) error {
	if len(t.meta) != len(t.chunks) || len(t.chunks) == 0 || len(t.inUse) != len(t.chunks)*chunkSize/64 {
		return fmt.Errorf("%d chunks, %d metas, %d words of the in-use bitmap", len(t.chunks), len(t.meta), len(t.inUse))
	}
	live := 0
	lowest := len(t.chunks)
	for k, m := range t.meta {
		if t.chunks[k] == nil {
			return fmt.Errorf("chunk %d is nil", k)
		}
		if m.bump < 0 || m.bump > chunkSize || m.live < 0 || m.live > m.bump {
			return fmt.Errorf("chunk %d: bump %d, live %d", k, m.bump, m.live)
		}
		n, free := 0, 0
		for j := int32(0); j < chunkSize; j++ {
			i := int32(k)<<chunkBits | j
			inUse := t.inUse[i>>6]&(1<<(i&63)) != 0
			if j >= m.bump && (inUse || t.at(i).state != 0) {
				return fmt.Errorf("entry %d, never handed out, is in use (%v) or in state %d", i, inUse, t.at(i).state)
			}
			if j < m.bump && inUse != (t.at(i).state != stateFree) {
				return fmt.Errorf("entry %d: in use %v, state %d", i, inUse, t.at(i).state)
			}
			if inUse {
				n++
			}
		}
		if n != int(m.live) {
			return fmt.Errorf("chunk %d: %d entries in use, live says %d", k, n, m.live)
		}
		for i := m.free; i >= 0; i = t.at(i).next {
			if int(uint32(i)>>chunkBits) != k || t.at(i).state != stateFree {
				return fmt.Errorf("chunk %d: free list holds %d (state %d)", k, i, t.at(i).state)
			}
			if free++; free > chunkSize {
				return fmt.Errorf("chunk %d: free list loops", k)
			}
		}
		if free != int(m.bump-m.live) {
			return fmt.Errorf("chunk %d: %d on the free list, want %d", k, free, m.bump-m.live)
		}
		room := m.free >= 0 || m.bump < chunkSize
		evacuating := t.evac >= 0 && k == len(t.chunks)-1
		bit := t.avail[k>>6]&(1<<(k&63)) != 0
		if bit != (room && !evacuating) {
			return fmt.Errorf("chunk %d: avail bit %v, room %v, evacuating %v", k, bit, room, evacuating)
		}
		if bit && k < lowest {
			lowest = k
		}
		live += int(m.live)
	}
	for w, word := range t.avail {
		for ; word != 0; word &= word - 1 {
			if k := w<<6 | bits.TrailingZeros64(word); k >= len(t.chunks) {
				return fmt.Errorf("avail bit %d set beyond %d chunks", k, len(t.chunks))
			}
		}
	}
	if t.low != lowest {
		return fmt.Errorf("low = %d, want %d", t.low, lowest)
	}
	if live != t.used {
		return fmt.Errorf("%d live entries, used says %d", live, t.used)
	}
	if t.evac > chunkSize/64 {
		return fmt.Errorf("evacuation at word %d", t.evac)
	}
	slots := 0
	check := func(s slot) error {
		i := s.entry()
		if int(uint32(i)>>chunkBits) >= len(t.chunks) {
			return fmt.Errorf("slot names entry %d beyond the slab", i)
		}
		e := t.at(i)
		if e.state == stateFree {
			return fmt.Errorf("slot names free entry %d", i)
		}
		if h := t.hashOf(e.ia, e.iport, e.ra, e.rport); h != s.hash() {
			return fmt.Errorf("slot of entry %d has hash %x, want %x", i, s.hash(), h)
		}
		if got, fromInit := t.lookup(s.hash(), e.ia, e.iport, e.ra, e.rport); got != i || !fromInit {
			return fmt.Errorf("entry %d: lookup from the initiator gives %d, %v", i, got, fromInit)
		}
		if got, fromInit := t.lookup(s.hash(), e.ra, e.rport, e.ia, e.iport); got != i || fromInit {
			return fmt.Errorf("entry %d: lookup from the responder gives %d, %v", i, got, fromInit)
		}
		slots++
		return nil
	}
	for _, s := range t.index {
		if s == tombstone {
			return fmt.Errorf("tombstone in the index")
		}
		if s != 0 {
			if err := check(s); err != nil {
				return err
			}
		}
	}
	for pos, s := range t.old {
		if pos >= t.migrated && s != 0 && s != tombstone {
			if err := check(s); err != nil {
				return err
			}
		}
	}
	if slots != t.used {
		return fmt.Errorf("%d slots in the indexes, used says %d", slots, t.used)
	}
	if bits.OnesCount(uint(len(t.index))) != 1 || t.mask != uint32(len(t.index)-1) {
		return fmt.Errorf("index of %d slots, mask %x", len(t.index), t.mask)
	}
	if t.used*2 > len(t.index) {
		return fmt.Errorf("%d entries in an index of %d slots", t.used, len(t.index))
	}
	return nil
}

// checkInvariants checks the table and the classifier's expiry lists: every
// entry in use is on the list of its state, in deadline order, and every
// list's head, tail, count and headLast are right.
func (c *Classifier) checkInvariants() error {
	if err := checkTable(&c.tab); err != nil {
		return err
	}
	listed := 0
	for l := range c.lists {
		ls := &c.lists[l]
		n, prev := 0, int32(-1)
		var last int64
		for i := ls.head; i >= 0; i = c.tab.at(i).next {
			e := c.tab.at(i)
			if e.list != uint8(l) || e.prev != prev {
				return fmt.Errorf("list %d: entry %d has list %d, prev %d, want %d", l, i, e.list, e.prev, prev)
			}
			if want := [numLists]uint8{statePending, stateFailed, stateDone}[l]; e.state != want {
				return fmt.Errorf("list %d: entry %d in state %d", l, i, e.state)
			}
			if n > 0 && e.last < last {
				return fmt.Errorf("list %d: entry %d out of order (%d after %d)", l, i, e.last, last)
			}
			if n == 0 && e.last != ls.headLast {
				return fmt.Errorf("list %d: headLast %d, head's last %d", l, ls.headLast, e.last)
			}
			last, prev = e.last, i
			if n++; n > c.tab.used {
				return fmt.Errorf("list %d loops", l)
			}
		}
		if n != ls.n || prev != ls.tail {
			return fmt.Errorf("list %d: %d entries, tail %d; list says %d, %d", l, n, prev, ls.n, ls.tail)
		}
		listed += n
	}
	if listed != c.tab.used {
		return fmt.Errorf("%d entries listed, %d in use", listed, c.tab.used)
	}
	if c.lists[listPending].n > c.cfg.MaxSessions {
		return fmt.Errorf("%d sessions in progress, max %d", c.lists[listPending].n, c.cfg.MaxSessions)
	}
	return nil
}
