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
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/capture"
	"github.com/tcpeek/tcpeek/internal/classify"
	"github.com/tcpeek/tcpeek/internal/filter"
	"github.com/tcpeek/tcpeek/internal/logging"
	"github.com/tcpeek/tcpeek/internal/metrics"
	"github.com/tcpeek/tcpeek/internal/output"
	"github.com/tcpeek/tcpeek/internal/pipeline"
	"github.com/tcpeek/tcpeek/internal/protocol"
	"github.com/tcpeek/tcpeek/internal/server"
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
	errw := &ttyWriter{w: stderr, terminal: isTerminal(stderr)}
	log := logging.New(errw, "tcpeek", o.logLevel)
	if o.syslog && !errw.terminal {
		if err := log.UseSyslog("tcpeek"); err != nil {
			fmt.Fprintf(stderr, "tcpeek: %v\n", err)
			return 1
		}
	}
	if o.read == "" {
		return runLive(o, set, log, stdout, errw)
	}
	return runOffline(o, set, log, stdin, stdout, errw)
}

// monitor is what the offline and live modes share: the pipeline and the
// outputs.
type monitor struct {
	o        *options
	log      *logging.Logger
	stats    *stats.Stats
	pipe     *pipeline.Pipeline
	errw     *ttyWriter          // stderr, shared with the progress line
	errBuf   *bufio.Writer       // session lines and summary in text mode
	errLines *lineWriter         // beneath errBuf: whole lines to the terminal
	outBuf   *bufio.Writer       // JSON Lines
	lossy    *output.LossyWriter // live: beneath errLines or outBuf, so that lines never stall the capture
	writeErr error
}

// lossyQueue is how many bytes of session lines (about 10,000) wait for a
// reader that does not keep up before lines are dropped.
const lossyQueue = 1 << 20

// eventSink is a pipeline.Sink made of an output's two functions.
type eventSink struct {
	event func(*classify.Event) error
	flush func() error
}

func (s eventSink) Event(ev *classify.Event) error { return s.event(ev) }
func (s eventSink) Flush() error                   { return s.flush() }

// newMonitor sets up the pipeline of either mode; live, its counters start
// now.
func newMonitor(o *options, set *filter.Set, log *logging.Logger, stdout *os.File, errw *ttyWriter, live bool) *monitor {
	m := &monitor{o: o, log: log}
	m.errw = errw
	var errDst, outDst io.Writer = errw, stdout
	if live && !o.quiet {
		// Session lines are written by the capture loop: a reader that
		// stops reading must cost lines, not packets (and exact counts).
		report := func(n uint64) {
			log.Warnf("%d session lines dropped: the output was not read fast enough (the counts are complete)", n)
		}
		if o.json {
			m.lossy = output.NewLossyWriter(stdout, lossyQueue, report)
			outDst = m.lossy
		} else {
			m.lossy = output.NewLossyWriter(errw, lossyQueue, report)
			errDst = m.lossy
		}
	}
	m.errLines = &lineWriter{w: errDst}
	m.errBuf = bufio.NewWriterSize(m.errLines, 64<<10)
	m.outBuf = bufio.NewWriterSize(outDst, 64<<10)
	cfg := pipeline.Config{
		Filters:     set,
		Local:       filter.NewLocal(nil, o.localNets),
		Timeout:     o.timeout,
		MaxSessions: o.maxSessions,
		ICMP:        o.icmp,
		Checksum:    o.checksum,
		Warnf:       log.Warnf,
	}
	switch {
	case o.quiet:
	case o.json:
		var names []string
		for _, f := range set.Filters() {
			names = append(names, f.Name)
		}
		cfg.Sink = eventSink{output.NewJSONLines(m.outBuf, names).Event, m.outBuf.Flush}
	default:
		cfg.Sink = eventSink{output.NewText(m.errBuf, nil).Event, m.flushErr}
	}
	if live {
		cfg.Clock = time.Now
	}
	m.pipe = pipeline.New(cfg)
	m.stats = m.pipe.Stats()
	return m
}

// flushErr writes out all that was buffered for stderr.
func (m *monitor) flushErr() error {
	if err := m.errBuf.Flush(); err != nil {
		return err
	}
	return m.errLines.Flush()
}

// setUp opens the Prometheus endpoint (if --web.listen-address is given)
// and the stats socket (if socket) with the privileges tcpeek started
// with, then drops them: to cred's user if not nil, else (started as
// another user than root, with capabilities) every capability. Only then
// does it start answering on both: an answer means tcpeek is set up. It
// returns the socket (nil if none) and a function that closes both. A
// start refused here leaves the file system as it was.
func (m *monitor) setUp(cred *credentials, socket bool) (*server.Server, func(), error) {
	// The listener first: it leaves nothing on disk if the socket fails.
	serveMetrics, stopMetrics, err := m.openMetrics()
	if err != nil {
		return nil, nil, err
	}
	var srv *server.Server
	if socket {
		if srv, err = m.openSocket(cred); err != nil {
			stopMetrics()
			return nil, nil, err
		}
	}
	stop := func() {
		stopMetrics()
		if srv != nil {
			if err := srv.Close(); err != nil {
				m.log.Warnf("%v", err)
			}
		}
	}
	switch {
	case cred != nil:
		if err := dropPrivileges(cred); err != nil {
			stop()
			return nil, nil, fmt.Errorf("-u %s: %w", m.o.user, err)
		}
		m.log.Infof("running as %s (uid %d, gid %d), without capabilities", m.o.user, cred.uid, cred.gid)
		// The web configuration, its certificate and key are read again
		// for every connection: now as the user.
		if err := metrics.CheckWebConfig(m.o.webConfig); err != nil {
			stop()
			return nil, nil, fmt.Errorf("%w (as %s, after dropping privileges: give that user read access)", err, m.o.user)
		}
	case os.Geteuid() != 0:
		if err := dropCapabilities(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("dropping the capabilities once set up: %w", err)
		}
	}
	serveMetrics()
	if srv != nil {
		go srv.Serve()
	}
	return srv, stop, nil
}

// openMetrics opens the Prometheus endpoint's listener when
// --web.listen-address is given, after checking --web.config.file. serve
// starts answering on it, stop closes it (see setUp).
func (m *monitor) openMetrics() (serve, stop func(), err error) {
	if m.o.webAddr == "" {
		return func() {}, func() {}, nil
	}
	srv, err := metrics.Listen(metrics.Config{
		Addr:          m.o.webAddr,
		WebConfigFile: m.o.webConfig,
		Registry:      metrics.NewRegistry(metrics.NewCollector(m.stats.Snapshot), version),
		Logf:          m.log.Warnf,
		Infof:         m.log.Infof,
	})
	if err != nil {
		return nil, nil, err
	}
	serve = func() {
		go func() {
			if err := srv.Serve(); err != nil {
				m.log.Errorf("%v", err)
			}
		}()
		m.log.Infof("serving metrics at %s/metrics", srv.Addr())
	}
	return serve, func() { srv.Close() }, nil
}

// openSocket opens the stats socket at -U, owned by cred's user if given.
// setUp starts answering on it; Close removes it.
func (m *monitor) openSocket(cred *credentials) (*server.Server, error) {
	uid, gid := -1, -1
	if cred != nil {
		uid, gid = cred.uid, cred.gid
	}
	srv, err := server.Listen(server.Config{
		Path:     m.o.socket,
		UID:      uid,
		GID:      gid,
		Snapshot: m.stats.Snapshot,
		Version:  version,
		Logf:     m.log.Warnf,
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// finish prints the summary (text) or the STATS line (JSON), flushes the
// outputs, and returns the exit status given the error that ended the run.
func (m *monitor) finish(name string, runErr error) int {
	m.writeErr = m.pipe.SinkErr()
	if m.lossy != nil {
		// The session lines first, however long the reader takes; the
		// summary then goes straight out, never dropped.
		m.flushErr()
		m.outBuf.Flush()
		if err := m.lossy.Close(); err != nil && m.writeErr == nil {
			m.writeErr = err
		}
	}
	snap := m.stats.Snapshot()
	if m.o.json {
		m.outBuf.Write(protocol.Encode(snap.Answer(version)))
	} else {
		output.WriteSummary(m.errBuf, &snap, output.SummaryOptions{ICMP: m.o.icmp})
	}
	m.flushErr()
	if err := m.outBuf.Flush(); err != nil && m.writeErr == nil {
		m.writeErr = err
	}
	status := 0
	if m.writeErr != nil && !errors.Is(m.writeErr, syscall.EPIPE) {
		m.log.Errorf("writing the output: %v", m.writeErr)
		status = 1
	}
	if runErr != nil {
		m.log.Errorf("%s: %v", name, runErr)
		status = 1
	}
	return status
}

// runOffline classifies the handshakes of a capture file.
func runOffline(o *options, set *filter.Set, log *logging.Logger, stdin, stdout *os.File, errw *ttyWriter) int {
	cred, err := lookupUser(o.user)
	if err != nil {
		log.Errorf("-u %s: %v", o.user, err)
		return 1
	}

	// SIGINT and SIGTERM end the reading, also while waiting for the
	// capture to open or for its first bytes; the summary is still
	// printed. A second signal exits at once.
	var (
		stopping atomic.Bool
		mu       sync.Mutex
		closeIn  func()
		pipe     *pipeline.Pipeline
	)
	stopNow := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				mu.Lock()
				if stopping.Swap(true) {
					log.Warnf("%v again: exiting now", s)
					if closeIn != nil {
						closeIn()
					}
					os.Exit(1)
				}
				log.Infof("%v: stopping", s)
				close(stopNow)
				if pipe != nil {
					pipe.Stop()
				}
				if closeIn != nil {
					closeIn() // unblocks a read from a pipe
				}
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()

	// Opening a named pipe waits for its writer: in a goroutine, so that a
	// signal meanwhile still ends the run.
	type opened struct {
		r     *capture.FileReader
		name  string
		size  int64
		close func()
		err   error
	}
	ch := make(chan opened, 1)
	go func() {
		in, name, size, cl, err := openInput(o.read, stdin)
		if err != nil {
			ch <- opened{err: err}
			return
		}
		mu.Lock()
		closeIn = cl
		if stopping.Load() {
			cl()
		}
		mu.Unlock()
		r, err := capture.NewFileReader(in)
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		ch <- opened{r, name, size, cl, err}
	}()
	var op opened
	select {
	case op = <-ch:
	case <-stopNow:
		op = opened{name: o.read}
	}
	if op.close != nil {
		defer op.close()
	}
	if stopping.Load() {
		// Stopped before anything was read: an empty summary.
		m := newMonitor(o, set, log, stdout, errw, false)
		return m.finish(op.name, nil)
	}
	if op.err != nil {
		log.Errorf("%v", op.err)
		return 1
	}
	reader, name := op.r, op.name
	log.Noticef("reading from %s, %s, link-type %s", name, reader.Format(), linkTypeNames(reader.LinkTypes()))
	m := newMonitor(o, set, log, stdout, errw, false)
	mu.Lock()
	pipe = m.pipe
	if stopping.Load() {
		pipe.Stop()
	}
	mu.Unlock()
	// The capture is open: parse the file as the user.
	_, stop, err := m.setUp(cred, o.socketSet && o.socket != "")
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	defer stop()

	stopProgress := func() {}
	if !o.quiet && errw.terminal {
		stopProgress = startProgress(errw, reader, op.size, m.stats)
	}
	runErr := m.pipe.Run(reader)
	m.pipe.Finish()
	stopProgress()
	if m.pipe.Stopped() {
		runErr = nil // the read was interrupted on purpose
	}
	return m.finish(name, runErr)
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
