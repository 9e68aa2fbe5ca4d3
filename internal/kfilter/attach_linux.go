//go:build linux

package kfilter

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// attachClassic attaches a classic BPF program to the socket fd, replacing
// the one attached before, if any, in one step.
func attachClassic(fd int, prog []bpf.RawInstruction) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching the classic BPF filter: %w", err)
	}
	return nil
}

// attachEBPF attaches the eBPF program progFD to the socket fd.
func attachEBPF(fd, progFD int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, progFD); err != nil {
		return fmt.Errorf("attaching the eBPF filter: %w", err)
	}
	return nil
}

// raiseMemlock lifts RLIMIT_MEMLOCK, which Linux before 5.11 charges BPF maps
// and programs to (later kernels charge the memory cgroup instead). It tries
// no limit (which needs CAP_SYS_RESOURCE), else the hard limit; failures are
// left for the map creation to report.
func raiseMemlock() {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return
	}
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if lim.Cur == unix.RLIM_INFINITY || unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) == nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim)
	}
}
