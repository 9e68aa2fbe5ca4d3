//go:build !linux

package main

import "os"

// terminal is the terminal --watch draws on. Outside Linux, tcpeekstat
// does not drive terminals: --watch prints one table per interval.
type terminal struct{}

// openTerminal returns nil: no terminal handling outside Linux.
func openTerminal(stdin, stdout *os.File) *terminal { return nil }

func (t *terminal) enter() error                      { return nil }
func (t *terminal) leave()                            {}
func (t *terminal) size() (cols, lines int)           { return 0, 0 }
func (t *terminal) draw(lines []string, _ bool) error { return nil }
func (t *terminal) suspend() error                    { return nil }
func (t *terminal) readKeys() (<-chan byte, func())   { return nil, func() {} }
