// Package server serves tcpeek's counters on a UNIX stream socket (SPEC §7).
//
// A client connects, sends one request line (GET, REFRESH, STATS or TOP [N],
// ended by LF or CRLF; see package protocol) and reads the answer, one line
// of JSON, until EOF. A client that shuts down its side after the request
// without an LF is answered too. Anything else, an empty line or a line
// longer than protocol.MaxRequestLen included, is answered {"error":"unknown
// request"}. A client that has not sent a full line within RequestTimeout
// is disconnected without an answer.
//
// REFRESH answers the differences since the previous REFRESH from any
// client: the server keeps one baseline, and concurrent REFRESH requests
// cover consecutive intervals, so no change is reported twice or lost.
//
// The server only reads snapshots of the counters: it never touches the
// capture pipeline. No local client can starve the others (see
// package connlimit): at most MaxClients are held at once, each in its own
// goroutine; when that many are held, a newcomer takes the place of the
// client that has waited longest without sending its request, taken from
// the uid (SO_PEERCRED) that holds the most; a uid other than root holds at
// most MaxClientsPerUID, and RootReserve of the places are root's alone.
// A client leaves its place as soon as its answer is written: the answer
// is made whole before the write, and fits in the socket's buffer unless
// it is very large (TOP 1000 of many filters); every read and write has a
// deadline.
package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/connlimit"
	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
)

const (
	// MaxClients is the number of clients held at once. The more there
	// are, the longer a client that is slow to send its request after
	// connecting survives a flood of newcomers of its own uid: it is
	// dropped only once MaxClients connections came after it.
	MaxClients = 256
	// MaxClientsPerUID is the number of clients one uid other than root
	// may have held at once.
	MaxClientsPerUID = MaxClients / 4
	// RootReserve is the number of places, out of MaxClients, that only
	// root's clients may take.
	RootReserve = MaxClients / 4
	// RequestTimeout is how long a client has, from its connection, to send
	// its request line; a client that has not sent one by then is dropped.
	RequestTimeout = time.Second
	// WriteTimeout bounds the writing of an answer to a client that does
	// not read it.
	WriteTimeout = 5 * time.Second

	// closeTimeout bounds how long Close waits for client goroutines.
	closeTimeout = 2 * time.Second
	// maxDrain is how much unread input is discarded after an answer, so
	// that the client sees a clean EOF rather than a reset.
	maxDrain = 64 << 10
	// maxDraining bounds the answered clients whose unread input is being
	// discarded (only clients that sent more than a request have any);
	// beyond it, they are closed at once.
	maxDraining = 16
	// limitLogInterval spaces the log lines about dropped and refused
	// clients.
	limitLogInterval = 10 * time.Second
	// unknownUID is the key of a client whose credentials cannot be read.
	unknownUID = ^uint32(0)
)

// Config says where to listen and what to serve.
type Config struct {
	// Path is the socket's path.
	Path string
	// UID and GID are the owner to give the socket file (and the directory
	// that holds it, when Listen creates that directory); -1 leaves each as
	// it is. Note that the zero Config asks for root (0, 0).
	UID, GID int
	// Snapshot returns a consistent copy of the counters. It is called once
	// per request, from the clients' goroutines.
	Snapshot func() stats.Snapshot
	// Stats returns the answer to STATS; nil makes it from Snapshot alone
	// (no top lists).
	Stats func() *protocol.StatsAnswer
	// Top returns the answer to TOP n (see protocol.TopAnswer); nil
	// answers TOP as an unknown request.
	Top func(n int) *protocol.TopAnswer
	// Version is tcpeek's version, reported by STATS.
	Version string
	// Logf reports diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// table holds the clients being served, by uid.
type table = connlimit.Table[uint32, *net.UnixConn]

// newTable returns a table of clients with limits, where root is
// privileged.
func newTable(lim connlimit.Limits) *table {
	return connlimit.New[uint32, *net.UnixConn](lim, func(uid uint32) bool { return uid == 0 })
}

// Server is a listening stats socket. Its methods are safe for concurrent
// use.
type Server struct {
	cfg  Config
	ln   *net.UnixListener
	file *socketFile

	// Tunables, set by Listen to the package's constants; tests change them
	// before Serve.
	clients        *table
	requestTimeout time.Duration
	writeTimeout   time.Duration

	accepted  atomic.Uint64 // connections accepted, for the log and tests
	draining  atomic.Int32  // answered clients whose input is being discarded
	quit      chan struct{} // closed by Close
	serveDone chan struct{} // closed when Serve returns
	wg        sync.WaitGroup

	// refreshMu serializes REFRESH, so that each answer covers the interval
	// from the previous one's snapshot to its own.
	refreshMu sync.Mutex
	baseline  *protocol.StatsAnswer // counters of the previous REFRESH; nil: none yet

	mu      sync.Mutex
	closed  bool
	serving bool
	conns   map[*net.UnixConn]struct{}
}

// Listen creates the stats socket at cfg.Path.
//
// The parent directory is created if missing, with mode 0755, and given to
// cfg.UID and cfg.GID so that the daemon can still remove its socket after
// dropping privileges; an existing directory keeps its owner (if cfg.UID
// cannot remove the socket from it, Listen logs that the socket will be
// left at exit, for the next tcpeek to replace). If the path exists,
// Listen fails if a process answers there ("tcpeek is already running"),
// removes it if it is a stale socket that nobody answers on, and fails,
// leaving it in place, if it is not a socket. The socket is created with
// mode 0660 from the start (Listen sets the process umask around bind(2),
// so it must not run concurrently with code that creates files), then given
// to cfg.UID and cfg.GID without following symbolic links.
//
// A failed Listen leaves the file system as it was. Every error names the
// path and says what to do.
func Listen(cfg Config) (*Server, error) {
	if cfg.Snapshot == nil {
		return nil, errors.New("stats socket: no Snapshot function given")
	}
	ln, file, err := createSocket(cfg)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:            cfg,
		ln:             ln,
		file:           file,
		clients:        newTable(connlimit.Limits{Max: MaxClients, PerKey: MaxClientsPerUID, Reserve: RootReserve}),
		requestTimeout: RequestTimeout,
		writeTimeout:   WriteTimeout,
		quit:           make(chan struct{}),
		serveDone:      make(chan struct{}),
		conns:          make(map[*net.UnixConn]struct{}),
	}, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.cfg.Path }

// Serve accepts clients until Close, serving each in its own goroutine, and
// returns nil once closed. It must be called at most once.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("stats socket: Serve called twice")
	}
	s.serving = true
	closed := s.closed
	s.mu.Unlock()
	defer close(s.serveDone)
	if closed {
		return nil
	}
	var (
		backoff          time.Duration
		dropped, refused int       // clients dropped and refused since the last log line
		lastLog          time.Time // when they were last logged
		lastAccepted     uint64    // s.accepted then
	)
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors or the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("stats socket %s: accept: %v; retrying in %v", s.cfg.Path, err, backoff)
			select {
			case <-s.quit:
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s.accepted.Add(1)
		// What the client has sent already is read now: a client whose
		// request is in is busy from the start, never dropped for a
		// newcomer.
		buf := bufPool.Get().(*[]byte)
		n, eof := readNow(c, *buf)
		if n == 0 && eof {
			bufPool.Put(buf)
			c.Close() // gone already
			continue
		}
		slot, victim, drop := s.clients.Admit(peerUID(c), c, idle)
		if drop {
			victim.Close() // its goroutine ends and leaves the table alone
			dropped++
		}
		if slot == nil {
			bufPool.Put(buf)
			c.Close()
			refused++
		}
		if (dropped > 0 || refused > 0) && time.Since(lastLog) >= limitLogInterval {
			uid, n := s.clients.Heaviest()
			accepted := s.accepted.Load()
			s.logf("stats socket %s: %d clients at once, uid %d has %d; since the last such line, %d connections, %d idle clients dropped for newer ones, %d refused (all busy)",
				s.cfg.Path, s.clients.Len(), uid, n, accepted-lastAccepted, dropped, refused)
			dropped, refused, lastLog, lastAccepted = 0, 0, time.Now(), accepted
		}
		if slot == nil {
			continue
		}
		if eof || n == len(*buf) || bytes.IndexByte((*buf)[:n], '\n') >= 0 {
			s.clients.Busy(slot)
		}
		if !s.track(c) {
			bufPool.Put(buf)
			c.Close()
			s.clients.Release(slot)
			return nil
		}
		s.wg.Add(1)
		go s.serveClient(c, slot, buf, n, eof)
	}
}

// bufPool holds the buffers that requests are read into.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, protocol.MaxRequestLen+1)
	return &b
}}

// readNow reads what c has sent already into buf, without waiting, and
// tells whether the client has shut down its side.
func readNow(c *net.UnixConn, buf []byte) (n int, eof bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	rc.Control(func(fd uintptr) {
		for n < len(buf) {
			m, err := unix.Read(int(fd), buf[n:])
			if m > 0 {
				n += m
				continue
			}
			eof = m == 0 && err == nil
			return
		}
	})
	return n, eof
}

// peerUID returns the uid of the process that connected c.
func peerUID(c *net.UnixConn) uint32 {
	uid := unknownUID
	rc, err := c.SyscallConn()
	if err != nil {
		return uid
	}
	rc.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			uid = cred.Uid
		}
	})
	return uid
}

// idle tells whether c has nothing to read: a client whose request has
// arrived, but whose goroutine has not read it yet, is not idle.
func idle(c *net.UnixConn) bool { return unread(c) == 0 }

// unread returns the number of bytes waiting in c's receive queue.
func unread(c *net.UnixConn) int {
	n := 0
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n
}

// Close stops accepting clients, disconnects those being served, waits for
// their goroutines (at most a couple of seconds) and removes the socket
// file if it is still the one Listen made; if Serve never ran (a refused
// start), also the directories Listen made for it. Calling Close again does
// nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	serving := s.serving
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()

	s.ln.Close()
	if serving {
		<-s.serveDone // after this, no client goroutine is started
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		s.logf("stats socket %s: clients still being served after %v; closing anyway", s.cfg.Path, closeTimeout)
	}
	err := s.file.remove(s.cfg.Logf)
	if !serving && err == nil {
		s.file.removeDirs()
	}
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a client so that Close can disconnect it; false if the
// server is closed.
func (s *Server) track(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// serveClient reads the rest of the request from c, buf[:n] holding what
// was read before (and eof telling whether the client shut down its side
// after it), answers it and closes c. The client may be dropped for a
// newcomer while it waits: for its request, or for its answer to be read.
func (s *Server) serveClient(c *net.UnixConn, slot *connlimit.Slot[uint32, *net.UnixConn], buf *[]byte, n int, eof bool) {
	defer func() {
		s.clients.Release(slot)
		s.untrack(c)
		c.Close()
		s.wg.Done()
	}()
	c.SetReadDeadline(time.Now().Add(s.requestTimeout))
	line, err := readLine(c, *buf, n, eof)
	answer := protocol.UnknownAnswer
	switch {
	case err == nil:
		if !s.clients.Busy(slot) {
			bufPool.Put(buf)
			return // dropped for a newcomer meanwhile
		}
		answer = s.answer(line)
	case errors.Is(err, errTooLong):
		if !s.clients.Busy(slot) {
			bufPool.Put(buf)
			return
		}
	default:
		bufPool.Put(buf)
		return // no full line in time, dropped, or the client went away
	}
	bufPool.Put(buf)
	// An answer that does not fit in the socket's buffer waits for the
	// client to read it: meanwhile the client may be dropped for a
	// newcomer (it is the youngest in line: a client that reads is done
	// long before its turn comes).
	sent := writeNow(c, answer)
	if sent < len(answer) {
		if !s.clients.Idle(slot) {
			return
		}
		c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		if _, err := c.Write(answer[sent:]); err != nil {
			return
		}
	}
	// Signal EOF. Closing a UNIX socket with unread input makes the
	// client's read fail with ECONNRESET instead of ending with EOF: what
	// the client still sends is discarded first, within bounds.
	if c.CloseWrite() != nil {
		return
	}
	s.clients.Release(slot)
	if unread(c) == 0 {
		return
	}
	if s.draining.Add(1) <= maxDraining {
		c.SetReadDeadline(time.Now().Add(s.requestTimeout))
		io.CopyN(io.Discard, c, maxDrain)
	}
	s.draining.Add(-1)
}

// writeNow writes as much of b to c as its buffer takes, without waiting,
// and returns how much it wrote.
func writeNow(c *net.UnixConn, b []byte) int {
	n := 0
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	rc.Control(func(fd uintptr) {
		for n < len(b) {
			m, err := unix.Write(int(fd), b[n:])
			if m <= 0 || err != nil {
				return
			}
			n += m
		}
	})
	return n
}

// errTooLong reports a request line longer than protocol.MaxRequestLen.
var errTooLong = errors.New("request line too long")

// readLine reads from c into buf, which holds n bytes already, until an LF,
// EOF or a full buf; eof says that c has reached its end already. It
// returns the line with its LF; a line ended by EOF is returned as it is
// (a client may send its request and shut down its side); a full buf
// without LF is errTooLong.
func readLine(c io.Reader, buf []byte, n int, eof bool) ([]byte, error) {
	var err error
	if eof {
		err = io.EOF
	}
	scanned := 0
	for {
		if i := bytes.IndexByte(buf[scanned:n], '\n'); i >= 0 {
			return buf[:scanned+i+1], nil
		}
		scanned = n
		switch {
		case n == len(buf):
			return buf[:n], errTooLong
		case err == io.EOF:
			return buf[:n], nil
		case err != nil:
			return nil, err
		}
		var m int
		m, err = c.Read(buf[n:])
		n += m
	}
}

// answer returns the answer to a request line.
func (s *Server) answer(line []byte) []byte {
	req, ok := protocol.ParseRequest(line)
	if !ok {
		return protocol.UnknownAnswer
	}
	switch req.Verb {
	case protocol.Get:
		snap := s.cfg.Snapshot()
		return protocol.GetAnswer(snap.Answer(s.cfg.Version))
	case protocol.Refresh:
		cur, prev := s.refresh()
		return protocol.RefreshAnswer(cur, prev)
	case protocol.Stats:
		if s.cfg.Stats != nil {
			return protocol.Encode(s.cfg.Stats())
		}
		snap := s.cfg.Snapshot()
		return protocol.Encode(snap.Answer(s.cfg.Version))
	case protocol.Top:
		if s.cfg.Top != nil {
			return protocol.Encode(s.cfg.Top(req.N))
		}
	}
	return protocol.UnknownAnswer
}

// refresh takes a snapshot and makes it the new REFRESH baseline, returning
// it with the previous baseline (nil for the first REFRESH: since the
// start). The snapshot is taken under the lock, so concurrent REFRESH
// answers cover consecutive, disjoint intervals.
func (s *Server) refresh() (cur, prev *protocol.StatsAnswer) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	snap := s.cfg.Snapshot()
	cur = snap.Answer(s.cfg.Version)
	prev = s.baseline
	s.baseline = cur
	return cur, prev
}
