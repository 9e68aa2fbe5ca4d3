// Command tcpeek watches TCP three-way handshakes, live on an interface or
// in a capture file, and counts which attempts succeed and which fail
// (rejected by RST, unreachable by ICMP, timed out, aborted), per filter.
//
// See SPEC.md and the README for the options, the output and the socket
// protocol.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	versionpkg "github.com/tcpeek/tcpeek/internal/version"
	"github.com/tcpeek/tcpeek/internal/web"
)

// version is tcpeek's version, also reported in STATS.
var version = versionpkg.String()

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
	// A reader that went away makes writes fail with EPIPE instead of
	// killing tcpeek: a live daemon keeps counting, -r | head ends
	// quietly (see pipeline.Config.SinkFailed).
	signal.Ignore(syscall.SIGPIPE)
	out := &outputs{errw: &ttyWriter{w: stderr, terminal: isTerminal(stderr)}, stdout: stdout}
	out.errOut = out.errw
	live := o.read == ""
	if live {
		// Nothing a daemon writes, diagnostics included, may wait for the
		// reader of stderr.
		out.errLossy = output.NewLossyWriter(out.errw, lossyQueue, nil)
		out.errOut = out.errLossy
	}
	log := logging.New(out.errOut, "tcpeek", o.logLevel)
	if out.errLossy != nil {
		what := "session lines" // and diagnostics, fewer
		if o.json || o.quiet {
			what = "lines of diagnostics"
		}
		out.errLossy.SetReport(func(n uint64) {
			log.Warnf("%d %s dropped: the output was not read fast enough (the counts are complete)", n, what)
		})
	}
	if o.syslog && !out.errw.terminal {
		if err := log.UseSyslog("tcpeek"); err != nil {
			log.Warnf("--syslog: %v; logging to stderr instead", err)
		}
	}
	for _, f := range set.Filters() {
		log.Debugf("filter %s: %s %s", f.Name, f.Dir, strings.Join(f.RuleStrings(), ","))
	}
	for _, f := range set.Exclusions() {
		log.Debugf("exclusion: %s %s", f.Dir, strings.Join(f.RuleStrings(), ","))
	}
	if live {
		return runLive(o, set, log, out)
	}
	return runOffline(o, set, log, stdin, out)
}

// outputs are tcpeek's standard output and error, as the program writes
// them.
type outputs struct {
	stdout   *os.File
	errw     *ttyWriter          // stderr, shared with the progress line
	errOut   io.Writer           // where stderr is written: errw, or errLossy live
	errLossy *output.LossyWriter // live: stderr never makes anyone wait
}

// monitor is what the offline and live modes share: the pipeline and the
// outputs.
type monitor struct {
	o        *options
	log      *logging.Logger
	out      *outputs
	live     bool
	stats    *stats.Stats
	pipe     *pipeline.Pipeline
	errBuf   *bufio.Writer       // session lines and summary in text mode
	errLines *lineWriter         // beneath errBuf: whole lines to the terminal
	outBuf   *bufio.Writer       // JSON Lines
	outLossy *output.LossyWriter // live JSON: beneath outBuf, so that lines never stall the capture
	writeErr error
}

// lossyQueue is how many bytes of output (about 10,000 session lines) wait
// for a reader that does not keep up before lines are dropped.
const lossyQueue = 1 << 20

// eventSink is a pipeline.Sink made of an output's two functions.
type eventSink struct {
	event        func(*classify.Event) error
	flush        func() error
	failuresOnly bool // --failures-only: no lines for successes
}

func (s eventSink) Event(ev *classify.Event) error {
	if s.failuresOnly && ev.Result == classify.Success {
		return nil
	}
	return s.event(ev)
}
func (s eventSink) Flush() error { return s.flush() }

// newMonitor sets up the pipeline of either mode; live, its counters start
// now.
func newMonitor(o *options, set *filter.Set, log *logging.Logger, out *outputs, live bool) *monitor {
	m := &monitor{o: o, log: log, out: out, live: live}
	var outDst io.Writer = out.stdout
	if live && o.json && !o.quiet {
		// Session lines are written by the capture loop: a reader that
		// stops reading must cost lines, not packets (and exact counts).
		m.outLossy = output.NewLossyWriter(out.stdout, lossyQueue, func(n uint64) {
			log.Warnf("%d session lines dropped: the output was not read fast enough (the counts are complete)", n)
		})
		outDst = m.outLossy
	}
	m.errLines = &lineWriter{w: out.errOut}
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
		Debugf:      log.Debugf,
		SinkFailed:  m.sinkFailed,
	}
	switch {
	case o.quiet:
	case o.json:
		var names []string
		for _, f := range set.Filters() {
			names = append(names, f.Name)
		}
		cfg.Sink = eventSink{output.NewJSONLines(m.outBuf, names).Event, m.outBuf.Flush, o.failuresOnly}
	default:
		cfg.Sink = eventSink{output.NewText(m.errBuf, nil).Event, m.flushErr, o.failuresOnly}
	}
	if live {
		cfg.Clock = time.Now
	}
	m.pipe = pipeline.New(cfg)
	m.stats = m.pipe.Stats()
	return m
}

// sinkFailed is called once when writing the session lines failed: live,
// tcpeek says so and keeps counting; offline, it stops reading (the reader
// of -r ... | head has all it wanted).
func (m *monitor) sinkFailed(err error) {
	if !m.live {
		m.pipe.Stop()
		return
	}
	what := "writing the session lines failed (" + err.Error() + ")"
	if errors.Is(err, syscall.EPIPE) {
		what = "the reader of the session lines went away"
	}
	m.log.Warnf("%s: no more lines are written; tcpeek keeps counting (read the counters with tcpeekstat or at /metrics)", what)
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
	// The live page at / and its API, beside /metrics.
	page := web.New(web.Config{
		Stats: func() *protocol.StatsAnswer { return m.stats.Answer(version) },
		Top:   m.stats.TopAnswer,
		Histograms: func() []web.Histogram {
			snap := m.stats.Snapshot()
			return web.HandshakeHistograms(&snap)
		},
	})
	srv, err := metrics.Listen(metrics.Config{
		Addr:          m.o.webAddr,
		WebConfigFile: m.o.webConfig,
		Registry:      metrics.NewRegistry(metrics.NewCollector(m.stats.Snapshot), version),
		Handlers:      map[string]http.Handler{"/": page},
		Logf:          m.log.Warnf,
		Infof:         m.log.Infof,
	})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	serve = func() {
		go page.Run(ctx) // the page's charts: a sample a second
		go func() {
			if err := srv.Serve(); err != nil {
				m.log.Errorf("%v", err)
			}
		}()
		m.log.Infof("serving the live page at %s/ and metrics at %s/metrics", srv.Addr(), srv.Addr())
	}
	return serve, func() { cancel(); srv.Close() }, nil
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
		Stats:    func() *protocol.StatsAnswer { return m.stats.Answer(version) },
		Top:      m.stats.TopAnswer,
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
// Live, it waits for the reader of the output no later than deadline: the
// summary is written if its reader takes it by then, and otherwise
// abandoned (a stuck reader cannot hold up the end of a daemon).
func (m *monitor) finish(name string, runErr error, deadline time.Time) int {
	m.writeErr = m.pipe.SinkErr()
	var summary []byte
	if m.o.json {
		summary = protocol.Encode(m.stats.Answer(version))
	} else {
		snap := m.stats.Snapshot()
		top := m.stats.TopAnswer(summaryTopN)
		summary = output.AppendSummary(nil, &snap, output.SummaryOptions{ICMP: m.o.icmp, Live: m.live, Top: top})
	}
	m.keep(m.flushErr())
	m.keep(m.outBuf.Flush())
	switch {
	case !m.live:
		if m.o.json {
			_, err := m.outBuf.Write(summary)
			m.keep(err)
		} else {
			_, err := m.errBuf.Write(summary)
			m.keep(err)
		}
		m.keep(m.flushErr())
		m.keep(m.outBuf.Flush())
	case m.o.json && m.outLossy != nil:
		_, err := m.outLossy.WriteAll(summary)
		m.keep(err)
	case m.o.json:
		m.keep(writeBy(m.out.stdout, summary, deadline))
	default:
		_, err := m.out.errLossy.WriteAll(summary)
		m.keep(err)
	}
	status := 0
	if m.writeErr != nil && !errors.Is(m.writeErr, syscall.EPIPE) && !errors.Is(m.writeErr, output.ErrNotRead) {
		m.log.Errorf("writing the output: %v", m.writeErr)
		status = 1
	}
	if runErr != nil {
		m.log.Errorf("%s: %v", name, runErr)
		status = 1
	}
	if m.live {
		// What is still queued, the summary included, gets until the
		// deadline; a reader that is not there by then loses it.
		if m.outLossy != nil {
			m.outLossy.Drain(deadline)
		}
		m.out.errLossy.Drain(deadline)
	}
	return status
}

// summaryTopN is how many failing peers the summary lists per filter.
const summaryTopN = 5

// keep records err as the output's error, unless there was one already.
func (m *monitor) keep(err error) {
	if err != nil && m.writeErr == nil {
		m.writeErr = err
	}
}

// writeBy writes b to f, giving up at deadline if f's reader does not take
// it; the write then goes on in the background while the process exits.
func writeBy(f *os.File, b []byte, deadline time.Time) error {
	done := make(chan error, 1)
	go func() {
		_, err := f.Write(b)
		done <- err
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return output.ErrNotRead
	}
}

// runOffline classifies the handshakes of a capture file.
func runOffline(o *options, set *filter.Set, log *logging.Logger, stdin *os.File, out *outputs) int {
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
		closeSrv func() // removes the socket (-U) before an exit at once
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
					if closeSrv != nil {
						closeSrv()
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
		m := newMonitor(o, set, log, out, false)
		return m.finish(op.name, nil, time.Time{})
	}
	if op.err != nil {
		log.Errorf("%v", op.err)
		return 1
	}
	reader, name := op.r, op.name
	log.Noticef("reading from %s, %s, link-type %s", name, reader.Format(), linkTypeNames(reader.LinkTypes()))
	log.Debugf("local networks: %s", netList(o.localNets))
	m := newMonitor(o, set, log, out, false)
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
	mu.Lock()
	closeSrv = stop
	mu.Unlock()

	stopProgress := func() {}
	if !o.quiet && out.errw.terminal {
		stopProgress = startProgress(out.errw, reader, op.size, m.stats)
	}
	runErr := m.pipe.Run(reader)
	m.pipe.Finish()
	stopProgress()
	if m.pipe.Stopped() {
		runErr = nil // the read was interrupted on purpose
	}
	return m.finish(name, runErr, time.Time{})
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
