package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen)
	tests := []struct {
		expr  string
		name  string
		dir   Direction
		rules []string
	}{
		{"web:RX@*:80", "web", RX, []string{"*:80"}},
		{"web:rx@*:80", "web", RX, []string{"*:80"}},
		{"web:Rx@*:80", "web", RX, []string{"*:80"}},
		{"out:tx@*:443", "out", TX, []string{"*:443"}},
		{"any:aNy@*:*", "any", ANY, []string{"*:*"}},
		{"all:ANY@%:%", "all", ANY, []string{"*:*"}},
		{"w:ANY@*:*:*", "w", ANY, []string{"*:*"}},
		{"w:ANY@*:80:*", "w", ANY, []string{"*:*"}},
		{"w:RX@%:80", "w", RX, []string{"*:80"}},
		{"lan:RX@192.168.0.1/24:80:443", "lan", RX, []string{"192.168.0.0/24:80:443"}},
		{"lan:RX@192.168.0.0/24:80", "lan", RX, []string{"192.168.0.0/24:80"}},
		{"h:RX@10.0.0.1:8000-8080", "h", RX, []string{"10.0.0.1:8000-8080"}},
		{"h:RX@10.0.0.1/32:22", "h", RX, []string{"10.0.0.1:22"}},
		{"all4:RX@10.9.8.7/0:22", "all4", RX, []string{"0.0.0.0/0:22"}},
		{"r:RX@*:1-65535", "r", RX, []string{"*:1-65535"}},
		{"r:RX@*:80-80", "r", RX, []string{"*:80"}},
		{"r:RX@*:080", "r", RX, []string{"*:80"}},
		{"r:RX@*:65535", "r", RX, []string{"*:65535"}},
		{"r:RX@*:1", "r", RX, []string{"*:1"}},
		{"web6:TX@[2001:db8::/32]:443", "web6", TX, []string{"[2001:db8::/32]:443"}},
		{"web6:TX@[2001:db8::1/32]:443", "web6", TX, []string{"[2001:db8::/32]:443"}},
		{"h6:TX@[2001:DB8::1]:443", "h6", TX, []string{"[2001:db8::1]:443"}},
		{"h6:TX@[2001:db8::1/128]:443", "h6", TX, []string{"[2001:db8::1]:443"}},
		{"lo6:ANY@[::1]:22", "lo6", ANY, []string{"[::1]:22"}},
		{"all6:ANY@[::/0]:*", "all6", ANY, []string{"[::/0]:*"}},
		{"multi:RX@10.0.0.0/8:22,[fd00::/8]:22:80-89,*:443", "multi", RX,
			[]string{"10.0.0.0/8:22", "[fd00::/8]:22:80-89", "*:443"}},
		{"dup:RX@*:80:80", "dup", RX, []string{"*:80:80"}},
		{":RX@*:22", "", RX, []string{"*:22"}},
		{":any@10.0.0.0/8:*,[::1]:*", "", ANY, []string{"10.0.0.0/8:*", "[::1]:*"}},
		{long + ":TX@*:*", long, TX, []string{"*:*"}},
		{"a_b.c-d:RX@*:80", "a_b.c-d", RX, []string{"*:80"}},
		{"-._:RX@*:80", "-._", RX, []string{"*:80"}},
		{"RX:RX@*:*", "RX", RX, []string{"*:*"}},
		{"0:RX@*:*", "0", RX, []string{"*:*"}},
	}
	for _, tt := range tests {
		f, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if f.Name != tt.name || f.Dir != tt.dir || f.Expr != tt.expr {
			t.Errorf("Parse(%q) = name %q dir %v expr %q, want %q %v %q", tt.expr, f.Name, f.Dir, f.Expr, tt.name, tt.dir, tt.expr)
		}
		if got := strings.Join(f.RuleStrings(), ","); got != strings.Join(tt.rules, ",") {
			t.Errorf("Parse(%q) rules = %q, want %q", tt.expr, f.RuleStrings(), tt.rules)
		}
		if f.Exclusion() != (tt.name == "") {
			t.Errorf("Parse(%q).Exclusion() = %v", tt.expr, f.Exclusion())
		}
	}
}

func TestParseRuleValues(t *testing.T) {
	f, err := Parse("x:RX@192.168.7.9/16:80:8000-8080,[2001:db8::1]:*,*:443")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Addr: netip.MustParsePrefix("192.168.0.0/16"), Ports: []PortRange{{80, 80}, {8000, 8080}}},
		{Addr: netip.MustParsePrefix("2001:db8::1/128")},
		{Ports: []PortRange{{443, 443}}},
	}
	if !rulesEqual(f.Rules, want) {
		t.Errorf("rules = %+v, want %+v", f.Rules, want)
	}
	if f.Rules[1].Ports != nil || f.Rules[2].Addr.IsValid() {
		t.Errorf("wildcards not nil/invalid: %+v", f.Rules)
	}
	if got, want := f.String(), "x:RX@192.168.0.0/16:80:8000-8080,[2001:db8::1]:*,*:443"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen+1)
	tests := []struct {
		expr string
		want string
	}{
		// The example of SPEC §2, verbatim.
		{"web:RX@%:80,443", `filter "web:RX@%:80,443": port "80,443" is not a number (column 12)`},
		{"", `filter "": empty expression (column 1)`},
		{"web", `filter "web": missing ':' after the name (column 4)`},
		{"RX@*:22", `filter "RX@*:22": missing ':' before the direction, e.g. "web:RX@..." or ":RX@..." (column 1)`},
		{"webRX@*:80", `filter "webRX@*:80": missing ':' between the name and the direction: did you mean "web:RX@*:80"? (column 4)`},
		{"db_tx@10.0.0.0/8:5432", `filter "db_tx@10.0.0.0/8:5432": missing ':' between the name and the direction: did you mean "db:tx@10.0.0.0/8:5432"? (column 4)`},
		{"allANY@*:*", `filter "allANY@*:*": missing ':' between the name and the direction: did you mean "all:ANY@*:*"? (column 4)`},
		{"tcp", `filter "tcp": "tcp" is pcap-filter syntax, which tcpeek does not take: write filters as NAME:DIR@ADDR:PORT, e.g. web:RX@*:80 (see tcpeek --help) (column 1)`},
		{"Port", `filter "Port": "Port" is pcap-filter syntax, which tcpeek does not take: write filters as NAME:DIR@ADDR:PORT, e.g. web:RX@*:80 (see tcpeek --help) (column 1)`},
		{long + ":RX@*:1", `filter "` + long + `:RX@*:1": name "` + long + `" is longer than 64 characters (column 65)`},
		{"we b:RX@*:1", `filter "we b:RX@*:1": name "we b" has the character ' ', which is not allowed; use A-Z, a-z, 0-9, '_', '.' and '-' (column 3)`},
		{"é:RX@*:1", `filter "é:RX@*:1": name "é" has the character 'é', which is not allowed; use A-Z, a-z, 0-9, '_', '.' and '-' (column 1)`},
		{"x:", `filter "x:": missing direction RX, TX or ANY (column 3)`},
		{"x:@*:1", `filter "x:@*:1": missing direction RX, TX or ANY (column 3)`},
		{"x:RXY@*:1", `filter "x:RXY@*:1": direction "RXY" is not RX, TX or ANY (column 3)`},
		{"x:IN@*:1", `filter "x:IN@*:1": direction "IN" is not RX, TX or ANY (column 3)`},
		{"x:ANYTHING", `filter "x:ANYTHING": direction "ANYTHING" is not RX, TX or ANY (column 3)`},
		{"x:RX", `filter "x:RX": missing '@' after the direction (column 5)`},
		{"x:RX*:80", `filter "x:RX*:80": missing '@' after the direction (column 5)`},
		{"x:RX@", `filter "x:RX@": missing rule after '@' (column 6)`},
		{"x:RX@,*:1", `filter "x:RX@,*:1": empty rule before ',' (column 6)`},
		{"x:RX@*", `filter "x:RX@*": rule "*" has no port (column 7)`},
		{":rx@10.0.0.1", `filter ":rx@10.0.0.1": rule "10.0.0.1" has no port (column 13)`},
		{"x:RX@*:1,10.0.0.1", `filter "x:RX@*:1,10.0.0.1": port "1,10.0.0.1" is not a number (column 9)`},
		{"x:RX@*:80,", `filter "x:RX@*:80,": port "80," is not a number (column 10)`},
		{"x:RX@:80", `filter "x:RX@:80": rule ":80" has no address (column 6)`},
		{"x:RX@10.0.0:80", `filter "x:RX@10.0.0:80": address "10.0.0" is not a valid IPv4 address (column 6)`},
		{"x:RX@10.0.0.256:80", `filter "x:RX@10.0.0.256:80": address "10.0.0.256" is not a valid IPv4 address (column 6)`},
		{"x:RX@010.0.0.1:80", `filter "x:RX@010.0.0.1:80": address "010.0.0.1" is not a valid IPv4 address (column 6)`},
		{"x:RX@host:80", `filter "x:RX@host:80": address "host" is not a valid IPv4 address (column 6)`},
		{"a:rx@1.2.3.4/33:1", `filter "a:rx@1.2.3.4/33:1": prefix length "33" is out of range 0-32 (column 14)`},
		{"x:RX@1.2.3.4/:80", `filter "x:RX@1.2.3.4/:80": missing prefix length after '/' (column 14)`},
		{"x:RX@1.2.3.4/2x:80", `filter "x:RX@1.2.3.4/2x:80": prefix length "2x" is not a number (column 15)`},
		{"x:RX@1.2.3.4/-1:80", `filter "x:RX@1.2.3.4/-1:80": prefix length "-1" is not a number (column 14)`},
		{"x:RX@*/8:80", `filter "x:RX@*/8:80": wildcard address "*" takes no prefix length (column 7)`},
		{"x:ANY@2001:db8::1:443", `filter "x:ANY@2001:db8::1:443": rule "2001:db8::1:443" has an IPv6 address without brackets; IPv6 addresses go in brackets, e.g. [2001:db8::1]:443 (column 7)`},
		{"x:ANY@::1:22", `filter "x:ANY@::1:22": rule "::1:22" has an IPv6 address without brackets; IPv6 addresses go in brackets, e.g. [2001:db8::1]:443 (column 7)`},
		{"x:ANY@fd00::/8:22", `filter "x:ANY@fd00::/8:22": rule "fd00::/8:22" has an IPv6 address without brackets; IPv6 addresses go in brackets, e.g. [2001:db8::1]:443 (column 7)`},
		{"x:tx@[::1", `filter "x:tx@[::1": address "[::1" is missing its ']' (column 6)`},
		{"x:tx@[::1:443", `filter "x:tx@[::1:443": address "[::1:443" is missing its ']' (column 6)`},
		{"x:TX@[]:443", `filter "x:TX@[]:443": missing IPv6 address between '[' and ']' (column 7)`},
		{"x:TX@[2001:db8::g]:443", `filter "x:TX@[2001:db8::g]:443": address "2001:db8::g" is not a valid IPv6 address (column 7)`},
		{"x:TX@[[::1]]:443", `filter "x:TX@[[::1]]:443": address "[::1" is not a valid IPv6 address (column 7)`},
		{"x:TX@[1.2.3.4]:443", `filter "x:TX@[1.2.3.4]:443": IPv4 address "1.2.3.4" is in brackets; only IPv6 addresses go in brackets (column 6)`},
		{"x:TX@[::ffff:1.2.3.4]:443", `filter "x:TX@[::ffff:1.2.3.4]:443": address "::ffff:1.2.3.4" is IPv4-mapped; write the IPv4 address 1.2.3.4 without brackets (column 7)`},
		{"x:TX@[fe80::1%eth0]:443", `filter "x:TX@[fe80::1%eth0]:443": address "fe80::1%eth0" has a zone; zones are not supported (column 7)`},
		{"x:TX@[::1/129]:443", `filter "x:TX@[::1/129]:443": prefix length "129" is out of range 0-128 (column 11)`},
		{"x:TX@[::1]", `filter "x:TX@[::1]": rule "[::1]" has no port (column 11)`},
		{"x:TX@[::1]443", `filter "x:TX@[::1]443": missing ':' after ']' (column 11)`},
		{"x:RX@*:", `filter "x:RX@*:": missing port after ':' (column 8)`},
		{"x:RX@*::80", `filter "x:RX@*::80": missing port after ':' (column 8)`},
		{"x:RX@*:http", `filter "x:RX@*:http": port "http" is not a number (column 8)`},
		{"x:RX@*:-80", `filter "x:RX@*:-80": port "-80" is not a number (column 8)`},
		{"x:RX@*:+80", `filter "x:RX@*:+80": port "+80" is not a number (column 8)`},
		{"x:RX@*:0", `filter "x:RX@*:0": port "0" is out of range 1-65535 (column 8)`},
		{"x:RX@*:70000", `filter "x:RX@*:70000": port "70000" is out of range 1-65535 (column 8)`},
		{"x:RX@*:99999999999999999999999", `filter "x:RX@*:99999999999999999999999": port "99999999999999999999999" is out of range 1-65535 (column 8)`},
		{"x:RX@*:1-70000", `filter "x:RX@*:1-70000": port "70000" is out of range 1-65535 (column 10)`},
		{"x:RX@*:0-80", `filter "x:RX@*:0-80": port "0" is out of range 1-65535 (column 8)`},
		{"x:RX@*:90-80", `filter "x:RX@*:90-80": port range "90-80" starts above its end (column 8)`},
		{"x:RX@*:80-", `filter "x:RX@*:80-": port range "80-" has no end (column 11)`},
		{"x:RX@*:80-:443", `filter "x:RX@*:80-:443": port range "80-" has no end (column 11)`},
		{"x:RX@*:80-90-100", `filter "x:RX@*:80-90-100": port "80-90-100" is not a number (column 13)`},
		{"x:RX@*:80-x", `filter "x:RX@*:80-x": port "80-x" is not a number (column 11)`},
		{"é:RX@*:80,é", `filter "é:RX@*:80,é": name "é" has the character 'é', which is not allowed; use A-Z, a-z, 0-9, '_', '.' and '-' (column 1)`},
		{"ü:RX@*:80", `filter "ü:RX@*:80": name "ü" has the character 'ü', which is not allowed; use A-Z, a-z, 0-9, '_', '.' and '-' (column 1)`},
		// Columns count characters, not bytes.
		{"x:RX@*:80,ü", `filter "x:RX@*:80,ü": port "80,ü" is not a number (column 10)`},
		{"x:RX@*:ü", `filter "x:RX@*:ü": port "ü" is not a number (column 8)`},
		{"x:RX@*:üü:ü", `filter "x:RX@*:üü:ü": port "üü" is not a number (column 8)`},
		{"x:RX@[ü]:1,*:ü", `filter "x:RX@[ü]:1,*:ü": address "ü" is not a valid IPv6 address (column 7)`},
		{"x:RX@*:1,*:ü", `filter "x:RX@*:1,*:ü": port "ü" is not a number (column 12)`},
		{"x:RX@*:1,ü*:1", `filter "x:RX@*:1,ü*:1": address "ü*" is not a valid IPv4 address (column 10)`},
	}
	for _, tt := range tests {
		f, err := Parse(tt.expr)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %s", tt.expr, f, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error\n got: %s\nwant: %s", tt.expr, err, tt.want)
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.Expr != tt.expr || pe.Column < 1 {
			t.Errorf("Parse(%q) error %#v is not an *Error with the expression and a column", tt.expr, err)
		}
		if strings.HasPrefix(err.Error(), "tcpeek: ") {
			t.Errorf("Parse(%q) error starts with the program name: %s", tt.expr, err)
		}
	}
}

func TestDirectionString(t *testing.T) {
	for d, want := range map[Direction]string{RX: "RX", TX: "TX", ANY: "ANY", 0: "Direction(0)", 9: "Direction(9)"} {
		if got := d.String(); got != want {
			t.Errorf("Direction(%d).String() = %q, want %q", uint8(d), got, want)
		}
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{}, "*:*"},
		{Rule{Addr: netip.MustParsePrefix("192.168.0.0/24"), Ports: []PortRange{{80, 80}, {443, 443}}}, "192.168.0.0/24:80:443"},
		{Rule{Addr: netip.MustParsePrefix("10.0.0.1/32"), Ports: []PortRange{{8000, 8080}}}, "10.0.0.1:8000-8080"},
		{Rule{Addr: netip.MustParsePrefix("2001:db8::/32"), Ports: []PortRange{{443, 443}}}, "[2001:db8::/32]:443"},
		{Rule{Addr: netip.MustParsePrefix("2001:db8::1/128")}, "[2001:db8::1]:*"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

// rulesEqual reports whether a and b hold the same rules, nil ports being
// different from an empty list.
func rulesEqual(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || (a[i].Ports == nil) != (b[i].Ports == nil) || len(a[i].Ports) != len(b[i].Ports) {
			return false
		}
		for j := range a[i].Ports {
			if a[i].Ports[j] != b[i].Ports[j] {
				return false
			}
		}
	}
	return true
}

// filtersEqual reports whether a and b are the same filter, ignoring Expr.
func filtersEqual(a, b *Filter) bool {
	return a.Name == b.Name && a.Dir == b.Dir && rulesEqual(a.Rules, b.Rules)
}
