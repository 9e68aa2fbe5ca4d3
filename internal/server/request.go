package server

import "strconv"

// Request is one request of the stats socket protocol (SPEC §7).
type Request uint8

// The requests a client can send, each as one line.
const (
	// RequestGet asks for the cumulative counters, the original tool's
	// JSON array.
	RequestGet Request = iota + 1
	// RequestRefresh asks for the counters' differences since the previous
	// REFRESH, in the shape of GET without "pcap".
	RequestRefresh
	// RequestStats asks for everything as one object.
	RequestStats
)

// MaxRequestLen is the longest request line the server reads, its LF or
// CRLF included. A longer line is an unknown request.
const MaxRequestLen = 4096

// String returns the request as a client writes it: "GET", "REFRESH" or
// "STATS"; "Request(N)" for an invalid value.
func (r Request) String() string {
	switch r {
	case RequestGet:
		return "GET"
	case RequestRefresh:
		return "REFRESH"
	case RequestStats:
		return "STATS"
	}
	return "Request(" + strconv.Itoa(int(r)) + ")"
}

// ParseRequest parses one request line, with or without its terminating LF.
// The request names are case-sensitive. Like the original tool, which
// trimmed the line, ParseRequest tolerates ASCII blanks (space, tab, CR,
// vertical tab, form feed) around the name: "GET", "GET\r\n" and " GET \n"
// are all GET. Anything else — an empty line, another word, an LF before the
// end, a line longer than MaxRequestLen — is not a request (ok false).
func ParseRequest(line []byte) (req Request, ok bool) {
	if len(line) > MaxRequestLen {
		return 0, false
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	for len(line) > 0 && isBlank(line[0]) {
		line = line[1:]
	}
	for len(line) > 0 && isBlank(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	switch string(line) { // no allocation: the compiler compares in place
	case "GET":
		return RequestGet, true
	case "REFRESH":
		return RequestRefresh, true
	case "STATS":
		return RequestStats, true
	}
	return 0, false
}

// isBlank reports whether c is ASCII white space other than LF, which ends
// the line.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}
