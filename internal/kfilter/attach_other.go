//go:build !linux

package kfilter

import (
	"errors"

	"golang.org/x/net/bpf"
)

// errNoSocketFilters is what attaching returns where packet sockets do not
// exist.
var errNoSocketFilters = errors.New("kernel filters need Linux's packet sockets")

func attachClassic(int, []bpf.RawInstruction) error { return errNoSocketFilters }

func attachEBPF(int, int) error { return errNoSocketFilters }

func raiseMemlock() {}
