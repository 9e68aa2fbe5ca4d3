package filter

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Error is a filter expression that cannot be used. Its message has the form
//
//	filter "<expression>": <what is wrong> (column N)
//
// where N, when not 0, is the 1-based position (in characters) of the first
// offending character, or one past the end when something is missing at the end.
type Error struct {
	// Expr is the expression as given.
	Expr string
	// Column is the 1-based character position of the problem, 0 when the
	// problem is with the expression as a whole.
	Column int
	// Msg says what is wrong.
	Msg string
}

// Error returns the message, which does not start with the program's name.
func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("filter %q: %s (column %d)", e.Expr, e.Msg, e.Column)
	}
	return fmt.Sprintf("filter %q: %s", e.Expr, e.Msg)
}

// parser holds the expression being parsed, for the positions in errors.
type parser struct {
	expr string
}

// errAt returns an *Error for the byte offset off of the expression.
func (p *parser) errAt(off int, format string, args ...any) error {
	if off > len(p.expr) {
		off = len(p.expr)
	}
	return &Error{
		Expr:   p.expr,
		Column: utf8.RuneCountInString(p.expr[:off]) + 1,
		Msg:    fmt.Sprintf(format, args...),
	}
}

// Parse parses one filter expression. Its errors are of type *Error.
func Parse(expr string) (*Filter, error) {
	p := &parser{expr: expr}
	if expr == "" {
		return nil, p.errAt(0, "empty expression")
	}

	// NAME ':'
	colon := strings.IndexByte(expr, ':')
	nameTok := expr
	if colon >= 0 {
		nameTok = expr[:colon]
	}
	if pcapFilterWords[strings.ToLower(expr)] {
		return nil, p.errAt(0, "%q is pcap-filter syntax, which tcpeek does not take: write filters as NAME:DIR@ADDR:PORT, e.g. web:RX@*:80 (see tcpeek --help)", expr)
	}
	if at := strings.IndexByte(nameTok, '@'); at >= 0 {
		if _, ok := parseDir(nameTok[:at]); ok {
			return nil, p.errAt(0, "missing ':' before the direction, e.g. \"web:RX@...\" or \":RX@...\"")
		}
		for _, d := range []string{"RX", "TX", "ANY"} {
			if n := at - len(d); n > 0 && asciiEqualFold(nameTok[n:at], d) {
				return nil, p.errAt(n, "missing ':' between the name and the direction: did you mean %q?", strings.TrimRight(nameTok[:n], "_.-")+":"+expr[n:])
			}
		}
	}
	for i := 0; i < len(nameTok); i++ {
		if !nameChar(nameTok[i]) {
			r, _ := utf8.DecodeRuneInString(nameTok[i:])
			return nil, p.errAt(i, "name %q has the character %q, which is not allowed; use A-Z, a-z, 0-9, '_', '.' and '-'", nameTok, r)
		}
		if i == MaxNameLen {
			return nil, p.errAt(i, "name %q is longer than %d characters", nameTok, MaxNameLen)
		}
	}
	if colon < 0 {
		return nil, p.errAt(len(expr), "missing ':' after the name")
	}
	f := &Filter{Name: nameTok, Expr: expr}

	// DIR '@'
	dirOff := colon + 1
	rest := expr[dirOff:]
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		// Tell a missing '@' from a bad direction by the leading letters.
		n := 0
		for n < len(rest) && isLetter(rest[n]) {
			n++
		}
		if n == 0 {
			return nil, p.errAt(dirOff, "missing direction RX, TX or ANY")
		}
		if _, ok := parseDir(rest[:n]); !ok {
			return nil, p.errAt(dirOff, "direction %q is not RX, TX or ANY", rest[:n])
		}
		return nil, p.errAt(dirOff+n, "missing '@' after the direction")
	}
	if at == 0 {
		return nil, p.errAt(dirOff, "missing direction RX, TX or ANY")
	}
	dir, ok := parseDir(rest[:at])
	if !ok {
		return nil, p.errAt(dirOff, "direction %q is not RX, TX or ANY", rest[:at])
	}
	f.Dir = dir

	// RULE { ',' RULE }
	rulesOff := dirOff + at + 1
	rules := expr[rulesOff:]
	if rules == "" {
		return nil, p.errAt(rulesOff, "missing rule after '@'")
	}
	start := 0
	for start <= len(rules) {
		end := nextRuleEnd(rules, start)
		r, err := p.parseRule(rules[start:end], rulesOff+start)
		if err != nil {
			return nil, err
		}
		f.Rules = append(f.Rules, r)
		start = end + 1
	}
	return f, nil
}

// pcapFilterWords are the words that begin pcap-filter expressions
// (tcpdump's), which users pass by habit.
var pcapFilterWords = map[string]bool{
	"tcp": true, "udp": true, "icmp": true, "icmp6": true, "ip": true, "ip6": true,
	"port": true, "portrange": true, "host": true, "net": true, "src": true, "dst": true,
	"and": true, "or": true, "not": true, "proto": true, "ether": true, "vlan": true,
	"arp": true, "greater": true, "less": true,
}

// nextRuleEnd returns the end of the rule that starts at rules[start:]: the
// first ',' after which the text up to the next ',' (or the end) contains a
// ':', so that it can be an ADDR:PORT rule, or len(rules). Other commas stay
// in the rule, where they make a bad port.
func nextRuleEnd(rules string, start int) int {
	for i := start; i < len(rules); i++ {
		if rules[i] != ',' {
			continue
		}
		next := rules[i+1:]
		if j := strings.IndexByte(next, ','); j >= 0 {
			next = next[:j]
		}
		if strings.IndexByte(next, ':') >= 0 {
			return i
		}
	}
	return len(rules)
}

// parseDir parses a direction, case-insensitively (ASCII only).
func parseDir(s string) (Direction, bool) {
	switch {
	case asciiEqualFold(s, "RX"):
		return RX, true
	case asciiEqualFold(s, "TX"):
		return TX, true
	case asciiEqualFold(s, "ANY"):
		return ANY, true
	}
	return 0, false
}

// asciiEqualFold reports whether s equals the upper-case ASCII word upper,
// ignoring the case of ASCII letters only.
func asciiEqualFold(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// isLetter reports whether c is an ASCII letter.
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// nameChar reports whether c may appear in a filter name.
func nameChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == '-' }

// parseRule parses one ADDR:PORT{:PORT} rule found at byte offset off of the expression.
func (p *parser) parseRule(s string, off int) (Rule, error) {
	var r Rule
	if s == "" {
		if off < len(p.expr) {
			return r, p.errAt(off, "empty rule before ','")
		}
		return r, p.errAt(off, "missing rule after '@'")
	}
	var portsOff int // offset in s of the ':' before the ports
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return r, p.errAt(off, "address %q is missing its ']'", s)
		}
		pfx, err := p.parseIPv6(s[1:end], off+1)
		if err != nil {
			return r, err
		}
		r.Addr = pfx
		if end+1 == len(s) {
			return r, p.errAt(off+len(s), "rule %q has no port", s)
		}
		if s[end+1] != ':' {
			return r, p.errAt(off+end+1, "missing ':' after ']'")
		}
		portsOff = end + 1
	} else {
		colon := strings.IndexByte(s, ':')
		if looksLikeIPv6(s) {
			return r, p.errAt(off, "rule %q has an IPv6 address without brackets; IPv6 addresses go in brackets, e.g. [2001:db8::1]:443", s)
		}
		if colon < 0 {
			if _, err := p.parseIPv4(s, off); err != nil {
				return r, err
			}
			return r, p.errAt(off+len(s), "rule %q has no port", s)
		}
		if colon == 0 {
			return r, p.errAt(off, "rule %q has no address", s)
		}
		pfx, err := p.parseIPv4(s[:colon], off)
		if err != nil {
			return r, err
		}
		r.Addr = pfx
		portsOff = colon
	}

	// ':' PORT { ':' PORT }
	wild := false
	for i := portsOff; i < len(s); {
		start := i + 1
		end := strings.IndexByte(s[start:], ':')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		tok := s[start:end]
		if tok == "" {
			return r, p.errAt(off+start, "missing port after ':'")
		}
		pr, isWild, err := p.parsePort(tok, off+start)
		if err != nil {
			return r, err
		}
		if isWild {
			wild = true
		} else {
			r.Ports = append(r.Ports, pr)
		}
		i = end
	}
	if wild {
		r.Ports = nil
	}
	return r, nil
}

// looksLikeIPv6 reports whether the rule s starts with an IPv6 address (or
// prefix) that is not in brackets, to give a hint instead of a bare error.
func looksLikeIPv6(s string) bool {
	if strings.HasPrefix(s, "::") {
		return true
	}
	const maxLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128")
	for i := 0; i <= len(s) && i <= maxLen; i++ {
		if i < len(s) && s[i] != ':' {
			continue
		}
		cand := s[:i]
		if strings.IndexByte(cand, ':') < 0 {
			continue
		}
		if strings.IndexByte(cand, '/') >= 0 {
			if pfx, err := netip.ParsePrefix(cand); err == nil && pfx.Addr().Is6() {
				return true
			}
		} else if a, err := netip.ParseAddr(cand); err == nil && a.Is6() {
			return true
		}
	}
	return false
}

// parseIPv4 parses '*', '%' or IPV4 [ '/' LEN ] found at byte offset off.
func (p *parser) parseIPv4(s string, off int) (netip.Prefix, error) {
	addrText, lenText, hasLen := strings.Cut(s, "/")
	if addrText == "*" || addrText == "%" {
		if hasLen {
			return netip.Prefix{}, p.errAt(off+len(addrText), "wildcard address %q takes no prefix length", addrText)
		}
		return netip.Prefix{}, nil
	}
	a, err := netip.ParseAddr(addrText)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, p.errAt(off, "address %q is not a valid IPv4 address", addrText)
	}
	bits := 32
	if hasLen {
		if bits, err = p.parsePrefixLen(lenText, off+len(addrText)+1, 32); err != nil {
			return netip.Prefix{}, err
		}
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseIPv6 parses IPV6 [ '/' LEN ], the text between brackets found at byte offset off.
func (p *parser) parseIPv6(s string, off int) (netip.Prefix, error) {
	addrText, lenText, hasLen := strings.Cut(s, "/")
	if addrText == "" {
		return netip.Prefix{}, p.errAt(off, "missing IPv6 address between '[' and ']'")
	}
	a, err := netip.ParseAddr(addrText)
	switch {
	case err != nil:
		return netip.Prefix{}, p.errAt(off, "address %q is not a valid IPv6 address", addrText)
	case a.Is4():
		return netip.Prefix{}, p.errAt(off-1, "IPv4 address %q is in brackets; only IPv6 addresses go in brackets", addrText)
	case a.Zone() != "":
		return netip.Prefix{}, p.errAt(off, "address %q has a zone; zones are not supported", addrText)
	case a.Is4In6():
		return netip.Prefix{}, p.errAt(off, "address %q is IPv4-mapped; write the IPv4 address %s without brackets", addrText, a.Unmap())
	}
	bits := 128
	if hasLen {
		if bits, err = p.parsePrefixLen(lenText, off+len(addrText)+1, 128); err != nil {
			return netip.Prefix{}, err
		}
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parsePrefixLen parses the decimal prefix length s, found at byte offset
// off, and checks that it is at most max.
func (p *parser) parsePrefixLen(s string, off, max int) (int, error) {
	if s == "" {
		return 0, p.errAt(off, "missing prefix length after '/'")
	}
	n, i := number(s)
	if i < len(s) {
		return 0, p.errAt(off+i, "prefix length %q is not a number", s)
	}
	if n > max {
		return 0, p.errAt(off, "prefix length %q is out of range 0-%d", s, max)
	}
	return n, nil
}

// number parses the leading decimal digits of s. It returns their value,
// saturated above 65535 so that it cannot overflow, and how many there are.
func number(s string) (n, i int) {
	for i < len(s) && isDigit(s[i]) {
		if n <= 65535 {
			n = n*10 + int(s[i]-'0')
		}
		i++
	}
	return n, i
}

// parsePort parses one PORT token found at byte offset off. It reports
// whether the token is the wildcard.
func (p *parser) parsePort(s string, off int) (PortRange, bool, error) {
	if s == "*" || s == "%" {
		return PortRange{}, true, nil
	}
	lo, i := number(s)
	if i == 0 || (i < len(s) && s[i] != '-') {
		return PortRange{}, false, p.errAt(off+i, "port %q is not a number", s)
	}
	if lo < 1 || lo > 65535 {
		return PortRange{}, false, p.errAt(off, "port %q is out of range 1-65535", s[:i])
	}
	if i == len(s) {
		return PortRange{Lo: uint16(lo), Hi: uint16(lo)}, false, nil
	}
	// N '-' M
	hiOff := i + 1
	hi, j := number(s[hiOff:])
	if j == 0 && hiOff == len(s) {
		return PortRange{}, false, p.errAt(off+hiOff, "port range %q has no end", s)
	}
	if j == 0 || hiOff+j < len(s) {
		return PortRange{}, false, p.errAt(off+hiOff+j, "port %q is not a number", s)
	}
	if hi < 1 || hi > 65535 {
		return PortRange{}, false, p.errAt(off+hiOff, "port %q is out of range 1-65535", s[hiOff:])
	}
	if lo > hi {
		return PortRange{}, false, p.errAt(off, "port range %q starts above its end", s)
	}
	return PortRange{Lo: uint16(lo), Hi: uint16(hi)}, false, nil
}
