package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/server"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// topFixture is a TOP answer with every case the tables show: IPv4 and
// IPv6 peers, a count with an error bound, an empty list, a filter without
// failures, and a filter whose lists are all empty but one.
func topFixture() *protocol.TopAnswer {
	return &protocol.TopAnswer{
		Now: "2024-05-06T10:33:16.250000000Z",
		Filters: []protocol.TopFilter{
			{Name: "RX", Direction: "RX", TopLists: protocol.TopLists{
				SinceStart: []protocol.TopPeer{
					{Peer: "198.51.100.7", Port: 443, Failures: 40, Reject: 38, Unreach: 2, Last: "2024-05-06T10:33:15.100000000Z"},
					{Peer: "203.0.113.250", Port: 80, Failures: 12, Timeout: 9, Abort: 3, Error: 4, Last: "2024-05-06T09:01:02.000000000Z"},
					{Peer: "2001:db8:4006:812::200e", Port: 443, Failures: 3, Reject: 3, Last: "2024-05-06T08:00:00.000000000Z"},
				},
				LastMinute: []protocol.TopPeer{
					{Peer: "198.51.100.7", Port: 443, Failures: 38, Reject: 37, Unreach: 1, Last: "2024-05-06T10:33:15.100000000Z"},
				},
				Services: []protocol.TopService{{Port: 443, Failures: 43}, {Port: 80, Failures: 12}},
			}},
			{Name: "TX", Direction: "TX", TopLists: protocol.TopLists{
				SinceStart: []protocol.TopPeer{}, LastMinute: []protocol.TopPeer{}, Services: []protocol.TopService{},
			}},
			{Name: "db", Direction: "TX", TopLists: protocol.TopLists{
				SinceStart: []protocol.TopPeer{
					{Peer: "10.1.2.3", Port: 5432, Failures: 1, Timeout: 1, Last: "2024-05-06T07:30:00.000000000Z"},
				},
				Services: []protocol.TopService{{Port: 5432, Failures: 1}},
			}},
		},
	}
}

// topServer records the N of each TOP request and answers topFixture.
type topServer struct {
	mu sync.Mutex
	ns []int
}

func (s *topServer) top(n int) *protocol.TopAnswer {
	s.mu.Lock()
	s.ns = append(s.ns, n)
	s.mu.Unlock()
	return topFixture()
}

func (s *topServer) asked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.ns
	s.ns = nil
	return ns
}

func startTopTcpeek(t *testing.T) (*fakeTcpeek, *topServer) {
	t.Helper()
	ts := &topServer{}
	d := startTcpeekFilters(t, []stats.FilterInfo{{Name: "RX", Direction: "RX"}, {Name: "TX", Direction: "TX"}},
		func(c *server.Config) { c.Top = ts.top })
	return d, ts
}

func TestTop(t *testing.T) {
	d, ts := startTopTcpeek(t)
	table := formatTop(topFixture())
	json := string(protocol.Encode(topFixture()))
	for _, tt := range []struct {
		args []string
		n    int
		want string
	}{
		{[]string{"--top"}, 10, table},
		{[]string{"-t"}, 10, table},
		{[]string{"-t3"}, 3, table},
		{[]string{"-t=3"}, 3, table},
		{[]string{"--top=1000"}, 1000, table},
		{[]string{"--top=1", "-j"}, 1, json},
		{[]string{"-jt25"}, 25, json},
		{[]string{"-tj"}, 10, json},
		{[]string{"--json", "--top"}, 10, json},
	} {
		code, stdout, stderr := tcpeekstat(append(tt.args, "-U", d.path)...)
		if code != 0 || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", tt.args, code, stderr)
			continue
		}
		if stdout != tt.want {
			t.Errorf("%q printed\n%s\nwant\n%s", tt.args, stdout, tt.want)
		}
		if got := ts.asked(); len(got) != 1 || got[0] != tt.n {
			t.Errorf("%q asked TOP %v, want TOP %d once", tt.args, got, tt.n)
		}
	}
}

func TestTopTable(t *testing.T) {
	checkGolden(t, "top.golden", formatTop(topFixture()))

	exact := topFixture()
	exact.Filters[0].SinceStart[1].Error = 0
	if got := formatTop(exact); strings.Contains(got, "±") {
		t.Errorf("exact counts are shown with an error bound:\n%s", got)
	}
	none := &protocol.TopAnswer{Now: "2024-05-06T10:33:16Z", Filters: []protocol.TopFilter{{Name: "RX", Direction: "RX"}}}
	want := "tcpeek: the peers with the most failed attempts, at 2024-05-06 10:33:16\n\nRX (RX): no failed attempts\n"
	if got := formatTop(none); got != want {
		t.Errorf("no failures: got\n%s\nwant\n%s", got, want)
	}
}

// TestTopOlderTcpeek checks what an older tcpeek, which does not know TOP,
// is said to be.
func TestTopOlderTcpeek(t *testing.T) {
	d := startTcpeek(t)
	code, stdout, stderr := tcpeekstat("--top", "-U", d.path)
	want := "tcpeekstat: tcpeek on " + d.path + " refused TOP 10: unknown request (is it an older tcpeek?)\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, want)
	}
}
