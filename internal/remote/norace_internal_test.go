//go:build !race

package remote

// raceEnabled reports whether the race detector is on (see
// race_internal_test.go).
const raceEnabled = false
