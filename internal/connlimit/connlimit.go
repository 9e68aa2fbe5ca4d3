// Package connlimit decides which connections a server keeps when more
// arrive than it will hold.
//
// A server that refuses newcomers once it is full can be starved by
// clients that connect and say nothing: they hold every slot, and a
// well-behaved client that arrives after them is turned away. A server that
// leaves newcomers waiting in the kernel's accept queue is no better: the
// well-behaved client waits behind all of them. A Table instead makes room
// for a newcomer by dropping the connection that has waited longest without
// a complete request, taken from the client (a uid, an address) that holds
// the most slots. A client that sends its request at once is therefore
// never dropped unless as many clients connect after it, before its
// request is read, as the table holds; and clients that hoard connections
// lose their own first.
//
// A connection with a complete request being answered is busy and is never
// dropped; per-client bounds (PerKey) and slots that only privileged
// clients may take (Reserve) keep busy connections from one client from
// filling the table.
//
// Table does no I/O: the server closes the connections it is told to drop.
package connlimit

import (
	"slices"
	"sync"
)

// Limits are the bounds of a Table.
type Limits struct {
	// Max is the number of connections held at once, at least 1.
	Max int
	// PerKey bounds the connections of one unprivileged key; 0 for no
	// bound beyond Max.
	PerKey int
	// Reserve is the number of slots, out of Max, that only privileged
	// keys may take.
	Reserve int
}

// Table holds the slots of a server's connections. K identifies a client
// (a uid, an address), C is the server's connection type. Its methods are
// safe for concurrent use; each takes time proportional to the number of
// keys at most, not to the number of slots.
type Table[K comparable, C any] struct {
	lim        Limits
	privileged func(K) bool

	mu     sync.Mutex
	n      int // slots held
	idle   int // slots not busy
	unpriv int // slots held by unprivileged keys
	keys   map[K]*client[K, C]
	seq    uint64 // stamps the moment a slot became idle
}

// client is what a Table knows of one key: its slots, and those of them
// that are idle, the one idle longest first.
type client[K comparable, C any] struct {
	n    int
	priv bool
	idle list[K, C]
}

// list is a doubly linked list of slots.
type list[K comparable, C any] struct{ head, tail *Slot[K, C] }

func (l *list[K, C]) push(s *Slot[K, C]) {
	s.prev, s.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *list[K, C]) remove(s *Slot[K, C]) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// Slot is one connection held in a Table.
type Slot[K comparable, C any] struct {
	key        K
	conn       C
	c          *client[K, C] // nil once released
	busy       bool
	since      uint64      // Table.seq when it became idle
	prev, next *Slot[K, C] // in c.idle, when not busy
}

// Key returns the client the slot belongs to.
func (s *Slot[K, C]) Key() K { return s.key }

// New returns an empty Table. privileged tells which keys may take the
// reserved slots and are not bound by PerKey; nil means none.
func New[K comparable, C any](lim Limits, privileged func(K) bool) *Table[K, C] {
	lim.Max = max(lim.Max, 1)
	lim.Reserve = min(max(lim.Reserve, 0), lim.Max-1)
	if privileged == nil {
		privileged = func(K) bool { return false }
	}
	return &Table[K, C]{lim: lim, privileged: privileged, keys: make(map[K]*client[K, C])}
}

// Limits returns the table's bounds.
func (t *Table[K, C]) Limits() Limits { return t.lim }

// Admit takes in a new connection of client key.
//
// If the table has room for it, Admit returns its slot. If not, it makes
// room by dropping a connection that waits for its request: victim, with
// dropped true, which the caller must close. If no connection can be
// dropped, every one being busy, Admit returns a nil slot: the caller must
// close the newcomer.
//
// idle, if not nil, is asked about a candidate before it is dropped: a
// connection whose request has arrived but not been read yet (bytes in its
// receive queue) is not idle and is passed over.
func (t *Table[K, C]) Admit(key K, conn C, idle func(C) bool) (s *Slot[K, C], victim C, dropped bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.keys[key]
	priv := c != nil && c.priv || c == nil && t.privileged(key)
	var v *Slot[K, C]
	switch {
	case !priv && t.lim.PerKey > 0 && c != nil && c.n >= t.lim.PerKey:
		// The client's own oldest gives way.
		if v = t.oldestIdle(c, idle); v == nil {
			return nil, victim, false
		}
	case !priv && t.unpriv >= t.lim.Max-t.lim.Reserve:
		if v = t.victim(idle, false); v == nil {
			return nil, victim, false
		}
	case t.n >= t.lim.Max:
		if v = t.victim(idle, true); v == nil {
			return nil, victim, false
		}
	}
	if v != nil {
		victim, dropped = v.conn, true
		t.remove(v)
	}
	if c = t.keys[key]; c == nil {
		c = &client[K, C]{priv: priv}
		t.keys[key] = c
	}
	t.seq++
	s = &Slot[K, C]{key: key, conn: conn, c: c, since: t.seq}
	c.idle.push(s)
	t.idle++
	c.n++
	t.n++
	if !priv {
		t.unpriv++
	}
	return s, victim, dropped
}

// victim returns the slot to drop: an idle one of the key that holds the
// most slots (of the unprivileged keys, unless privToo), the one idle
// longest; nil if none is idle.
func (t *Table[K, C]) victim(idle func(C) bool, privToo bool) *Slot[K, C] {
	var skip []*client[K, C]
	for {
		var best *client[K, C]
		for _, c := range t.keys {
			if c.idle.head == nil || c.priv && !privToo || best != nil && (c.n < best.n ||
				c.n == best.n && c.idle.head.since > best.idle.head.since) {
				continue
			}
			if !slices.Contains(skip, c) {
				best = c
			}
		}
		if best == nil {
			return nil
		}
		if s := t.oldestIdle(best, idle); s != nil {
			return s
		}
		skip = append(skip, best)
	}
}

// oldestIdle returns the slot of c idle longest for which idle holds, nil
// if none.
func (t *Table[K, C]) oldestIdle(c *client[K, C], idle func(C) bool) *Slot[K, C] {
	for s := c.idle.head; s != nil; s = s.next {
		if idle == nil || idle(s.conn) {
			return s
		}
	}
	return nil
}

// remove takes s out of the table; t.mu is held.
func (t *Table[K, C]) remove(s *Slot[K, C]) {
	c := s.c
	if !s.busy {
		c.idle.remove(s)
		t.idle--
	}
	s.c = nil
	t.n--
	if !c.priv {
		t.unpriv--
	}
	if c.n--; c.n == 0 {
		delete(t.keys, s.key)
	}
}

// Busy marks the slot's connection as having a complete request: it is not
// dropped for newcomers until Idle or Release. It reports whether the slot
// is still held (false if it was dropped meanwhile).
func (t *Table[K, C]) Busy(s *Slot[K, C]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.c == nil {
		return false
	}
	if !s.busy {
		s.c.idle.remove(s)
		s.busy = true
		t.idle--
	}
	return true
}

// Idle marks the slot's connection as waiting for its client again (for
// its next request, for its answer to be read), idle from now on. It
// reports whether the slot is still held.
func (t *Table[K, C]) Idle(s *Slot[K, C]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.c == nil {
		return false
	}
	if s.busy {
		t.idle++
	} else {
		s.c.idle.remove(s)
	}
	s.busy = false
	t.seq++
	s.since = t.seq
	s.c.idle.push(s)
	return true
}

// Release frees the slot. It reports whether the slot was still held
// (false if it was dropped or released before).
func (t *Table[K, C]) Release(s *Slot[K, C]) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.c == nil {
		return false
	}
	t.remove(s)
	return true
}

// Len returns the number of slots held.
func (t *Table[K, C]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// IdleLen returns the number of slots whose connection waits for its
// client.
func (t *Table[K, C]) IdleLen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.idle
}

// Count returns the number of slots key holds.
func (t *Table[K, C]) Count(key K) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.keys[key]; c != nil {
		return c.n
	}
	return 0
}

// Heaviest returns the key that holds the most slots and how many; the
// zero K and 0 for an empty table. It is meant for log messages.
func (t *Table[K, C]) Heaviest() (key K, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, c := range t.keys {
		if c.n > n {
			key, n = k, c.n
		}
	}
	return key, n
}
