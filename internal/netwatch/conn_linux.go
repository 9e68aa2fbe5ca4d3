package netwatch

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The multicast groups of link and address notifications (RTMGRP_*).
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4Ifaddr = 0x10
	rtmgrpIPv6Ifaddr = 0x100
)

// Receive buffer sizes of the socket. The kernel's default (rmem_default,
// about 208 KiB) holds some 500 notifications; a node where pods come and
// go in bursts may need more, and an overrun doubles it.
const (
	sockBufFirst = 1 << 20
	sockBufMax   = 32 << 20
)

// sock is a NETLINK_ROUTE socket in the runtime's poller, so that Close
// wakes a Receive and deadlines work.
type sock struct {
	f      *os.File
	rc     syscall.RawConn
	pid    uint32
	rcvbuf int
	closed atomic.Bool // set before the file is closed
}

// dial opens a NETLINK_ROUTE socket subscribed to link, IPv4 address and
// IPv6 address notifications. The subscription is made at bind, before
// any dump is asked for.
func dial() (*sock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket to follow the interfaces: %w", err)
	}
	s := &sock{}
	s.setBuffer(fd, sockBufFirst)
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: rtmgrpLink | rtmgrpIPv4Ifaddr | rtmgrpIPv6Ifaddr}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribing to the kernel's interface and address notifications: %w", err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	nl, ok := local.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket: unexpected address %T", local)
	}
	s.pid = nl.Pid
	s.f = os.NewFile(uintptr(fd), "netlink route socket")
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return s, nil
}

// setBuffer sets the receive buffer to size bytes: beyond rmem_max if the
// process may (CAP_NET_ADMIN), else as far as rmem_max allows. It records
// the size the kernel reports (twice the size asked, for its bookkeeping).
func (s *sock) setBuffer(fd, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		s.rcvbuf = n
	}
}

// Send sends b to the kernel.
func (s *sock) Send(b []byte) error {
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	return s.mapErr(err, serr)
}

// Receive reads one datagram into b.
func (s *sock) Receive(b []byte) (int, error) {
	var n, flags int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, _, flags, _, rerr = unix.Recvmsg(int(fd), b, nil, 0)
		return rerr != unix.EAGAIN && rerr != unix.EINTR
	})
	if err := s.mapErr(err, rerr); err != nil {
		return 0, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return n, errTruncated
	}
	return n, nil
}

// mapErr turns the errors of a RawConn call (err) and of the system call
// in it (serr) into the errors conn documents. A RawConn reports a closed
// file with internal/poll's ErrFileClosing, which is not os.ErrClosed:
// the closed flag tells.
func (s *sock) mapErr(err, serr error) error {
	switch {
	case err != nil && (s.closed.Load() || errors.Is(err, os.ErrClosed)):
		return errClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errDeadline
	case err != nil:
		return err
	case serr == unix.ENOBUFS:
		return errOverrun
	}
	return serr
}

// PortID returns the socket's port ID.
func (s *sock) PortID() uint32 { return s.pid }

// SetDeadline sets the deadline of Receive.
func (s *sock) SetDeadline(t time.Time) error { return s.mapErr(s.f.SetReadDeadline(t), nil) }

// GrowBuffer doubles the receive buffer, up to sockBufMax (as far as
// rmem_max allows once privileges are dropped).
func (s *sock) GrowBuffer() int {
	s.rc.Control(func(fd uintptr) {
		s.setBuffer(int(fd), min(s.rcvbuf, sockBufMax)) // the kernel doubles what it is given
	})
	return s.rcvbuf
}

// Close closes the socket.
func (s *sock) Close() error {
	s.closed.Store(true)
	return s.f.Close()
}
