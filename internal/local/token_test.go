package local

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"
)

// stripeOf returns the shard and stripe key belongs to.
func stripeOf[K comparable, V any](c *Cache[K, V], key K) (shard, stripe uint64) {
	h := maphash.Comparable(c.seed, key)
	return h & c.mask, h >> (64 - stripeBits)
}

// neighbours returns a key other than key in the same stripe, and one in the
// same shard but another stripe.
func neighbours(t *testing.T, c *Cache[string, int], key string) (same, other string) {
	t.Helper()
	sh, st := stripeOf(c, key)
	for i := 0; same == "" || other == ""; i++ {
		if i > 1_000_000 {
			t.Fatal("no neighbours found")
		}
		k := fmt.Sprint("n", i)
		ksh, kst := stripeOf(c, k)
		switch {
		case ksh != sh:
		case kst == st && same == "":
			same = k
		case kst != st && other == "":
			other = k
		}
	}
	return same, other
}

func TestSetIf(t *testing.T) {
	const life = time.Minute
	for _, tc := range []struct {
		name   string
		meddle func(c *Cache[string, int], same, other string)
		stores bool
	}{
		{"nothing", func(c *Cache[string, int], same, other string) {}, true},
		{"Set", func(c *Cache[string, int], same, other string) { c.Set("k", 9, forever) }, true},
		{"Delete", func(c *Cache[string, int], same, other string) { c.Delete("k") }, true},
		{"SetIf", func(c *Cache[string, int], same, other string) { c.SetIf("k", 9, life, c.Token("k")) }, true},
		{"Get", func(c *Cache[string, int], same, other string) { c.Get("k") }, true},
		{"Invalidate other stripe", func(c *Cache[string, int], same, other string) { c.Invalidate(other) }, true},
		{"Commit other stripe", func(c *Cache[string, int], same, other string) { c.Commit(other, 9, life, c.Token(other)) }, true},
		{"Invalidate", func(c *Cache[string, int], same, other string) { c.Invalidate("k") }, false},
		{"Invalidate several", func(c *Cache[string, int], same, other string) { c.Invalidate(other, "k") }, false},
		{"Invalidate same stripe", func(c *Cache[string, int], same, other string) { c.Invalidate(same) }, false},
		{"Commit", func(c *Cache[string, int], same, other string) { c.Commit("k", 9, life, c.Token("k")) }, false},
		{"stale Commit", func(c *Cache[string, int], same, other string) { c.Commit("k", 9, life, Token{}) }, false},
		{"Commit same stripe", func(c *Cache[string, int], same, other string) { c.Commit(same, 9, life, c.Token(same)) }, false},
		{"Purge", func(c *Cache[string, int], same, other string) { c.Purge() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newManual[string, int](t, Options[int]{Size: 1000, Shards: 4})
			same, other := neighbours(t, c, "k")
			tok := c.Token("k")
			tc.meddle(c, same, other)
			stored := c.SetIf("k", 1, life, tok)
			if stored != tc.stores {
				t.Fatalf("SetIf after %s = %v, want %v", tc.name, stored, tc.stores)
			}
			if tc.stores {
				mustGet(t, c, "k", 1)
			} else if v, ok := c.Get("k"); ok && v == 1 {
				t.Fatalf("SetIf returned false but stored")
			}
			// A fresh token works again.
			if !c.SetIf("k", 2, life, c.Token("k")) {
				t.Fatal("SetIf with a fresh token failed")
			}
			mustGet(t, c, "k", 2)
		})
	}
}

func TestZeroTokenIsNeverCurrent(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{Size: 10})
	if c.SetIf("k", 1, time.Minute, Token{}) {
		t.Fatal("SetIf with the zero Token stored")
	}
	c.Set("k", 1, forever)
	if c.Commit("k", 2, time.Minute, Token{}) {
		t.Fatal("Commit with the zero Token stored")
	}
	mustMiss(t, c, "k")
}

func TestSetIfTTLCountsFromToken(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
	clk.advance(100 * time.Millisecond)
	tok := c.Token("k") // at 100ms
	clk.advance(30 * time.Millisecond)
	if !c.SetIf("k", 1, 50*time.Millisecond, tok) { // dies at 149ms, not 179ms
		t.Fatal("SetIf failed")
	}
	clk.advance(19*time.Millisecond - 1) // 149ms - 1ns
	mustGet(t, c, "k", 1)
	clk.advance(1)
	mustMiss(t, c, "k")

	// A lifetime that has already run out by the store stores nothing and
	// leaves what is there alone.
	c.Set("k", 7, forever)
	tok = c.Token("k") // at 149ms
	clk.advance(30 * time.Millisecond)
	if c.SetIf("k", 2, 31*time.Millisecond, tok) { // would die at 179ms: now
		t.Fatal("SetIf stored an entry already expired")
	}
	mustGet(t, c, "k", 7)
	for _, life := range []time.Duration{0, -1, Tick} {
		if c.SetIf("k", 3, life, c.Token("k")) {
			t.Fatalf("SetIf with life %v stored", life)
		}
	}
	mustGet(t, c, "k", 7)
	if !c.SetIf("k", 4, 1<<63-1, c.Token("k")) {
		t.Fatal("SetIf with the longest life failed")
	}
	clk.advance(100 * 365 * 24 * time.Hour)
	mustGet(t, c, "k", 4)
}

func TestCommit(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})

	tok := c.Token("k")
	if !c.Commit("k", 1, time.Minute, tok) {
		t.Fatal("Commit with a current token did not store")
	}
	mustGet(t, c, "k", 1)
	// The same token is now stale: a second Commit removes the key.
	if c.Commit("k", 2, time.Minute, tok) {
		t.Fatal("Commit with a stale token stored")
	}
	mustMiss(t, c, "k")

	// Commit always advances the generation, whether it stores or not.
	before := c.Token("k")
	if !c.Commit("k", 3, time.Minute, c.Token("k")) {
		t.Fatal("Commit with a current token did not store")
	}
	if c.SetIf("k", 4, time.Minute, before) {
		t.Fatal("SetIf with a token taken before a storing Commit stored")
	}
	mustGet(t, c, "k", 3)
	before = c.Token("k")
	if c.Commit("k", 5, time.Minute, Token{}) {
		t.Fatal("Commit with the zero token stored")
	}
	if c.SetIf("k", 6, time.Minute, before) {
		t.Fatal("SetIf with a token taken before a removing Commit stored")
	}
	mustMiss(t, c, "k")

	// The TTL counts from the token; one already over removes the key.
	c.Set("k", 7, forever)
	tok = c.Token("k") // at 0
	clk.advance(20 * time.Millisecond)
	if !c.Commit("k", 8, 30*time.Millisecond, tok) { // dies at 29ms
		t.Fatal("Commit did not store")
	}
	clk.advance(9*time.Millisecond - 1)
	mustGet(t, c, "k", 8)
	clk.advance(1)
	mustMiss(t, c, "k")
	c.Set("k", 9, forever)
	tok = c.Token("k")
	clk.advance(20 * time.Millisecond)
	if c.Commit("k", 10, 20*time.Millisecond, tok) {
		t.Fatal("Commit stored an entry already expired")
	}
	mustMiss(t, c, "k")
	if c.SetIf("k", 11, time.Minute, tok) {
		t.Fatal("a removing Commit did not advance the generation")
	}
}

func TestInvalidateAndPurgeRemove(t *testing.T) {
	c, _ := newManual[int, int](t, Options[int]{Size: 1000, Shards: 8})
	for i := range 100 {
		c.Set(i, i, forever)
	}
	c.Invalidate(1, 2, 3, 1000) // 1000 is absent: fine
	for i := 1; i <= 3; i++ {
		mustMiss(t, c, i)
	}
	mustGet(t, c, 4, 4)
	if n := c.Len(); n != 97 {
		t.Fatalf("Len = %d after Invalidate, want 97", n)
	}
	toks := make([]Token, 100)
	for i := range toks {
		toks[i] = c.Token(i)
	}
	c.Purge()
	if n := c.Len(); n != 0 {
		t.Fatalf("Len = %d after Purge, want 0", n)
	}
	for i, tok := range toks {
		if c.SetIf(i, i, time.Minute, tok) {
			t.Fatalf("SetIf(%d) with a token from before Purge stored", i)
		}
	}
}

// Admission may refuse a store: SetIf then reports false and the key
// misses, and a refused Commit still removes the key and advances the
// generation (read-your-writes relies on it).
func TestRefusedStoresUnderAdmission(t *testing.T) {
	// A window of 10 bytes: every entry below contests as it is stored.
	c, _ := newManual[string, []byte](t, Options[[]byte]{MaxBytes: 1000, Sizer: byteLen, Shards: 1})
	hundred := func(string) []byte { return make([]byte, 100) }
	for range 3 {
		for i := range 10 {
			fill(c, fmt.Sprint("hot", i), hundred)
		}
	}
	if c.SetIf("new", make([]byte, 100), time.Minute, c.Token("new")) {
		t.Fatal("SetIf of a key read once into a shard of keys read 3 times reported stored")
	}
	mustMiss(t, c, "new")

	before := c.Token("w")
	if c.Commit("w", make([]byte, 100), time.Minute, c.Token("w")) {
		t.Fatal("Commit of a key read once into a shard of keys read 3 times reported stored")
	}
	mustMiss(t, c, "w")
	if c.SetIf("w", make([]byte, 1), time.Minute, before) {
		t.Fatal("a refused Commit did not advance the generation")
	}
	if st := c.Stats(); st.Rejections != 2 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want 2 rejections, 0 evictions", st)
	}
	checkInvariants(t, c)
}
