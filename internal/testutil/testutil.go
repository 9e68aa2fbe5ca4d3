// Package testutil holds helpers shared by the tests of tcpeek: waiting on a
// condition with a deadline, reading a process's memory and file descriptors
// from /proc, and writing a self-signed TLS certificate. It is for tests
// only; no program or non-test package may import it.
package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond every millisecond until it holds or the timeout
// passes, and tells whether it held.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// procDir returns the /proc directory of process pid, where pid 0 is the
// calling process.
func procDir(pid int) string {
	if pid == 0 {
		return "/proc/self"
	}
	return fmt.Sprintf("/proc/%d", pid)
}

// OpenFDs returns the number of open file descriptors of process pid, or
// of the calling process if pid is 0. It returns 0 if /proc cannot tell
// (the process is gone, or the system is not Linux).
func OpenFDs(pid int) int {
	es, _ := os.ReadDir(procDir(pid) + "/fd")
	return len(es)
}

// RSSKiB returns the resident set size (VmRSS) of process pid in KiB, or
// of the calling process if pid is 0. It returns 0 if /proc cannot tell
// (the process is gone, or the system is not Linux).
func RSSKiB(pid int) int {
	b, _ := os.ReadFile(procDir(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// WriteCert writes a self-signed certificate for 127.0.0.1, valid for an
// hour either side of now, to dir/cert.pem and its ECDSA key to
// dir/key.pem, as a web configuration file of exporter-toolkit names them,
// and returns a pool that trusts the certificate. It fails t on any error.
func WriteCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tcpeek test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
