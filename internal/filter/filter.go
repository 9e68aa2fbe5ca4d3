// Package filter parses tcpeek filter expressions and decides which filters
// count a new TCP session.
//
// An expression has the form
//
//	[NAME] ':' DIR '@' RULE { ',' RULE }
//	RULE := ADDR ':' PORT { ':' PORT }
//	DIR  := 'RX' | 'TX' | 'ANY'                        (case-insensitive)
//	ADDR := '*' | '%' | IPV4 [ '/' LEN ] | '[' IPV6 [ '/' LEN ] ']'
//	PORT := '*' | '%' | N | N '-' M                    (1 <= N <= M <= 65535)
//	NAME := 1-64 of [A-Za-z0-9_.-]
//
// A filter without a name is an exclusion filter: a session that matches
// any exclusion filter is counted by no filter.
package filter

import (
	"net/netip"
	"strconv"
	"strings"
)

// MaxFilters is the largest number of named filters in a Set, the default
// filters included, so that a session's filters fit in a uint64 mask.
const MaxFilters = 64

// MaxNameLen is the longest filter name, in characters.
const MaxNameLen = 64

// Direction says which end of a session a filter expects to be local.
type Direction uint8

const (
	// RX matches sessions whose responder (server) is local.
	RX Direction = iota + 1
	// TX matches sessions whose initiator (client) is local.
	TX
	// ANY matches sessions whatever their direction, also when it is unknown.
	ANY
)

// String returns "RX", "TX" or "ANY", or "Direction(N)" for an invalid value.
func (d Direction) String() string {
	switch d {
	case RX:
		return "RX"
	case TX:
		return "TX"
	case ANY:
		return "ANY"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// PortRange is an inclusive range of responder ports.
type PortRange struct{ Lo, Hi uint16 }

// String returns "N" for a single port and "N-M" for a range.
func (p PortRange) String() string {
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo))
	}
	return strconv.Itoa(int(p.Lo)) + "-" + strconv.Itoa(int(p.Hi))
}

// Rule is one ADDR:PORT... term of an expression.
type Rule struct {
	// Addr is the network the peer address must lie in, already masked.
	// An invalid prefix (!Addr.IsValid()) is the wildcard address.
	Addr netip.Prefix
	// Ports are the responder ports the rule accepts. Nil is the wildcard.
	Ports []PortRange
}

// String returns the rule's canonical text, for example "*:*",
// "192.168.0.0/24:80:443", "10.0.0.1:8000-8080" or "[2001:db8::/32]:443".
// A host prefix (/32 for IPv4, /128 for IPv6) is printed without its length.
func (r Rule) String() string {
	var b strings.Builder
	switch {
	case !r.Addr.IsValid():
		b.WriteByte('*')
	case r.Addr.Addr().Is4():
		b.WriteString(prefixText(r.Addr))
	default:
		b.WriteByte('[')
		b.WriteString(prefixText(r.Addr))
		b.WriteByte(']')
	}
	if r.Ports == nil {
		b.WriteString(":*")
		return b.String()
	}
	for _, p := range r.Ports {
		b.WriteByte(':')
		b.WriteString(p.String())
	}
	return b.String()
}

// prefixText prints p, leaving out the length of a single-address prefix.
func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Match reports whether the rule accepts a session whose peer address (the
// end the rule's ADDR is compared with) is peer and whose responder port is
// port. An IPv4-mapped IPv6 peer is treated as the IPv4 address it maps.
func (r Rule) Match(peer netip.Addr, port uint16) bool {
	return r.match(peer.Unmap().WithZone(""), port)
}

// match is Match for a peer already unmapped and without zone.
func (r Rule) match(peer netip.Addr, port uint16) bool {
	if r.Addr.IsValid() && !r.Addr.Contains(peer) {
		return false
	}
	if r.Ports == nil {
		return true
	}
	for _, p := range r.Ports {
		if p.Lo <= port && port <= p.Hi {
			return true
		}
	}
	return false
}

// Filter is one parsed expression.
type Filter struct {
	// Name is the filter's name, "" for an exclusion filter.
	Name string
	// Dir is the direction the filter's rules apply to.
	Dir Direction
	// Rules are the filter's rules; a session matching any of them matches the filter.
	Rules []Rule
	// Expr is the expression as given.
	Expr string
}

// RuleStrings returns the canonical text of each rule, in order.
func (f *Filter) RuleStrings() []string {
	s := make([]string, len(f.Rules))
	for i, r := range f.Rules {
		s[i] = r.String()
	}
	return s
}

// String returns the filter's canonical expression, NAME:DIR@RULE,RULE...,
// which Parse turns back into an equal filter.
func (f *Filter) String() string {
	return f.Name + ":" + f.Dir.String() + "@" + strings.Join(f.RuleStrings(), ",")
}

// Exclusion reports whether f is an exclusion filter (one without a name).
func (f *Filter) Exclusion() bool { return f.Name == "" }

// match reports whether the filter counts a session from init to resp on
// respPort. The addresses are unmapped and without zone; initLocal and
// respLocal say whether each end is a local address.
func (f *Filter) match(init, resp netip.Addr, respPort uint16, initLocal, respLocal bool) bool {
	switch f.Dir {
	case RX:
		if !respLocal {
			return false
		}
		for _, r := range f.Rules {
			if r.match(init, respPort) {
				return true
			}
		}
	case TX:
		if !initLocal {
			return false
		}
		for _, r := range f.Rules {
			if r.match(resp, respPort) {
				return true
			}
		}
	case ANY:
		for _, r := range f.Rules {
			if r.match(init, respPort) || r.match(resp, respPort) {
				return true
			}
		}
	}
	return false
}
