// Package servertest attacks a stats socket the ways SPEC §7 says must not
// starve a well-behaved client. The tests of package server and the
// end-to-end tests use it, from a process of their own.
package servertest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Modes are the attacks, by name.
var Modes = []string{"idle", "reconnect", "flood", "noread"}

// Attack attacks the stats socket at path in each of modes at once, as
// fast as it can, until stop is closed; wait waits until the attackers
// have stopped and closed their connections. held is how many clients the
// server holds at once: the reconnect attack keeps 64 more than that
// connected.
//
//   - idle: 1000 connections that send nothing, held; a new burst of 1000
//     every second replaces them.
//   - reconnect: held+64 clients that send nothing and connect again as
//     soon as they are dropped, so that every newcomer drops one.
//   - flood: 4 clients that send megabytes without a newline, and connect
//     again when cut off.
//   - noread: 64 clients that ask STATS and never read the answer: each
//     holds its connection for 50 ms and asks again on a new one.
func Attack(path string, modes []string, held int, stop <-chan struct{}) (wait func(), err error) {
	var wg sync.WaitGroup
	for _, m := range modes {
		switch m {
		case "idle":
			wg.Add(1)
			go func() {
				defer wg.Done()
				var conns []net.Conn
				defer func() { closeAll(conns) }()
				for {
					closeAll(conns)
					conns = conns[:0]
					for range 1000 {
						if c, err := net.Dial("unix", path); err == nil {
							conns = append(conns, c)
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
				}
			}()
		case "reconnect":
			for range held + 64 {
				loop(stop, &wg, func() {
					c, err := net.Dial("unix", path)
					if err != nil {
						return
					}
					defer c.Close()
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					c.Read(make([]byte, 1))
				})
			}
		case "flood":
			junk := []byte(strings.Repeat("A", 1<<20))
			for range 4 {
				loop(stop, &wg, func() {
					c, err := net.Dial("unix", path)
					if err != nil {
						return
					}
					defer c.Close()
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					for range 8 {
						if _, err := c.Write(junk); err != nil {
							return
						}
					}
				})
			}
		case "noread":
			for range 64 {
				loop(stop, &wg, func() {
					c, err := net.Dial("unix", path)
					if err != nil {
						return
					}
					defer c.Close()
					io.WriteString(c, "STATS\n")
					select {
					case <-stop:
					case <-time.After(50 * time.Millisecond):
					}
				})
			}
		default:
			return nil, fmt.Errorf("no attack %q (want %s)", m, strings.Join(Modes, ", "))
		}
	}
	return wg.Wait, nil
}

// loop runs f again and again in a goroutine until stop is closed.
func loop(stop <-chan struct{}, wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f()
		}
	}()
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
