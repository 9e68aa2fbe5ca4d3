//go:build !linux

package netwatch

import (
	"errors"
	"time"
)

// sock exists on Linux only.
type sock struct{}

// dial fails: following interfaces needs Linux's rtnetlink.
func dial() (*sock, error) {
	return nil, errors.New("following network interfaces needs Linux (rtnetlink); read a capture file with -r")
}

func (*sock) Send([]byte) error           { return errClosed }
func (*sock) Receive([]byte) (int, error) { return 0, errClosed }
func (*sock) PortID() uint32              { return 0 }
func (*sock) SetDeadline(time.Time) error { return errClosed }
func (*sock) GrowBuffer() int             { return 0 }
func (*sock) Close() error                { return nil }
