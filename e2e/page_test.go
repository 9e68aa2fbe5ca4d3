//go:build linux

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tcpeek/tcpeek/internal/web/webtest"
)

// TestLivePage opens the live page of a real daemon in a headless Chromium,
// makes refused connections, and waits until the page shows them: the
// failures of the filter, and the client that fails in its list of the
// last minute (issue 9: who is failing, from a running daemon, in one page).
func TestLivePage(t *testing.T) {
	t.Parallel()
	requireLab(t)
	if _, err := os.Stat(webtest.ChromiumPath); err != nil && os.Getenv("TCPEEK_CHROMIUM") == "" {
		t.Skipf("needs Chromium at %s (Debian package chromium)", webtest.ChromiumPath)
	}
	l := newLab(t)
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "tcpeek.sock")
	d := l.startDaemon(sock, "-q", "--web.listen-address=127.0.0.1:9696", "web:RX@*:7999")

	// The page listens in namespace A; the browser runs here: a UNIX
	// socket joins them.
	bridge := filepath.Join(dir, "web.sock")
	p := l.start("unix proxy", l.helperCmd(l.a, "unixproxy", bridge, "127.0.0.1:9696"), true)
	p.waitOutput(t, "ready\n", startTimeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c, func() (net.Conn, error) { return net.Dial("unix", bridge) })
		}
	}()

	page := webtest.Open(t, "http://"+ln.Addr().String()+"/")
	const n = 15
	l.refuse(n)
	d.waitRejects(n)
	page.WaitCell("web", "failures", strconv.Itoa(n), countTimeout)
	page.WaitPeer("web", "last_minute", addrB4.String(), 7999, n, countTimeout)
	page.WaitPeer("web", "since_start", addrB4.String(), 7999, n, countTimeout)
	page.WaitJS("the attempts chart has points", webtest.ChartPoints("web", "attempts")+" > 0", countTimeout)
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page had errors: %q", errs)
	}
	if out := os.Getenv("TCPEEK_SCREENSHOT"); out != "" {
		t.Logf("screenshot: %s", page.Screenshot(out))
	}
}
