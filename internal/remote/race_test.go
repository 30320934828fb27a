//go:build race

package remote_test

// raceEnabled reports whether the race detector is on. Under it sync.Pool
// drops items at random, so go-redis's allocation counts vary from run to
// run.
const raceEnabled = true
