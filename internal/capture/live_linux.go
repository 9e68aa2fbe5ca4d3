//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
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

// Live reads frames from an AF_PACKET socket through a memory-mapped
// TPACKET_V3 ring. The kernel filter is attached before the socket is bound
// to the interface, so no frame that the filter rejects is ever queued. One
// goroutine calls Next and, once it returned for the last time, Close;
// KernelStats may be called from any goroutine.
type Live struct {
	fd       int
	ifname   string
	ifindex  int
	linkType uint32
	ring     []byte
	nblocks  int
	timeout  time.Duration // poll timeout
	promisc  bool

	cur       int            // current block
	held      bool           // the current block is ours until released
	remaining uint32         // frames left in the current block
	next      unsafe.Pointer // the next frame's header, in the ring

	file *os.File        // the socket, registered with Go's poller
	rc   syscall.RawConn // waits on the poller for the socket

	mu        sync.Mutex // guards the counters below
	recv      uint64     // frames that passed the filter (received or dropped)
	drops     uint64     // frames the kernel dropped for lack of ring space
	ifBase    uint64     // rx_dropped of the interface when the capture began
	ifDropsFD int        // the interface's rx_dropped file in sysfs, -1 if none
	closed    atomic.Bool
}

// OpenLive opens a live capture on an interface. It needs CAP_NET_RAW (and
// CAP_NET_ADMIN for promiscuous mode).
func OpenLive(cfg LiveConfig) (*Live, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("no interface %q (ip link lists them): %w", cfg.Interface, err)
	}
	linkType, ether := linkTypeOf(cfg.Interface)
	if cfg.BufferMB < 1 {
		cfg.BufferMB = 2
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 200 * time.Millisecond
	}
	l := &Live{
		fd:        -1,
		ifDropsFD: -1,
		ifname:    cfg.Interface,
		ifindex:   ifi.Index,
		linkType:  linkType,
		timeout:   cfg.PollTimeout,
	}
	// Protocol 0: the socket receives nothing until it is bound, so the
	// filter is in place before the first frame is queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("opening a packet socket needs root or the CAP_NET_RAW capability: %w", err)
		}
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	l.fd = fd
	fail := func(what string, err error) (*Live, error) {
		l.Close()
		return nil, fmt.Errorf("%s on %s: %w", what, cfg.Interface, err)
	}
	var prog []bpf.RawInstruction
	if !cfg.NoFilter {
		if ether {
			prog, err = Filter()
		} else {
			// Not an Ethernet link: the filter's offsets do not apply;
			// keep the headers of every frame.
			prog, err = bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: SnapLen}})
		}
		if err != nil {
			return fail("building the kernel filter", err)
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
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
	if cfg.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("entering promiscuous mode", err)
		}
		l.promisc = true
	}
	l.ifDropsFD = ifDropsFile(cfg.Interface)
	l.ifBase = readIfDrops(l.ifDropsFD)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("binding the packet socket", err)
	}
	// Non-blocking, so that os.NewFile gives the socket to Go's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail("making the packet socket non-blocking", err)
	}
	l.file = os.NewFile(uintptr(fd), "packet socket on "+cfg.Interface)
	if l.rc, err = l.file.SyscallConn(); err != nil {
		return fail("watching the packet socket", err)
	}
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// linkTypeOf returns the pcap link type of an interface's frames, and
// whether they are Ethernet frames (which the kernel filter understands).
func linkTypeOf(ifname string) (uint32, bool) {
	b, err := os.ReadFile("/sys/class/net/" + ifname + "/type")
	if err != nil {
		return 1, true
	}
	switch t, _ := strconv.Atoi(strings.TrimSpace(string(b))); t {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return 1, true // LINKTYPE_ETHERNET
	case unix.ARPHRD_NONE, unix.ARPHRD_PPP, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT, unix.ARPHRD_IPGRE:
		return 101, false // LINKTYPE_RAW: the frame is an IP packet
	default:
		return 1, true
	}
}

// ifDropsFile opens the interface's count of received frames it dropped.
func ifDropsFile(ifname string) int {
	fd, err := unix.Open("/sys/class/net/"+ifname+"/statistics/rx_dropped", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// readIfDrops reads the count from a file that ifDropsFile opened: one
// pread, which sysfs answers with the current value.
func readIfDrops(fd int) uint64 {
	if fd < 0 {
		return 0
	}
	var b [32]byte
	n, err := unix.Pread(fd, b[:], 0)
	if err != nil || n <= 0 {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b[:n])), 10, 64)
	return v
}

// LinkType returns the pcap link type of the frames.
func (l *Live) LinkType() uint32 { return l.linkType }

// block returns the header of block i.
func (l *Live) block(i int) *unix.TpacketHdrV1 {
	d := (*unix.TpacketBlockDesc)(unsafe.Pointer(&l.ring[i*blockSize]))
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&d.Hdr[0]))
}

// Next reads the next frame into f; f.Data points into the ring and stays
// valid until the next call. It returns ErrIdle when no frame arrived within
// the poll timeout.
func (l *Live) Next(f *Frame) error {
	for {
		if l.remaining > 0 {
			h := (*unix.Tpacket3Hdr)(l.next)
			data := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(h), h.Mac)), h.Snaplen)
			f.Time = int64(h.Sec)*1e9 + int64(h.Nsec)
			f.LinkType = l.linkType
			f.Data = data
			f.WireLen = int(h.Len)
			f.NoVerify = h.Status&unix.TP_STATUS_CSUMNOTREADY != 0
			l.remaining--
			l.next = unsafe.Add(l.next, h.Next_offset)
			return nil
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
			l.next = unsafe.Pointer(&l.ring[l.cur*blockSize+int(b.Offset_to_first_pkt)])
			continue
		}
		if err := l.wait(b); err != nil {
			return err
		}
	}
}

// Buffered tells whether Next has a frame to return without waiting: the
// current block holds more, or the kernel handed over the next one.
func (l *Live) Buffered() bool {
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
func (l *Live) wait(b *unix.TpacketHdrV1) error {
	if err := l.file.SetReadDeadline(time.Now().Add(l.timeout)); err != nil {
		return fmt.Errorf("waiting for frames on %s: %w", l.ifname, err)
	}
	var sockErr error
	woken := false
	err := l.rc.Read(func(uintptr) bool {
		if atomic.LoadUint32(&b.Block_status)&unix.TP_STATUS_USER != 0 {
			return true
		}
		if woken {
			// Readable but no block: a socket error (ENETDOWN, ...).
			if sockErr = l.socketError(); sockErr != nil {
				return true
			}
		}
		woken = true
		return false
	})
	switch {
	case sockErr != nil:
		return sockErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrIdle
	case err != nil:
		return fmt.Errorf("waiting for frames on %s: %w", l.ifname, err)
	}
	return nil
}

// socketError reads (and so clears) the socket's pending error. The kernel
// reports ENETDOWN both when the link goes down, which the capture survives
// (it resumes when the link comes back), and when the interface is deleted,
// which ends it: nothing would ever be captured again.
func (l *Live) socketError() error {
	errno, err := unix.GetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("capturing on %s: %w", l.ifname, err)
	}
	if errno == 0 {
		return nil
	}
	if _, err := net.InterfaceByIndex(l.ifindex); err != nil {
		return fmt.Errorf("interface %s is gone (%v): nothing more can be captured on it", l.ifname, unix.Errno(errno))
	}
	switch unix.Errno(errno) {
	case unix.ENETDOWN, unix.ENXIO, unix.ENODEV:
		return nil // the link went down; frames resume when it comes up
	}
	return fmt.Errorf("capturing on %s: %w", l.ifname, unix.Errno(errno))
}

// KernelStats returns the frames that passed the kernel filter (received
// or dropped), those the kernel dropped because the ring was full, and those
// the interface dropped, since the capture began.
func (l *Live) KernelStats() (recv, drops, ifdrops uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed.Load() {
		// Reading the counters resets them in the kernel: keep the sums.
		if st, err := unix.GetsockoptTpacketStatsV3(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			l.recv += uint64(st.Packets)
			l.drops += uint64(st.Drops)
		}
	}
	if now := readIfDrops(l.ifDropsFD); now >= l.ifBase {
		ifdrops = now - l.ifBase
	}
	return l.recv, l.drops, ifdrops
}

// Close releases the ring and the socket (and leaves promiscuous mode).
func (l *Live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	if l.ring != nil {
		unix.Munmap(l.ring)
		l.ring = nil
	}
	if l.ifDropsFD >= 0 {
		unix.Close(l.ifDropsFD)
		l.ifDropsFD = -1
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
