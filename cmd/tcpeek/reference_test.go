package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// referenceDir holds real captures from public test suites (Zeek,
// pathspider), shared with the team but not part of the project.
const referenceDir = "../../../shared/testdata/pcap"

// refCounts are the counts of the one ALL filter, and the capture counters.
type refCounts struct {
	Success, SuccDupSyn, SuccDupSA          uint64
	Timeout, Reject, Unreach, Abort, FailDS uint64
	Pending, Copies, BadSum                 uint64
}

// TestReferenceCaptures reads each reference capture and checks the counts
// that SPEC.md gives for its packets. The labels beside the captures are
// Zeek's and pathspider's view; each case says where and why ours differs.
func TestReferenceCaptures(t *testing.T) {
	if _, err := os.Stat(referenceDir); err != nil {
		t.Skipf("the reference captures are not here (%v): they live in ../shared/testdata/pcap beside a team checkout, not in the project", err)
	}
	tests := []struct {
		file string
		args []string
		want refCounts
		why  string
	}{
		{"Teredo.pcap", nil, refCounts{Success: 2},
			"Zeek: 10 rows, 3 of them handshakes (1 RSTO, 1 SF over IPv4, 1 S1 over IPv6 in Teredo). The other IPv4 rows are tails of connections opened before the capture: no SYN, nothing to count. " +
				"The IPv6 connection inside Teredo runs between UDP ports 3797 and 32900 (a relay), not 3544; tcpeek decodes Teredo on port 3544 only and guesses no payloads, so it is not seen."},
		{"auth_change_session_keys.pcap", nil, refCounts{Success: 1},
			"Zeek S0 (timeout): the responder is never seen, but the initiator's ACK with seq = ISN+1 proves the handshake completed (rule 4, one-way capture)."},
		{"cisco-fabric-path.pcap", nil, refCounts{Pending: 16, Copies: 16},
			"Zeek S0 x16: each SYN appears plain and inside Cisco FabricPath; the second is a capture copy (same IP ID). The capture ends before the 60 s timeout: pending (rule 11)."},
		{"cisco-fabric-path.pcap", []string{"-t", "1"}, refCounts{Pending: 16, Copies: 16},
			"The 16 SYNs come within a second of the end of the capture: still pending with -t 1."},
		{"connect-with-header.pcap", nil, refCounts{Success: 1}, "IPv6 ::1 over BSD loopback (DLT_NULL). Zeek S1: same."},
		{"connect-with-smtp.pcap", nil, refCounts{Success: 1}, "Zeek SF: same."},
		{"ctu-64702-888.pcap", nil, refCounts{}, "Starts at the SYN/ACK, no SYN: nothing to count (rule 10)."},
		{"ctu-sme-11-win7ad-1-ldap-tcp-50041.pcap", nil, refCounts{Success: 2}, "Zeek RSTR x2: established, then reset by the responder: success."},
		{"ecn_ipv6_unreachable_ce_on_syn.pcap", nil, refCounts{Pending: 1},
			"Without --icmp the ICMPv6 error is not read: the SYN is still pending at the end."},
		{"ecn_ipv6_unreachable_ce_on_syn.pcap", []string{"--icmp"}, refCounts{Unreach: 1, FailDS: 1},
			"IPv6 SYN, 2 retransmissions, then ICMPv6 1/3 quoting it: unreach with 2 duplicate SYNs."},
		{"gap-data-missing.pcapng", nil, refCounts{Success: 1}, "pcapng with 126 interfaces. Zeek: same connection."},
		{"handshake-reorder.pcap", nil, refCounts{Success: 1},
			"The SYN/ACK is captured before its SYN and is ignored (rule 10); the ACK with seq = ISN+1 completes the session (rule 4)."},
		{"http-on-irc-port-missing-syn.pcapng", nil, refCounts{}, "Zeek SF, but no SYN in the capture: nothing to count."},
		{"http-to-ssh.pcap", nil, refCounts{Success: 1}, "Zeek RSTR: established, then reset: success."},
		{"icmp_ipv6_unreachable.pcap", []string{"--icmp"}, refCounts{Unreach: 1}, "pathspider: icmp_unreachable=True."},
		{"icmp_single_unreachable.pcap", []string{"--icmp"}, refCounts{}, "pathspider: a lone ICMP error invents no connection."},
		{"icmp_synack_unreachable.pcap", []string{"--icmp"}, refCounts{Reject: 1},
			"pathspider says unreachable, but the RST/ACK answered the SYN 7.8 s before the ICMP error: the first answer wins (rule 9: later errors change nothing)."},
		{"ipv6.pcap", nil, refCounts{Success: 6}, "Zeek SF x6: same."},
		{"irc-starttls.pcap", nil, refCounts{Success: 1}, "Linux cooked capture. Zeek SF: same."},
		{"localhost-bad-chksum.pcap", nil, refCounts{Success: 1},
			"Without -c, checksums are not checked: a normal handshake (Zeek without -C rejects the offloaded SYN)."},
		{"localhost-bad-chksum.pcap", []string{"-c", "2"}, refCounts{BadSum: 6},
			"Captured on the sending host with checksum offload: with -c 2 its outgoing packets are bad, the SYN among them, so nothing opens (why -c 2 is for traffic from other hosts)."},
		{"m57-long-49583-80.pcap", nil, refCounts{Success: 1, Copies: 2}, "Every frame is there twice (same IP ID): the SYN and SYN/ACK copies are not retransmissions."},
		{"m57-long-49600-80.pcap", nil, refCounts{Success: 1, Copies: 2}, "Same duplication as m57-long-49583-80."},
		{"miss_end_data.pcap", nil, refCounts{Success: 1}, "Zeek SF: same."},
		{"missing-syn.pcap", nil, refCounts{}, "Zeek SF (flipped), but the capture starts after the SYN: nothing to count."},
		{"mixed-vlan-mpls.pcap", nil, refCounts{Success: 3},
			"Zeek SF x2 and SH for the MPLS one (SYN, then the client's ACK, data and FIN, no SYN/ACK seen): its ACK with seq = ISN+1 makes it a one-way success (rule 4)."},
		{"modbus-and-non-modbus-p502.pcap", nil, refCounts{Success: 6, Abort: 1},
			"Zeek SF x6, RSTO (ShR: SYN, SYN/ACK, RST from the scanner) and RSTRH (no SYN). The scanner's RST before any ACK is an abort (rule 6), not an established connection."},
		{"one-sided-2745.pcap", nil, refCounts{}, "Only server-side packets, no SYN: nothing to count."},
		{"pop3-starttls.pcap", nil, refCounts{Success: 1}, "BSD loopback. Zeek SF: same."},
		{"pop3.pcap", nil, refCounts{Success: 5, SuccDupSyn: 1, Reject: 2, FailDS: 2},
			"Zeek REJ x6, SF x5: Windows retries each refused SYN twice with the same ISN after the RST; Zeek opens a row per SYN, tcpeek counts one rejected session per attempt with its retries as duplicate SYNs (rule 9)."},
		{"pppoe-over-qinq.pcap", nil, refCounts{Success: 1}, "QinQ and PPPoE. Zeek SF: same."},
		{"retransmit-fast009.pcap", nil, refCounts{Success: 1}, "21 of 39 frames cut short by the snap length: headers are enough. Zeek RSTO: success."},
		{"single-rst.pcap", nil, refCounts{}, "A lone RST: nothing to count (rule 10)."},
		{"ssh.client-side-half-duplex.pcap", nil, refCounts{Success: 20, SuccDupSyn: 1},
			"Only client packets: Zeek logs S0/SH, but each client ACK with seq = ISN+1 proves the handshake (rule 4). Port 51489 retransmitted its SYN twice."},
		{"ssh.pcap", nil, refCounts{Success: 22, SuccDupSyn: 1, SuccDupSA: 1},
			"Zeek has 23 rows; the one to port 8118 has no SYN (history DaFfA). Port 51489: 2 SYN and 2 SYN/ACK retransmissions."},
		{"ssh.server-side-half-duplex.pcap", nil, refCounts{}, "Only server packets, no SYN: nothing to count."},
		{"syn-bad.pcap", nil, refCounts{Pending: 1}, "A lone SYN with a bad TCP checksum, not checked without -c: pending at the end."},
		{"syn-bad.pcap", []string{"-c", "2"}, refCounts{BadSum: 1}, "With -c 2 the SYN is dropped (Zeek drops it too)."},
		{"syn-then-ack-then-rst.pcap", nil, refCounts{Abort: 1}, "Zeek RSTOS0: the initiator resets with seq = ISN: abort (rule 6)."},
		{"syn-then-rst.pcap", nil, refCounts{Abort: 1}, "Zeek RSTOS0: the initiator resets: abort, not reject."},
		{"syn-then-stuff-then-rst.pcap", nil, refCounts{Abort: 1},
			"Zeek OTH: SYN, a bare ACK from the responder (no SYN/ACK), a FIN without ACK, then the initiator's RST with seq = ISN: abort."},
		{"tcp-http-with-padding.pcap", nil, refCounts{Success: 1}, "Ethernet padding after the IP packet. Zeek SF: same."},
		{"tcp_ipv6_simple.pcap", nil, refCounts{Success: 1}, "pathspider: tcp_connected=True."},
		{"vlan-collisions.pcap", nil, refCounts{Success: 1, Copies: 4},
			"The same flow untagged, on VLAN 42 and on VLANs 10/20, 50 ms apart: one session; the later SYNs and SYN/ACKs are copies (same IP ID, within the 1 s memory of rule 4)."},
		{"wikipedia.pcap", nil, refCounts{Success: 8}, "Zeek S1 x8 (ShADad: handshakes complete) and OTH x2 (mid-stream)."},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		name := tc.file
		for _, a := range tc.args {
			name += " " + a
		}
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-q", "-o", "json", "-r", filepath.Join(referenceDir, tc.file)}, tc.args...)
			r := runTcpeek(t, nil, args...)
			if r.status != 0 {
				t.Fatalf("exit status %d: %s", r.status, r.stderr)
			}
			var st struct {
				Filters []struct {
					Success struct{ Total, DupSYN, DupSYNACK uint64 }
					Failure struct{ Timeout, Reject, Unreach, Abort, DupSYN uint64 }
				}
				Pending uint64
				Capture struct {
					Duplicates  uint64
					BadChecksum uint64 `json:"bad_checksum"`
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Filters) != 1 {
				t.Fatalf("STATS %q: %v", r.stdout, err)
			}
			f := st.Filters[0]
			got := refCounts{f.Success.Total, f.Success.DupSYN, f.Success.DupSYNACK,
				f.Failure.Timeout, f.Failure.Reject, f.Failure.Unreach, f.Failure.Abort, f.Failure.DupSYN,
				st.Pending, st.Capture.Duplicates, st.Capture.BadChecksum}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v\n(%s)", got, tc.want, tc.why)
			}
		})
	}
	entries, err := os.ReadDir(referenceDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("%s has no case in this test", e.Name())
		}
	}
}
