package capture

import (
	"errors"
	"time"
)

// LiveConfig says what and how to capture live.
type LiveConfig struct {
	// Interface is the name of the network interface.
	Interface string
	// BufferMB is the size of the ring shared with the kernel, in MiB.
	BufferMB int
	// Promisc puts the interface in promiscuous mode while capturing.
	Promisc bool
	// PollTimeout is how long Next waits for a frame before it returns
	// ErrIdle (default 200 ms).
	PollTimeout time.Duration
	// NoFilter attaches no kernel filter: every frame reaches user space.
	NoFilter bool
}

// ErrIdle is returned by a live capture's Next when no frame arrived within
// the poll timeout, so that the caller can let time pass on a quiet link.
var ErrIdle = errors.New("capture: no frame within the poll timeout")
