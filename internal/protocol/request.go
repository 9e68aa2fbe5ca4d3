package protocol

import "strconv"

// Verb names a request of the stats socket protocol (SPEC §7).
type Verb uint8

// The requests a client can send, each as one line.
const (
	// Get asks for the cumulative counters, the original tool's JSON
	// array.
	Get Verb = iota + 1
	// Refresh asks for the counters' differences since the previous
	// REFRESH, in the shape of GET without "pcap".
	Refresh
	// Stats asks for everything as one object.
	Stats
	// Top asks for the peers with the most failed attempts, per filter.
	Top
)

// Request is one parsed request line.
type Request struct {
	Verb Verb
	// N is how many peers and services TOP lists per filter and window
	// (DefaultTopN when the line gives none, at most MaxTopN); 0 for the
	// other verbs.
	N int
}

const (
	// MaxRequestLen is the longest request line the server reads, its LF
	// or CRLF included. A longer line is an unknown request.
	MaxRequestLen = 4096
	// DefaultTopN is how many entries TOP lists when the line gives no
	// number, and how many the top key of STATS holds.
	DefaultTopN = 10
	// MaxTopN is the most entries TOP lists; a larger N is answered with
	// this many.
	MaxTopN = 1000
)

var verbNames = [...]string{"", "GET", "REFRESH", "STATS", "TOP"}

// String returns the verb as a client writes it: "GET", "REFRESH", "STATS"
// or "TOP"; "Verb(N)" for an invalid value.
func (v Verb) String() string {
	if v >= Get && v <= Top {
		return verbNames[v]
	}
	return "Verb(" + strconv.Itoa(int(v)) + ")"
}

// String returns the request as a client would write it: the verb, and
// for TOP the number ("TOP 10").
func (r Request) String() string {
	if r.Verb == Top {
		return "TOP " + strconv.Itoa(r.N)
	}
	return r.Verb.String()
}

// ParseRequest parses one request line, with or without its terminating LF.
// The verbs are case-sensitive. Like the original tool, which trimmed the
// line, ParseRequest tolerates ASCII blanks (space, tab, CR, vertical tab,
// form feed) around the verb, and between TOP and its number: "GET",
// "GET\r\n", " GET \n" are all GET; "TOP", "TOP 5" and "TOP\t5\r\n" are TOP.
// TOP's number is a positive decimal integer; one above MaxTopN asks for
// MaxTopN. Anything else — an empty line, another word, a number after
// another verb, TOP 0, an LF before the end, a line longer than
// MaxRequestLen — is not a request (ok false, and the zero Request).
// ParseRequest does not allocate.
func ParseRequest(line []byte) (req Request, ok bool) {
	if len(line) > MaxRequestLen {
		return Request{}, false
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	line = trimBlanks(line)
	word, rest := line, []byte(nil)
	for i, c := range line {
		if isBlank(c) {
			word, rest = line[:i], trimBlanks(line[i:])
			break
		}
	}
	switch string(word) { // no allocation: the compiler compares in place
	case "GET":
		req.Verb = Get
	case "REFRESH":
		req.Verb = Refresh
	case "STATS":
		req.Verb = Stats
	case "TOP":
		req.Verb, req.N = Top, DefaultTopN
		if len(rest) > 0 {
			n, ok := parseCount(rest)
			if !ok {
				return Request{}, false
			}
			req.N = n
		}
		return req, true
	default:
		return Request{}, false
	}
	if len(rest) > 0 {
		return Request{}, false
	}
	return req, true
}

// parseCount parses TOP's number: decimal digits only, at least 1, capped at
// MaxTopN however many digits follow.
func parseCount(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), MaxTopN+1)
	}
	if n == 0 {
		return 0, false
	}
	return min(n, MaxTopN), true
}

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// isBlank reports whether c is ASCII white space other than LF, which ends
// the line.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}
