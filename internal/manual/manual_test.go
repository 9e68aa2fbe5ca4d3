package manual

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the manual pages in ../../man")

// manDir is where the manual pages are committed.
const manDir = "../../man"

// TestPagesCurrent checks that the committed manual pages are those the
// --help texts make (go test ./internal/manual -update, or make man,
// rewrites them).
func TestPagesCurrent(t *testing.T) {
	for _, p := range Pages() {
		path := filepath.Join(manDir, p.File)
		if *update {
			if err := os.WriteFile(path, p.Roff, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (make man writes it)", err)
		}
		if !bytes.Equal(got, p.Roff) {
			t.Errorf("%s is not what the --help text makes: run make man", path)
		}
	}
}

// TestPagesRender renders each page with man(1), when it is installed, and
// checks that every option of the help text is in it, and that man has
// nothing to warn about.
func TestPagesRender(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed (Debian package man-db)")
	}
	for _, tc := range []struct {
		file string
		help string
	}{{"tcpeek.8", Tcpeek}, {"tcpeekstat.1", Tcpeekstat}} {
		cmd := exec.Command("man", "--warnings", "-l", filepath.Join(manDir, tc.file))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0", "LANG=C")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("man -l %s: %v: %s", tc.file, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("man -l %s warns: %s", tc.file, stderr.String())
		}
		// Bold and underline are overstruck (c BS c, _ BS c) in a pipe.
		text := regexp.MustCompile(".\b").ReplaceAllString(string(out), "")
		text = strings.ReplaceAll(text, "\u2010", "-")
		for _, line := range strings.Split(tc.help, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.HasPrefix(f[0], "--") && !strings.HasPrefix(f[0], "-") {
				continue
			}
			opt := strings.TrimSuffix(f[0], ",")
			if f[0] != opt && len(f) > 1 { // "-i, --interface=DEV": the long name
				opt = f[1]
			}
			name, _, _ := strings.Cut(opt, "=")
			name, _, _ = strings.Cut(name, "[")
			if !strings.Contains(text, name) {
				t.Errorf("%s: no %s in the rendered page", tc.file, name)
			}
		}
	}
}

// TestRoff checks the conversion on a small help text.
func TestRoff(t *testing.T) {
	help := `Usage: demo [option]...
Do a thing.

Options:
  -a, --alpha=N          the alpha value (default 1);
                         more about it
      --beta             a flag
  -h, --help             show this help

Notes:
  .dotted line kept
Trailing words.
`
	got := string(Roff(help, Page{Name: "demo", Section: 1, Date: "2026-01-02", Description: "First.\n\n- one\n- two"}))
	want := `.TH DEMO 1 "2026-01-02" "demo" "User Commands"
.SH NAME
demo \- do a thing
.SH SYNOPSIS
.B demo
[option]...
.SH DESCRIPTION
First.
.PP
.IP \(bu 2
one
.IP \(bu 2
two
.SH OPTIONS
.TP
\fB\-a\fR, \fB\-\-alpha\fR=\fIN\fR
the alpha value (default 1); more about it
.TP
\fB\-\-beta\fR
a flag
.TP
\fB\-h\fR, \fB\-\-help\fR
show this help
.SH NOTES
.nf
\&.dotted line kept
.fi
.SH NOTES
Trailing words.
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
