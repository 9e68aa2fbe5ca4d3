package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	long := "GET" + strings.Repeat(" ", MaxRequestLen-4) + "\n" // exactly MaxRequestLen
	get, refresh, stats := Request{Verb: Get}, Request{Verb: Refresh}, Request{Verb: Stats}
	top := func(n int) Request { return Request{Verb: Top, N: n} }
	none := Request{}
	tests := []struct {
		line string
		want Request
		ok   bool
	}{
		{"GET", get, true},
		{"GET\n", get, true},
		{"GET\r\n", get, true},
		{"GET\r", get, true},
		{"REFRESH\n", refresh, true},
		{"REFRESH\r\n", refresh, true},
		{"STATS\n", stats, true},
		{"STATS\r\n", stats, true},
		// Blanks around the name are tolerated, as the original trimmed them.
		{"GET \n", get, true},
		{" GET\n", get, true},
		{"\tSTATS \r\n", stats, true},
		{"REFRESH\r\r\n", refresh, true},
		{long, get, true},
		{"TOP", top(10), true},
		{"TOP\n", top(10), true},
		{"TOP 5\r\n", top(5), true},
		{"TOP\t5\n", top(5), true},
		{" TOP  20 \n", top(20), true},
		{"TOP 007\n", top(7), true},
		{"TOP 1000\n", top(1000), true},
		{"TOP 1001\n", top(1000), true},
		{"TOP 99999999999999999999999999\n", top(1000), true},
		// Not requests.
		{"", none, false},
		{"\n", none, false},
		{"\r\n", none, false},
		{"\r", none, false},
		{"   \n", none, false},
		{"get\n", none, false},
		{"Get\n", none, false},
		{"refresh\n", none, false},
		{"GETS\n", none, false},
		{"GE\n", none, false},
		{"G ET\n", none, false},
		{"GET STATS\n", none, false},
		{"GET 5\n", none, false},
		{"STATS 10\n", none, false},
		{"TOP 0\n", none, false},
		{"TOP 000\n", none, false},
		{"TOP -5\n", none, false},
		{"TOP +5\n", none, false},
		{"TOP 5x\n", none, false},
		{"TOP 5 6\n", none, false},
		{"TOP5\n", none, false},
		{"top 5\n", none, false},
		{"TOP 1e3\n", none, false},
		{"GET\n\n", none, false},
		{"GET\nSTATS", none, false},
		{"\nGET", none, false},
		{"GET\x00\n", none, false},
		{"\x00GET\n", none, false},
		{"GET\u00a0\n", none, false}, // no-break space is not ASCII white space
		{"ＧＥＴ\n", none, false},
		{"{\"error\":\"unknown request\"}\n", none, false},
		{"GET" + strings.Repeat(" ", MaxRequestLen-3) + "\n", none, false}, // one byte too long
	}
	for _, tt := range tests {
		got, ok := ParseRequest([]byte(tt.line))
		if got != tt.want || ok != tt.ok {
			name := tt.line
			if len(name) > 40 {
				name = name[:20] + "…" + name[len(name)-10:]
			}
			t.Errorf("ParseRequest(%q) = %v, %v; want %v, %v", name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRequestString(t *testing.T) {
	for _, tt := range []struct {
		r    Request
		want string
	}{
		{Request{Verb: Get}, "GET"},
		{Request{Verb: Refresh}, "REFRESH"},
		{Request{Verb: Stats}, "STATS"},
		{Request{Verb: Top, N: 7}, "TOP 7"},
		{Request{}, "Verb(0)"},
		{Request{Verb: 42}, "Verb(42)"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestParseRequestNoAllocs(t *testing.T) {
	for _, line := range [][]byte{[]byte(" REFRESH\r\n"), []byte("TOP 25\r\n")} {
		if n := testing.AllocsPerRun(100, func() { ParseRequest(line) }); n != 0 {
			t.Errorf("ParseRequest(%q) allocates %v times per call, want 0", line, n)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET", "GET\n", "GET\r", "GET\r\n", "GET \n", " GET\t\r\n",
		"REFRESH\n", "REFRESH\r\n", "STATS\n", "STATS\r\n",
		"TOP", "TOP\n", "TOP 5\n", "TOP\t1000\r\n", "TOP 1001\n", "TOP 0\n", "TOP -1\n",
		"TOP 5 5\n", "TOP 99999999999999999999\n", "TOP5\n", "GET 5\n",
		"get", "get\n", "Refresh\n", "", "\n", "\r", "\r\n", " ", "\x00",
		"GET\x00\n", "\x00GET\n", "GET\nGET\n", "GETGET\n",
		"ＧＥＴ\n", "GET\u00a0\n", "\xff\xfe\n", "STATS\u2028\n",
		strings.Repeat("A", MaxRequestLen+1),
		"GET" + strings.Repeat(" ", MaxRequestLen-4) + "\n",
		"GET" + strings.Repeat(" ", MaxRequestLen) + "\n",
		strings.Repeat("GET\n", 2000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		req, ok := ParseRequest(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseRequest modified its input")
		}
		if !ok {
			if req != (Request{}) {
				t.Fatalf("ParseRequest(%q) = %v, false; want the zero Request with false", line, req)
			}
			return
		}
		if len(line) > MaxRequestLen {
			t.Fatalf("ParseRequest accepted a %d-byte line (max %d)", len(line), MaxRequestLen)
		}
		body := bytes.TrimSuffix(line, []byte("\n"))
		if bytes.IndexByte(body, '\n') >= 0 {
			t.Fatalf("ParseRequest(%q) accepted a line with an LF before its end", line)
		}
		trimmed := string(bytes.Trim(body, " \t\r\v\f"))
		if req.Verb == Top {
			if req.N < 1 || req.N > MaxTopN {
				t.Fatalf("ParseRequest(%q) = %v: N out of 1..%d", line, req, MaxTopN)
			}
			if !strings.HasPrefix(trimmed, "TOP") {
				t.Fatalf("ParseRequest(%q) = %v, but the trimmed line is %q", line, req, trimmed)
			}
		} else if trimmed != req.String() {
			t.Fatalf("ParseRequest(%q) = %v, but the trimmed line is %q", line, req, trimmed)
		}
		for _, form := range []string{req.String(), req.String() + "\n", req.String() + "\r\n"} {
			if r, ok := ParseRequest([]byte(form)); !ok || r != req {
				t.Fatalf("ParseRequest(%q) = %v, %v; want %v, true", form, r, ok, req)
			}
		}
	})
}
