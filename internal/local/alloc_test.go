package local

import (
	"fmt"
	"testing"
	"time"
)

// A hit allocates nothing, under either policy, with or without a byte
// bound, but for a move from probation to protected, at most one per key
// here (TestMovingHitAllocations bounds that one): over 1000 runs, it
// rounds to nothing.
func TestGetHitDoesNotAllocate(t *testing.T) {
	for _, opts := range []Options[[]byte]{
		{}, {Policy: LRU}, {MaxBytes: 1 << 20, Sizer: byteLen}, {MaxBytes: 1 << 20, Sizer: byteLen, Policy: LRU},
	} {
		t.Run(fmt.Sprintf("%v/MaxBytes%d", opts.Policy, opts.MaxBytes), func(t *testing.T) {
			c, _ := newManual[string, []byte](t, opts)
			keys := []string{"alpha", "beta", "a rather longer key than the others, to hash in more than one block"}
			for _, k := range keys {
				c.Set(k, []byte(k), time.Hour)
			}
			c.Set("other", nil, time.Hour) // the keys leave the window: their first hits move them
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				if _, ok := c.Get(keys[i%len(keys)]); !ok {
					t.Fatal("miss")
				}
				i++
			})
			if allocs != 0 {
				t.Fatalf("Get on a hit allocates %v times, want 0", allocs)
			}
		})
	}
	t.Run("int", func(t *testing.T) {
		c, _ := newManual[int, int](t, Options[int]{Size: 100})
		for k := range 10 {
			c.Set(k, k, forever)
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			if _, ok := c.Get(i % 10); !ok {
				t.Fatal("miss")
			}
			i++
		})
		if allocs != 0 {
			t.Fatalf("Get on a hit allocates %v times, want 0", allocs)
		}
	})
}

func TestTokenAndRefillAllocations(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{})
	c.Set("k", 0, forever)
	if allocs := testing.AllocsPerRun(1000, func() { _ = c.Token("k") }); allocs != 0 {
		t.Fatalf("Token allocates %v times, want 0", allocs)
	}
	// A store publishes a new entry for lock-free readers: the entry, and the
	// index's node and boxed key. That is the price of hits that take no lock.
	allocs := testing.AllocsPerRun(1000, func() {
		if !c.SetIf("k", 1, time.Hour, c.Token("k")) {
			t.Fatal("SetIf failed")
		}
	})
	if allocs > 3 {
		t.Fatalf("Token+SetIf of a present key allocates %v times, want at most 3", allocs)
	}
}
