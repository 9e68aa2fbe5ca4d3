// Package manual holds what tcpeek and tcpeekstat print for --help, and
// makes their manual pages from the same text (see Roff), so that the two
// never say different things.
package manual

import "github.com/tcpeek/tcpeek/internal/protocol"

// Tcpeek is tcpeek's --help.
const Tcpeek = `Usage: tcpeek [option]... [expression]...
Watch TCP three-way handshakes and count which succeed, and which fail and how.

Options:
  -i, --interface=DEV    live capture on DEV; repeatable; 'any' = every
                         interface; a glob ('veth*') = every matching
                         interface, present or future (default: the first
                         up, non-loopback interface with an address)
  -r, --read=FILE        read a pcap or pcapng file (gzip-compressed too);
                         '-' reads standard input
  -u, --user=USER|UID    drop privileges to this user once the capture is open
  -U, --socket=PATH      stats socket (default ` + protocol.DefaultSocketPath + `;
                         '' disables it; with -r, only when given)
  -c, --checksum=0|1|2   0 = verify nothing, 1 = IPv4 headers,
                         2 = IPv4 headers and TCP/ICMP checksums (default 0).
                         Use 2 for traffic from other hosts only: a capture
                         file taken on a sending host with checksum offload
                         holds outgoing packets with wrong checksums
  -t, --timeout=SEC      handshake timeout in seconds, >= 1 (default 60)
  -B, --buffer=MB        capture ring size in MiB (default 2)
  -l, --loglevel=LEVEL   emerg, alert, crit, err, warning, notice, info or
                         debug (LOG_ prefix and 0-7 accepted; default notice)
      --syslog           log to syslog when stderr is not a terminal
  -q, --quiet            no real-time session lines
      --failures-only    session lines (text or JSON) for failed attempts only
      --promisc          promiscuous mode
      --icmp             count ICMP/ICMPv6 destination unreachable as failures
      --local-net=CIDR   add to the local addresses (repeatable; needed for
                         RX and TX with -r)
  -o, --output=FORMAT    text: the original layout on stderr; json: JSON
                         Lines on stdout, the summary as the last line
      --web.listen-address=ADDR  serve Prometheus metrics at ADDR/metrics
      --web.config.file=FILE  TLS and basic authentication for the metrics
                         listener, in exporter-toolkit's format
      --max-sessions=N   bound on sessions in progress (default 1048576)
      --kernel-filter=auto|ebpf|classic  the live kernel filter: ebpf lets
                         through every segment of a handshake in progress and
                         nothing of established connections; classic (where
                         eBPF cannot be loaded) misses handshakes completed
                         by a data segment; auto: ebpf, else classic (default)
  -h, --help             show this help and exit
  -v, --version          show the version and exit

Expressions:
  [NAME]:DIR@ADDR:PORT[:PORT...][,ADDR:PORT...]
  DIR is RX (the local host serves), TX (it connects) or ANY. ADDR is *, %,
  an IPv4 address or network, or an IPv6 one in brackets. PORT is *, %, N or
  N-M: the server's port. Without NAME, an expression excludes what it
  matches from every filter.
    tcpeek -i eth0 web:RX@*:80:443 db:TX@10.0.0.0/8:5432 :RX@*:22
    tcpeek -r trace.pcap.gz --local-net 192.0.2.0/24 'web6:RX@[2001:db8::/32]:443'
Without expressions, tcpeek counts in the filters RX and TX (with -r and no
--local-net, in one filter ALL:ANY@*:*).
`

// Tcpeekstat is tcpeekstat's --help.
const Tcpeekstat = `Usage: tcpeekstat [option]...
Show the counters of a running tcpeek, read from its stats socket.

Options:
  -U, --socket=PATH        tcpeek's stats socket
                           (default ` + protocol.DefaultSocketPath + `)
  -j, --json               print the answer as tcpeek sends it, one line of
                           JSON: the cumulative counters (the GET request),
                           or with --top the TOP answer
  -t, --top[=N]            per filter, the N peers with the most failed
                           attempts since the start and in the last minute,
                           and the failing services (N from 1 to 1000,
                           default 10; write -t20 or --top=20)
  -w, --watch              a live view, redrawn every interval: per filter
                           the attempts, successes and failures by cause per
                           second and the failure % over the interval, the
                           handshake p50 and p99 since the start, and the top
                           failing peers of the last minute; q or Ctrl+C
                           quits. When the output is not a terminal: one
                           table per interval
      --interval=DURATION  --watch's interval: seconds (2, 0.5) or a
                           duration (500ms, 1m); from 0.1s to 1h (default 1s)
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

Without -j, -t, -w or -g, tcpeekstat prints a table of every filter's
counters. Times are local.
Exit status: 0 if all went well (also when --watch ends by q, Ctrl+C,
SIGTERM or a closed output), 1 if tcpeek does not answer (--watch: at its
start; later it asks again every interval) or gmetric fails, 2 for a
mistake on the command line.
`
