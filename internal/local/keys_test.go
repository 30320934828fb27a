package local

import (
	"math"
	"testing"
)

// A key not equal to itself (a NaN, or a value holding one) can never be
// found again, so it is never stored: the shard stays consistent and within
// its bounds, and holds nothing under it, however often it is stored.
func TestKeyNotEqualToItself(t *testing.T) {
	t.Run("float64", func(t *testing.T) {
		c, _ := newManual[float64, int](t, Options[int]{Size: 10, Shards: 1})
		storeUnfindable(t, c, math.NaN(), func(i int) float64 { return float64(i) })
	})
	t.Run("any", func(t *testing.T) {
		c, _ := newManual[any, int](t, Options[int]{Size: 10, Shards: 1, Policy: LRU})
		storeUnfindable(t, c, any(math.NaN()), func(i int) any { return i })
	})
}

// storeUnfindable stores nan, by every kind of store, between stores of
// ordinary keys, and checks that c holds none of it.
func storeUnfindable[K comparable](t *testing.T, c *Cache[K, int], nan K, key func(int) K) {
	t.Helper()
	stored := 0
	for i := range 100 {
		c.Set(nan, i, forever)
		if c.SetIf(nan, i, forever, c.Token(nan)) {
			stored++
		}
		if c.Commit(nan, i, forever, c.Token(nan)) {
			stored++
		}
		fill(c, key(i%20), one)
		c.Delete(nan)
		c.Invalidate(nan)
	}
	checkInvariants(t, c)
	if stored != 0 {
		t.Fatalf("SetIf and Commit of a key not equal to itself reported stored %d times", stored)
	}
	mustMissAny(t, c, nan)
	if n := c.Len(); n > 10 {
		t.Fatalf("Len = %d, over Size 10", n)
	}
	n := 0
	c.Range(func(k K, _ int) bool {
		if k != k {
			t.Errorf("Range gave a key not equal to itself")
		}
		n++
		return true
	})
	if n != c.Len() {
		t.Fatalf("Range gave %d entries, Len is %d", n, c.Len())
	}
}

func mustMissAny[K comparable, V any](t *testing.T, c *Cache[K, V], key K) {
	t.Helper()
	if _, ok := c.Get(key); ok {
		t.Fatalf("Get(%v) hit, want a miss", key)
	}
}
