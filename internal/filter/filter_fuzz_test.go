package filter

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that its errors name the
// expression and a column inside it (or one past its end), and that the
// canonical form of a parsed filter parses back to an equal filter.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		":",
		"::",
		"@",
		":@",
		":RX@",
		"web:RX@%:80,443",
		"web:RX@*:80",
		":RX@*:22",
		"RX@*:22",
		strings.Repeat("n", 64) + ":TX@*:*",
		strings.Repeat("n", 65) + ":TX@*:*",
		strings.Repeat("a", 1000),
		"a:ANY@[[::1]]:1",
		"a:ANY@[[::1]:1",
		"a:ANY@[::1",
		"a:ANY@[::1]",
		"a:ANY@[::1]]:1",
		"a:ANY@[]:1",
		"a:ANY@*:*:*",
		"a:rx@1.2.3.4/33:1",
		"a:rx@1.2.3.4/32:1",
		"a:rx@1.2.3.4/0:1",
		"a:rx@[::1/129]:1",
		"a:rx@[::1/0]:1",
		"a:rx@[::ffff:1.2.3.4]:1",
		"a:rx@[fe80::1%eth0]:1",
		"a:rx@[fe80::1%]:1",
		"a:rx@[1.2.3.4]:1",
		"a:rx@*:99999999999999999999999999999999",
		"a:rx@*:4294967297",
		"a:rx@*:65535-65536",
		"a:rx@*:65535-65535",
		"a:rx@*:2-1",
		"a:rx@*:0",
		"a:rx@1.2.3.4/999999999999999999999:1",
		"é:RX@*:1",
		"a:RX@*:ü",
		"a:RX@ü:1",
		"a:\u00c5NY@*:1",
		"a:RX@*:1\xff",
		"\xff:RX@*:1",
		"a:RX@*:80,",
		"a:RX@*:80,,",
		"a:RX@*:80,,*:1",
		"a:RX@,",
		"a:RX@,*:1",
		"a:RX@*:1,*:2,",
		"a:RX@*:1,[::1]:2,10.0.0.0/8:3-4",
		"a:ANY@2001:db8::1:443",
		"a:ANY@::1:22",
		"a:ANY@*/8:1",
		"a:ANY@%/8:1",
		"a:ANY@1.2.3.4/:1",
		"a:ANY@1.2.3.4//8:1",
		"a:ANY@*:1-",
		"a:ANY@*:-1",
		"a:ANY@*:1-2-3",
		"a:RX*:1",
		"a:ANYTHING",
		"a:RX:RX@*:1",
		"a@b:RX@*:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Parse(expr)
		if err != nil {
			if flt != nil {
				t.Fatalf("Parse(%q) returned both a filter and an error", expr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `filter "`) {
				t.Fatalf("Parse(%q) error does not start with `filter \"`: %s", expr, msg)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error is %T, not *Error", expr, err)
			}
			if n := utf8.RuneCountInString(expr); pe.Column < 1 || pe.Column > n+1 {
				t.Fatalf("Parse(%q) error column %d outside 1..%d: %s", expr, pe.Column, n+1, msg)
			}
			return
		}
		if flt.Expr != expr {
			t.Fatalf("Parse(%q).Expr = %q", expr, flt.Expr)
		}
		if len(flt.Rules) == 0 || flt.Dir < RX || flt.Dir > ANY || len(flt.Name) > MaxNameLen {
			t.Fatalf("Parse(%q) = %+v: invalid filter", expr, flt)
		}
		for _, r := range flt.Rules {
			if r.Addr.IsValid() && r.Addr != r.Addr.Masked() {
				t.Fatalf("Parse(%q): rule address %v not masked", expr, r.Addr)
			}
			if r.Ports != nil && len(r.Ports) == 0 {
				t.Fatalf("Parse(%q): empty non-nil port list", expr)
			}
			for _, p := range r.Ports {
				if p.Lo == 0 || p.Lo > p.Hi {
					t.Fatalf("Parse(%q): bad port range %v", expr, p)
				}
			}
		}
		canon := flt.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", expr, canon, err)
		}
		if !filtersEqual(flt, again) {
			t.Fatalf("Parse(%q) = %+v, but its canonical form %q parses to %+v", expr, flt, canon, again)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q then %q", canon, again.String())
		}
	})
}
