//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// privileges are what /proc/PID/task/TID/status says of a thread's
// capabilities and no_new_privs.
type privileges struct {
	inh, prm, eff, bnd, amb uint64
	noNewPrivs              bool
}

// threadPrivileges returns the privileges of every thread of process pid,
// by thread id.
func threadPrivileges(t *testing.T, pid int) map[string]privileges {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	out := map[string]privileges{}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // a thread that ended
		}
		var p privileges
		seen := 0
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			field := map[string]*uint64{"CapInh": &p.inh, "CapPrm": &p.prm, "CapEff": &p.eff, "CapBnd": &p.bnd, "CapAmb": &p.amb}[k]
			switch {
			case field != nil:
				n, err := strconv.ParseUint(v, 16, 64)
				if err != nil {
					t.Fatalf("%s: %s: %q", task, k, v)
				}
				*field = n
				seen++
			case k == "NoNewPrivs":
				p.noNewPrivs = v == "1"
				seen++
			}
		}
		if seen != 6 {
			t.Fatalf("%s: found %d of the 6 fields CapInh, CapPrm, CapEff, CapBnd, CapAmb, NoNewPrivs", task, seen)
		}
		out[filepath.Base(filepath.Dir(task))] = p
	}
	return out
}

// checkUnprivileged fails the test unless every thread of process pid has
// no capability and no_new_privs, and, if bounding, an empty bounding set.
func checkUnprivileged(t *testing.T, pid int, bounding bool) {
	t.Helper()
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if strings.TrimSpace(string(comm)) != "tcpeek" {
		t.Fatalf("process %d is %q, not tcpeek", pid, comm)
	}
	for tid, p := range threadPrivileges(t, pid) {
		if p.inh != 0 || p.prm != 0 || p.eff != 0 || p.amb != 0 || !p.noNewPrivs || bounding && p.bnd != 0 {
			t.Errorf("thread %s of tcpeek: CapInh %016x CapPrm %016x CapEff %016x CapAmb %016x CapBnd %016x NoNewPrivs %v; want no capability%s and NoNewPrivs 1",
				tid, p.inh, p.prm, p.eff, p.amb, p.bnd, p.noNewPrivs, map[bool]string{true: ", an empty bounding set"}[bounding])
		}
	}
}

// TestLivePrivilegesCleared runs tcpeek -u nobody: once it answers, every
// thread has no capability in any set, an empty bounding set and
// no_new_privs (SPEC §11), and the socket and the capture still work.
func TestLivePrivilegesCleared(t *testing.T) {
	t.Parallel()
	requireLab(t)
	nobody(t)
	go buildTools()
	l := newLab(t)
	s1 := pick(sessions(), func(s *session) bool { return s.kind == kinds[0] && s.dir == "RX" && !s.fam.v6 })[0]
	setupSessions(l, []*session{s1})
	sock := filepath.Join(shortTempDir(t), "run", "tcpeek.sock")
	d := l.startDaemon(sock, "-u", "nobody", "-q")
	checkUnprivileged(t, d.pid(), true)
	dialAll(t, l, []*session{s1})
	d.waitStats("the handshake", func(st liveStats) (bool, string) {
		return st.Filters[0].Success.Total == 1, fmt.Sprintf("RX success %d, want 1", st.Filters[0].Success.Total)
	})
	checkUnprivileged(t, d.pid(), true) // threads made since, too
	d.stop(syscall.SIGTERM)
	sockGone(t, sock)
}

// TestLiveAmbientCapabilities starts tcpeek as nobody with CAP_NET_RAW as
// an ambient capability, as the systemd unit does (User=,
// AmbientCapabilities=): once set up, it has given up every capability and
// set no_new_privs; with CAP_SETPCAP too, it empties its bounding set.
// The capture still counts.
func TestLiveAmbientCapabilities(t *testing.T) {
	t.Parallel()
	requireLab(t)
	cred := nobody(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (Debian package util-linux) to start tcpeek with ambient capabilities in the lab's namespace")
	}
	bin := executableCopy(t, requireTools(t).tcpeek) // nobody cannot reach the build directory
	l := newLab(t)
	// One handshake for each run: RX, IPv4 then IPv6.
	ss := pick(sessions(), func(s *session) bool { return s.kind == kinds[0] && s.dir == "RX" })
	setupSessions(l, ss)
	for i, tt := range []struct {
		caps     string
		bounding bool // tcpeek may, and must, empty its bounding set
	}{
		{"+net_raw", false},
		{"+net_raw,+setpcap", true},
	} {
		t.Run(tt.caps, func(t *testing.T) {
			// A directory nobody may write, for the socket.
			dir := filepath.Join(shortTempDir(t), "run")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(dir, "tcpeek.sock")
			cmd := exec.Command("ip", "netns", "exec", l.a, setpriv,
				"--reuid", strconv.Itoa(int(cred.Uid)), "--regid", strconv.Itoa(int(cred.Gid)), "--clear-groups",
				"--inh-caps", tt.caps, "--ambient-caps", tt.caps,
				bin, "-i", "veth-a", "-U", sock, "-q")
			d := l.startDaemonCmd(sock, cmd)
			if st, err := os.Stat(fmt.Sprintf("/proc/%d", d.pid())); err != nil || st.Sys().(*syscall.Stat_t).Uid != cred.Uid {
				t.Fatalf("tcpeek does not run as nobody: %v", err)
			}
			checkUnprivileged(t, d.pid(), tt.bounding)
			if !tt.bounding {
				// Without CAP_SETPCAP the bounding set cannot shrink:
				// no_new_privs is what keeps an execve from using it.
				for tid, p := range threadPrivileges(t, d.pid()) {
					if p.bnd == 0 {
						t.Errorf("thread %s: an empty bounding set without CAP_SETPCAP: the test does not test what it says", tid)
					}
				}
			}
			dialAll(t, l, ss[i:i+1])
			d.waitStats("the handshake", func(st liveStats) (bool, string) {
				return st.Filters[0].Success.Total == 1, fmt.Sprintf("RX success %d, want 1", st.Filters[0].Success.Total)
			})
			d.stop(syscall.SIGTERM)
			sockGone(t, sock)
		})
	}
}

// TestRefusedStartChangesNothing starts tcpeek -u nobody with a socket
// path where a regular file is, alone in its directory: tcpeek refuses to
// start (exit 1) and changes neither the file nor its directory's owner
// (issue 8: it used to give the directory to nobody).
func TestRefusedStartChangesNothing(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: -u")
	}
	nobody(t)
	bins := requireTools(t)
	dir := shortTempDir(t)
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var before []syscall.Stat_t
	for _, p := range []string{dir, file} {
		_, st := statOf(t, p)
		before = append(before, *st)
	}
	cmd := exec.Command(bins.tcpeek, "-r", "../testdata/example.pcap", "-q", "-u", "nobody", "-U", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "not a socket") {
		t.Errorf("tcpeek -u nobody -U %s (a regular file): %v, stderr %q; want exit 1 and a message saying it is not a socket", file, err, stderr.String())
	}
	for i, p := range []string{dir, file} {
		mode, st := statOf(t, p)
		if st.Uid != before[i].Uid || st.Gid != before[i].Gid || uint32(mode.Perm()) != before[i].Mode&0o777 {
			t.Errorf("%s: %v uid %d gid %d after the refused start, was %o uid %d gid %d",
				p, mode, st.Uid, st.Gid, before[i].Mode&0o777, before[i].Uid, before[i].Gid)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me\n" {
		t.Errorf("%s changed: %q, %v", file, b, err)
	}
}

// TestSocketDirNotWritable starts tcpeek as a user with CAP_NET_RAW, as a
// new user tries it, with the socket's directory where it may not create
// it (the default /var/run/tcpeek is root's): it exits 1 with a message
// that says what to do, -U ” among it.
func TestSocketDirNotWritable(t *testing.T) {
	t.Parallel()
	requireLab(t)
	cred := nobody(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (Debian package util-linux) to start tcpeek with ambient capabilities")
	}
	bin := executableCopy(t, requireTools(t).tcpeek)
	l := newLab(t)
	sock := filepath.Join(shortTempDir(t), "run", "tcpeek", "tcpeek.sock") // root's directory, 0755
	cmd := exec.Command("ip", "netns", "exec", l.a, setpriv,
		"--reuid", strconv.Itoa(int(cred.Uid)), "--regid", strconv.Itoa(int(cred.Gid)), "--clear-groups",
		"--inh-caps", "+net_raw", "--ambient-caps", "+net_raw",
		bin, "-i", "veth-a", "-U", sock, "-q")
	p := l.start("tcpeek as nobody", cmd, false)
	if code := waitExit(t, p); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, p.stderr.String())
	}
	if msg := p.stderr.String(); !strings.Contains(msg, "permission denied") || !strings.Contains(msg, "-U ''") {
		t.Errorf("stderr %q: want the cause and the hint to run with -U ''", msg)
	}
}
