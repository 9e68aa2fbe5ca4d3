//go:build !linux

package capture

import "errors"

// Live is a live capture; it exists on Linux only.
type Live struct{}

// OpenLive fails: live capture needs Linux's AF_PACKET.
func OpenLive(cfg LiveConfig) (*Live, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET); read a capture file with -r")
}

// LinkType returns the pcap link type of the frames.
func (l *Live) LinkType() uint32 { return 0 }

// Next never returns a frame.
func (l *Live) Next(f *Frame) error { return ErrIdle }

// KernelStats returns zeros.
func (l *Live) KernelStats() (recv, drops, ifdrops uint64) { return 0, 0, 0 }

// Close does nothing.
func (l *Live) Close() error { return nil }
