//go:build !linux

package capture

import "errors"

// live is the Live of systems without AF_PACKET: it cannot be opened.
type live struct{}

func (l *live) open(LiveConfig) error {
	return errors.New("live capture needs Linux (AF_PACKET); read a capture file with -r")
}

func (l *live) next(*Frame) error         { return ErrIdle }
func (l *live) buffered() bool            { return false }
func (l *live) setInterfaces([]int) error { return nil }
func (l *live) interfaces() []int         { return nil }
func (l *live) stats() Stats              { return Stats{} }
func (l *live) filterName() string        { return "none" }
func (l *live) close() error              { return nil }
