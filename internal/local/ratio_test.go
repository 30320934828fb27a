package local

import (
	"math/rand/v2"
	"testing"
)

// The hit ratios of the policies on skewed workloads, from fixed seeds: the
// key sequences are fixed; the Cache's hash seed is not, which moves a
// ratio by far less than the margins asserted.

const (
	ratioKeys = 100_000 // keys drawn from
	ratioSize = 10_000  // entries the Cache holds
)

// workload returns a fixed sequence of keys, drawn one at a time.
type workload func() func() uint64

// zipfLoad draws from ratioKeys keys with Zipf s=1.01: key 0 most often.
func zipfLoad() func() uint64 {
	return rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, ratioKeys-1).Uint64
}

// scanMix draws every other key from zipfLoad, and in between the next key
// of a scan that never repeats one: hot keys in a stream of cold ones.
func scanMix() func() uint64 {
	z := zipfLoad()
	cold := uint64(1 << 40)
	i := 0
	return func() uint64 {
		if i++; i%2 == 0 {
			return z()
		}
		cold++
		return cold
	}
}

// hitRatio reads warm keys of w into a Cache of policy p, the way tiered
// fills it, then the next n, and returns the ratio of hits among those n.
func hitRatio(t testing.TB, p Policy, w workload, warm, n int) float64 {
	c, _ := newManual[uint64, int](t, Options[int]{Size: ratioSize, Policy: p})
	next := w()
	source := func(uint64) int { return 1 }
	for range warm {
		fill(c, next(), source)
	}
	before := c.Stats()
	for range n {
		fill(c, next(), source)
	}
	after := c.Stats()
	return float64(after.Hits-before.Hits) / float64(n)
}

// ratioRuns are the warm-up and counted reads of the hit-ratio tests: long
// enough for TinyLFU's counts to settle (at least 30 times the Cache's
// size), and shorter under the race detector, which slows every read.
func ratioRuns() (warm, n int) {
	if raceEnabled || testing.Short() {
		return 300_000, 200_000
	}
	return 1_000_000, 1_000_000
}

func TestHitRatioZipf(t *testing.T) {
	warm, n := ratioRuns()
	lfu := hitRatio(t, TinyLFU, zipfLoad, warm, n)
	lru := hitRatio(t, LRU, zipfLoad, warm/3, n) // LRU settles once full
	t.Logf("Zipf s=1.01, %d keys, %d entries: TinyLFU %.4f, LRU %.4f", ratioKeys, ratioSize, lfu, lru)
	if lfu < 0.79 {
		t.Errorf("TinyLFU hit ratio %.4f, want >= 0.79", lfu)
	}
	if lfu < lru+0.03 {
		t.Errorf("TinyLFU hit ratio %.4f, want at least 0.03 over LRU's %.4f", lfu, lru)
	}
}

func TestHitRatioScanMix(t *testing.T) {
	warm, n := ratioRuns()
	warm, n = warm/2, n/2 // half of the reads are the scan's: nothing to learn there
	lfu := hitRatio(t, TinyLFU, scanMix, warm, n)
	lru := hitRatio(t, LRU, scanMix, warm/3, n)
	t.Logf("Zipf hot keys between a scan of cold ones: TinyLFU %.4f, LRU %.4f", lfu, lru)
	if lfu < lru+0.03 {
		t.Errorf("TinyLFU hit ratio %.4f, want at least 0.03 over LRU's %.4f", lfu, lru)
	}
}
