package netwatch

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Any is the -i value that selects every interface of the host.
const Any = "any"

// maxNameLen is the longest interface name Linux accepts (IFNAMSIZ - 1).
const maxNameLen = 15

// Selector says which interfaces to capture on: the values of -i. The zero
// Selector is the default (no -i): Open then picks the first up,
// non-loopback interface with an address and follows it as if it had been
// named.
type Selector struct {
	any   bool
	names []string // exact names, in the order given, without duplicates
	globs []string // path.Match patterns, in the order given, without duplicates
}

// ParseSelector parses the values of -i. Each value is "any", an interface
// name, or a glob in path.Match syntax (a value with *, ? or [ in it). A
// name Linux would refuse (empty, longer than 15 bytes, ".", "..", or with
// '/', ':' or white space), a bad glob, and "any" together with other values
// are errors, to report as usage errors. Values given twice count once.
func ParseSelector(values []string) (Selector, error) {
	var s Selector
	for _, v := range values {
		switch {
		case v == Any:
			s.any = true
		case strings.ContainsAny(v, `*?[\`):
			if _, err := path.Match(v, ""); err != nil {
				return Selector{}, fmt.Errorf("interface pattern %q: %w (use *, ? and [a-z] as in path.Match)", v, err)
			}
			if !slices.Contains(s.globs, v) {
				s.globs = append(s.globs, v)
			}
		default:
			if err := validName(v); err != nil {
				return Selector{}, err
			}
			if !slices.Contains(s.names, v) {
				s.names = append(s.names, v)
			}
		}
	}
	if s.any && (len(s.names) > 0 || len(s.globs) > 0) {
		return Selector{}, fmt.Errorf("interface %q: -i any already captures every interface; give it alone", s.firstOther())
	}
	return s, nil
}

// firstOther returns the first name or glob of s.
func (s Selector) firstOther() string {
	if len(s.names) > 0 {
		return s.names[0]
	}
	return s.globs[0]
}

// validName returns an error if Linux would refuse name as an interface
// name (dev_valid_name).
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > maxNameLen:
		return fmt.Errorf("interface name %q is longer than %d bytes", name, maxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("interface name %q has a '/', ':' or white space, which Linux does not allow", name)
	}
	return nil
}

// IsDefault reports whether s is the zero Selector: no -i given.
func (s Selector) IsDefault() bool { return !s.any && len(s.names) == 0 && len(s.globs) == 0 }

// IsAny reports whether s selects every interface (-i any).
func (s Selector) IsAny() bool { return s.any }

// Names returns the exact interface names of s, in the order given.
func (s Selector) Names() []string { return slices.Clone(s.names) }

// Globs returns the patterns of s, in the order given.
func (s Selector) Globs() []string { return slices.Clone(s.globs) }

// String returns the values of s as a comma-separated list ("any",
// "eth0, veth*"), or "default" for the zero Selector.
func (s Selector) String() string {
	switch {
	case s.any:
		return Any
	case s.IsDefault():
		return "default"
	}
	return strings.Join(append(s.Names(), s.globs...), ", ")
}

// glob returns the first pattern of s that name matches, or "".
func (s Selector) glob(name string) string {
	for _, g := range s.globs {
		if ok, _ := path.Match(g, name); ok {
			return g
		}
	}
	return ""
}
