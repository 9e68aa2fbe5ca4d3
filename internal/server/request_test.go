package server

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	long := "GET" + strings.Repeat(" ", MaxRequestLen-4) + "\n" // exactly MaxRequestLen
	tests := []struct {
		line string
		want Request
		ok   bool
	}{
		{"GET", RequestGet, true},
		{"GET\n", RequestGet, true},
		{"GET\r\n", RequestGet, true},
		{"GET\r", RequestGet, true},
		{"REFRESH\n", RequestRefresh, true},
		{"REFRESH\r\n", RequestRefresh, true},
		{"STATS\n", RequestStats, true},
		{"STATS\r\n", RequestStats, true},
		// Blanks around the name are tolerated, as the original trimmed them.
		{"GET \n", RequestGet, true},
		{" GET\n", RequestGet, true},
		{"\tSTATS \r\n", RequestStats, true},
		{"REFRESH\r\r\n", RequestRefresh, true},
		{long, RequestGet, true},
		// Not requests.
		{"", 0, false},
		{"\n", 0, false},
		{"\r\n", 0, false},
		{"\r", 0, false},
		{"   \n", 0, false},
		{"get\n", 0, false},
		{"Get\n", 0, false},
		{"refresh\n", 0, false},
		{"GETS\n", 0, false},
		{"GE\n", 0, false},
		{"G ET\n", 0, false},
		{"GET STATS\n", 0, false},
		{"GET\n\n", 0, false},
		{"GET\nSTATS", 0, false},
		{"\nGET", 0, false},
		{"GET\x00\n", 0, false},
		{"\x00GET\n", 0, false},
		{"GET\u00a0\n", 0, false}, // no-break space is not ASCII white space
		{"ＧＥＴ\n", 0, false},
		{"{\"error\":\"unknown request\"}\n", 0, false},
		{"GET" + strings.Repeat(" ", MaxRequestLen-3) + "\n", 0, false}, // one byte too long
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
		{RequestGet, "GET"},
		{RequestRefresh, "REFRESH"},
		{RequestStats, "STATS"},
		{0, "Request(0)"},
		{42, "Request(42)"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("Request(%d).String() = %q, want %q", uint8(tt.r), got, tt.want)
		}
	}
}

func TestParseRequestNoAllocs(t *testing.T) {
	line := []byte(" REFRESH\r\n")
	if n := testing.AllocsPerRun(100, func() { ParseRequest(line) }); n != 0 {
		t.Errorf("ParseRequest allocates %v times per call, want 0", n)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET", "GET\n", "GET\r", "GET\r\n", "GET \n", " GET\t\r\n",
		"REFRESH\n", "REFRESH\r\n", "STATS\n", "STATS\r\n",
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
			if req != 0 {
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
		if got := string(bytes.Trim(body, " \t\r\v\f")); got != req.String() {
			t.Fatalf("ParseRequest(%q) = %v, but the trimmed line is %q", line, req, got)
		}
		for _, form := range []string{req.String(), req.String() + "\n", req.String() + "\r\n"} {
			if r, ok := ParseRequest([]byte(form)); !ok || r != req {
				t.Fatalf("ParseRequest(%q) = %v, %v; want %v, true", form, r, ok, req)
			}
		}
	})
}
