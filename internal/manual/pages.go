package manual

// Date is the date the manual pages last changed.
const Date = "2026-12-04"

// TcpeekPage is what tcpeek(8) says besides its --help text.
var TcpeekPage = Page{
	Name:    "tcpeek",
	Section: 8,
	Date:    Date,
	Description: `tcpeek watches TCP three-way handshakes, live on network interfaces or in a capture file, and tells which connection attempts succeeded, which were rejected by an RST, answered by an ICMP destination unreachable, aborted by the client or timed out, and which needed SYN or SYN/ACK retransmissions. It counts them per named filter (direction, address or network, ports), prints one line per attempt, and serves the counters on a UNIX socket (JSON, read by tcpeekstat(1)), to Prometheus at --web.listen-address, with a live page at its root.

Live, an eBPF socket filter in the kernel lets through every packet of a handshake in progress and nothing of established connections; where eBPF cannot be loaded, a classic BPF filter that misses handshakes completed by a data segment. Interfaces and addresses are followed through netlink: an address added is local for the next packet, a renamed interface is still captured, a deleted one resumes when an interface of that name comes back.

A session is one connection attempt: one 4-tuple and one initiator sequence number. The RX filter counts the sessions the local host serves, TX those it opens. With -r and no --local-net, direction cannot be told: one filter ALL counts every session.`,
	Sections: []Section{
		{"Signals", `SIGINT and SIGTERM print the summary, remove the stats socket and exit 0; a reader of the output that does not read delays this by at most a second. SIGHUP is logged and ignored. With -r, a second SIGINT or SIGTERM exits at once with status 1.`},
		{"Environment", `NOTIFY_SOCKET: when set (systemd, Type=notify), tcpeek sends READY=1 once its socket and /metrics answer, and STOPPING=1 when it stops.`},
		{"Files", `/var/run/tcpeek/tcpeek.sock: the stats socket (-U). Its directory is created if missing (0755); the socket is mode 0660, owned by the -u user.`},
		{"Exit status", `0 at the end of the input or on SIGINT/SIGTERM; 1 for a runtime failure (no such interface, no permission, an unreadable or corrupt capture, after its summary); 2 for a mistake on the command line.`},
		{"Examples", `  tcpeek -i eth0 -q -u nobody --web.listen-address=:9696 web:RX@*:80:443
  tcpeek -i 'veth*' --failures-only
  tcpeek -r trace.pcap.gz --local-net 192.0.2.0/24 --icmp
  ssh host tcpdump -U -w - 'tcp or icmp' | tcpeek -r - --local-net 192.0.2.1`},
		{"See also", `tcpeekstat(1), tcpdump(8); the README and docs/json.md of the source tree.`},
	},
}

// TcpeekstatPage is what tcpeekstat(1) says besides its --help text.
var TcpeekstatPage = Page{
	Name:    "tcpeekstat",
	Section: 1,
	Date:    Date,
	Description: `tcpeekstat reads the counters of a running tcpeek(8) from its stats socket: as a table, as the JSON tcpeek sends, as the peers with the most failed attempts (--top), as a live view (--watch), or as Ganglia metrics of the changes since the previous -g (--gmetric).

The stats socket is mode 0660: run tcpeekstat as root or as a member of the socket's group.`,
	Sections: []Section{
		{"Examples", `  tcpeekstat --top=20
  tcpeekstat --watch
  tcpeekstat -g --gmetric-conf=/etc/ganglia/gmond.conf`},
		{"See also", `tcpeek(8), gmetric(1)`},
	},
}
