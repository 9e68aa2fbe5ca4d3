//go:build !race

package metrics

// raceEnabled tells whether the race detector is on.
const raceEnabled = false
