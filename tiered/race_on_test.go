//go:build race

package tiered_test

// raceEnabled reports whether the race detector is on. Under it sync.Pool
// drops items at random, so allocation counts vary from run to run.
const raceEnabled = true
