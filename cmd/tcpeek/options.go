package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tcpeek/tcpeek/internal/decode"
	"github.com/tcpeek/tcpeek/internal/kfilter"
	"github.com/tcpeek/tcpeek/internal/logging"
	"github.com/tcpeek/tcpeek/internal/manual"
	"github.com/tcpeek/tcpeek/internal/netwatch"
	"github.com/tcpeek/tcpeek/internal/protocol"
)

// defaultSocket is where the stats socket lives unless -U says otherwise.
const defaultSocket = protocol.DefaultSocketPath

// options is the parsed command line.
type options struct {
	ifaces           []string          // -i, in order: names, globs or any
	sel              netwatch.Selector // the interfaces -i selects
	kernelFilter     kfilter.Kind
	kernelFilterName string
	read             string
	user             string
	socket           string
	socketSet        bool // -U was given
	checksum         decode.Checksum
	timeout          time.Duration
	bufferMB         int
	logLevel         logging.Level
	quiet            bool
	promisc          bool
	icmp             bool
	localNets        []netip.Prefix
	json             bool
	webAddr          string
	webConfig        string
	maxSessions      int
	syslog           bool
	failuresOnly     bool
	help             bool
	version          bool
	exprs            []string
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// usageText is --help: see internal/manual, which makes the manual page
// of the same text.
const usageText = manual.Tcpeek

// parseOptions parses the command line (without the program name).
func parseOptions(args []string) (*options, error) {
	fs := pflag.NewFlagSet("tcpeek", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	o := &options{}
	var (
		checksum     = fs.StringP("checksum", "c", "0", "")
		timeout      = fs.StringP("timeout", "t", "60", "")
		buffer       = fs.StringP("buffer", "B", "2", "")
		loglevel     = fs.StringP("loglevel", "l", "notice", "")
		output       = fs.StringP("output", "o", "text", "")
		maxSessions  = fs.String("max-sessions", "1048576", "")
		localNets    = fs.StringArray("local-net", nil, "")
		reads        = fs.StringArrayP("read", "r", nil, "")
		kernelFilter = fs.String("kernel-filter", kfilter.NameAuto, "")
	)
	fs.StringArrayVarP(&o.ifaces, "interface", "i", nil, "")
	fs.StringVarP(&o.user, "user", "u", "", "")
	fs.StringVarP(&o.socket, "socket", "U", defaultSocket, "")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "")
	fs.BoolVar(&o.promisc, "promisc", false, "")
	fs.BoolVar(&o.icmp, "icmp", false, "")
	fs.StringVar(&o.webAddr, "web.listen-address", "", "")
	fs.StringVar(&o.webConfig, "web.config.file", "", "")
	fs.BoolVar(&o.syslog, "syslog", false, "")
	fs.BoolVar(&o.failuresOnly, "failures-only", false, "")
	fs.BoolVarP(&o.help, "help", "h", false, "")
	fs.BoolVarP(&o.version, "version", "v", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, &usageError{strings.TrimSuffix(err.Error(), "\n")}
	}
	if o.help || o.version {
		return o, nil
	}
	o.exprs = fs.Args()
	o.socketSet = fs.Changed("socket")
	if fs.Changed("interface") && fs.Changed("read") {
		return nil, usagef("-i and -r cannot be used together: capture live or read a file")
	}
	switch len(*reads) {
	case 0:
	case 1:
		o.read = (*reads)[0]
		if o.read == "" {
			return nil, usagef("-r needs a file name ('-' for standard input)")
		}
	default:
		return nil, usagef("-r given %d times (%q, %q...): tcpeek reads one capture; merge them first (mergecap -w all.pcapng a.pcap b.pcap)", len(*reads), (*reads)[0], (*reads)[1])
	}
	for _, i := range o.ifaces {
		if i == "" {
			return nil, usagef("-i needs an interface name")
		}
	}
	sel, err := netwatch.ParseSelector(o.ifaces)
	if err != nil {
		return nil, usagef("-i: %v", err)
	}
	o.sel = sel
	if o.kernelFilter, err = kfilter.ParseKind(*kernelFilter); err != nil {
		return nil, usagef("--kernel-filter: %v", err)
	}
	o.kernelFilterName = *kernelFilter
	if o.webConfig != "" && o.webAddr == "" {
		return nil, usagef("--web.config.file needs --web.listen-address: it configures the metrics listener")
	}
	switch *checksum {
	case "0", "1", "2":
		o.checksum = decode.Checksum((*checksum)[0] - '0')
	default:
		return nil, usagef("--checksum: %q is not 0, 1 or 2", *checksum)
	}
	sec, err := positiveInt("--timeout", *timeout, "a whole number of seconds", 1, 1<<31)
	if err != nil {
		return nil, err
	}
	o.timeout = time.Duration(sec) * time.Second
	if o.bufferMB, err = positiveInt("--buffer", *buffer, "a size in MiB", 1, 1<<16); err != nil {
		return nil, err
	}
	if o.maxSessions, err = positiveInt("--max-sessions", *maxSessions, "a number of sessions", 1, 1<<28); err != nil {
		return nil, err
	}
	if o.logLevel, err = logging.ParseLevel(*loglevel); err != nil {
		return nil, usagef("--loglevel: %v", err)
	}
	switch strings.ToLower(*output) {
	case "text":
	case "json":
		o.json = true
	default:
		return nil, usagef("--output: %q is not text or json", *output)
	}
	for _, s := range *localNets {
		for _, part := range strings.Split(s, ",") {
			p, err := parseNet(part)
			if err != nil {
				return nil, usagef("--local-net: %v", err)
			}
			o.localNets = append(o.localNets, p)
		}
	}
	return o, nil
}

// positiveInt parses a decimal option value in [lo, hi].
func positiveInt(name, s, what string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, usagef("%s: %q is too large (at most %d)", name, s, hi)
		}
		return 0, usagef("%s: %q is not %s", name, s, what)
	}
	if n < lo {
		return 0, usagef("%s: %d is too small (at least %d)", name, n, lo)
	}
	if n > hi {
		return 0, usagef("%s: %d is too large (at most %d)", name, n, hi)
	}
	return n, nil
}

// parseNet parses a CIDR or a single address (a host network).
func parseNet(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or network like 192.0.2.0/24 or 2001:db8::/32", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network like 192.0.2.0/24 or 2001:db8::/32", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
