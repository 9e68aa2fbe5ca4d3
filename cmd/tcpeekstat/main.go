// Command tcpeekstat shows the counters of a running tcpeek, read from its
// stats socket (SPEC §8): as a table, as the JSON tcpeek sends (-j), or as
// Ganglia metrics of the changes since the previous -g (-g).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// version is tcpeekstat's version (set at build time with -X main.version).
var version = "1.0.0"

// defaultSocket is where tcpeek's stats socket lives unless -U says otherwise.
const defaultSocket = protocol.DefaultSocketPath

const usageText = `Usage: tcpeekstat [option]...
Show the counters of a running tcpeek, read from its stats socket.

Options:
  -U, --socket=PATH        tcpeek's stats socket
                           (default ` + defaultSocket + `)
  -j, --json               print the cumulative counters as tcpeek sends them:
                           one line of JSON (the GET request)
  -g, --gmetric            send the changes since the previous -g to Ganglia:
                           one gmetric call per filter and counter
                           (tcpeek_FILTER_success_total, ..._dupsyn,
                           ..._dupsynack, tcpeek_FILTER_failure_total,
                           ..._timeout, ..._reject, ..._unreach, ..._abort);
                           the REFRESH request
      --gmetric-path=PATH  the gmetric program (default: gmetric on PATH)
      --gmetric-conf=FILE  gmetric's configuration (passed as gmetric -c FILE;
                           default: gmetric's own)
  -h, --help               show this help and exit
  -v, --version            show the version and exit

Without -j or -g, tcpeekstat prints a table of every filter's counters.
Exit status: 0 if all went well, 1 if tcpeek does not answer or gmetric
fails, 2 for a mistake on the command line.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options is the parsed command line.
type options struct {
	socket      string
	json        bool
	gmetric     bool
	gmetricPath string
	gmetricConf string
	help        bool
	version     bool
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseOptions parses the command line (without the program name).
func parseOptions(args []string) (*options, error) {
	fs := pflag.NewFlagSet("tcpeekstat", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &options{}
	fs.StringVarP(&o.socket, "socket", "U", defaultSocket, "")
	fs.BoolVarP(&o.json, "json", "j", false, "")
	fs.BoolVarP(&o.gmetric, "gmetric", "g", false, "")
	fs.StringVar(&o.gmetricPath, "gmetric-path", "gmetric", "")
	fs.StringVar(&o.gmetricConf, "gmetric-conf", "", "")
	fs.BoolVarP(&o.help, "help", "h", false, "")
	fs.BoolVarP(&o.version, "version", "v", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{strings.TrimSuffix(err.Error(), "\n")}
	}
	if o.help || o.version {
		return o, nil
	}
	switch {
	case fs.NArg() > 0:
		return nil, &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case o.socket == "":
		return nil, &usageError{"--socket needs a path"}
	case o.json && o.gmetric:
		return nil, &usageError{"-j and -g cannot be used together"}
	case o.gmetricPath == "":
		return nil, &usageError{"--gmetric-path needs a path"}
	case fs.Changed("gmetric-conf") && !o.gmetric:
		return nil, &usageError{"--gmetric-conf is for -g"}
	case fs.Changed("gmetric-conf") && o.gmetricConf == "":
		return nil, &usageError{"--gmetric-conf needs a file"}
	}
	return o, nil
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
	case o.json:
		var answer []byte
		if answer, err = query(o.socket, protocol.Request{Verb: protocol.Get}); err == nil {
			_, err = stdout.Write(answer)
		}
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
