// Package netwatch follows the network interfaces tcpeek captures on and
// the host's addresses through rtnetlink notifications, instead of polling
// them.
//
// A Selector, parsed from the values of -i, names interfaces exactly, by
// glob (path.Match syntax: 'veth*', 'cali*'), or all of them ("any"). Open
// subscribes a NETLINK_ROUTE socket to link and IPv4/IPv6 address
// notifications before it reads every link and address, so that nothing
// that changes in between is missed, and returns with the initial State:
// the selected interfaces, the names given to -i that no interface has, and
// the local addresses. Start then hands the caller a new, whole State each
// time notifications change it, with the Changes for the log.
//
// Interfaces are followed by index (SPEC §3):
//
//   - A name given to -i follows the interface that has it, through
//     renames. When that interface is deleted (or moves to another network
//     namespace), the name waits, in State.Missing, for the next interface
//     that takes it, which is then followed: a recreated bridge or VPN is
//     captured again and the caller keeps its counters. While the followed
//     interface lives under another name, a new interface with the name
//     given is not selected: one name, one interface.
//   - A glob selects an interface whose name matches it when the interface
//     appears or is renamed, and keeps it selected, through renames that
//     leave the glob too, until it is deleted: a rename changes nothing.
//     Interfaces that appear later are matched too.
//   - "any" selects every interface, present or future; the local
//     addresses are every address of the host.
//   - No -i (the zero Selector): Open picks the first interface, by index,
//     that is up, is not a loopback and has an address (SPEC §1), and
//     follows it as if it had been named.
//
// The addresses are IFA_LOCAL's when a message has it (on point-to-point
// links IFA_ADDRESS is the peer's), else IFA_ADDRESS's. Tentative IPv6
// addresses are local; an address that failed duplicate address detection
// is not. Link-local addresses are reported without zone.
//
// When notifications overrun the socket's buffer (ENOBUFS), the watcher
// grows the buffer, reads every link and address again and reports what
// differs, after a Resynced change.
package netwatch
