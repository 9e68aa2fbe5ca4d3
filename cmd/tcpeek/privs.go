package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// credentials are the ids a daemon drops to.
type credentials struct {
	uid, gid int
	groups   []int
}

// lookupUser resolves -u: a user name, or a numeric uid (whose primary group
// is taken from the password database when it has an entry, else the same
// number). No name (no -u) gives nil credentials.
func lookupUser(name string) (*credentials, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		n, nerr := strconv.Atoi(name)
		if nerr != nil || n < 0 {
			return nil, fmt.Errorf("no such user: %w", err)
		}
		if u, err = user.LookupId(name); err != nil {
			return &credentials{uid: n, gid: n}, nil
		}
	}
	c := &credentials{}
	if c.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("user %s has uid %q: %w", name, u.Uid, err)
	}
	if c.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("user %s has gid %q: %w", name, u.Gid, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("reading the groups of %s: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			c.groups = append(c.groups, n)
		}
	}
	return c, nil
}

// Every thread of a Go process has its own credentials, capability sets and
// no_new_privs flag, and the runtime may run tcpeek's code on any of them:
// what is dropped is dropped on all of them at once, with
// syscall.AllThreadsSyscall (threads made later copy the one that makes
// them). A binary built with cgo cannot do that.

// errCgo says why a binary built with cgo cannot drop its capabilities.
var errCgo = errors.New("this tcpeek was built with cgo, which cannot change the capabilities of every thread: build it with CGO_ENABLED=0 (make build)")

// dropPrivileges leaves root for good: it empties the capability bounding
// set, takes on the user's supplementary groups, group and user id (in
// that order), clears every capability set and sets no_new_privs, on every
// thread. The capture socket, opened before, keeps working; no execve can
// give anything back.
func dropPrivileges(c *credentials) error {
	if err := dropBoundingSet(); err != nil {
		return err
	}
	groups := c.groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setting the supplementary groups: %w", err)
	}
	if err := syscall.Setgid(c.gid); err != nil {
		return fmt.Errorf("setting gid %d: %w", c.gid, err)
	}
	if err := syscall.Setuid(c.uid); err != nil {
		return fmt.Errorf("setting uid %d: %w", c.uid, err)
	}
	// Leaving uid 0 clears the permitted, effective and ambient sets, but
	// not the inheritable one, nor anything kept by SECBIT_KEEP_CAPS.
	if err := clearCapabilities(); err != nil {
		return err
	}
	return setNoNewPrivs()
}

// dropCapabilities gives up the capabilities of a process started as a
// user other than root (systemd's AmbientCapabilities=CAP_NET_RAW ...):
// once the capture is open it needs none. It empties the bounding set too
// if the process may (CAP_SETPCAP), clears every capability set and sets
// no_new_privs, on every thread.
func dropCapabilities() error {
	caps, err := capabilities()
	if err != nil {
		return err
	}
	if caps.effective&(1<<unix.CAP_SETPCAP) != 0 {
		if err := dropBoundingSet(); err != nil {
			return err
		}
	}
	if err := clearCapabilities(); err != nil {
		if errors.Is(err, errCgo) && caps.none() {
			return nil // nothing to drop
		}
		return err
	}
	return setNoNewPrivs()
}

// capSets are a thread's capability sets, as bit masks.
type capSets struct {
	effective, permitted, inheritable, ambient uint64
}

// none tells whether every set is empty.
func (c capSets) none() bool { return c == capSets{} }

// capabilities returns the calling thread's capability sets.
func capabilities() (capSets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return capSets{}, fmt.Errorf("reading the capabilities: %w", err)
	}
	join := func(lo, hi uint32) uint64 { return uint64(hi)<<32 | uint64(lo) }
	c := capSets{
		effective:   join(data[0].Effective, data[1].Effective),
		permitted:   join(data[0].Permitted, data[1].Permitted),
		inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}
	for cap := 0; cap < 64; cap++ {
		set, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(cap), 0, 0)
		if err != nil {
			break // past the last capability, or no ambient set (Linux < 4.3)
		}
		if set == 1 {
			c.ambient |= 1 << cap
		}
	}
	return c, nil
}

// allThreadsPrctl runs prctl(option, arg2, 0, 0, 0) on every thread.
func allThreadsPrctl(option, arg2 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, option, arg2, 0, 0, 0, 0)
	switch errno {
	case 0:
		return nil
	case syscall.ENOTSUP:
		return errCgo
	}
	return errno
}

// dropBoundingSet removes every capability from the bounding set of every
// thread, so that no execve can ever gain one (it needs CAP_SETPCAP).
func dropBoundingSet() error {
	for cap := 0; ; cap++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(cap), 0, 0, 0); err != nil {
			return nil // past the last capability the kernel knows
		}
		if err := allThreadsPrctl(unix.PR_CAPBSET_DROP, uintptr(cap)); err != nil {
			return fmt.Errorf("emptying the capability bounding set (capability %d): %w", cap, err)
		}
	}
}

// clearCapabilities empties the ambient, inheritable, permitted and
// effective sets of every thread.
func clearCapabilities() error {
	err := allThreadsPrctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL)
	if err != nil && !errors.Is(err, syscall.EINVAL) { // EINVAL: Linux < 4.3, no ambient set
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // Pid 0: each thread itself
	data := &[2]unix.CapUserData{}
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	switch errno {
	case 0:
	case syscall.ENOTSUP:
		return errCgo
	default:
		return fmt.Errorf("clearing the capabilities: %w", errno)
	}
	caps, err := capabilities()
	if err != nil {
		return err
	}
	if !caps.none() {
		return fmt.Errorf("capabilities left after clearing them: %+v", caps)
	}
	return nil
}

// setNoNewPrivs sets no_new_privs on every thread: no execve can give the
// process privileges (setuid programs, file capabilities).
func setNoNewPrivs() error {
	if err := allThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}
