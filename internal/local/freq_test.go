package local

import (
	"math/rand/v2"
	"testing"
)

func TestEntryCounts(t *testing.T) {
	f := packFreq(7, 3)
	if got := freqAt(f, 7); got != 3 {
		t.Fatalf("count as of its own epoch = %d, want 3", got)
	}
	for age, want := range []uint32{3, 1, 0, 0, 0, 0} {
		if got := freqAt(f, 7+uint32(age)); got != want {
			t.Errorf("count 3 aged %d epochs = %d, want %d", age, got, want)
		}
	}
	// Epochs wrap: the age is taken modulo the mask, never negative.
	if got := freqAt(packFreq(epochMask, maxFreq), 0); got != maxFreq/2 {
		t.Errorf("count %d one epoch later, across the wrap = %d, want %d", maxFreq, got, maxFreq/2)
	}

	// A use counts until the cap; at the cap, in the same epoch, nothing
	// changes, so a hit writes nothing.
	f = packFreq(2, 0)
	for i := range maxFreq {
		g, changed := bumped(f, 2)
		if !changed || freqAt(g, 2) != uint32(i+1) {
			t.Fatalf("use %d: %d, %v; want %d, true", i+1, freqAt(g, 2), changed, i+1)
		}
		f = g
	}
	if g, changed := bumped(f, 2); changed || g != f {
		t.Fatalf("a use at the cap changed the count word: %#x to %#x", f, g)
	}
	// In a later epoch the count is halved first, and the use is written.
	if g, changed := bumped(f, 3); !changed || freqAt(g, 3) != maxFreq/2+1 {
		t.Fatalf("a use one epoch on: %d, %v; want %d, true", freqAt(g, 3), changed, maxFreq/2+1)
	}
}

func TestSketch(t *testing.T) {
	k := newSketch(1024, 1024)
	rng := rand.New(rand.NewPCG(5, 6))
	hashes := make([]uint64, 500)
	want := make([]uint32, len(hashes))
	for i := range hashes {
		hashes[i] = rng.Uint64()
		want[i] = uint32(i % 10)
		for range want[i] {
			k.increment(hashes[i])
		}
	}
	exact := 0
	for i, h := range hashes {
		got := k.estimate(h)
		if got < want[i] {
			t.Fatalf("estimate %d under its count %d", got, want[i])
		}
		if got == want[i] {
			exact++
		}
	}
	// 500 keys in 1024 counters a row: collisions are few.
	if exact < len(hashes)*9/10 {
		t.Errorf("%d of %d estimates exact, want at least 90%%", exact, len(hashes))
	}

	h := hashes[9] // counted 9 times
	if k.estimate(h) < 9 {
		t.Fatal("lost a count")
	}
	k.halve()
	if got := k.estimate(h); got < 4 || got > 5 {
		t.Errorf("estimate after halving 9 = %d, want 4 (or 5 with collisions)", got)
	}
	k.raise(h, 12)
	if got := k.estimate(h); got != 12 {
		t.Errorf("estimate after raising to 12 = %d, want 12", got)
	}
	k.raise(h, 3) // raise never lowers
	if got := k.estimate(h); got != 12 {
		t.Errorf("estimate after raising to 3 = %d, want still 12", got)
	}
	for range 2 * maxFreq {
		k.increment(h)
	}
	if got := k.estimate(h); got != maxFreq {
		t.Errorf("estimate after many increments = %d, want the cap %d", got, maxFreq)
	}

	if k.grow() {
		t.Error("grew past its limit")
	}
	g := newSketch(64, 256)
	g.increment(h)
	if !g.grow() || g.width != 128 || g.estimate(h) != 0 || g.period() != periodFactor*128 {
		t.Errorf("grow: width %d, estimate %d; want 128, 0 (counts forgotten)", g.width, g.estimate(h))
	}
}
