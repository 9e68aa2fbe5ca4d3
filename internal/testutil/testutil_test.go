package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	for _, tt := range []struct {
		name    string
		holdsAt int // the call of cond that first returns true; 0 for never
		want    bool
	}{
		{"at once", 1, true},
		{"later", 5, true},
		{"never", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got := WaitFor(50*time.Millisecond, func() bool {
				calls++
				return tt.holdsAt != 0 && calls >= tt.holdsAt
			})
			if got != tt.want {
				t.Errorf("WaitFor = %v, want %v", got, tt.want)
			}
			if tt.want && calls != tt.holdsAt {
				t.Errorf("cond called %d times, want %d", calls, tt.holdsAt)
			}
		})
	}
}

func TestProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc, which only Linux has")
	}
	for _, pid := range []int{0, os.Getpid()} {
		if kib := RSSKiB(pid); kib <= 0 {
			t.Errorf("RSSKiB(%d) = %d, want > 0", pid, kib)
		}
		before := OpenFDs(pid)
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		if after := OpenFDs(pid); after != before+1 {
			t.Errorf("OpenFDs(%d): %d with %s open, %d before; want one more", pid, after, os.DevNull, before)
		}
		f.Close()
	}
	if n, kib := OpenFDs(-1), RSSKiB(-1); n != 0 || kib != 0 {
		t.Errorf("no process -1: OpenFDs = %d, RSSKiB = %d; want 0, 0", n, kib)
	}
}

func TestWriteCert(t *testing.T) {
	dir := t.TempDir()
	pool := WriteCert(t, dir)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatalf("the files written do not make a key pair: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the pool does not trust the certificate for 127.0.0.1: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v, %v; want mode 0600", fi, err)
	}
}
