//go:build race

package remote

// raceEnabled reports whether the race detector is on, for the tests of
// package remote itself (remote_test has its own): under it sync.Pool drops
// items at random, so allocation counts vary.
const raceEnabled = true
