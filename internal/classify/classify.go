// Package classify follows TCP three-way handshakes and tells how each
// attempt ended (SPEC §4).
//
// A Classifier is a pure state machine: packets and their capture times go
// in through Handle, the passing of time through Advance, and ended sessions
// come out as Events. It reads no clock, file or socket and keeps no global
// state, so a capture replayed through it always gives the same events. The
// clock is the packet time: a session that sees no handshake packet for the
// timeout ends as a timeout at exactly its last packet's time plus the
// timeout.
//
// Sessions live in an open-addressing hash table over a slab of pointer-free
// entries. Deadlines need no heap or timer wheel: every session on one of the
// three expiry lists (pending, failed, done) lives for the same duration
// after its last refresh, so a list kept in refresh order is in deadline
// order, and expiry only ever looks at list heads. Steady-state handling
// allocates nothing.
//
// The table is bounded (Config.MaxSessions) and resilient to SYN floods:
// when it is full, a new SYN displaces the session in progress refreshed
// longest ago, which is reported as Displaced, never with a result. A
// retransmission of a displaced attempt's SYN opens it again, marked
// Reopened, with what was seen before forgotten. The memory a flood made
// the table take is given back once its sessions have ended: the table
// shrinks in small steps, spread over the packets and Advance calls that
// follow.
package classify

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tcpeek/tcpeek/internal/decode"
)

// Result is how a handshake attempt ended.
type Result uint8

// Results of a session.
const (
	// Success is a completed three-way handshake.
	Success Result = iota + 1
	// Timeout is an attempt that got no answer within the timeout, or that
	// the initiator abandoned for a SYN with another ISN.
	Timeout
	// Reject is an attempt the responder answered with an RST.
	Reject
	// Unreach is an attempt answered by an ICMP destination unreachable.
	Unreach
	// Abort is an attempt the initiator reset before it completed.
	Abort
)

var resultNames = [...]string{"", "success", "timeout", "reject", "unreach", "abort"}

// String returns the result's name as the JSON output spells it.
func (r Result) String() string {
	if int(r) < len(resultNames) && r != 0 {
		return resultNames[r]
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// EventKind tells what an Event reports.
type EventKind uint8

// Kinds of events.
const (
	// Ended reports a session that ended, with its result.
	Ended EventKind = iota
	// LateRetry reports that a failed session, remembered after it ended,
	// got its first retransmitted SYN (rule 9): it now counts in
	// failure.dupsyn. Only Filters and Result are set.
	LateRetry
	// Displaced reports a session in progress that a new SYN displaced
	// from the full table (SPEC §11). It has no result (Result is 0) and
	// counts neither as success nor as failure; the other fields are as
	// Ended would give them, End being the time of the displacing SYN. If
	// the attempt retransmits its SYN, it may be reported again, as a
	// Reopened session.
	Displaced
)

// Event is what the classifier reports. It is valid only during the Emit
// call that delivers it.
type Event struct {
	Kind    EventKind
	Result  Result
	Filters uint64 // bit i set: counted by filter i
	// Start is the time of the first SYN, End the time the session ended,
	// SynAck the time of the first SYN/ACK if SawSynAck; Unix nanoseconds
	// of packet time.
	Start, End, SynAck int64
	SawSynAck          bool
	// Init and Resp are the initiator's and responder's addresses.
	Init, Resp         netip.Addr
	InitPort, RespPort uint16
	// ICMPType and ICMPCode are those of the message that ended an Unreach
	// session.
	ICMPType, ICMPCode uint8
	// DupSYN and DupSYNACK count retransmitted SYNs and SYN/ACKs (capture
	// copies are not counted).
	DupSYN, DupSYNACK uint32
	// Reopened tells that the session was displaced from the full table
	// and opened again by a retransmission of its SYN: what happened
	// before is not known. Start is then the time of that retransmission,
	// SawSynAck, SynAck and DupSYNACK tell only what was seen after it,
	// and DupSYN is 1 plus the retransmissions seen after it, a lower
	// bound. A consumer treats the SYN/ACK and handshake times and the
	// duplicate counts as unknown, but counts the result, and counts the
	// session among those with at least one retransmitted SYN, since it
	// certainly had one. A Displaced event with Reopened set is a second
	// (or later) displacement of the same attempt.
	Reopened bool
}

// Config sets up a Classifier.
type Config struct {
	// Timeout is how long a handshake may go without a handshake packet,
	// and how long a failed attempt is remembered. It must be positive.
	Timeout time.Duration
	// MaxSessions bounds the sessions in progress: when that many are in
	// progress, a new SYN displaces the one refreshed longest ago. It also
	// bounds each of the two memories of ended sessions, and sizes the
	// memory of displaced attempts. It must be positive.
	MaxSessions int
	// ICMP enables rule 7: ICMP destination-unreachable ends sessions.
	ICMP bool
	// Match returns the filters that count a new session (a bit mask), 0 if
	// it is not to be tracked. Nil counts every session in filter 0. Key
	// calls it for every SYN, so it runs on the goroutine that computes
	// the keys, which may not be the one that handles the packets.
	Match func(init, resp netip.Addr, respPort uint16) uint64
	// Emit receives every event; nil drops them.
	Emit func(*Event)
	// NoEndpoints leaves Event.Init and Event.Resp zero, for a receiver
	// that only counts: it saves two address conversions a session.
	NoEndpoints bool
	// Seed seeds the session hash (0: a random seed). Results never
	// depend on it.
	Seed uint64
}

// copyWindow is how close a repeated SYN or SYN/ACK must follow the previous
// one to be a capture copy when no header field can tell (rule 2).
const copyWindow = int64(10 * time.Millisecond)

// ackWindow bounds how far beyond the responder's ISN+1 an initiator's
// acknowledgement may reach and still prove that the handshake completed.
const ackWindow = 1 << 30

// doneMemory is how long a completed handshake is remembered (rule 4).
const doneMemory = int64(time.Second)

// Expiry list identifiers.
const (
	listPending uint8 = iota
	listFailed
	listDone
	numLists
)

// Classifier is the handshake state machine. It is not safe for concurrent
// use: one goroutine feeds it.
type Classifier struct {
	cfg       Config
	timeout   int64
	clock     int64
	tab       table
	lists     [numLists]list
	dur       [numLists]int64
	next      int64 // no deadline is earlier than this
	now       int64 // the time of the packet being handled
	lastMaint int64 // clock at the last maintenance step
	steps     uint64
	evicted   uint64
	ev        Event
	keys      [MaxBatch]Key
	slots     [MaxBatch]slot
	ghosts    ghosts
	displaced uint64
	reopened  uint64
	dups      uint64
	sink      uint64 // keeps Prefetch's loads from being optimized away
}

// New returns a Classifier. It panics if cfg.Timeout or cfg.MaxSessions is
// not positive, which is a programming error (the command line checks them).
func New(cfg Config) *Classifier {
	if cfg.Timeout <= 0 || cfg.MaxSessions <= 0 {
		panic("classify: Timeout and MaxSessions must be positive")
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	c := &Classifier{
		cfg:     cfg,
		timeout: int64(cfg.Timeout),
		tab:     newTable(seed),
		ghosts:  newGhosts(cfg.MaxSessions, 2*int64(cfg.Timeout)),
	}
	for i := range c.lists {
		c.lists[i] = newList()
	}
	c.dur = [numLists]int64{c.timeout, c.timeout, doneMemory}
	c.next = math.MaxInt64
	return c
}

// InProgress returns the number of sessions in progress. At the end of a
// capture file these are the pending sessions (rule 11).
func (c *Classifier) InProgress() int { return c.lists[listPending].n }

// Overflow returns how many SYNs could not be tracked at all for lack of
// room. It is kept for compatibility and is 0: a SYN that finds the table
// full displaces a session (see Displaced).
func (c *Classifier) Overflow() uint64 { return 0 }

// Displaced returns how many sessions in progress were displaced by a new
// SYN because MaxSessions sessions were in progress (SPEC §11). An attempt
// displaced again after it was reopened counts again.
func (c *Classifier) Displaced() uint64 { return c.displaced }

// Reopened returns how many sessions were opened again by a retransmitted
// SYN after they were displaced.
func (c *Classifier) Reopened() uint64 { return c.reopened }

// Memory returns the bytes of heap that the session table, its index and
// the memory of displaced attempts hold. It grows under a flood and falls
// back after it. What the table drops is garbage: the Go runtime returns it
// to the operating system only a garbage collection or two later (minutes,
// in a process that allocates little), or at once on debug.FreeOSMemory.
func (c *Classifier) Memory() int { return c.tab.bytes() + c.ghosts.bytes() }

// Duplicates returns how many SYNs and SYN/ACKs were capture copies of the
// previous one rather than retransmissions.
func (c *Classifier) Duplicates() uint64 { return c.dups }

// Clock returns the classifier's current time: the latest packet or Advance
// time it was given.
func (c *Classifier) Clock() int64 { return c.clock }

// Advance moves the clock to now (Unix nanoseconds) and ends every session
// whose deadline lies before it. Time never goes back: an earlier now is
// ignored.
func (c *Classifier) Advance(now int64) {
	if now > c.clock {
		c.clock = now
	}
	if c.clock > c.next { // else nothing can have expired: one compare
		c.expire()
	}
	if c.tab.maint {
		c.maintain()
	}
}

// expire ends every session whose deadline lies before the clock.
func (c *Classifier) expire() {
	for {
		best, bestDL, earliest := -1, int64(0), int64(math.MaxInt64)
		for l := range c.lists {
			if c.lists[l].head < 0 {
				continue
			}
			dl := addSat(c.lists[l].headLast, c.dur[l])
			earliest = min(earliest, dl)
			if dl < c.clock && (best < 0 || dl < bestDL) {
				best, bestDL = l, dl
			}
		}
		if best < 0 {
			c.next = earliest
			return
		}
		i := c.lists[best].head
		if uint8(best) == listPending {
			// Expired in deadline order: the failed sessions' memory
			// stays in order with each deadline as its time.
			c.end(i, Timeout, bestDL, bestDL, 0, 0)
		} else {
			c.forget(i)
		}
	}
}

// Maintenance budget per step (see table.maintain): a unit per 256 ns of
// packet time since the last step, at least maintMin, at most maintMax. A
// unit is the work of moving one slot of an old index, 2 to 8 ns when that
// index is far bigger than the CPU caches: a step takes at most about a
// quarter of a millisecond, even after a long quiet spell, and shrinking
// costs the packets that pay for it at most a few percent of a CPU.
const (
	maintShift = 8
	maintMin   = 16
	maintMax   = 1 << 15
)

// maintain does a step of the table's shrinking, and drops the memory of
// displaced attempts once it is out of date.
func (c *Classifier) maintain() {
	budget := min(max((c.clock-c.lastMaint)>>maintShift, maintMin), maintMax)
	c.lastMaint = c.clock
	more := c.tab.maintain(c.clock, int(budget), &c.lists)
	more = c.ghosts.expire(c.clock) || more
	c.tab.maint = more
}

// rebase handles packet time that went back by more than the timeout: a
// clock stepped back, capture files merged, or a packet stamped far in the
// future before. The clock follows the packets back, and every remembered
// time later than the new clock is brought back to it, so that sessions and
// memories expire a timeout after the step rather than when the old time
// comes back. Steps are rare; this walks the lists once.
func (c *Classifier) rebase(t int64) {
	c.steps++
	c.clock = t
	c.lastMaint = min(c.lastMaint, t)
	c.tab.oversize = false // count the time it has been too big afresh
	c.ghosts.rebase(t)
	c.next = math.MaxInt64
	for l := range c.lists {
		for i := c.lists[l].head; i >= 0; {
			e := c.tab.at(i)
			e.last = min(e.last, t)
			i = e.next
		}
		if h := c.lists[l].head; h >= 0 {
			c.lists[l].headLast = c.tab.at(h).last
			c.next = min(c.next, addSat(c.lists[l].headLast, c.dur[l]))
		}
	}
}

// ClockSteps returns how many times packet time went back by more than the
// timeout (see Handle).
func (c *Classifier) ClockSteps() uint64 { return c.steps }

// Evicted returns how many ended sessions were forgotten early because the
// memory of failed or of completed sessions held MaxSessions entries: a
// retry of such a session counts as a new attempt.
func (c *Classifier) Evicted() uint64 { return c.evicted }

// addSat adds a duration to a time, saturating instead of overflowing (a
// capture may hold timestamps near the end of int64).
func addSat(t, d int64) int64 {
	if t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

// push appends entry i to list l and keeps c.next a lower bound of every
// deadline.
func (c *Classifier) push(l uint8, i int32) {
	c.tab.pushBack(&c.lists[l], l, i)
	if c.lists[l].head == i {
		c.next = min(c.next, addSat(c.lists[l].headLast, c.dur[l]))
	}
}

// Key is a packet's endpoints in the session table's form and its hash. It
// depends only on the packet and the classifier's seed, so another
// goroutine may compute it (Classifier.Key) while the classifier works.
//
// A Key also carries the fields of the packet that the rules read, so that
// the classifier reads nothing else: in a capture file's pipeline, keys are
// what crosses from the reading CPU's cache to the classifier's, and at 72
// bytes a key is about half a decode.Packet and its old key together.
type Key struct {
	src, dst         addr
	filters          uint64 // of a SYN: the filters that would count its session
	h                uint32
	seq, ack         uint32
	tsVal            uint32
	sport, dport     uint16
	ipID, payloadLen uint16
	kind             decode.Kind
	flags            uint8
	icmpType         uint8
	icmpCode         uint8
	hasTS            bool
	v4               bool
}

// Key returns the key of packet p. For a SYN, it also asks Config.Match
// which filters would count the session the SYN may open, so that this
// work, too, can run on another goroutine than the classifier's. It writes
// nothing and is safe to call from any goroutine if Match is.
func (c *Classifier) Key(p *decode.Packet) Key {
	k := Key{
		src: addrOf(p.Src), dst: addrOf(p.Dst), filters: 1,
		seq: p.Seq, ack: p.Ack, tsVal: p.TSVal,
		sport: p.SrcPort, dport: p.DstPort, ipID: p.IPID, payloadLen: p.PayloadLen,
		kind: p.Kind, flags: p.Flags, icmpType: p.ICMPType, icmpCode: p.ICMPCode,
		hasTS: p.HasTS, v4: p.Src.Is4(),
	}
	k.h = c.tab.hashOf(k.src, p.SrcPort, k.dst, p.DstPort)
	if c.cfg.Match != nil && p.Kind == decode.KindTCP && p.Flags&(decode.SYN|decode.ACK|decode.RST|decode.FIN) == decode.SYN {
		k.filters = c.cfg.Match(p.Src, p.Dst, p.DstPort)
	}
	return k
}

// MaxBatch is the most packets HandleBatch takes at once.
const MaxBatch = 64

// HandleBatch processes packets in order, as Handle would, ts[i] being the
// time of ps[i]. The session table is much bigger than the CPU caches, so a
// lookup costs a cache miss or two; HandleBatch first touches the table
// memory of every packet of the batch, so that the CPU waits for those
// misses all at once, then handles the packets one by one.
func (c *Classifier) HandleBatch(ps []decode.Packet, ts []int64) {
	for len(ps) > 0 {
		n := min(len(ps), MaxBatch)
		keys := c.keys[:n]
		for i := range keys {
			keys[i] = c.Key(&ps[i])
		}
		c.HandleKeyed(keys, ts[:n])
		ps, ts = ps[n:], ts[n:]
	}
}

// HandleKeyed is HandleBatch with the packets' keys already computed (by
// Key, possibly on another goroutine): keys[i] is the key of the packet
// captured at ts[i].
func (c *Classifier) HandleKeyed(keys []Key, ts []int64) {
	t := &c.tab
	// Two passes, so that the loads of each are independent of each other
	// and the CPU overlaps their misses: the index slots, then the entries
	// they name. Branch-free: an empty slot names entry 0, which is
	// harmless to touch, and no mispredicted branch waits for a load.
	slots := c.slots[:len(keys)]
	for i := range keys {
		slots[i] = t.index[keys[i].h&t.mask]
	}
	var sink uint32
	for _, s := range slots {
		j := int32(uint32(s)) - 1
		j &^= j >> 31
		e := t.at(j)
		sink += e.iisn + e.synTS // both cache lines
	}
	c.sink += uint64(sink)
	for i := range keys {
		c.handle(&keys[i], ts[i])
	}
}

// Handle processes one decoded packet captured at time t (Unix
// nanoseconds). Packets of KindNone are ignored.
func (c *Classifier) Handle(p *decode.Packet, t int64) {
	k := c.Key(p)
	c.handle(&k, t)
}

func (c *Classifier) handle(k *Key, t int64) {
	if t < c.clock-c.timeout {
		c.rebase(t)
	}
	c.Advance(t)
	c.now = t
	switch k.kind {
	case decode.KindTCP:
		c.tcp(k)
	case decode.KindICMP:
		if c.cfg.ICMP {
			c.icmp(k)
		}
	}
}

func (c *Classifier) tcp(k *Key) {
	i, fromInit := c.tab.lookup(k.h, k.src, k.sport, k.dst, k.dport)
	f := k.flags
	switch {
	case f&decode.RST != 0:
		if i >= 0 {
			c.rst(i, fromInit, k)
		}
	case f&decode.SYN != 0 && f&(decode.ACK|decode.FIN) == 0:
		c.syn(i, fromInit, k)
	case f&decode.SYN != 0 && f&decode.ACK != 0 && f&decode.FIN == 0:
		if i >= 0 && !fromInit {
			c.synAck(i, k)
		}
	case f&(decode.SYN|decode.ACK) == decode.ACK:
		if i >= 0 && fromInit {
			c.ack(i, k)
		}
	}
}

// syn handles a SYN (rules 1, 2, 9).
func (c *Classifier) syn(i int32, fromInit bool, k *Key) {
	if i < 0 {
		c.open(k)
		return
	}
	e := c.tab.at(i)
	if !fromInit {
		// A SYN the other way round: a simultaneous open while pending
		// (ignored), or a new attempt on a remembered tuple.
		if e.state != statePending {
			c.forget(i)
			c.open(k)
		}
		return
	}
	if k.seq != e.iisn {
		// A new ISN: a new attempt. A pending one was abandoned.
		if e.state == statePending {
			c.end(i, Timeout, c.now, c.clock, 0, 0)
		}
		c.forget(i)
		c.open(k)
		return
	}
	if c.seenAgain(e, &e.synID, &e.synTS, &e.lastSyn, flagSynTS, k) {
		c.dups++
		return
	}
	switch e.state {
	case statePending:
		e.dupSyn++
		c.refresh(i, listPending)
	case stateFailed:
		// A retry of an ended attempt (Windows after RST, Linux after
		// ICMPv6 port unreachable): it counts on that session.
		e.dupSyn++
		if e.dupSyn == 1 {
			c.ev = Event{Kind: LateRetry, Filters: e.filters}
			c.emit()
		}
		c.refresh(i, listFailed)
	}
}

// synAck handles a SYN/ACK from the responder (rule 3).
func (c *Classifier) synAck(i int32, k *Key) {
	e := c.tab.at(i)
	if !e.acksSyn(k.ack) {
		return
	}
	if e.flags&flagSynAck == 0 {
		if e.state != statePending {
			return
		}
		e.flags |= flagSynAck
		e.risn, e.synack = k.seq, max(c.now, e.start)
		c.remember(e, &e.saID, &e.saTS, &e.lastSynAck, flagSynAckTS, k)
		c.refresh(i, listPending)
		return
	}
	if k.seq != e.risn {
		return
	}
	if c.seenAgain(e, &e.saID, &e.saTS, &e.lastSynAck, flagSynAckTS, k) {
		c.dups++
		return
	}
	if e.state == statePending {
		e.dupSynAck++
		c.refresh(i, listPending)
	}
}

// ack handles a segment from the initiator with ACK set and SYN, RST clear
// (rule 4).
func (c *Classifier) ack(i int32, k *Key) {
	e := c.tab.at(i)
	if e.state != statePending {
		return
	}
	if e.flags&flagSynAck != 0 {
		// Acknowledging the SYN/ACK: ISN+1, or beyond it when the segment
		// that carried the first acknowledgement was not seen (a live
		// capture's kernel filter passes only pure ACKs, and a few
		// stacks acknowledge the SYN/ACK on their first data segment).
		switch {
		case k.ack == e.risn+1:
			c.end(i, Success, c.now, c.clock, 0, 0)
		case k.ack-(e.risn+1) < ackWindow && k.seq-(e.iisn+1) < ackWindow:
			// Beyond: the segment that first acknowledged the SYN/ACK
			// was not seen; its sequence number must fit this attempt
			// too.
			c.end(i, Success, c.now, c.clock, 0, 0)
		}
		return
	}
	if e.acksSyn(k.seq) { // the SYN/ACK was not captured
		c.end(i, Success, c.now, c.clock, 0, 0)
	}
}

// rst handles an RST (rules 5, 6).
func (c *Classifier) rst(i int32, fromInit bool, k *Key) {
	e := c.tab.at(i)
	if e.state != statePending {
		return
	}
	if fromInit {
		if k.seq == e.iisn || e.acksSyn(k.seq) {
			c.end(i, Abort, c.now, c.clock, 0, 0)
		}
		return
	}
	answersSyn := k.flags&decode.ACK != 0 && e.acksSyn(k.ack)
	afterSynAck := e.flags&flagSynAck != 0 && (k.seq == e.risn || k.seq == e.risn+1)
	if answersSyn || afterSynAck {
		c.end(i, Reject, c.now, c.clock, 0, 0)
	}
}

// icmp handles an ICMP destination unreachable quoting a TCP segment (rule 7).
func (c *Classifier) icmp(k *Key) {
	if k.v4 && k.icmpType == 3 && k.icmpCode == 4 {
		return // fragmentation needed: a path MTU matter, not unreachability
	}
	i, fromInit := c.tab.lookup(k.h, k.src, k.sport, k.dst, k.dport)
	if i < 0 {
		return
	}
	e := c.tab.at(i)
	if e.state != statePending {
		return
	}
	var match bool
	if fromInit {
		match = k.seq == e.iisn || e.acksSyn(k.seq)
	} else {
		match = e.flags&flagSynAck != 0 && (k.seq == e.risn || k.seq == e.risn+1)
	}
	if match {
		c.end(i, Unreach, c.now, c.clock, k.icmpType, k.icmpCode)
	}
}

// seenAgain tells whether k, a repeated SYN or SYN/ACK of entry e, is a
// capture copy of the previous one rather than a retransmission (rule 2),
// and remembers k as the previous one. id, ts and last are e's fields for
// that kind of segment, tsFlag its flag for a timestamp option.
func (c *Classifier) seenAgain(e *entry, id *uint16, ts *uint32, last *int64, tsFlag uint8, k *Key) bool {
	isCopy := c.isCopy(e.flags&flagV4 != 0, *id, e.flags&tsFlag != 0, *ts, *last, k)
	c.remember(e, id, ts, last, tsFlag, k)
	return isCopy
}

// remember records k as the last SYN or SYN/ACK of entry e (see seenAgain).
func (c *Classifier) remember(e *entry, id *uint16, ts *uint32, last *int64, tsFlag uint8, k *Key) {
	*id, *ts, *last = k.ipID, k.tsVal, c.now
	e.flags = setFlag(e.flags, tsFlag, k.hasTS)
}

// isCopy tells whether k is a capture copy of a segment with IPv4 ID
// prevID, a timestamp option (prevHasTS) of value prevTS, seen at prevT.
func (c *Classifier) isCopy(v4 bool, prevID uint16, prevHasTS bool, prevTS uint32, prevT int64, k *Key) bool {
	told := false
	if v4 && (prevID != 0 || k.ipID != 0) { // ID 0 tells nothing
		if prevID != k.ipID {
			return false
		}
		told = true
	}
	if prevHasTS != k.hasTS {
		return false // a copy has the same options
	}
	if k.hasTS {
		if prevTS != k.tsVal {
			return false
		}
		told = true
	}
	if told {
		return true
	}
	d := c.now - prevT
	return -copyWindow <= d && d <= copyWindow // copies may be stamped out of order
}

func setFlag(flags, bit uint8, on bool) uint8 {
	if on {
		return flags | bit
	}
	return flags &^ bit
}

// open starts a session for the SYN p, whose 4-tuple has no entry (rule 1).
func (c *Classifier) open(k *Key) {
	mask := k.filters
	if mask == 0 {
		return // no filter counts it: not worth the memory
	}
	reopened := false
	if c.ghosts.live {
		ah := c.tab.attemptHash(k.h, k.sport, k.dport, k.seq)
		if g, a := c.ghosts.find(ah, c.now); g != nil {
			w := g[1]
			prevT := c.now - int64(a)<<ghostTimeLog
			if c.isCopy(k.v4, uint16(w>>48), w&1 != 0, uint32(w>>16), prevT, k) {
				// A copy of the displaced attempt's last SYN,
				// not a retransmission: it stays displaced.
				c.dups++
				return
			}
			*g = ghost{}
			reopened = true
		}
	}
	if c.lists[listPending].n >= c.cfg.MaxSessions {
		c.displace()
	}
	i := c.tab.alloc()
	e := c.tab.at(i)
	e.ia, e.ra = k.src, k.dst
	e.iport, e.rport = k.sport, k.dport
	e.state = statePending
	if k.v4 {
		e.flags |= flagV4
	}
	e.iisn = k.seq
	e.synLen = k.payloadLen
	e.start, e.last = c.now, c.clock
	c.remember(e, &e.synID, &e.synTS, &e.lastSyn, flagSynTS, k)
	e.filters = mask
	if reopened {
		e.flags |= flagReopened
		e.dupSyn = 1 // the SYN that opened it again
		c.reopened++
	}
	c.tab.insert(i, k.h)
	c.push(listPending, i)
}

// displace makes room for a new session: it reports the session in
// progress refreshed longest ago as Displaced, remembers its attempt, and
// forgets it.
func (c *Classifier) displace() {
	i := c.lists[listPending].head
	e := c.tab.at(i)
	h := c.tab.hashOf(e.ia, e.iport, e.ra, e.rport)
	c.ghosts.add(c.tab.attemptHash(h, e.iport, e.rport, e.iisn), c.now, e.lastSyn,
		e.synID, e.flags&flagSynTS != 0, e.synTS)
	c.tab.maint = true // to drop the ghosts when they are out of date
	c.report(e, Displaced, 0, c.now, 0, 0)
	c.displaced++
	c.forget(i)
	c.emit()
}

// refresh restarts the deadline of entry i, which is on list l.
func (c *Classifier) refresh(i int32, l uint8) {
	c.tab.unlink(&c.lists[l], i)
	c.tab.at(i).last = c.clock
	c.push(l, i)
}

// end ends the pending session i with result r at time t, reports it, and
// moves it to the memory of failed or completed sessions, whose deadline
// counts from memo.
func (c *Classifier) end(i int32, r Result, t, memo int64, icmpType, icmpCode uint8) {
	e := c.tab.at(i)
	c.report(e, Ended, r, t, icmpType, icmpCode)
	c.tab.unlink(&c.lists[listPending], i)
	l, state := listFailed, stateFailed
	if r == Success {
		l, state = listDone, stateDone
	}
	e.state = state
	e.last = memo
	c.push(l, i)
	if c.lists[l].n > c.cfg.MaxSessions {
		// The memory is full: forget its oldest entry.
		c.forget(c.lists[l].head)
		c.evicted++
	}
	c.emit()
}

// report fills c.ev with an event of kind and result r for session e, which
// ended at t.
func (c *Classifier) report(e *entry, kind EventKind, r Result, t int64, icmpType, icmpCode uint8) {
	v4 := e.flags&flagV4 != 0
	c.ev = Event{
		Kind:      kind,
		Result:    r,
		Filters:   e.filters,
		Start:     e.start,
		End:       max(t, e.start),
		InitPort:  e.iport,
		RespPort:  e.rport,
		ICMPType:  icmpType,
		ICMPCode:  icmpCode,
		DupSYN:    e.dupSyn,
		DupSYNACK: e.dupSynAck,
		Reopened:  e.flags&flagReopened != 0,
	}
	if !c.cfg.NoEndpoints {
		c.ev.Init, c.ev.Resp = e.ia.netip(v4), e.ra.netip(v4)
	}
	if e.flags&flagSynAck != 0 {
		c.ev.SynAck, c.ev.SawSynAck = e.synack, true
	}
}

// forget removes entry i from its list and the table.
func (c *Classifier) forget(i int32) {
	c.tab.unlink(&c.lists[c.tab.at(i).list], i)
	c.tab.remove(i)
}

func (c *Classifier) emit() {
	if c.cfg.Emit != nil {
		c.cfg.Emit(&c.ev)
	}
}
