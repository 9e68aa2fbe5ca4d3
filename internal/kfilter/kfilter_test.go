package kfilter

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{KindAuto, KindEBPF, KindClassic} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKind("bpf"); err == nil || !strings.Contains(err.Error(), "auto, ebpf or classic") {
		t.Errorf("ParseKind(bpf): %v, want an error naming the choices", err)
	}
}

func TestOpen(t *testing.T) {
	f, warn, err := Open(KindClassic, Config{})
	if err != nil || warn != nil || f.Name() != NameClassic {
		t.Fatalf("Open(classic) = %v, %v, %v", f, warn, err)
	}
	f.Close()
	if _, _, err := Open(Kind(7), Config{}); err == nil {
		t.Errorf("Open of an unknown kind: no error")
	}
	// Auto gives eBPF where it loads, else classic with a warning that
	// says why and what classic misses.
	f, warn, err = Open(KindAuto, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, eerr := NewEBPF(Config{})
	switch {
	case eerr == nil && (f.Name() != NameEBPF || warn != nil):
		t.Errorf("Open(auto) = %s, warning %v; eBPF loads here", f.Name(), warn)
	case eerr != nil:
		var fb *FallbackError
		if f.Name() != NameClassic || !errors.As(warn, &fb) || !strings.Contains(warn.Error(), ClassicMisses) {
			t.Errorf("Open(auto) = %s, warning %v; want classic and a FallbackError", f.Name(), warn)
		}
	}
	fb := &FallbackError{Err: errors.New("no CAP_BPF")}
	if msg := fb.Error(); !strings.Contains(msg, "no CAP_BPF") || !strings.Contains(msg, "pure ACKs only") || !errors.Is(fb, fb.Err) {
		t.Errorf("FallbackError: %q", msg)
	}
}
