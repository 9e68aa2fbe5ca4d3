package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
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

// dropPrivileges takes on the user's supplementary groups, group and user
// id, in that order, for every thread of the process. Moving from uid 0 to
// another uid clears every capability, so nothing of root is left; the
// capture socket, opened before, keeps working.
func dropPrivileges(c *credentials) error {
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
	return nil
}
