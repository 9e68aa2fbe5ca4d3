package netwatch

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestConstants checks the ABI values netlink.go spells out against
// golang.org/x/sys/unix.
func TestConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		ours, sys int
	}{
		{"NLMSG_HDRLEN", nlmsgHdrLen, unix.NLMSG_HDRLEN},
		{"NLMSG_NOOP", nlmsgNoop, unix.NLMSG_NOOP},
		{"NLMSG_ERROR", nlmsgError, unix.NLMSG_ERROR},
		{"NLMSG_DONE", nlmsgDone, unix.NLMSG_DONE},
		{"NLMSG_OVERRUN", nlmsgOverrun, unix.NLMSG_OVERRUN},
		{"NLM_F_REQUEST", nlmFRequest, unix.NLM_F_REQUEST},
		{"NLM_F_MULTI", nlmFMulti, unix.NLM_F_MULTI},
		{"NLM_F_DUMP_INTR", nlmFDumpIntr, unix.NLM_F_DUMP_INTR},
		{"NLM_F_DUMP", nlmFDump, unix.NLM_F_DUMP},
		{"RTM_NEWLINK", rtmNewLink, unix.RTM_NEWLINK},
		{"RTM_DELLINK", rtmDelLink, unix.RTM_DELLINK},
		{"RTM_GETLINK", rtmGetLink, unix.RTM_GETLINK},
		{"RTM_NEWADDR", rtmNewAddr, unix.RTM_NEWADDR},
		{"RTM_DELADDR", rtmDelAddr, unix.RTM_DELADDR},
		{"RTM_GETADDR", rtmGetAddr, unix.RTM_GETADDR},
		{"sizeof(struct ifinfomsg)", ifinfomsgLen, unix.SizeofIfInfomsg},
		{"sizeof(struct ifaddrmsg)", ifaddrmsgLen, unix.SizeofIfAddrmsg},
		{"sizeof(struct rtattr)", rtattrLen, unix.SizeofRtAttr},
		{"NLA_TYPE_MASK", nlaTypeMask, ^(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) & 0xffff},
		{"IFLA_IFNAME", iflaIfname, unix.IFLA_IFNAME},
		{"IFLA_EXT_MASK", iflaExtMask, unix.IFLA_EXT_MASK},
		{"IFA_ADDRESS", ifaAddress, unix.IFA_ADDRESS},
		{"IFA_LOCAL", ifaLocal, unix.IFA_LOCAL},
		{"IFA_FLAGS", ifaFlags, unix.IFA_FLAGS},
		{"IFA_F_DADFAILED", ifaFDadfailed, unix.IFA_F_DADFAILED},
		{"AF_UNSPEC", afUnspec, unix.AF_UNSPEC},
		{"AF_INET", afInet, unix.AF_INET},
		{"AF_BRIDGE", afBridge, unix.AF_BRIDGE},
		{"AF_INET6", afInet6, unix.AF_INET6},
		{"RTMGRP_LINK", rtmgrpLink, unix.RTMGRP_LINK},
		{"RTMGRP_IPV4_IFADDR", rtmgrpIPv4Ifaddr, unix.RTMGRP_IPV4_IFADDR},
		{"RTMGRP_IPV6_IFADDR", rtmgrpIPv6Ifaddr, unix.RTMGRP_IPV6_IFADDR},
		{"IFF_UP", iffUp, unix.IFF_UP},
		{"IFF_BROADCAST", iffBroadcast, unix.IFF_BROADCAST},
		{"IFF_LOOPBACK", iffLoopback, unix.IFF_LOOPBACK},
		{"IFF_POINTOPOINT", iffPointToPt, unix.IFF_POINTOPOINT},
		{"IFF_RUNNING", iffRunning, unix.IFF_RUNNING},
		{"IFF_MULTICAST", iffMulticast, unix.IFF_MULTICAST},
		{"ARPHRD_LOOPBACK", arphrdLoopback, unix.ARPHRD_LOOPBACK},
	} {
		if c.ours != c.sys {
			t.Errorf("%s: %#x here, %#x in x/sys/unix", c.name, c.ours, c.sys)
		}
	}
}
