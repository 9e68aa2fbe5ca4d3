package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the socket file's lifecycle: its directory, a stale socket
// or another tcpeek in its place, its mode and owner, and its removal.

const (
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
)

// umaskMu serializes the umask changes of concurrent Listen calls.
var umaskMu sync.Mutex

// socketFile is the socket's file as Listen made it.
type socketFile struct {
	path     string
	dev, ino uint64   // identity of the file, to remove only our own
	made     []string // directories Listen created, outermost first
}

// createSocket makes the socket file at cfg.Path and listens on it (see
// Listen). On error it leaves the file system as it found it: a directory
// it made is removed again, and it changes the owner of nothing that
// existed before.
func createSocket(cfg Config) (_ *net.UnixListener, _ *socketFile, err error) {
	path := cfg.Path
	if path == "" {
		return nil, nil, errors.New("stats socket: empty path: give a path with -U")
	}
	if len(path) > maxPathLen {
		return nil, nil, fmt.Errorf("stats socket %s: path too long (%d bytes, at most %d): choose a shorter one with -U", path, len(path), maxPathLen)
	}
	f := &socketFile{path: path}
	defer func() {
		if err != nil {
			f.removeDirs()
		}
	}()
	dir := filepath.Dir(path)
	if f.made, err = makeDir(dir); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			// A user with CAP_NET_RAW but no right in /var/run.
			return nil, nil, fmt.Errorf("stats socket %s: cannot create its directory: %w (run as root, give a directory you may write with -U PATH, or run without the socket: -U '')", path, err)
		}
		return nil, nil, fmt.Errorf("stats socket %s: cannot create its directory: %w", path, err)
	}
	if err := clearPath(path, cfg.Logf); err != nil {
		return nil, nil, err
	}
	if slices.Contains(f.made, dir) {
		// A directory made for the socket goes to the user the daemon
		// drops to, who must be able to remove the socket at exit. One
		// that existed keeps its owner, whatever it holds.
		if err := giveTo(dir, cfg.UID, cfg.GID); err != nil {
			return nil, nil, fmt.Errorf("stats socket %s: cannot give its directory to uid %d gid %d: %w", path, cfg.UID, cfg.GID, err)
		}
	} else if cfg.UID >= 0 && !canRemoveIn(dir, cfg.UID, cfg.GID) && cfg.Logf != nil {
		cfg.Logf("stats socket %s: uid %d cannot remove it from %s at exit (tcpeek gives away only a directory it creates); the next tcpeek replaces it. To have it removed, give -U a path in a directory that does not exist yet or that uid %d may write", path, cfg.UID, dir, cfg.UID)
	}
	ln, err := bind(path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("stats socket %s: %w (another tcpeek started at the same time? stop it, or choose another path with -U)", path, err)
		}
		return nil, nil, fmt.Errorf("stats socket %s: %w (check the directory's permissions, or choose another path with -U)", path, err)
	}
	ln.SetUnlinkOnClose(false) // remove removes the file, if it is still ours
	if err := f.setOwner(cfg.UID, cfg.GID); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, nil, err
	}
	return ln, f, nil
}

// setOwner records the identity of the new socket file, makes sure of its
// mode and gives it to uid and gid.
func (f *socketFile) setOwner(uid, gid int) error {
	path := f.path
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stats socket %s: created but cannot be found: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("stats socket %s: replaced by something else while being created", path)
	}
	f.dev, f.ino = st.Dev, st.Ino
	if fi.Mode().Perm() != SocketMode {
		// A default ACL on the directory overrides the umask.
		if err := os.Chmod(path, SocketMode); err != nil {
			return fmt.Errorf("stats socket %s: cannot set mode %v: %w", path, SocketMode, err)
		}
	}
	if err := giveTo(path, uid, gid); err != nil {
		return fmt.Errorf("stats socket %s: cannot give it to uid %d gid %d: %w", path, uid, gid, err)
	}
	return nil
}

// remove removes the socket file unless it was removed or replaced since it
// was made.
func (f *socketFile) remove(logf func(string, ...any)) error {
	path := f.path
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stats socket %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Type() != fs.ModeSocket || st.Dev != f.dev || st.Ino != f.ino {
		if logf != nil {
			logf("stats socket %s: replaced by another file since it was made; leaving it", path)
		}
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stats socket %s: cannot remove it: %w (the next tcpeek replaces it; or remove it by hand)", path, err)
	}
	return nil
}

// removeDirs removes the directories that were made for the socket, if
// they are still empty, innermost first: what a refused start leaves.
func (f *socketFile) removeDirs() {
	for i := len(f.made) - 1; i >= 0; i-- {
		if os.Remove(f.made[i]) != nil {
			return
		}
	}
	f.made = nil
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
	case int(st.Uid) == uid:
		return m&0o300 == 0o300
	case gid >= 0 && int(st.Gid) == gid:
		return m&0o030 == 0o030
	}
	return m&0o003 == 0o003 // sticky or not, the socket is the user's own
}

// makeDir creates dir and its missing parents with mode DirMode, whatever
// the umask, and returns the directories it created, outermost first.
func makeDir(dir string) (made []string, err error) {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if made, err = makeDir(parent); err != nil {
			return made, err
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return made, nil // made by someone else meanwhile
		}
		return made, err
	}
	made = append(made, dir)
	if err := os.Chmod(dir, DirMode); err != nil {
		return made, err
	}
	return made, nil
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
