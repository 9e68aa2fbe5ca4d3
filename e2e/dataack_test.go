//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// dataAckLine is what the test reads of a JSON session line.
type dataAckLine struct {
	Sport       uint16   `json:"sport"`
	Result      string   `json:"result"`
	HandshakeMS *float64 `json:"handshake_ms"`
}

// TestLiveDataACK makes handshakes that a real Linux client completes on a
// data segment instead of a pure ACK (issue 7), and checks the live daemon
// against the client's own view and against tcpeek -r on a capture of the
// same traffic:
//
//   - rst: the ACK rides on data, then the client resets: success;
//   - tfo: Fast Open data refused by the server, resent with the ACK, then
//     a reset: success;
//   - close: the ACK rides on data, then a normal close 50 ms later:
//     success, with the handshake time of the client's connect(), not 50 ms
//     more.
//
// With the eBPF kernel filter the live daemon sees what the capture file
// holds. The classic filter drops data segments: the same test, run with
// it, sees the results go wrong, which shows that the test can fail.
func TestLiveDataACK(t *testing.T) {
	t.Parallel()
	requireLab(t)
	modes := []string{"rst", "tfo", "close"}
	const each = 3
	for _, kf := range []string{"ebpf", "classic"} {
		t.Run(kf, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			l.sysctl(l.b, "net.ipv4.tcp_fastopen=5") // data in the SYN, no cookie needed
			server := netip.AddrPortFrom(addrA4, 8080)
			p := l.start("listener in "+l.a, l.helperCmd(l.a, "listenread", server.String()), true)
			p.waitOutput(t, "ready\n", startTimeout)
			capPath := filepath.Join(t.TempDir(), "dataack.pcap")
			c := l.startCapture(capPath)
			sock := filepath.Join(shortTempDir(t), "tcpeek.sock")
			d := l.startDaemon(sock, "-o", "json", "-t", "2", "--kernel-filter="+kf)
			var st struct {
				Capture struct {
					KernelFilter string `json:"kernel_filter"`
				} `json:"capture"`
			}
			if err := json.Unmarshal(d.query("STATS"), &st); err != nil || st.Capture.KernelFilter != kf {
				t.Fatalf("kernel filter %q (%v), want %q", st.Capture.KernelFilter, err, kf)
			}

			type client struct {
				mode      string
				connectMS float64
			}
			clients := map[uint16]client{}
			for i := range each * len(modes) {
				mode := modes[i%len(modes)]
				local := netip.AddrPortFrom(addrB4, uint16(31000+i))
				p := l.start("dataack "+mode, l.helperCmd(l.b, "dataack", local.String(), server.String(), mode), false)
				if code := waitExit(t, p); code != 0 {
					t.Fatalf("client %s: exit %d: %s", mode, code, p.stderr.String())
				}
				f := strings.Fields(p.stdout.String())
				if len(f) != 3 || f[0] != outConnected {
					t.Fatalf("client %s: %q, want connected", mode, p.stdout.String())
				}
				ms, _ := strconv.ParseFloat(f[1], 64)
				clients[local.Port()] = client{mode, ms}
			}
			// Every attempt ends (the classic filter's within the 2 s
			// timeout).
			d.waitStats("every attempt ended", func(st liveStats) (bool, string) {
				rx := st.Filters[0]
				n := rx.Success.Total + rx.Failure.Total
				return n == uint64(len(clients)), fmt.Sprintf("%d of %d ended", n, len(clients))
			})
			d.stop(syscall.SIGINT)
			c.stop()
			live := dataAckLines(t, d.stdout.String())
			offline := dataAckLines(t, func() string {
				out, _ := runTcpeek(t, requireTools(t).tcpeek, "-r", capPath, "-o", "json", "-t", "2", "--local-net", addrA4.String())
				return out
			}())

			wrong := 0
			for port, cl := range clients {
				off, ok := offline[port]
				if !ok || off.Result != "success" {
					t.Errorf("tcpeek -r: %s client port %d: %+v, want success", cl.mode, port, off)
				}
				got, ok := live[port]
				if !ok {
					t.Errorf("live: no line for the %s client port %d", cl.mode, port)
					continue
				}
				bad := got.Result != "success"
				if cl.mode == "close" && got.HandshakeMS != nil && math.Abs(*got.HandshakeMS-cl.connectMS) > 20 {
					bad = true // the handshake took the client's connect(), not 50 ms more
				}
				if bad {
					wrong++
				}
				if kf == "ebpf" && bad {
					t.Errorf("live with eBPF: %s client port %d: %s in %v ms, want success in about the client's %.3f ms",
						cl.mode, port, got.Result, fmtMS(got.HandshakeMS), cl.connectMS)
				}
			}
			if kf == "classic" && wrong != len(clients) {
				t.Errorf("live with the classic filter: %d of %d attempts wrong; it drops data segments, so all should be", wrong, len(clients))
			}
		})
	}
}

func fmtMS(p *float64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

// dataAckLines returns the session lines of tcpeek -o json by client port.
func dataAckLines(t *testing.T, stdout string) map[uint16]dataAckLine {
	t.Helper()
	out := map[uint16]dataAckLine{}
	lines := jsonLines(stdout)
	for _, line := range lines[:max(0, len(lines)-1)] {
		var l dataAckLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not a session line: %v: %s", err, line)
		}
		out[l.Sport] = l
	}
	return out
}
