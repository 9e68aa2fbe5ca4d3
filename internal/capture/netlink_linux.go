//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// linkStats reads interfaces' counters over a netlink socket of the network
// namespace it was opened in, by interface index: a rename changes
// nothing, and the counters are those of the capture's namespace, whatever
// /sys shows.
type linkStats struct {
	fd  int
	seq uint32
	buf []byte
}

// newLinkStats opens the netlink socket.
func newLinkStats() (*linkStats, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &linkStats{fd: fd, buf: make([]byte, 32<<10)}, nil
}

// rxDropped returns the rx_dropped counter of the interface ifindex.
func (s *linkStats) rxDropped(ifindex int) (uint64, error) {
	s.seq++
	var req [unix.NLMSG_HDRLEN + unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], s.seq)
	binary.NativeEndian.PutUint32(req[unix.NLMSG_HDRLEN+4:], uint32(int32(ifindex))) // ifi_index
	if err := unix.Sendto(s.fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("asking for interface %d: %w", ifindex, err)
	}
	for range 8 { // replies to earlier requests that timed out come first
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err != nil {
			return 0, fmt.Errorf("reading interface %d: %w", ifindex, err)
		}
		v, seq, err := parseLink(s.buf[:n])
		if seq != s.seq {
			continue
		}
		return v, err
	}
	return 0, fmt.Errorf("reading interface %d: no answer", ifindex)
}

// parseLink returns the rx_dropped counter and the sequence number of the
// RTM_NEWLINK message (or error) in b.
func parseLink(b []byte) (uint64, uint32, error) {
	if len(b) < unix.NLMSG_HDRLEN {
		return 0, 0, errors.New("short netlink message")
	}
	mlen := int(binary.NativeEndian.Uint32(b[0:]))
	typ := binary.NativeEndian.Uint16(b[4:])
	seq := binary.NativeEndian.Uint32(b[8:])
	if mlen < unix.NLMSG_HDRLEN || mlen > len(b) {
		return 0, seq, errors.New("bad netlink message length")
	}
	b = b[unix.NLMSG_HDRLEN:mlen]
	switch typ {
	case unix.NLMSG_ERROR:
		if len(b) >= 4 {
			if errno := -int32(binary.NativeEndian.Uint32(b)); errno > 0 {
				return 0, seq, unix.Errno(errno)
			}
		}
		return 0, seq, errors.New("netlink error")
	case unix.RTM_NEWLINK:
	default:
		return 0, seq, fmt.Errorf("netlink message of type %d", typ)
	}
	if len(b) < unix.SizeofIfInfomsg {
		return 0, seq, errors.New("short link message")
	}
	var stats32 []byte
	for a := b[unix.SizeofIfInfomsg:]; len(a) >= unix.SizeofRtAttr; {
		alen := int(binary.NativeEndian.Uint16(a[0:]))
		atype := binary.NativeEndian.Uint16(a[2:]) &^ unix.NLA_F_NESTED
		if alen < unix.SizeofRtAttr || alen > len(a) {
			break
		}
		v := a[unix.SizeofRtAttr:alen]
		switch {
		case atype == unix.IFLA_STATS64 && len(v) >= 7*8:
			return binary.NativeEndian.Uint64(v[6*8:]), seq, nil // rx_dropped
		case atype == unix.IFLA_STATS && len(v) >= 7*4:
			stats32 = v
		}
		a = a[min((alen+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(a)):]
	}
	if stats32 != nil {
		return uint64(binary.NativeEndian.Uint32(stats32[6*4:])), seq, nil
	}
	return 0, seq, errors.New("no statistics in the link message")
}

// close closes the socket.
func (s *linkStats) close() { unix.Close(s.fd) }
