package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebConfigFile checks --web.config.file at the command line: without
// --web.listen-address it is a usage error (exit 2); a file that cannot be
// used is a runtime failure (exit 1), named with its problem, and nothing
// is served or left behind.
func TestWebConfigFile(t *testing.T) {
	r := runTcpeek(t, nil, "-r", examplePath, "--web.config.file", "web.yml")
	want := "tcpeek: --web.config.file needs --web.listen-address: it configures the metrics listener\nTry 'tcpeek --help' for more information.\n"
	if r.status != 2 || r.stderr != want {
		t.Errorf("--web.config.file alone: status %d, stderr %q; want 2 and %q", r.status, r.stderr, want)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "tcpeek.sock")
	for _, tt := range []struct{ file, want string }{
		{filepath.Join(dir, "none.yml"), "no such file or directory"},
		{bad, "missing.pem"},
	} {
		r := runTcpeek(t, nil, "-r", examplePath, "-q", "-U", sock, "--web.listen-address", "127.0.0.1:0", "--web.config.file", tt.file)
		if r.status != 1 || !strings.Contains(r.stderr, "--web.config.file "+tt.file) || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("--web.config.file %s: status %d, stderr %q; want 1, the file and %q", tt.file, r.status, r.stderr, tt.want)
		}
		if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
			t.Errorf("a refused start left %s: %v", filepath.Dir(sock), err)
		}
	}
}
