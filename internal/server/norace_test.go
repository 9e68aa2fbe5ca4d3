//go:build !race

package server

// raceEnabled tells whether the race detector is on.
const raceEnabled = false
