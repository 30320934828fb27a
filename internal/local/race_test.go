//go:build race

package local

// raceEnabled is whether the race detector is on: it slows the long tests,
// which then run shorter.
const raceEnabled = true
