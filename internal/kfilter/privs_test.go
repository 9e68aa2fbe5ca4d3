//go:build linux

package kfilter

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// privHelperEnv makes the test binary a helper (TestPrivilegeHelper) that
// TestPrivileges runs with fewer privileges.
const privHelperEnv = "TCPEEK_KFILTER_PRIV_HELPER"

// TestPrivilegeHelper is not a test: run by TestPrivileges as nobody with
// some capabilities, it loads the filters and attaches them to a packet
// socket, and prints what happened.
func TestPrivilegeHelper(t *testing.T) {
	if os.Getenv(privHelperEnv) == "" {
		t.Skip("a helper of TestPrivileges")
	}
	e, err := NewEBPF(Config{})
	if err != nil {
		fmt.Printf("ebpf: %v\n", err)
	} else {
		fmt.Println("ebpf: loaded")
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = e.Attach(fd, []int{1})
			unix.Close(fd)
		}
		fmt.Printf("ebpf attach: %v\n", err)
		e.Close()
	}
	f, warn, err := Open(KindAuto, Config{})
	switch {
	case err != nil:
		fmt.Printf("auto: error %v\n", err)
	case warn != nil:
		var fb *FallbackError
		fmt.Printf("auto: %s, fallback %v: %v\n", f.Name(), errors.As(warn, &fb), warn)
	default:
		fmt.Printf("auto: %s\n", f.Name())
	}
}

// TestPrivileges runs TestPrivilegeHelper as nobody with the capabilities
// the README names, and with fewer: CAP_BPF loads the eBPF filter (no
// CAP_SYS_ADMIN, no CAP_PERFMON), CAP_NET_RAW opens the socket it attaches
// to; without CAP_BPF, KindAuto falls back to the classic filter and says why.
func TestPrivileges(t *testing.T) {
	if os.Getenv(privHelperEnv) != "" {
		t.Skip("in the helper")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs the test binary as nobody with chosen capabilities")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (Debian package util-linux)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEBPF(Config{}); err != nil {
		skipNoBPF(t, err)
	}
	unpriv, _ := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled")
	for _, c := range []struct {
		caps string
		want []string
	}{
		{"+bpf,+net_raw", []string{"ebpf: loaded", "ebpf attach: <nil>", "auto: ebpf"}},
		{"+net_raw", []string{"ebpf: creating the eBPF maps", "CAP_BPF", "auto: classic, fallback true"}},
	} {
		if c.caps == "+net_raw" && strings.TrimSpace(string(unpriv)) == "0" {
			t.Logf("kernel.unprivileged_bpf_disabled is 0: not checking a process without CAP_BPF")
			continue
		}
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all,"+c.caps, "--ambient-caps=-all,"+c.caps, "--bounding-set=-all,"+c.caps,
			exe, "-test.run=^TestPrivilegeHelper$", "-test.v")
		cmd.Env = append(os.Environ(), privHelperEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("capabilities %s: %v\n%s", c.caps, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("capabilities %s: the helper did not say %q:\n%s", c.caps, w, out)
			}
		}
	}
}
