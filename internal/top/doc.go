// Package top keeps, per filter, the peers with the most failed handshake
// attempts, in memory that does not grow with the number of peers, and
// the exact failures per service port (SPEC §7, TOP and the top key of
// STATS).
//
// A failure is counted under its (peer, port) pair: the remote end (for
// RX the initiator, for TX and ANY the responder) and the responder's
// port, with its result (timeout, reject, unreach, abort) and its time.
// Times are packet time in Unix nanoseconds: the package reads no clock,
// does no I/O and starts no goroutine.
//
// # Since start
//
// Each filter has a Space-Saving sketch (Metwally, Agrawal and El Abbadi,
// 2005) of k counters (Config.Capacity, default 4096). A pair that has a
// counter adds to it; a new pair takes a free counter, or else the one
// with the smallest count c, which it keeps with c as its error. With T
// failures counted so far:
//
//   - every row's true failures lie between failures - error and failures
//     (error 0: exact), and each per-result count between its value and
//     its value + error (they count the failures seen while the pair held
//     its counter, so they sum to failures - error);
//   - the error of a row is at most T/k, and every pair with more than T/k
//     failures holds a counter: with the default, every pair with more than
//     1/4096 of the filter's failures is in the sketch, and is listed in an
//     answer of N rows if it also has more failures than the N-th row.
//
// # Last minute
//
// The window is a ring of 7 sketches of WindowCapacity counters (default
// 2048), one for each 10-second period of packet time (Granularity): the
// current period and the 6 before it. An answer at time now merges the
// sketches of the periods from now/10s - 6 to now/10s, so it holds every
// failure of the last 60 s and none older than 70 s (granularity 10 s);
// a now before the latest failure counts as the latest failure's time. A
// failure that arrives when its period has already left the window counts
// since start only.
//
// A merged row adds, for each period, the pair's count in that period's
// sketch or, if the sketch lacks the pair, the most it can have had there
// unseen: 0 if that sketch never replaced a pair, else its smallest count.
// Each such term is added to the error as well, so the bounds above hold
// for merged rows too: failures - error <= true <= failures. A pair that
// is in no sketch has had at most the sum of their smallest counts, at
// most W/k' for W failures in the window and k' = WindowCapacity, so every
// pair with more than W/k' failures in the window appears in the merge.
//
// # Services
//
// Failures per service port are exact, since start and per period of the
// window, in pages of 256 ports allocated when one of their ports first
// fails: 9 KiB per page in use. A filter that sees a few services holds a
// few pages; a scan of all 65536 ports costs 2.25 MiB for that filter,
// never more.
//
// # Answers
//
// Snapshot gives, per filter, the N rows with the most failures (N from 1
// to MaxN = 1000, default 10), sorted by failures descending, then peer
// address (IPv4 before IPv6, netip.Addr.Compare), then port ascending, so
// that equal answers print equally; services by failures, then port. The
// merge of sketches is Fagin's threshold algorithm: it stops as soon as no
// unseen pair can beat the N-th row, after a few entries on skewed traffic
// and after every entry when all counts are tied.
//
// # Cost
//
// Add is O(1): a hash lookup and a constant number of swaps per sketch
// (two sketches per filter), no allocation once the sketches are full.
// Memory grows as failing pairs arrive, up to MaxBytes: per filter at the
// default capacities, 480 KiB for the since-start sketch, 7 x 240 KiB for
// the window (120 bytes per counter at most), plus the port pages (9 KiB
// each, 2.25 MiB at worst): 4.4 MiB at most, 1.8 MiB with full sketches
// and a handful of services.
package top
