package main

import (
	"fmt"
	"net"
	"os"
)

// notifyService tells the service manager a state change ("READY=1",
// "STOPPING=1") through the datagram socket that $NOTIFY_SOCKET names, as
// systemd's Type=notify services do; without the variable it does nothing.
// A name that starts with '@' is in the abstract namespace.
func notifyService(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("telling the service manager %s: %w", state, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("telling the service manager %s: %w", state, err)
	}
	return nil
}
