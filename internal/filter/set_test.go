package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var (
	// hostLocal is a host with one IPv4 and one IPv6 address, and a local network.
	hostLocal = NewLocal(
		[]netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		[]netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
	)
)

func TestSetMatch(t *testing.T) {
	const (
		local    = "192.0.2.10"
		local2   = "10.1.2.3" // in the local network
		local6   = "2001:db8::10"
		remote   = "198.51.100.7"
		remote2  = "203.0.113.9"
		remote6  = "2001:db8:ffff::7"
		mapped   = "::ffff:192.0.2.10"
		mappedRm = "::ffff:198.51.100.7"
	)
	tests := []struct {
		name      string
		exprs     []string
		haveLocal bool
		local     *Local
		init      string
		resp      string
		port      uint16
		want      []string // names of the filters that count the session
	}{
		// Defaults.
		{"RX default", nil, true, hostLocal, remote, local, 80, []string{"RX"}},
		{"TX default", nil, true, hostLocal, local, remote, 443, []string{"TX"}},
		{"both local", nil, true, hostLocal, local, local2, 22, []string{"RX", "TX"}},
		{"neither local", nil, true, hostLocal, remote, remote2, 22, nil},
		{"nil local", nil, true, nil, remote, local, 22, nil},
		{"empty local", nil, true, NewLocal(nil, nil), remote, local, 22, nil},
		{"local network RX", nil, true, hostLocal, remote, local2, 80, []string{"RX"}},
		{"IPv6 RX", nil, true, hostLocal, remote6, local6, 80, []string{"RX"}},
		{"IPv6 TX", nil, true, hostLocal, local6, remote6, 80, []string{"TX"}},
		{"mapped local", nil, true, hostLocal, remote, mapped, 80, []string{"RX"}},

		// RX compares ADDR with the initiator, TX with the responder; PORT is always the responder's.
		{"RX rule hit", []string{"web:RX@198.51.100.0/24:80"}, true, hostLocal, remote, local, 80, []string{"RX", "web"}},
		{"RX rule other port", []string{"web:RX@198.51.100.0/24:80"}, true, hostLocal, remote, local, 81, []string{"RX"}},
		{"RX rule other addr", []string{"web:RX@198.51.100.0/24:80"}, true, hostLocal, remote2, local, 80, []string{"RX"}},
		{"RX rule not local", []string{"web:RX@*:80"}, true, hostLocal, local, remote, 80, []string{"TX"}},
		{"RX rule addr is the initiator", []string{"web:RX@192.0.2.10:80"}, true, hostLocal, remote, local, 80, []string{"RX"}},
		{"TX rule hit", []string{"out:TX@198.51.100.7:443"}, true, hostLocal, local, remote, 443, []string{"TX", "out"}},
		{"TX rule addr is the responder", []string{"out:TX@192.0.2.10:443"}, true, hostLocal, local, remote, 443, []string{"TX"}},
		{"TX rule not local", []string{"out:TX@*:443"}, true, hostLocal, remote, local, 443, []string{"RX"}},
		{"both local RX and TX rules", []string{"in:RX@192.0.2.10:22", "out:TX@10.1.2.3:22"}, true, hostLocal, local, local2, 22,
			[]string{"RX", "TX", "in", "out"}},

		// ANY compares ADDR with either end, whatever the direction.
		{"ANY initiator", []string{"a:ANY@198.51.100.7:53"}, true, hostLocal, remote, remote2, 53, []string{"a"}},
		{"ANY responder", []string{"a:ANY@198.51.100.7:53"}, true, hostLocal, remote2, remote, 53, []string{"a"}},
		{"ANY port is the responder's", []string{"a:ANY@198.51.100.7:53"}, true, hostLocal, remote2, remote, 54, nil},
		{"ANY with local", []string{"a:ANY@*:53"}, true, hostLocal, remote, local, 53, []string{"RX", "a"}},
		{"ANY no local at all", []string{"a:ANY@*:53"}, true, nil, remote, remote2, 53, []string{"a"}},

		// Prefixes.
		{"unmasked rule address", []string{"lan:RX@198.51.100.99/24:*"}, true, hostLocal, remote, local, 1, []string{"RX", "lan"}},
		{"slash 0", []string{"w:RX@1.2.3.4/0:*"}, true, hostLocal, remote, local, 1, []string{"RX", "w"}},
		{"v4 rule v6 peer", []string{"w:ANY@0.0.0.0/0:*"}, true, hostLocal, remote6, local6, 1, []string{"RX"}},
		{"v6 rule v4 peer", []string{"w:ANY@[::/0]:*"}, true, hostLocal, remote, local, 1, []string{"RX"}},
		{"v6 rule v6 peer", []string{"w:TX@[2001:db8:ff00::/40]:443"}, true, hostLocal, local6, remote6, 443, []string{"TX", "w"}},
		{"v6 rule other net", []string{"w:TX@[2001:db8:ff00::/40]:443"}, true, hostLocal, local6, "2001:db8:1::7", 443, []string{"TX"}},
		{"mapped peer v4 rule", []string{"w:ANY@198.51.100.7:80"}, true, hostLocal, mappedRm, remote2, 80, []string{"w"}},
		{"wildcard addr v6", []string{"w:ANY@*:80"}, true, hostLocal, remote6, "2001:db8:ffff::8", 80, []string{"w"}},

		// Ports.
		{"wildcard port", []string{"w:RX@*:*"}, true, hostLocal, remote, local, 65535, []string{"RX", "w"}},
		{"port range low", []string{"w:RX@*:8000-8080"}, true, hostLocal, remote, local, 8000, []string{"RX", "w"}},
		{"port range high", []string{"w:RX@*:8000-8080"}, true, hostLocal, remote, local, 8080, []string{"RX", "w"}},
		{"port range out", []string{"w:RX@*:8000-8080"}, true, hostLocal, remote, local, 8081, []string{"RX"}},
		{"several ports", []string{"w:RX@*:22:80:443"}, true, hostLocal, remote, local, 443, []string{"RX", "w"}},

		// A session counts once in a filter, in every filter that matches.
		{"two rules match", []string{"w:RX@*:80,198.51.100.0/24:80"}, true, hostLocal, remote, local, 80, []string{"RX", "w"}},
		{"two filters match", []string{"a:RX@*:80", "b:ANY@*:*", "c:TX@*:*"}, true, hostLocal, remote, local, 80, []string{"RX", "a", "b"}},

		// Exclusions, whatever the order.
		{"exclusion first", []string{":RX@*:22", "ssh:RX@*:22"}, true, hostLocal, remote, local, 22, nil},
		{"exclusion last", []string{"ssh:RX@*:22", ":RX@*:22"}, true, hostLocal, remote, local, 22, nil},
		{"exclusion other port", []string{":RX@*:22", "ssh:RX@*:*"}, true, hostLocal, remote, local, 23, []string{"RX", "ssh"}},
		{"exclusion other direction", []string{":TX@*:22", "ssh:RX@*:*"}, true, hostLocal, remote, local, 22, []string{"RX", "ssh"}},
		{"exclusion TX", []string{":RX@*:22", ":TX@*:22"}, true, hostLocal, local, remote, 22, nil},
		{"exclusion ANY addr", []string{":ANY@198.51.100.7:*"}, true, hostLocal, local, remote, 80, nil},
		{"exclusion no match", []string{":ANY@198.51.100.8:*"}, true, hostLocal, local, remote, 80, []string{"TX"}},

		// Without local addresses: one ALL filter.
		{"no-local ALL", nil, false, nil, remote, remote2, 80, []string{"ALL"}},
		{"no-local ALL v6", nil, false, nil, remote6, local6, 80, []string{"ALL"}},
		{"no-local user", []string{"web:ANY@*:80"}, false, nil, remote, remote2, 80, []string{"ALL", "web"}},
		{"no-local user other port", []string{"web:ANY@*:80"}, false, nil, remote, remote2, 81, []string{"ALL"}},
		{"no-local exclusion", []string{":ANY@*:22"}, false, nil, remote, remote2, 22, nil},
		{"no-local RX name", []string{"RX:ANY@*:80"}, false, nil, remote, remote2, 80, []string{"ALL", "RX"}},
	}
	for _, tt := range tests {
		s, err := NewSet(tt.exprs, tt.haveLocal)
		if err != nil {
			t.Errorf("%s: NewSet(%q): %v", tt.name, tt.exprs, err)
			continue
		}
		var want uint64
		for _, n := range tt.want {
			i := filterIndex(s, n)
			if i < 0 {
				t.Fatalf("%s: no filter %q", tt.name, n)
			}
			want |= 1 << uint(i)
		}
		got := s.Match(netip.MustParseAddr(tt.init), netip.MustParseAddr(tt.resp), tt.port, tt.local)
		if got != want {
			t.Errorf("%s: Match(%s -> %s:%d) = %s, want %s", tt.name, tt.init, tt.resp, tt.port, maskNames(s, got), maskNames(s, want))
		}
	}
}

func filterIndex(s *Set, name string) int {
	for i, f := range s.Filters() {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func maskNames(s *Set, m uint64) string {
	var names []string
	for i, f := range s.Filters() {
		if m&(1<<uint(i)) != 0 {
			names = append(names, f.Name)
		}
	}
	return fmt.Sprintf("%#x %q", m, names)
}

func TestNewSetFilters(t *testing.T) {
	s, err := NewSet([]string{"web:RX@*:80", ":RX@*:22", "out:tx@*:443"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Filters() {
		got = append(got, f.String())
	}
	if want := "RX:RX@*:*,TX:TX@*:*,web:RX@*:80,out:TX@*:443"; strings.Join(got, ",") != want {
		t.Errorf("Filters() = %q, want %s", got, want)
	}
	if ex := s.Exclusions(); len(ex) != 1 || ex[0].Expr != ":RX@*:22" {
		t.Errorf("Exclusions() = %v", ex)
	}
	s.Filters()[0] = nil // a copy: the set is unchanged
	if s.Filters()[0] == nil {
		t.Error("Filters() returned the set's own slice")
	}

	s, err = NewSet(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if fs := s.Filters(); len(fs) != 1 || fs[0].String() != "ALL:ANY@*:*" || fs[0].Dir != ANY {
		t.Errorf("no-local Filters() = %v", fs)
	}

	var nilSet *Set
	if nilSet.Match(netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("1.2.3.5"), 1, nil) != 0 || nilSet.Filters() != nil {
		t.Error("nil *Set matches")
	}
}

func TestNewSetErrors(t *testing.T) {
	many := func(n int, prefix string) []string {
		var e []string
		for i := 0; i < n; i++ {
			e = append(e, fmt.Sprintf("%s%d:ANY@*:*", prefix, i))
		}
		return e
	}
	tests := []struct {
		name      string
		exprs     []string
		haveLocal bool
		want      string // "" for success
	}{
		{"parse error", []string{"web:RX@*:80", "web:RX@%:80,443"}, true, `filter "web:RX@%:80,443": port "80,443" is not a number (column 12)`},
		{"RX without local", []string{"web:RX@*:80"}, false, `filter "web:RX@*:80": direction RX needs local addresses: give --local-net or use ANY`},
		{"TX without local", []string{"out:tx@*:443"}, false, `filter "out:tx@*:443": direction TX needs local addresses: give --local-net or use ANY`},
		{"RX exclusion without local", []string{":RX@*:22"}, false, `filter ":RX@*:22": direction RX needs local addresses: give --local-net or use ANY`},
		{"duplicate user name", []string{"web:RX@*:80", "web:RX@*:443"}, true, `filter "web:RX@*:443": name "web" is already used by filter "web:RX@*:80"`},
		{"duplicate RX", []string{"RX:ANY@*:80"}, true, `filter "RX:ANY@*:80": name "RX" is already used by a default filter`},
		{"duplicate TX", []string{"TX:TX@*:80"}, true, `filter "TX:TX@*:80": name "TX" is already used by a default filter`},
		{"duplicate ALL", []string{"ALL:ANY@*:80"}, false, `filter "ALL:ANY@*:80": name "ALL" is already used by a default filter`},
		{"ALL with local", []string{"ALL:ANY@*:80"}, true, ""},
		{"pcap is reserved", []string{"pcap:ANY@*:80"}, true, `filter "pcap:ANY@*:80": name "pcap" is reserved: the socket's GET answer holds the capture counters under it; choose another name`},
		{"PCAP is not", []string{"PCAP:ANY@*:80"}, true, ""},
		{"names are case-sensitive", []string{"rx:ANY@*:80"}, true, ""},
		{"exclusions have no name", []string{":ANY@*:80", ":ANY@*:80"}, true, ""},
		{"64 filters with local", many(62, "f"), true, ""},
		{"65 filters with local", many(63, "f"), true, `filter "f62:ANY@*:*": too many named filters: at most 64, the 2 default ones included`},
		{"64 filters without local", many(63, "f"), false, ""},
		{"65 filters without local", many(64, "f"), false, `filter "f63:ANY@*:*": too many named filters: at most 64, the 1 default ones included`},
		{"exclusions do not count", append(many(62, "f"), ":ANY@*:1", ":ANY@*:2"), true, ""},
	}
	for _, tt := range tests {
		s, err := NewSet(tt.exprs, tt.haveLocal)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if len(s.Filters()) > MaxFilters {
				t.Errorf("%s: %d filters", tt.name, len(s.Filters()))
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want %s", tt.name, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%s:\n got: %s\nwant: %s", tt.name, err, tt.want)
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %T is not an *Error", tt.name, err)
		}
	}
}

func TestSetMatchBit63(t *testing.T) {
	exprs := []string{}
	for i := 0; i < MaxFilters-2; i++ {
		exprs = append(exprs, fmt.Sprintf("f%d:ANY@*:%d", i, i+1))
	}
	s, err := NewSet(exprs, true)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Match(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), MaxFilters-2, hostLocal)
	if want := uint64(1) << 63; got != want {
		t.Errorf("Match = %#x, want %#x", got, want)
	}
}

func TestLocal(t *testing.T) {
	l := NewLocal(
		[]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.2"), netip.MustParseAddr("fe80::1%eth0"), {}},
		[]netip.Prefix{netip.MustParsePrefix("10.1.2.3/16"), netip.MustParsePrefix("::ffff:172.16.0.0/108"), netip.MustParsePrefix("fd00::/8"), {}},
	)
	tests := []struct {
		addr string
		want bool
	}{
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true},
		{"192.0.2.2", true},
		{"192.0.2.3", false},
		{"fe80::1", true},
		{"fe80::1%eth1", true},
		{"fe80::2", false},
		{"10.1.255.255", true},
		{"10.2.0.0", false},
		{"172.31.1.1", true},
		{"172.32.0.0", false},
		{"fd12::1", true},
		{"fe00::1", false},
	}
	for _, tt := range tests {
		if got := l.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if l.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}
	if l.Empty() {
		t.Error("Empty() = true")
	}
	if !NewLocal(nil, nil).Empty() || !NewLocal([]netip.Addr{{}}, []netip.Prefix{{}}).Empty() {
		t.Error("empty Local not Empty()")
	}
	var nilLocal *Local
	if !nilLocal.Empty() || nilLocal.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("nil *Local not empty")
	}
}

func TestRuleMatch(t *testing.T) {
	f, err := Parse("x:ANY@192.168.0.1/24:80:1000-2000,[2001:db8::/32]:*")
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := f.Rules[0], f.Rules[1]
	tests := []struct {
		rule Rule
		peer string
		port uint16
		want bool
	}{
		{v4, "192.168.0.200", 80, true},
		{v4, "192.168.0.1", 1500, true},
		{v4, "::ffff:192.168.0.9", 2000, true},
		{v4, "192.168.1.1", 80, false},
		{v4, "192.168.0.1", 81, false},
		{v4, "192.168.0.1", 999, false},
		{v4, "2001:db8::1", 80, false},
		{v6, "2001:db8:1::1", 1, true},
		{v6, "2001:db8::1%eth0", 1, true},
		{v6, "2001:db9::1", 1, false},
		{v6, "192.168.0.1", 1, false},
		{Rule{}, "192.168.0.1", 1, true},
		{Rule{}, "::1", 65535, true},
	}
	for _, tt := range tests {
		if got := tt.rule.Match(netip.MustParseAddr(tt.peer), tt.port); got != tt.want {
			t.Errorf("%v.Match(%s, %d) = %v, want %v", tt.rule, tt.peer, tt.port, got, tt.want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	s, err := NewSet([]string{
		"web:RX@*:80:443,10.0.0.0/8:8000-8080",
		"web6:TX@[2001:db8::/32]:443",
		"dns:ANY@*:53",
		":RX@203.0.113.0/24:22",
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	init := netip.MustParseAddr("::ffff:198.51.100.7")
	resp := netip.MustParseAddr("192.0.2.10")
	init6 := netip.MustParseAddr("2001:db8::10")
	resp6 := netip.MustParseAddr("2001:db8:ffff::7%eth0")
	var sink uint64
	if n := testing.AllocsPerRun(1000, func() {
		sink |= s.Match(init, resp, 443, hostLocal)
		sink |= s.Match(init6, resp6, 443, hostLocal)
		sink |= s.Match(init, resp, 22, nil)
	}); n != 0 {
		t.Errorf("Set.Match allocates %v times per run", n)
	}
	var found bool
	if n := testing.AllocsPerRun(1000, func() {
		found = hostLocal.Contains(init) || hostLocal.Contains(resp6) || hostLocal.Contains(resp)
	}); n != 0 {
		t.Errorf("Local.Contains allocates %v times per run", n)
	}
	if sink == 0 || !found {
		t.Error("nothing matched")
	}
}

func BenchmarkSetMatch(b *testing.B) {
	s, err := NewSet([]string{
		"web:RX@*:80:443,10.0.0.0/8:8000-8080",
		"web6:TX@[2001:db8::/32]:443",
		"dns:ANY@*:53",
		":RX@203.0.113.0/24:22",
	}, true)
	if err != nil {
		b.Fatal(err)
	}
	init := netip.MustParseAddr("198.51.100.7")
	resp := netip.MustParseAddr("192.0.2.10")
	b.ReportAllocs()
	for b.Loop() {
		s.Match(init, resp, 443, hostLocal)
	}
}
