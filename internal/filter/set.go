package filter

import (
	"fmt"
	"net/netip"
)

// Local is the set of addresses of the monitored host: exact addresses and
// networks. It is immutable once built; when the host's addresses change,
// the live mode builds a new one.
type Local struct {
	addrs map[netip.Addr]struct{}
	few   []netip.Addr // the addresses again, when there are few: a scan beats hashing
	nets  []netip.Prefix
}

// fewAddrs is the most addresses Contains compares one by one.
const fewAddrs = 16

// NewLocal returns the set of the given addresses and networks. Invalid
// values are left out; IPv4-mapped IPv6 values are stored as IPv4, networks
// are masked and zones are dropped.
func NewLocal(addrs []netip.Addr, nets []netip.Prefix) *Local {
	l := &Local{addrs: make(map[netip.Addr]struct{}, len(addrs))}
	for _, a := range addrs {
		if a.IsValid() {
			l.addrs[a.Unmap().WithZone("")] = struct{}{}
		}
	}
	if len(l.addrs) <= fewAddrs {
		for a := range l.addrs {
			l.few = append(l.few, a)
		}
	}
	for _, p := range nets {
		if !p.IsValid() {
			continue
		}
		a, bits := p.Addr().WithZone(""), p.Bits()
		if a.Is4In6() {
			if bits < 96 {
				// Covers more than the mapped IPv4 space; keep it as IPv6.
				p = netip.PrefixFrom(a, bits).Masked()
			} else {
				p = netip.PrefixFrom(a.Unmap(), bits-96).Masked()
			}
		} else {
			p = netip.PrefixFrom(a, bits).Masked()
		}
		dup := false
		for _, q := range l.nets {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			l.nets = append(l.nets, p)
		}
	}
	return l
}

// Contains reports whether a is a local address. An IPv4-mapped IPv6
// address is looked up as IPv4. A nil *Local contains nothing. Contains does
// not allocate.
func (l *Local) Contains(a netip.Addr) bool {
	if l == nil {
		return false
	}
	return l.contains(a.Unmap().WithZone(""))
}

// contains is Contains for an address already unmapped and without zone.
func (l *Local) contains(a netip.Addr) bool {
	if l.few != nil || len(l.addrs) == 0 {
		for _, b := range l.few {
			if a == b {
				return true
			}
		}
	} else if _, ok := l.addrs[a]; ok {
		return true
	}
	for _, p := range l.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Empty reports whether the set has no address and no network. A nil *Local is empty.
func (l *Local) Empty() bool {
	return l == nil || len(l.addrs) == 0 && len(l.nets) == 0
}

// Set is the whole filter configuration: the named filters in order, the
// default filters first, and the exclusion filters. It is immutable.
// ReservedName is the one name a filter may not have: GET answers the
// capture counters as an object of that name beside the filters'.
const ReservedName = "pcap"

type Set struct {
	named []*Filter
	excl  []*Filter
}

// NewSet parses exprs into a Set. haveLocal says whether any local address
// can be known (live mode, or --local-net given). With haveLocal, the named
// filters are RX:RX@*:* and TX:TX@*:* followed by the user's named filters in
// the order given; without it, they are ALL:ANY@*:* followed by the user's,
// and a user filter with direction RX or TX is an error. A name used twice,
// or more than MaxFilters named filters in all, is an error. The errors are
// of type *Error.
func NewSet(exprs []string, haveLocal bool) (*Set, error) {
	defaults := []string{"ALL:ANY@*:*"}
	if haveLocal {
		defaults = []string{"RX:RX@*:*", "TX:TX@*:*"}
	}
	s := &Set{}
	names := make(map[string]string) // name -> the expression that uses it
	for _, e := range defaults {
		f, err := Parse(e)
		if err != nil {
			panic("filter: bad default filter: " + err.Error())
		}
		s.named = append(s.named, f)
		names[f.Name] = ""
	}
	for _, e := range exprs {
		f, err := Parse(e)
		if err != nil {
			return nil, err
		}
		if !haveLocal && f.Dir != ANY {
			return nil, &Error{Expr: e, Msg: fmt.Sprintf("direction %s needs local addresses: give --local-net or use ANY", f.Dir)}
		}
		if f.Name == "" {
			s.excl = append(s.excl, f)
			continue
		}
		if f.Name == ReservedName {
			return nil, &Error{Expr: e, Msg: fmt.Sprintf("name %q is reserved: the socket's GET answer holds the capture counters under it; choose another name", f.Name)}
		}
		if prev, ok := names[f.Name]; ok {
			if prev == "" {
				return nil, &Error{Expr: e, Msg: fmt.Sprintf("name %q is already used by a default filter", f.Name)}
			}
			return nil, &Error{Expr: e, Msg: fmt.Sprintf("name %q is already used by filter %q", f.Name, prev)}
		}
		if len(s.named) == MaxFilters {
			return nil, &Error{Expr: e, Msg: fmt.Sprintf("too many named filters: at most %d, the %d default ones included", MaxFilters, len(defaults))}
		}
		names[f.Name] = e
		s.named = append(s.named, f)
	}
	return s, nil
}

// Filters returns the named filters in order: index i is bit i of the masks
// returned by Match. The returned slice is a copy; the filters must not be
// modified.
func (s *Set) Filters() []*Filter {
	if s == nil {
		return nil
	}
	return append([]*Filter(nil), s.named...)
}

// Exclusions returns the exclusion filters in the order given. The returned
// slice is a copy; the filters must not be modified.
func (s *Set) Exclusions() []*Filter {
	if s == nil {
		return nil
	}
	return append([]*Filter(nil), s.excl...)
}

// Match returns the bit mask of the named filters that count a new session
// from init to resp on the responder port respPort (bit i for Filters()[i]),
// or 0 when no filter matches or any exclusion filter matches. local is the
// current set of local addresses (nil for none). IPv4-mapped IPv6 addresses
// are treated as IPv4. Match does not allocate.
func (s *Set) Match(init, resp netip.Addr, respPort uint16, local *Local) uint64 {
	if s == nil {
		return 0
	}
	init = init.Unmap().WithZone("")
	resp = resp.Unmap().WithZone("")
	var initLocal, respLocal bool
	if local != nil {
		initLocal = local.contains(init)
		respLocal = local.contains(resp)
	}
	for _, f := range s.excl {
		if f.match(init, resp, respPort, initLocal, respLocal) {
			return 0
		}
	}
	var mask uint64
	for i, f := range s.named {
		if f.match(init, resp, respPort, initLocal, respLocal) {
			mask |= 1 << uint(i)
		}
	}
	return mask
}
