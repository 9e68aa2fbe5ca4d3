//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring geometry: blocks of 128 KiB, which the kernel hands over when full or
// after blockTimeout, so that a quiet link still delivers its frames at
// once.
const (
	blockSize    = 128 << 10
	frameSize    = 2048 // only a sizing hint in TPACKET_V3
	blockTimeout = 20   // milliseconds
)

// Where a TPACKET_V3 frame's parts are, from its header: the header, then
// the sockaddr_ll that says where the frame comes from.
const (
	tpHdrLen = (int(unsafe.Sizeof(unix.Tpacket3Hdr{})) + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
	sllLen   = int(unsafe.Sizeof(unix.RawSockaddrLinklayer{}))
	// cookedLen is the Linux cooked (SLL) header written before the
	// network header of a frame without an Ethernet header. The kernel
	// leaves at least 16 bytes between the sockaddr_ll and the network
	// header for it (tpacket_rcv: maclen < 16 ? 16 : maclen).
	cookedLen = 16
)

// Link types of the frames Next returns.
const (
	linkEthernet = 1   // LINKTYPE_ETHERNET
	linkCooked   = 113 // LINKTYPE_LINUX_SLL
)

// ifDropsEvery is how often Stats reads the interfaces' drop counters.
const ifDropsEvery = time.Second

// live is the Linux Live.
type live struct {
	fd      int
	scope   Scope
	filter  Filter
	ring    []byte
	nblocks int
	timeout time.Duration // poll timeout
	promisc bool

	cur       int            // current block
	held      bool           // the current block is ours until released
	remaining uint32         // frames left in the current block
	nextHdr   unsafe.Pointer // the next frame's header, in the ring

	file *os.File        // the socket, registered with Go's poller
	rc   syscall.RawConn // waits on the poller for the socket

	mu       sync.Mutex // guards what follows
	ifaces   []int      // the interfaces, sorted
	bound    int        // ScopeOne: the interface the socket is bound to
	members  []int      // interfaces in promiscuous mode, sorted
	recv     uint64     // frames that passed the filter (received or dropped)
	drops    uint64     // frames the kernel dropped for lack of ring space
	ifd      map[int]*ifDrops
	ifGone   uint64    // drops of interfaces no longer captured
	ifReadAt time.Time // when the interfaces' counters were last read
	links    *linkStats
	gone     int // ScopeOne: the deleted interface Next reported
	closed   atomic.Bool
}

// ifDrops follows the rx_dropped counter of an interface while it is
// captured.
type ifDrops struct {
	base, last uint64
	known      bool // base was read
}

func (l *live) open(cfg LiveConfig) error {
	l.fd = -1
	l.scope = cfg.Scope
	l.filter = cfg.Filter
	l.timeout = cfg.PollTimeout
	l.promisc = cfg.Promisc
	l.ifd = map[int]*ifDrops{}
	ifaces := sortedSet(cfg.Interfaces)

	// Protocol 0: the socket receives nothing until it is bound, so the
	// filter is in place before the first frame is queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("opening a packet socket needs root or the CAP_NET_RAW capability: %w", err)
		}
		return fmt.Errorf("opening a packet socket: %w", err)
	}
	l.fd = fd
	fail := func(what string, err error) error {
		l.close()
		return fmt.Errorf("%s: %w", what, err)
	}
	// Counting drops: a netlink socket in this network namespace, which
	// names interfaces by index, unlike /sys, which shows the namespace
	// that mounted it.
	if l.links, err = newLinkStats(); err != nil {
		return fail("opening a netlink socket for the interfaces' counters", err)
	}
	if l.filter != nil {
		var allow []int
		if l.scope == ScopeSet {
			allow = ifaces
			if allow == nil {
				allow = []int{}
			}
		}
		if err := l.filter.Attach(fd, allow); err != nil {
			return fail("attaching the kernel filter", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("asking for TPACKET_V3 (Linux 3.2 or later)", err)
	}
	l.nblocks = max(cfg.BufferMB<<20/blockSize, 2)
	req := unix.TpacketReq3{
		Block_size:     blockSize,
		Block_nr:       uint32(l.nblocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(l.nblocks * (blockSize / frameSize)),
		Retire_blk_tov: blockTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("setting up the capture ring", err)
	}
	l.ring, err = unix.Mmap(fd, 0, l.nblocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mapping the capture ring", err)
	}
	l.mu.Lock()
	err = l.follow(ifaces)
	l.mu.Unlock()
	if err != nil {
		return fail("following the interfaces", err)
	}
	bindTo := 0
	if l.scope == ScopeOne {
		bindTo = ifaces[0]
	}
	if err := l.bind(bindTo); err != nil {
		return fail(fmt.Sprintf("binding the packet socket to interface %d", bindTo), err)
	}
	// Non-blocking, so that os.NewFile gives the socket to Go's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail("making the packet socket non-blocking", err)
	}
	l.file = os.NewFile(uintptr(fd), "packet socket")
	if l.rc, err = l.file.SyscallConn(); err != nil {
		return fail("watching the packet socket", err)
	}
	return nil
}

// sortedSet returns the distinct elements of s, sorted; nil stays nil.
func sortedSet(s []int) []int {
	if s == nil {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// bind binds the socket to the interface ifindex (0: every interface), for
// every protocol.
func (l *live) bind(ifindex int) error {
	if err := unix.Bind(l.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return err
	}
	l.bound, l.gone = ifindex, 0
	return nil
}

// follow makes ifaces the interfaces whose counters and promiscuous mode
// the capture keeps, with l.mu held.
func (l *live) follow(ifaces []int) error {
	var errs []error
	for _, idx := range l.ifaces {
		if _, ok := slices.BinarySearch(ifaces, idx); ok {
			continue
		}
		if d := l.ifd[idx]; d != nil {
			l.ifGone += d.last - d.base
			delete(l.ifd, idx)
		}
	}
	for _, idx := range ifaces {
		if l.ifd[idx] == nil {
			d := &ifDrops{}
			if v, err := l.links.rxDropped(idx); err == nil {
				d.base, d.last, d.known = v, v, true
			}
			l.ifd[idx] = d
		}
	}
	if l.promisc {
		errs = append(errs, l.setPromisc(ifaces))
	}
	l.ifaces = ifaces
	return errors.Join(errs...)
}

// setPromisc puts the interfaces ifaces, and no other, in promiscuous mode
// for the socket's life.
func (l *live) setPromisc(ifaces []int) error {
	var errs []error
	for _, idx := range l.members {
		if _, ok := slices.BinarySearch(ifaces, idx); !ok {
			mreq := unix.PacketMreq{Ifindex: int32(idx), Type: unix.PACKET_MR_PROMISC}
			// An interface that is gone took its membership along.
			_ = unix.SetsockoptPacketMreq(l.fd, unix.SOL_PACKET, unix.PACKET_DROP_MEMBERSHIP, &mreq)
		}
	}
	var members []int
	for _, idx := range ifaces {
		if _, ok := slices.BinarySearch(l.members, idx); ok {
			members = append(members, idx)
			continue
		}
		mreq := unix.PacketMreq{Ifindex: int32(idx), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(l.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			errs = append(errs, fmt.Errorf("putting interface %d in promiscuous mode: %w", idx, err))
			continue
		}
		members = append(members, idx)
	}
	l.members = members
	return errors.Join(errs...)
}

func (l *live) setInterfaces(ifindexes []int) error {
	for _, idx := range ifindexes {
		if idx <= 0 {
			return fmt.Errorf("capture: bad interface index %d", idx)
		}
	}
	ifaces := sortedSet(ifindexes)
	if ifaces == nil {
		ifaces = []int{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return errors.New("capture: closed")
	}
	switch l.scope {
	case ScopeOne:
		if len(ifaces) > 1 {
			return fmt.Errorf("capture: bound to one interface, not %d", len(ifaces))
		}
		if len(ifaces) == 1 && ifaces[0] != l.bound {
			if err := l.bind(ifaces[0]); err != nil {
				return fmt.Errorf("binding the packet socket to interface %d: %w", ifaces[0], err)
			}
		}
	case ScopeSet:
		// Interfaces that stay are never out of the list.
		if err := l.filter.Attach(l.fd, ifaces); err != nil {
			return err
		}
	}
	return l.follow(ifaces)
}

func (l *live) interfaces() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ifaces)
}

func (l *live) filterName() string {
	if l.filter == nil {
		return "none"
	}
	return l.filter.Name()
}

// block returns the header of block i.
func (l *live) block(i int) *unix.TpacketHdrV1 {
	d := (*unix.TpacketBlockDesc)(unsafe.Pointer(&l.ring[i*blockSize]))
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&d.Hdr[0]))
}

func (l *live) next(f *Frame) error {
	for {
		if l.remaining > 0 {
			h := (*unix.Tpacket3Hdr)(l.nextHdr)
			l.remaining--
			l.nextHdr = unsafe.Add(l.nextHdr, h.Next_offset)
			if frame(f, h) {
				return nil
			}
			continue
		}
		if l.held {
			// Give the block back to the kernel.
			atomic.StoreUint32(&l.block(l.cur).Block_status, unix.TP_STATUS_KERNEL)
			l.held = false
			l.cur = (l.cur + 1) % l.nblocks
		}
		b := l.block(l.cur)
		if atomic.LoadUint32(&b.Block_status)&unix.TP_STATUS_USER != 0 {
			l.held = true
			l.remaining = b.Num_pkts
			l.nextHdr = unsafe.Pointer(&l.ring[l.cur*blockSize+int(b.Offset_to_first_pkt)])
			continue
		}
		if err := l.wait(b); err != nil {
			return err
		}
	}
}

// frame fills f with the frame of header h, and tells whether it is one to
// return: not the loopback's outgoing copy.
func frame(f *Frame, h *unix.Tpacket3Hdr) bool {
	base := unsafe.Pointer(h)
	sll := (*unix.RawSockaddrLinklayer)(unsafe.Add(base, tpHdrLen))
	if sll.Hatype == unix.ARPHRD_LOOPBACK && sll.Pkttype == unix.PACKET_OUTGOING {
		return false
	}
	f.Time = int64(h.Sec)*1e9 + int64(h.Nsec)
	f.NoVerify = h.Status&unix.TP_STATUS_CSUMNOTREADY != 0
	mac, net, snap := int(h.Mac), int(h.Net), int(h.Snaplen)
	switch {
	case sll.Hatype == unix.ARPHRD_ETHER || sll.Hatype == unix.ARPHRD_LOOPBACK || net < mac || net-cookedLen < tpHdrLen+sllLen:
		f.LinkType = linkEthernet
		f.Data = unsafe.Slice((*byte)(unsafe.Add(base, mac)), snap)
		f.WireLen = int(h.Len)
	default:
		// From the network header, behind a cooked header written in
		// the room the kernel leaves for it: the EtherType is the
		// protocol the kernel found.
		c := unsafe.Slice((*byte)(unsafe.Add(base, net-cookedLen)), cookedLen)
		binary.BigEndian.PutUint16(c[0:], uint16(sll.Pkttype))
		binary.BigEndian.PutUint16(c[2:], sll.Hatype)
		binary.BigEndian.PutUint16(c[4:], uint16(sll.Halen))
		copy(c[6:14], sll.Addr[:])
		*(*uint16)(unsafe.Pointer(&c[14])) = sll.Protocol // network byte order already
		n := max(mac+snap-net, 0)
		f.LinkType = linkCooked
		f.Data = unsafe.Slice((*byte)(unsafe.Add(base, net-cookedLen)), cookedLen+n)
		f.WireLen = cookedLen + max(int(h.Len)-(net-mac), 0)
	}
	return true
}

func (l *live) buffered() bool {
	if l.remaining > 0 {
		return true
	}
	i := l.cur
	if l.held {
		i = (i + 1) % l.nblocks
	}
	return atomic.LoadUint32(&l.block(i).Block_status)&unix.TP_STATUS_USER != 0
}

// wait waits until block b is handed to user space, an error is pending on
// the socket, or the poll timeout passes (ErrIdle). The wait goes through
// Go's network poller: the goroutine is parked, and no thread sits in a
// blocking system call that the scheduler would have to work around (which
// cost more CPU than the capture itself).
func (l *live) wait(b *unix.TpacketHdrV1) error {
	if err := l.file.SetReadDeadline(time.Now().Add(l.timeout)); err != nil {
		return fmt.Errorf("waiting for frames: %w", err)
	}
	var sockErr error
	err := l.rc.Read(func(uintptr) bool {
		if atomic.LoadUint32(&b.Block_status)&unix.TP_STATUS_USER != 0 {
			return true
		}
		// Readable but no block: a socket error (ENETDOWN, ...). It is
		// read each time, not only once woken: an error raised while
		// no one waited made the socket readable then, and the poller
		// forgets that before calling this.
		sockErr = l.socketError()
		return sockErr != nil
	})
	switch {
	case sockErr != nil:
		return sockErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrIdle
	case err != nil:
		return fmt.Errorf("waiting for frames: %w", err)
	}
	return nil
}

// socketError reads (and so clears) the socket's pending error. The kernel
// reports ENETDOWN when a captured interface goes down and when it is
// deleted: neither ends the capture, which resumes when the interface comes
// back up, or is named again; the deletion of a ScopeOne capture's
// interface is reported, once.
func (l *live) socketError() error {
	errno, err := unix.GetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("capturing: %w", err)
	}
	switch unix.Errno(errno) {
	case 0:
		return nil
	case unix.ENETDOWN, unix.ENXIO, unix.ENODEV:
		if idx := l.boundGone(); idx > 0 {
			return fmt.Errorf("%w (index %d): nothing is captured until an interface of its name returns", ErrInterfaceGone, idx)
		}
		return nil
	}
	return fmt.Errorf("capturing: %w", unix.Errno(errno))
}

// boundGone returns the index of a ScopeOne capture's interface if it is
// deleted and was not reported yet, else 0.
func (l *live) boundGone() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scope != ScopeOne || l.bound == l.gone {
		return 0
	}
	if _, err := l.links.rxDropped(l.bound); !errors.Is(err, unix.ENODEV) {
		return 0
	}
	l.gone = l.bound
	return l.bound
}

func (l *live) stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed.Load() {
		// Reading the counters resets them in the kernel: keep the sums.
		if st, err := unix.GetsockoptTpacketStatsV3(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			l.recv += uint64(st.Packets)
			l.drops += uint64(st.Drops)
		}
		if now := time.Now(); now.Sub(l.ifReadAt) >= ifDropsEvery {
			l.ifReadAt = now
			for idx, d := range l.ifd {
				v, err := l.links.rxDropped(idx)
				switch {
				case err != nil: // gone: its count so far stays
				case !d.known:
					d.base, d.last, d.known = v, v, true
				case v >= d.last:
					d.last = v
				default: // the counter went back: a new interface got the index
					l.ifGone += d.last - d.base
					d.base, d.last = v, v
				}
			}
		}
	}
	s := Stats{Packets: l.recv, Drops: l.drops, IfDrops: l.ifGone}
	for _, d := range l.ifd {
		s.IfDrops += d.last - d.base
	}
	return s
}

func (l *live) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	if l.ring != nil {
		unix.Munmap(l.ring)
		l.ring = nil
	}
	if l.links != nil {
		l.links.close()
	}
	var err error
	if l.file != nil {
		err = l.file.Close() // closes the socket
	} else if l.fd >= 0 {
		err = unix.Close(l.fd)
	}
	l.fd = -1
	return err
}
