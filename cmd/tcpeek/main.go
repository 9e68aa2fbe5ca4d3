// Command tcpeek watches TCP three-way handshakes, live on an interface or
// in a capture file, and counts which attempts succeed and which fail
// (rejected by RST, unreachable by ICMP, timed out, aborted), per filter.
//
// See SPEC.md and the README for the options, the output and the socket
// protocol.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/logging"
	"github.com/tcpeek/tcpeek/internal/output"
	"github.com/tcpeek/tcpeek/internal/pipeline"
	"github.com/tcpeek/tcpeek/internal/stats"
)

// version is tcpeek's version, also reported in STATS.
var version = "1.0.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status.
func run(args []string, stdin *os.File, stdout, stderr *os.File) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(stderr, "tcpeek: %v\nTry 'tcpeek --help' for more information.\n", err)
		return 2
	}
	if o.help {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if o.version {
		fmt.Fprintf(stdout, "tcpeek %s\n", version)
		return 0
	}
	haveLocal := o.read == "" || len(o.localNets) > 0
	set, err := filter.NewSet(o.exprs, haveLocal)
	if err != nil {
		fmt.Fprintf(stderr, "tcpeek: %v\nTry 'tcpeek --help' for more information.\n", err)
		return 2
	}
	log := logging.New(stderr, "tcpeek", o.logLevel)
	if o.syslog && !isTerminal(stderr) {
		if err := log.UseSyslog("tcpeek"); err != nil {
			fmt.Fprintf(stderr, "tcpeek: %v\n", err)
			return 1
		}
	}
	if o.read == "" {
		log.Errorf("live capture (-i) is not available in this build yet; read a capture file with -r FILE")
		return 1
	}
	return runOffline(o, set, log, stdin, stdout, stderr)
}

// runOffline classifies the handshakes of a capture file.
func runOffline(o *options, set *filter.Set, log *logging.Logger, stdin, stdout, stderr *os.File) int {
	in, name, size, closeIn, err := openInput(o.read, stdin)
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer closeIn()
	reader, err := capture.NewFileReader(in)
	if err != nil {
		log.Errorf("%s: %v", name, err)
		return 1
	}
	log.Noticef("reading from %s, %s, link-type %s", name, reader.Format(), linkTypeNames(reader.LinkTypes()))

	// Outputs: session lines and the summary go to stderr (text) or
	// stdout (JSON); both are buffered, since a file can end thousands of
	// sessions a second.
	errw := &ttyWriter{w: stderr}
	errBuf := bufio.NewWriterSize(errw, 64<<10)
	defer errBuf.Flush()
	outBuf := bufio.NewWriterSize(stdout, 64<<10)
	defer outBuf.Flush()

	filters := set.Filters()
	local := filter.NewLocal(nil, o.localNets)
	st := stats.New(len(filters), time.Unix(0, 0), o.maxSessions)
	var sink func(*classify.Event) error
	switch {
	case o.quiet:
	case o.json:
		sink = output.NewJSONLines(outBuf, filters).Event
	default:
		sink = output.NewText(errBuf, nil).Event
	}
	var writeErr error
	cls := classify.New(classify.Config{
		Timeout:     o.timeout,
		MaxSessions: o.maxSessions,
		ICMP:        o.icmp,
		Match: func(init, resp netip.Addr, port uint16) uint64 {
			return set.Match(init, resp, port, local)
		},
		Emit: func(ev *classify.Event) {
			st.Add(ev)
			if sink != nil && writeErr == nil {
				writeErr = sink(ev)
			}
		},
	})
	p := &pipeline.Pipeline{Classifier: cls, Stats: st}
	p.Decoder.Checksum = o.checksum

	// SIGINT and SIGTERM end the reading; the summary is still printed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sigs:
			log.Infof("%v: stopping", s)
			p.Stop()
			closeIn() // unblocks a read from a pipe
		case <-done:
		}
	}()

	if !o.quiet && isTerminal(stderr) {
		stop := startProgress(errw, reader, size, st)
		defer stop()
	}

	runErr := p.Run(reader)
	p.Finish()
	if stopped := p.Stopped(); stopped {
		runErr = nil // the read was interrupted on purpose
	}
	snap := st.Snapshot()
	if o.json {
		outBuf.Write(output.StatsJSON(version, &snap, filters))
	} else {
		output.WriteSummary(errBuf, &snap, filters, output.SummaryOptions{ICMP: o.icmp})
	}
	errBuf.Flush()
	if err := outBuf.Flush(); err != nil && writeErr == nil {
		writeErr = err
	}
	status := 0
	if writeErr != nil && !errors.Is(writeErr, syscall.EPIPE) {
		log.Errorf("writing the output: %v", writeErr)
		status = 1
	}
	if runErr != nil {
		log.Errorf("%s: %v", name, runErr)
		status = 1
	}
	return status
}

// openInput opens the file to read: a path, or standard input for "-". It
// returns its name for messages, its size if known (0 if not), and a close
// function that is safe to call more than once and from another goroutine.
func openInput(path string, stdin *os.File) (io.Reader, string, int64, func(), error) {
	if path == "-" {
		f, closeFn := pollable(stdin)
		return f, "standard input", 0, once(closeFn), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", 0, nil, fmt.Errorf("cannot read the capture: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, path, size, once(func() { f.Close() }), nil
}
