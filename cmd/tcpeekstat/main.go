// Command tcpeekstat shows the counters of a running tcpeek, read from its
// stats socket (SPEC §8): as a table, as the JSON tcpeek sends (-j), as
// tables of the peers that fail most (--top), as a live view (--watch), or
// as Ganglia metrics of the changes since the previous -g (-g).
package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tcpeek/tcpeek/internal/manual"
	"github.com/tcpeek/tcpeek/internal/protocol"
	versionpkg "github.com/tcpeek/tcpeek/internal/version"
)

// version is tcpeekstat's version.
var version = versionpkg.String()

// defaultSocket is where tcpeek's stats socket lives unless -U says otherwise.
const defaultSocket = protocol.DefaultSocketPath

// usageText is --help: see internal/manual, which makes the manual page
// of the same text.
const usageText = manual.Tcpeekstat

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options is the parsed command line.
type options struct {
	socket      string
	json        bool
	top         int // N of --top; 0 without --top
	watch       bool
	interval    time.Duration
	gmetric     bool
	gmetricPath string
	gmetricConf string
	help        bool
	version     bool
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Bounds of --interval.
const (
	minInterval = 100 * time.Millisecond
	maxInterval = time.Hour
)

// parseOptions parses the command line (without the program name).
func parseOptions(args []string) (*options, error) {
	fs := pflag.NewFlagSet("tcpeekstat", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &options{}
	var top, interval string
	fs.StringVarP(&o.socket, "socket", "U", defaultSocket, "")
	fs.BoolVarP(&o.json, "json", "j", false, "")
	fs.StringVarP(&top, "top", "t", "", "")
	fs.Lookup("top").NoOptDefVal = strconv.Itoa(protocol.DefaultTopN)
	fs.BoolVarP(&o.watch, "watch", "w", false, "")
	fs.StringVar(&interval, "interval", "1s", "")
	fs.BoolVarP(&o.gmetric, "gmetric", "g", false, "")
	fs.StringVar(&o.gmetricPath, "gmetric-path", "gmetric", "")
	fs.StringVar(&o.gmetricConf, "gmetric-conf", "", "")
	fs.BoolVarP(&o.help, "help", "h", false, "")
	fs.BoolVarP(&o.version, "version", "v", false, "")
	if err := fs.Parse(attachOptional(fs, args, 't')); err != nil {
		return nil, &usageError{strings.TrimSuffix(err.Error(), "\n")}
	}
	if o.help || o.version {
		return o, nil
	}
	if fs.Changed("top") {
		n, err := strconv.Atoi(top)
		if err != nil || n < 1 || n > protocol.MaxTopN {
			return nil, &usageError{fmt.Sprintf("--top: N is a number from 1 to %d, not %q", protocol.MaxTopN, top)}
		}
		o.top = n
	}
	d, err := parseInterval(interval)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	o.interval = d
	modes := 0
	for _, on := range []bool{o.top > 0, o.watch, o.gmetric} {
		if on {
			modes++
		}
	}
	switch {
	case fs.NArg() > 0 && o.top > 0 && isDigits(fs.Arg(0)):
		return nil, &usageError{fmt.Sprintf("unexpected argument %q (write --top=%[1]s or -t%[1]s)", fs.Arg(0))}
	case fs.NArg() > 0:
		return nil, &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case o.socket == "":
		return nil, &usageError{"--socket needs a path"}
	case modes > 1:
		return nil, &usageError{"use one of -t, -w and -g at a time"}
	case o.json && o.gmetric:
		return nil, &usageError{"-j and -g cannot be used together"}
	case o.json && o.watch:
		return nil, &usageError{"-j and -w cannot be used together"}
	case o.gmetricPath == "":
		return nil, &usageError{"--gmetric-path needs a path"}
	case fs.Changed("interval") && !o.watch:
		return nil, &usageError{"--interval is for --watch"}
	case fs.Changed("gmetric-conf") && !o.gmetric:
		return nil, &usageError{"--gmetric-conf is for -g"}
	case fs.Changed("gmetric-conf") && o.gmetricConf == "":
		return nil, &usageError{"--gmetric-conf needs a file"}
	}
	return o, nil
}

// attachOptional returns args with the value of the short option c, whose
// value is optional, attached as pflag understands it: "-t20" (and
// "-jt20") become "-t=20", as getopt reads an optional argument. pflag
// would take the digits for more options. The arguments of options that
// take a value are left alone ("-U -t20" names a socket "-t20").
func attachOptional(fs *pflag.FlagSet, args []string, c byte) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "--":
			return out
		case strings.HasPrefix(a, "--"):
			if f := fs.Lookup(a[2:]); f != nil && f.NoOptDefVal == "" {
				i++ // its value is the next argument
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				f := fs.ShorthandLookup(a[j : j+1])
				if f == nil || a[j] == '=' {
					break // pflag reports it
				}
				if a[j] == c {
					if rest := a[j+1:]; isDigits(rest) {
						out[i] = a[:j+1] + "=" + rest
					}
					break
				}
				if f.NoOptDefVal == "" { // takes a value: the rest, or the next argument
					if j == len(a)-1 {
						i++
					}
					break
				}
			}
		}
	}
	return out
}

// isDigits reports whether s is one or more decimal digits.
func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// parseInterval parses --interval: a number of seconds or a Go duration.
func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0, fmt.Errorf("--interval: %q is neither seconds (2, 0.5) nor a duration (500ms, 1m)", s)
		}
		d = time.Duration(secs * float64(time.Second))
		if secs > maxInterval.Seconds() {
			d = maxInterval + 1
		}
	}
	if d < minInterval || d > maxInterval {
		return 0, fmt.Errorf("--interval: %q is not between %v and %v", s, minInterval, maxInterval)
	}
	return d, nil
}

// run is the whole program; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(stderr, "tcpeekstat: %v\nTry 'tcpeekstat --help' for more information.\n", err)
		return 2
	}
	switch {
	case o.help:
		fmt.Fprint(stdout, usageText)
		return 0
	case o.version:
		fmt.Fprintf(stdout, "tcpeekstat %s\n", version)
		return 0
	case o.gmetric:
		err = sendGmetric(o.socket, o.gmetricPath, o.gmetricConf, stdout, stderr)
	case o.watch:
		err = runWatch(o.socket, o.interval, stdout)
	case o.top > 0 && o.json:
		err = printJSON(o.socket, protocol.Request{Verb: protocol.Top, N: o.top}, stdout)
	case o.top > 0:
		err = printTop(o.socket, o.top, stdout)
	case o.json:
		err = printJSON(o.socket, protocol.Request{Verb: protocol.Get}, stdout)
	default:
		err = printTable(o.socket, stdout)
	}
	if err != nil {
		var reported *gmetricErrors
		if !errors.As(err, &reported) { // each failure is reported already
			fmt.Fprintf(stderr, "tcpeekstat: %v\n", err)
		}
		return 1
	}
	return 0
}

// printJSON sends req to tcpeek on path and prints the answer as received.
func printJSON(path string, req protocol.Request, w io.Writer) error {
	answer, err := query(path, req)
	if err != nil {
		return err
	}
	_, err = w.Write(answer)
	return err
}
