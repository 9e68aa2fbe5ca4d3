package top

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"unsafe"
)

// Result is how a failed attempt ended.
type Result uint8

// Results of a failed attempt.
const (
	Timeout Result = iota
	Reject
	Unreach
	Abort
	numResults
)

// String returns the result's name as the JSON output spells it.
func (r Result) String() string {
	switch r {
	case Timeout:
		return "timeout"
	case Reject:
		return "reject"
	case Unreach:
		return "unreach"
	case Abort:
		return "abort"
	}
	return "unknown"
}

// Sizes of the answers and defaults of Config.
const (
	// DefaultN is the number of rows of an answer when none is asked for.
	DefaultN = 10
	// MaxN is the most rows an answer has.
	MaxN = 1000
	// DefaultCapacity is the number of (peer, port) counters of a filter's
	// since-start sketch, about four times MaxN: a row's error is at most
	// 1/4096 of the filter's failures, and every pair with more is kept.
	DefaultCapacity = 4096
	// DefaultWindowCapacity is the number of counters of each of the
	// last-minute window's sketches, one per Granularity of time. On
	// gencap's capture of 100000 Zipf-distributed peers (exponent 1.2,
	// 30000 failures per direction in 26 s) it lists the 100 heaviest
	// pairs exactly and in order; 1024 misranked 15 of them.
	DefaultWindowCapacity = 2048
)

// Granularity is the time covered by one sketch of the last-minute window,
// and Window the span that window covers at least, in nanoseconds.
const (
	Granularity = int64(10e9)
	Window      = int64(60e9)
)

// slots is the number of window sketches: those of the Window/Granularity
// whole periods before the current one, and the current one.
const slots = int(Window/Granularity) + 1

// Config sets up a Top.
type Config struct {
	// Filters is the number of filters, numbered from 0.
	Filters int
	// Capacity is the number of counters of each filter's since-start
	// sketch; 0 means DefaultCapacity.
	Capacity int
	// WindowCapacity is the number of counters of each of a filter's
	// last-minute sketches; 0 means DefaultWindowCapacity.
	WindowCapacity int
	// Seed seeds the hash of the sketches' indices (0: a random seed).
	// Results never depend on it.
	Seed uint64
}

// Top keeps, per filter, the peers with the most failed attempts and the
// failures per service port, since start and in the last minute.
//
// It reads no clock: every failure comes with its time, and a snapshot
// with the time it is taken at. It is not safe for concurrent use: Add
// must not run at the same time as any other method. Snapshot only reads,
// so several snapshots may be taken at once.
type Top struct {
	seed  [3]uint64
	clock int64 // the latest failure time, math.MinInt64 before the first
	f     []filterTop
}

// filterTop is the state of one filter.
type filterTop struct {
	since sketch
	win   [slots]span
	ports [numPages]*portPage
}

// span is one Granularity of the last-minute window: the sketch of the
// failures whose time lies in the period epoch (time / Granularity,
// rounded down), and that period's failures per port in win[i] of the port
// pages, i being the span's index.
type span struct {
	epoch int64 // math.MinInt64 when unused
	sk    sketch
}

// Ports are counted in pages of 256 consecutive ports, allocated when one
// of them first fails: a filter that sees the usual few services holds a
// few pages, 9 KiB each, rather than counters for 65536 ports.
const (
	pageBits = 8
	pageSize = 1 << pageBits
	numPages = 1 << (16 - pageBits)
)

// portPage counts the failures of pageSize ports: since start, and per
// span of the window.
type portPage struct {
	since [pageSize]uint64
	win   [slots][pageSize]uint32
}

// maxCapacity bounds the capacities, so that entry indices fit an int32
// with room to spare.
const maxCapacity = 1 << 24

// withDefaults returns cfg with the defaults filled in and the
// capacities at most maxCapacity.
func (cfg Config) withDefaults() Config {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.WindowCapacity <= 0 {
		cfg.WindowCapacity = DefaultWindowCapacity
	}
	cfg.Capacity = min(cfg.Capacity, maxCapacity)
	cfg.WindowCapacity = min(cfg.WindowCapacity, maxCapacity)
	return cfg
}

// New returns a Top for cfg.Filters filters. It allocates sketch memory
// only as failures arrive.
func New(cfg Config) *Top {
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t := &Top{
		seed:  [3]uint64{splitmix(&seed), splitmix(&seed), splitmix(&seed)},
		clock: math.MinInt64,
		f:     make([]filterTop, max(cfg.Filters, 0)),
	}
	for i := range t.f {
		f := &t.f[i]
		f.since.capacity = int32(cfg.Capacity)
		for j := range f.win {
			f.win[j].epoch = math.MinInt64
			f.win[j].sk.capacity = int32(cfg.WindowCapacity)
		}
	}
	return t
}

// Add counts a failed attempt of peer to port, ended with result r at
// time at (Unix nanoseconds), in filter number filter. peer is the remote
// end (for an RX filter the initiator, for TX and ANY the responder), port
// the responder's port; a zone of peer is dropped. A result other than Timeout, Reject,
// Unreach or Abort is ignored. A failure already out of the window (its
// Granularity period Window/Granularity periods or more before that of the
// latest failure) counts since start only.
//
// Add takes O(1) time and, once the sketches are full, allocates nothing.
// It panics if filter is out of range.
func (t *Top) Add(filter int, peer netip.Addr, port uint16, r Result, at int64) {
	if r >= numResults {
		return
	}
	k := keyOf(peer, port)
	t.clock = max(t.clock, at)
	t.f[filter].add(k, hashKey(k, &t.seed), r, at, epochOf(t.clock))
}

// AddSet is Add for every filter whose bit is set in filters (bit i:
// filter i), as classify.Event.Filters gives them; it hashes the pair
// once for all of them. As the peer depends on the direction, the caller
// gives the RX filters of an event with its initiator and the others with
// its responder, in two calls.
func (t *Top) AddSet(filters uint64, peer netip.Addr, port uint16, r Result, at int64) {
	if r >= numResults || filters == 0 {
		return
	}
	k := keyOf(peer, port)
	h := hashKey(k, &t.seed)
	t.clock = max(t.clock, at)
	cur := epochOf(t.clock)
	for filters != 0 {
		i := bits.TrailingZeros64(filters)
		filters &= filters - 1
		t.f[i].add(k, h, r, at, cur)
	}
}

// Rebase moves the clock to now, also back, for packet time that stepped
// back (the caller sees classify.Classifier.ClockSteps grow). The last
// minute then starts empty at the new time, where otherwise it would show
// no new failure until time came back to the latest one before the step,
// and then old ones again. Counts since start are kept.
func (t *Top) Rebase(now int64) {
	if now < t.clock {
		for i := range t.f {
			for j := range t.f[i].win {
				t.f[i].win[j].epoch = math.MinInt64 // reset when used again
			}
		}
	}
	t.clock = now
}

// add counts a failure in the filter; cur is the epoch of the clock.
func (f *filterTop) add(k key, h uint32, r Result, at, cur int64) {
	f.since.add(k, h, r, at)
	pg := f.ports[k.port>>pageBits]
	if pg == nil {
		pg = new(portPage)
		f.ports[k.port>>pageBits] = pg
	}
	pg.since[k.port%pageSize]++
	e := epochOf(at)
	if e <= cur-int64(slots) {
		return // before the oldest span
	}
	i := spanOf(e)
	if w := &f.win[i]; w.epoch != e {
		// The span held a period that has left the window.
		w.epoch = e
		w.sk.reset()
		for _, p := range f.ports {
			if p != nil {
				clear(p.win[i][:])
			}
		}
	}
	f.win[i].sk.add(k, h, r, at)
	pg.win[i][k.port%pageSize]++
}

// epochOf returns the number of the Granularity period that holds time t.
func epochOf(t int64) int64 {
	e := t / Granularity
	if t%Granularity < 0 {
		e--
	}
	return e
}

// spanOf returns the index of the span that holds epoch e.
func spanOf(e int64) int {
	i := int(e % int64(slots))
	if i < 0 {
		i += slots
	}
	return i
}

// Peer is one row of an answer: a remote address and a service port, with
// the failed attempts between them.
//
// Failures is an upper bound of the true number of failed attempts, and
// Failures - Error a lower bound; Error is 0 when Failures is exact. The
// per-result counts hold the failures that were seen while the pair was
// tracked, so they sum to Failures - Error and each true count lies between
// its count and its count + Error.
type Peer struct {
	Addr     netip.Addr `json:"peer"`
	Port     uint16     `json:"port"`
	Failures uint64     `json:"failures"`
	Timeout  uint64     `json:"timeout"`
	Reject   uint64     `json:"reject"`
	Unreach  uint64     `json:"unreach"`
	Abort    uint64     `json:"abort"`
	Error    uint64     `json:"error"`
	// Last is the time of the latest failure that was seen (Unix
	// nanoseconds); the caller formats it (RFC 3339 in the SPEC's JSON).
	Last int64 `json:"-"`
}

// Service is the exact number of failed attempts to a service port.
type Service struct {
	Port     uint16 `json:"port"`
	Failures uint64 `json:"failures"`
}

// FilterTop is the answer for one filter. Peer lists are sorted by
// Failures descending, then address (IPv4 before IPv6, as
// netip.Addr.Compare orders them), then port ascending; service lists by
// Failures descending, then port. No list is nil.
type FilterTop struct {
	SinceStart []Peer `json:"since_start"`
	// LastMinute covers every failure of the last Window before the
	// snapshot's time, and none older than Window + Granularity.
	LastMinute         []Peer    `json:"last_minute"`
	Services           []Service `json:"services"`
	ServicesLastMinute []Service `json:"services_last_minute"`
}

// ClampN returns the number of rows an answer asked for n has: DefaultN
// if n < 1, at most MaxN.
func ClampN(n int) int {
	if n < 1 {
		return DefaultN
	}
	return min(n, MaxN)
}

// Snapshot returns, for each filter in order, its top ClampN(n) peers and
// services since start and in the last minute before now (Unix
// nanoseconds). A now before the latest failure is taken as that
// failure's time, so that no failure is ever hidden by a lagging clock.
// Snapshot allocates its answer and changes nothing.
func (t *Top) Snapshot(n int, now int64) []FilterTop {
	n = ClampN(n)
	q := epochOf(max(now, t.clock))
	out := make([]FilterTop, len(t.f))
	for i := range t.f {
		out[i] = t.f[i].snapshot(n, q)
	}
	return out
}

func (f *filterTop) snapshot(n int, q int64) FilterTop {
	var live []*sketch // the sketches of the spans in the window
	var liveIdx []int
	for i := range f.win {
		if e := f.win[i].epoch; e > q-int64(slots) && e <= q {
			live = append(live, &f.win[i].sk)
			liveIdx = append(liveIdx, i)
		}
	}
	return FilterTop{
		SinceStart:         topOf([]*sketch{&f.since}, n),
		LastMinute:         topOf(live, n),
		Services:           f.services(n, true, nil),
		ServicesLastMinute: f.services(n, false, liveIdx),
	}
}

// topOf returns the n rows with the most failures in the merge of the
// sketches sks, each of a different period.
//
// A pair's merged count is the sum, over the sketches, of its count in
// the sketch or, if the sketch lacks it, of the most it may have had there
// unseen (the sketch's missing()); each such term adds to the error as
// well as to the count, so the merged row keeps both bounds. A pair
// lacking from every sketch has had at most the sum of their missing(),
// which is at most the merged failures / their capacity.
//
// The merge is Fagin's threshold algorithm: it walks the sketches in
// step, from their largest counts down, and merges each pair the first
// time it meets it; after each step no pair it has not met can have more
// than the sum of the counts at the next step (or of missing() for a
// sketch walked to its end), so it stops once the n-th best row has more.
// On a skewed distribution, the one where the answer matters, it looks at
// few entries; at worst it looks at every entry of every sketch, with as
// many index lookups as sketches for each.
func topOf(sks []*sketch, n int) []Peer {
	best := bounded[Peer]{n: n, before: peerBefore}
	var longest int
	miss := make([]uint64, len(sks))
	for j, s := range sks {
		longest = max(longest, len(s.order))
		miss[j] = s.missing()
	}
	for d := range longest {
		for j, s := range sks {
			if d >= len(s.order) {
				continue
			}
			e := &s.ent[s.order[d]]
			if row, ok := merge(sks, miss, e.key, e.hash, j, d); ok {
				best.offer(row)
			}
		}
		if len(best.items) == n {
			var bound uint64
			for j, s := range sks {
				if d+1 < len(s.order) {
					bound += s.count(s.order[d+1])
				} else {
					bound += miss[j]
				}
			}
			if best.items[0].Failures > bound {
				break
			}
		}
	}
	return best.sorted()
}

// merge returns the merged row of key k, met in sketch j at position d,
// and false if the walk of topOf met it before, at an earlier position or
// at position d of an earlier sketch. miss[i] is sks[i].missing().
func merge(sks []*sketch, miss []uint64, k key, h uint32, j, d int) (Peer, bool) {
	row := Peer{Port: k.port, Last: math.MinInt64}
	for j2, s := range sks {
		i := s.find(k, h)
		if i < 0 {
			row.Failures += miss[j2]
			row.Error += miss[j2]
			continue
		}
		e := &s.ent[i]
		if p := int(e.pos); p < d || (p == d && j2 < j) {
			return Peer{}, false
		}
		row.Failures += s.count(i)
		row.Error += s.errorOf(i)
		row.Timeout += e.res[Timeout]
		row.Reject += e.res[Reject]
		row.Unreach += e.res[Unreach]
		row.Abort += e.res[Abort]
		row.Last = max(row.Last, e.last)
	}
	row.Addr = k.addr()
	return row, true
}

// peerBefore tells whether row a comes before row b in an answer.
func peerBefore(a, b Peer) bool {
	if a.Failures != b.Failures {
		return a.Failures > b.Failures
	}
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c < 0
	}
	return a.Port < b.Port
}

// serviceBefore tells whether row a comes before row b in an answer.
func serviceBefore(a, b Service) bool {
	if a.Failures != b.Failures {
		return a.Failures > b.Failures
	}
	return a.Port < b.Port
}

// bounded keeps the n first items offered, in the order before gives, as
// a heap with the last of them on top.
type bounded[T any] struct {
	n      int
	before func(a, b T) bool
	items  []T
}

// offer adds x if it comes before the last item kept, or if fewer than n
// are kept.
func (b *bounded[T]) offer(x T) {
	if len(b.items) < b.n {
		b.items = append(b.items, x)
		for i := len(b.items) - 1; i > 0; {
			p := (i - 1) / 2
			if !b.before(b.items[p], b.items[i]) {
				break
			}
			b.items[p], b.items[i] = b.items[i], b.items[p]
			i = p
		}
		return
	}
	if b.n == 0 {
		return
	}
	if !b.before(x, b.items[0]) {
		return
	}
	b.items[0] = x
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(b.items) {
			break
		}
		if c+1 < len(b.items) && b.before(b.items[c], b.items[c+1]) {
			c++
		}
		if !b.before(b.items[i], b.items[c]) {
			break
		}
		b.items[i], b.items[c] = b.items[c], b.items[i]
		i = c
	}
}

// sorted returns the items kept, first to last, never nil.
func (b *bounded[T]) sorted() []T {
	if b.items == nil {
		return []T{}
	}
	slices.SortFunc(b.items, func(x, y T) int {
		switch {
		case b.before(x, y):
			return -1
		case b.before(y, x):
			return 1
		}
		return 0
	})
	return b.items
}

// services returns the n ports with the most failures: since start, or in
// the spans live.
func (f *filterTop) services(n int, since bool, live []int) []Service {
	best := bounded[Service]{n: n, before: serviceBefore}
	for pi, pg := range f.ports {
		if pg == nil {
			continue
		}
		for j := range pageSize {
			var c uint64
			if since {
				c = pg.since[j]
			} else {
				for _, w := range live {
					c += uint64(pg.win[w][j])
				}
			}
			if c > 0 {
				best.offer(Service{Port: uint16(pi<<pageBits | j), Failures: c})
			}
		}
	}
	return best.sorted()
}

// MaxBytes returns the most memory a Top made with cfg may hold (see
// Bytes): per filter, the since-start sketch and the window's sketches
// full, and a page for every port.
func MaxBytes(cfg Config) int {
	cfg = cfg.withDefaults()
	perFilter := int(unsafe.Sizeof(filterTop{})) + sketchMaxBytes(cfg.Capacity) +
		slots*sketchMaxBytes(cfg.WindowCapacity) + numPages*int(unsafe.Sizeof(portPage{}))
	return int(unsafe.Sizeof(Top{})) + max(cfg.Filters, 0)*perFilter
}

// Bytes returns the memory that t holds, which grows as failures of new
// peers and ports arrive, up to a bound set by the capacities: see the
// package documentation.
func (t *Top) Bytes() int {
	b := int(unsafe.Sizeof(*t)) + cap(t.f)*int(unsafe.Sizeof(filterTop{}))
	for i := range t.f {
		f := &t.f[i]
		b += f.since.bytes()
		for j := range f.win {
			b += f.win[j].sk.bytes()
		}
		for _, p := range f.ports {
			if p != nil {
				b += int(unsafe.Sizeof(*p))
			}
		}
	}
	return b
}
