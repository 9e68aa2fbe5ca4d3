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
// capture pipeline. Each client has its own goroutine, at most MaxClients
// at once, and every read and write has a deadline, so a slow, silent or
// flooding client holds nothing for long and stalls nobody else.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/stats"
)

const (
	// MaxClients is the number of clients served at once. A client that
	// connects while that many are being served is disconnected at once,
	// without an answer.
	MaxClients = 64
	// RequestTimeout is how long a client has, from its connection, to send
	// its request line; a client that has not sent one by then is dropped.
	RequestTimeout = time.Second
	// WriteTimeout bounds the writing of an answer to a client that does
	// not read it.
	WriteTimeout = 5 * time.Second

	// SocketMode is the permission of the socket file: the owner and the
	// group may connect, nobody else.
	SocketMode fs.FileMode = 0o660
	// DirMode is the permission of a directory that Listen creates.
	DirMode fs.FileMode = 0o755

	// maxPathLen is the longest socket path the kernel takes (sun_path
	// holds 108 bytes, the terminating NUL included).
	maxPathLen = 107
	// probeTimeout bounds the connection attempt that tells a running
	// tcpeek from a stale socket file.
	probeTimeout = time.Second
	// closeTimeout bounds how long Close waits for client goroutines.
	closeTimeout = 2 * time.Second
	// maxDrain is how much unread input is discarded after an answer, so
	// that the client sees a clean EOF rather than a reset.
	maxDrain = 64 << 10
	// limitLogInterval spaces the log lines about refused clients.
	limitLogInterval = 10 * time.Second
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

// Server is a listening stats socket. Its methods are safe for concurrent
// use.
type Server struct {
	cfg      Config
	ln       *net.UnixListener
	dev, ino uint64 // identity of the socket file Listen made

	// Tunables, set by Listen to the package's constants; tests change them
	// before Serve.
	maxClients     int
	requestTimeout time.Duration
	writeTimeout   time.Duration

	slots     chan struct{} // one element per client being served
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

// umaskMu serializes the umask changes of concurrent Listen calls.
var umaskMu sync.Mutex

// Listen creates the stats socket at cfg.Path.
//
// The parent directory is created if missing, with mode 0755, and given to
// cfg.UID and cfg.GID so that the daemon can still remove its socket after
// dropping privileges; an existing directory is left as it is. If the path
// exists, Listen fails if a process answers there ("tcpeek is already
// running"), removes it if it is a stale socket that nobody answers on, and
// fails, leaving it in place, if it is not a socket. The socket is created
// with mode 0660 from the start (Listen sets the process umask around
// bind(2), so it must not run concurrently with code that creates files),
// then given to cfg.UID and cfg.GID without following symbolic links.
//
// Every error names the path and says what to do.
func Listen(cfg Config) (*Server, error) {
	path := cfg.Path
	if cfg.Snapshot == nil {
		return nil, errors.New("stats socket: no Snapshot function given")
	}
	if path == "" {
		return nil, errors.New("stats socket: empty path: give a path with -U")
	}
	if len(path) > maxPathLen {
		return nil, fmt.Errorf("stats socket %s: path too long (%d bytes, at most %d): choose a shorter one with -U", path, len(path), maxPathLen)
	}
	dir := filepath.Dir(path)
	created, err := makeDir(dir)
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: cannot create its directory: %w", path, err)
	}
	if created || dedicatedDir(dir, filepath.Base(path)) {
		// A directory made for the socket (now, or by an earlier run as
		// root) goes to the user the daemon drops to, who must be able to
		// remove the socket at exit.
		if err := giveTo(dir, cfg.UID, cfg.GID); err != nil {
			return nil, fmt.Errorf("stats socket %s: cannot give its directory to uid %d gid %d: %w", path, cfg.UID, cfg.GID, err)
		}
	} else if cfg.UID >= 0 && !canRemoveIn(dir, cfg.UID, cfg.GID) && cfg.Logf != nil {
		cfg.Logf("stats socket %s: uid %d will not be able to remove it at exit from %s: give the directory to that user, or put the socket in a directory of its own", path, cfg.UID, dir)
	}
	if err := clearPath(path, cfg.Logf); err != nil {
		return nil, err
	}
	ln, err := bind(path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("stats socket %s: %w (another tcpeek started at the same time? stop it, or choose another path with -U)", path, err)
		}
		return nil, fmt.Errorf("stats socket %s: %w (check the directory's permissions, or choose another path with -U)", path, err)
	}
	ln.SetUnlinkOnClose(false) // Close removes the file, if it is still ours
	s := &Server{
		cfg:            cfg,
		ln:             ln,
		maxClients:     MaxClients,
		requestTimeout: RequestTimeout,
		writeTimeout:   WriteTimeout,
		quit:           make(chan struct{}),
		serveDone:      make(chan struct{}),
		conns:          make(map[*net.UnixConn]struct{}),
	}
	if err := s.setOwner(); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	return s, nil
}

// setOwner records the identity of the new socket file, makes sure of its
// mode and gives it to the configured owner.
func (s *Server) setOwner() error {
	path := s.cfg.Path
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stats socket %s: created but cannot be found: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("stats socket %s: replaced by something else while being created", path)
	}
	s.dev, s.ino = st.Dev, st.Ino
	if fi.Mode().Perm() != SocketMode {
		// A default ACL on the directory overrides the umask.
		if err := os.Chmod(path, SocketMode); err != nil {
			return fmt.Errorf("stats socket %s: cannot set mode %v: %w", path, SocketMode, err)
		}
	}
	if err := giveTo(path, s.cfg.UID, s.cfg.GID); err != nil {
		return fmt.Errorf("stats socket %s: cannot give it to uid %d gid %d: %w", path, s.cfg.UID, s.cfg.GID, err)
	}
	return nil
}

// giveTo gives path to uid and gid (-1: unchanged) without following a
// symbolic link. It leaves alone an owner that is already right, so that
// asking for the current owner needs no privilege.
func giveTo(path string, uid, gid int) error {
	if uid == -1 && gid == -1 {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid == int(st.Uid) {
			uid = -1
		}
		if gid == int(st.Gid) {
			gid = -1
		}
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// dedicatedDir tells whether dir holds nothing but the socket (or nothing at
// all) and is not shared with everyone: a directory of the socket's own,
// like /var/run/tcpeek, which may be given to the daemon's user.
func dedicatedDir(dir, name string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o002 != 0 || fi.Mode()&fs.ModeSticky != 0 {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() != name {
			return false
		}
	}
	return true
}

// canRemoveIn tells whether a process of uid and gid may remove its own file
// from dir, by the directory's owner and mode.
func canRemoveIn(dir string, uid, gid int) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	m := fi.Mode().Perm()
	switch {
	case uid == 0 || int(st.Uid) == uid:
		return m&0o300 == 0o300
	case gid >= 0 && int(st.Gid) == gid:
		return m&0o030 == 0o030
	}
	return m&0o003 == 0o003 // sticky or not, the socket is the user's own
}

// makeDir creates dir and its missing parents with mode DirMode, whatever
// the umask, and reports whether it created dir itself.
func makeDir(dir string) (created bool, err error) {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if _, err := makeDir(parent); err != nil {
			return false, err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil // made by someone else meanwhile
		}
		return false, err
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return true, err
	}
	return true, nil
}

// clearPath makes way for the socket: nothing to do if path does not exist;
// an error if it is not a socket or if a process answers on it; the stale
// socket is removed otherwise.
func clearPath(path string, logf func(string, ...any)) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stats socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("stats socket %s: the path exists and is not a socket (%s): remove it, or choose another path with -U", path, kind(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("tcpeek is already running on %s: stop it first, or give this one another socket with -U", path)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stats socket %s: cannot remove the stale socket: %w", path, err)
		}
		if logf != nil {
			logf("stats socket %s: removed a stale socket that nobody answered on", path)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed meanwhile
	}
	return fmt.Errorf("stats socket %s: exists and cannot be checked: %w (if no tcpeek runs, remove it)", path, err)
}

// kind names the type of a file for an error message.
func kind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "not a socket"
}

// bind creates the listening socket with mode 0660: the umask is set so
// that there is no moment when the file is world-writable.
func bind(path string) (*net.UnixListener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := unix.Umask(0o777 &^ int(SocketMode))
	defer unix.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
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
	s.slots = make(chan struct{}, s.maxClients)
	s.mu.Unlock()
	defer close(s.serveDone)
	if closed {
		return nil
	}
	var (
		backoff time.Duration
		refused int       // clients refused since the last log line
		lastLog time.Time // when refused clients were last logged
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
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close()
			refused++
			if time.Since(lastLog) >= limitLogInterval {
				s.logf("stats socket %s: %d clients at once already; refused %d more", s.cfg.Path, s.maxClients, refused)
				refused, lastLog = 0, time.Now()
			}
			continue
		}
		if !s.track(c) {
			c.Close()
			<-s.slots
			return nil
		}
		s.wg.Add(1)
		go s.serveClient(c)
	}
}

// Close stops accepting clients, disconnects those being served, waits for
// their goroutines (at most a couple of seconds) and removes the socket
// file if it is still the one Listen made. Calling Close again does
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
	return s.removeFile()
}

// removeFile removes the socket file unless it was removed or replaced
// since Listen made it.
func (s *Server) removeFile() error {
	path := s.cfg.Path
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stats socket %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != fs.ModeSocket || st.Dev != s.dev || st.Ino != s.ino {
		s.logf("stats socket %s: replaced by another file since it was made; leaving it", path)
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stats socket %s: cannot remove it: %w (remove it by hand; the next tcpeek will also replace it)", path, err)
	}
	return nil
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

// serveClient reads one request from c, answers it and closes c.
func (s *Server) serveClient(c *net.UnixConn) {
	defer func() {
		s.untrack(c)
		c.Close()
		<-s.slots
		s.wg.Done()
	}()
	c.SetReadDeadline(time.Now().Add(s.requestTimeout))
	line, err := readLine(c, make([]byte, protocol.MaxRequestLen+1))
	answer := protocol.UnknownAnswer
	switch {
	case err == nil:
		answer = s.answer(line)
	case !errors.Is(err, errTooLong):
		return // no full line in time, or the client went away: dropped
	}
	c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := c.Write(answer); err != nil {
		return
	}
	// Signal EOF, then discard what the client may still send: closing a
	// UNIX socket with unread input makes the client's read fail with
	// ECONNRESET instead of ending with EOF.
	if c.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(s.requestTimeout))
	io.CopyN(io.Discard, c, maxDrain)
}

// errTooLong reports a request line longer than protocol.MaxRequestLen.
var errTooLong = errors.New("request line too long")

// readLine reads from c into buf until an LF, EOF or a full buf. It returns
// the line with its LF; a line ended by EOF is returned as it is (a client
// may send its request and shut down its side); a full buf without LF is
// errTooLong.
func readLine(c io.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			return buf[:n+i+1], nil
		}
		n += m
		if n == len(buf) {
			return buf[:n], errTooLong
		}
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
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
