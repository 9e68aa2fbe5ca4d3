package netwatch

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      []string
		any     bool
		names   []string
		globs   []string
		str     string
		err     string // a part of the error, "" for none
		badGlob bool
	}{
		{in: nil, str: "default"},
		{in: []string{"any"}, any: true, str: "any"},
		{in: []string{"eth0"}, names: []string{"eth0"}, str: "eth0"},
		{in: []string{"eth0", "eth1", "eth0"}, names: []string{"eth0", "eth1"}, str: "eth0, eth1"},
		{in: []string{"veth*", "cali*", "eth0", "veth*"}, names: []string{"eth0"}, globs: []string{"veth*", "cali*"}, str: "eth0, veth*, cali*"},
		{in: []string{"eth[01]", "tap?"}, globs: []string{"eth[01]", "tap?"}, str: "eth[01], tap?"},
		{in: []string{"a23456789012345"}, names: []string{"a23456789012345"}, str: "a23456789012345"},
		{in: []string{"veth["}, err: `interface pattern "veth["`, badGlob: true},
		{in: []string{"eth0", `x\`}, err: `interface pattern "x\\"`, badGlob: true},
		{in: []string{""}, err: "empty interface name"},
		{in: []string{"a234567890123456"}, err: "longer than 15 bytes"},
		{in: []string{"eth0:1"}, err: `"eth0:1" has a '/', ':' or white space`},
		{in: []string{"a b"}, err: "white space"},
		{in: []string{".."}, err: `".." is not an interface name`},
		{in: []string{"any", "eth0"}, err: `interface "eth0": -i any already captures every interface`},
		{in: []string{"veth*", "any"}, err: `interface "veth*": -i any already captures every interface`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			s, err := ParseSelector(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				if errors.Is(err, path.ErrBadPattern) != tt.badGlob {
					t.Errorf("errors.Is(%v, path.ErrBadPattern) = %v", err, !tt.badGlob)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.IsAny() != tt.any || !slices.Equal(s.Names(), tt.names) || !slices.Equal(s.Globs(), tt.globs) || s.String() != tt.str {
				t.Errorf("got any %v names %q globs %q %q", s.IsAny(), s.Names(), s.Globs(), s.String())
			}
			if s.IsDefault() != (len(tt.in) == 0) {
				t.Errorf("IsDefault %v", s.IsDefault())
			}
		})
	}
}

func TestSelectorGlob(t *testing.T) {
	s, err := ParseSelector([]string{"veth*", "cali?x", "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"veth0": "veth*", "veth": "veth*", "cali1x": "cali?x", "cali12x": "", "eth0": "", "xveth0": "",
	} {
		if got := s.glob(name); got != want {
			t.Errorf("glob(%q) = %q, want %q", name, got, want)
		}
	}
}
