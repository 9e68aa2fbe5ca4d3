package classify

import "math/bits"

// ghosts remembers the attempts that were displaced from a full table, so
// that a retransmission of their SYN, which opens a session again, can be
// told from a new attempt (the session is marked Reopened) and a capture
// copy of their last SYN from a retransmission.
//
// It is a set-associative cache: buckets of four 16-byte records, one cache
// line a bucket, as many records as MaxSessions rounded up to a power of two
// (16 MiB at the default 1,048,576). A record is the attempt's hash (40 bits
// of it are kept, the bucket's index is more of it), the time of its last
// SYN in units of 2^20 ns (about 1 ms, kept modulo 2^24: 4.9 hours), and that
// SYN's IPv4 ID and TCP timestamp, which tell copies from retransmissions. A
// new record replaces an empty or the oldest one of its bucket, so the
// memory holds about the last MaxSessions displaced attempts, each for at
// most the horizon after its last SYN: under a flood of r SYNs a second
// into a table of n sessions, a session that is displaced is recognized
// when it retransmits within about 2n/r seconds of its SYN.
//
// The horizon is twice the timeout. Had the attempt stayed, a SYN within
// the timeout would have been a retransmission on it, and one within twice
// the timeout a retry of its timed-out session (rule 9); a later one would
// have opened a new session, as it does here.
//
// The buckets are allocated in segments of 256 KiB when a record first goes
// there, and all of them are dropped for the garbage collector once the
// last displacement is older than the horizon: a table that never fills
// costs nothing, and a flood's memory is given back after it.
type ghosts struct {
	segs     []*ghostSeg // nil until a record goes there
	segMask  uint64      // buckets of a segment - 1
	segShift uint        // log2 of the buckets of a segment
	shift    uint        // 64 - log2 of the buckets: the hash's top bits pick one
	last     int64       // time of the latest displacement
	horizon  int32       // how long a record counts, in time units
	live     bool        // some segment is allocated
}

const (
	ghostWays    = 4
	ghostSegLog  = 12 // at most 4096 buckets (256 KiB) a segment
	ghostTagBits = 40
	ghostTimeLog = 20 // time unit: 2^20 ns
	ghostTimeMax = 1<<24 - 1
)

// ghost is a record: tag<<24 | time in its first word, id<<48 | tsVal<<16 |
// hasTS in its second; a first word of 0 is an empty record.
type ghost [2]uint64

type ghostBucket [ghostWays]ghost

type ghostSeg [1 << ghostSegLog]ghostBucket

// newGhosts returns the memory for a table of maxSessions sessions, whose
// records count for horizon nanoseconds.
func newGhosts(maxSessions int, horizon int64) ghosts {
	buckets := max(1, pow2(maxSessions)/ghostWays)
	segBuckets := min(buckets, 1<<ghostSegLog)
	// Beyond about 2.3 hours, the time units would wrap: the records of
	// a longer timeout count for that long.
	h := min(horizon>>ghostTimeLog+1, ghostTimeMax/2-1)
	return ghosts{
		segs:     make([]*ghostSeg, buckets/segBuckets),
		segMask:  uint64(segBuckets - 1),
		segShift: uint(bits.TrailingZeros(uint(segBuckets))),
		shift:    uint(64 - bits.TrailingZeros(uint(buckets))),
		horizon:  int32(h),
	}
}

// timeUnits returns t in the records' time units.
func timeUnits(t int64) uint32 { return uint32(uint64(t)>>ghostTimeLog) & ghostTimeMax }

// age returns how many time units before now (in units) a record's time
// lies, negative if after.
func age(now uint32, w0 uint64) int32 {
	return int32((now-uint32(w0))<<8) >> 8
}

func ghostTag(ah uint64) uint64 {
	tag := ah & (1<<ghostTagBits - 1)
	if tag == 0 {
		tag = 1
	}
	return tag << 24
}

// bucket returns the bucket of attempt hash ah, nil if its segment is not
// allocated and alloc is false.
func (g *ghosts) bucket(ah uint64, alloc bool) *ghostBucket {
	b := ah >> g.shift // 0 if shift is 64
	s := g.segs[b>>g.segShift]
	if s == nil {
		if !alloc {
			return nil
		}
		s = new(ghostSeg)
		g.segs[b>>g.segShift] = s
		g.live = true
	}
	return &s[b&g.segMask]
}

// add remembers the attempt of hash ah, displaced at now, whose last SYN
// was seen at synT with IPv4 ID id and, if hasTS, timestamp tsVal.
func (g *ghosts) add(ah uint64, now, synT int64, id uint16, hasTS bool, tsVal uint32) {
	if !g.live || now > g.last {
		g.last = now
	}
	b := g.bucket(ah, true)
	u := timeUnits(now)
	victim, oldest := 0, int32(-1<<31)
	for j := range b {
		if b[j][0] == 0 {
			victim = j
			break
		}
		if a := age(u, b[j][0]); a > oldest {
			victim, oldest = j, a
		}
	}
	w1 := uint64(id)<<48 | uint64(tsVal)<<16
	if hasTS {
		w1 |= 1
	}
	b[victim] = ghost{ghostTag(ah) | uint64(timeUnits(synT)), w1}
}

// find returns the record of the attempt of hash ah if one counts at now,
// and its age in time units (negative if its SYN was stamped after now).
func (g *ghosts) find(ah uint64, now int64) (*ghost, int32) {
	b := g.bucket(ah, false)
	if b == nil {
		return nil, 0
	}
	tag := ghostTag(ah)
	u := timeUnits(now)
	for j := range b {
		if b[j][0]&^ghostTimeMax != tag {
			continue
		}
		if a := age(u, b[j][0]); a >= -copyUnits && a <= g.horizon {
			return &b[j], a
		}
	}
	return nil, 0
}

// copyUnits is the copy window in time units, rounded up.
const copyUnits = int32(copyWindow>>ghostTimeLog) + 1

// expire drops every record once the last displacement is older than the
// horizon, and tells whether records are left.
func (g *ghosts) expire(now int64) bool {
	if !g.live {
		return false
	}
	if now-g.last <= int64(g.horizon)<<ghostTimeLog {
		return true
	}
	clear(g.segs)
	g.live = false
	return false
}

// rebase brings the time of the latest displacement back to t if it was
// later (see Classifier.rebase).
func (g *ghosts) rebase(t int64) { g.last = min(g.last, t) }

// bytes returns the heap the records take.
func (g *ghosts) bytes() int {
	n := 0
	for _, s := range g.segs {
		if s != nil {
			n += int(g.segMask+1) * ghostWays * 16
		}
	}
	return n
}
