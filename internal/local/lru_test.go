package local

import (
	"fmt"
	"testing"
)

func TestEvictionOrderOneShard(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{Size: 3, Shards: 1, Policy: LRU})
	c.Set("a", 1, forever)
	c.Set("b", 2, forever)
	c.Set("c", 3, forever)
	mustGet(t, c, "a", 1) // recency now, most recent first: a c b

	c.Set("d", 4, forever) // evicts b: d a c
	if st := c.Stats(); st.Evictions != 1 {
		t.Fatalf("Evictions = %d after one eviction, want 1", st.Evictions)
	}
	c.Set("e", 5, forever) // evicts c: e d a
	if st := c.Stats(); st.Evictions != 2 {
		t.Fatalf("Evictions = %d after two evictions, want 2", st.Evictions)
	}
	c.Set("a", 10, forever) // an update evicts nothing: a e d
	if st := c.Stats(); st.Evictions != 2 {
		t.Fatalf("Evictions = %d after an update, want 2", st.Evictions)
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	mustMiss(t, c, "b")
	mustMiss(t, c, "c")
	mustGet(t, c, "d", 4) // d a e
	mustGet(t, c, "a", 10)
	mustGet(t, c, "e", 5) // e a d

	c.Set("f", 6, forever) // evicts d
	mustMiss(t, c, "d")
	mustGet(t, c, "a", 10)
	mustGet(t, c, "e", 5)
	mustGet(t, c, "f", 6)

	c.Delete("a")
	mustMiss(t, c, "a")
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d after Delete, want 2", n)
	}
	st := c.Stats()
	if st.Evictions != 3 || st.Hits != 7 || st.Misses != 4 || st.Expirations != 0 {
		t.Fatalf("Stats = %+v, want 3 evictions, 7 hits, 4 misses, 0 expirations", st)
	}
}

func TestTotalCapacityIsSize(t *testing.T) {
	for _, p := range []Policy{TinyLFU, LRU} {
		for _, tc := range []struct{ size, shards int }{
			{1000, 16}, // 1000 % 16 = 8: eight shards of 63, eight of 62
			{17, 16},
			{64, 64},
			{10, 1},
		} {
			t.Run(fmt.Sprintf("%v/Size%d/Shards%d", p, tc.size, tc.shards), func(t *testing.T) {
				c, _ := newManual[int, int](t, Options[int]{Size: tc.size, Shards: tc.shards, Policy: p})
				// Enough distinct keys that every shard overflows.
				n := 20 * tc.size
				for i := range n {
					c.Set(i, i, forever)
				}
				if got := c.Len(); got != tc.size {
					t.Fatalf("Len = %d after %d distinct Sets, want exactly Size %d", got, n, tc.size)
				}
				for i := range c.shards {
					want := tc.size / tc.shards
					if i < tc.size%tc.shards {
						want++
					}
					if got, _ := c.shards[i].held(); got != want {
						t.Errorf("shard %d holds %d, want %d", i, got, want)
					}
				}
				// Every key stored went in, and all but Size went out again:
				// as victims, or refused on leaving the window.
				if st := c.Stats(); st.Evictions+st.Rejections != uint64(n-tc.size) {
					t.Fatalf("Evictions %d + Rejections %d, want %d", st.Evictions, st.Rejections, n-tc.size)
				}
			})
		}
	}
}

// A hit moves an entry that fell out of its shard's most recent quarter to
// the front, so it outlives entries that were not read.
func TestHitOutsideRecentQuarterProtectsFromEviction(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{Size: 8, Shards: 1, Policy: LRU}) // recent quarter: 2
	for i := range 8 {
		c.Set(fmt.Sprint("k", i), i, forever)
	}
	if _, ok := c.Get("k0"); !ok { // 7 entries went in front of k0: it moves
		t.Fatal("k0 missing")
	}
	c.Set("k8", 8, forever) // evicts the least recent: k1, not k0
	if _, ok := c.Get("k0"); !ok {
		t.Fatal("k0 was evicted although it was read after falling out of the recent quarter")
	}
	if _, ok := c.Get("k1"); ok {
		t.Fatal("k1, never read, outlived k0's promotion")
	}
}
