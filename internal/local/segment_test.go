package local

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Every operation, in a long random sequence on a small shard, leaves the
// segments consistent with their accounting and with the index: checked
// after each step, under each policy, with and without a byte bound.
func TestRandomOperationsKeepSegmentsConsistent(t *testing.T) {
	sizer := func(v int) int64 { return int64(v % 50) }
	for _, opts := range []Options[int]{
		{Size: 20, Shards: 1},
		{Size: 20, Shards: 1, Policy: LRU},
		{Size: 200, Shards: 1, MaxBytes: 400, Sizer: sizer},
		{MaxBytes: 400, Shards: 1, Sizer: sizer, Policy: LRU},
	} {
		t.Run(fmt.Sprintf("%v/Size%d/MaxBytes%d", opts.Policy, opts.Size, opts.MaxBytes), func(t *testing.T) {
			c, clk := newManual[int, int](t, opts)
			rng := rand.New(rand.NewPCG(7, uint64(opts.Size)))
			for step := range 20_000 {
				k := rng.IntN(60)
				life := time.Duration(1+rng.IntN(20)) * time.Millisecond
				switch op := rng.IntN(100); {
				case op < 40:
					fill(c, k, func(int) int { return rng.IntN(100) })
				case op < 55:
					c.Get(k)
				case op < 70:
					c.Set(k, rng.IntN(100), life)
				case op < 80:
					c.Commit(k, rng.IntN(100), life, c.Token(k))
				case op < 88:
					c.Invalidate(k)
				case op < 95:
					c.Delete(k)
				case op < 99:
					clk.advance(time.Duration(rng.IntN(3)) * time.Millisecond)
				default:
					c.Purge()
				}
				if step%7 == 0 {
					checkInvariants(t, c)
				}
			}
			checkInvariants(t, c)
			if st := c.Stats(); st.Hits == 0 || st.Evictions == 0 || st.Expirations == 0 {
				t.Fatalf("Stats = %+v: the sequence should hit, evict and expire", st)
			}
		})
	}
}

// A hit that moves its entry to the front of protected allocates nothing.
// One that moves it from probation to protected allocates at most an
// element of golang-lru's list for each entry that enters a segment: the
// entry, in protected, and the one protected hands back to probation.
func TestMovingHitAllocations(t *testing.T) {
	for _, tc := range []struct {
		policy Policy
		keys   int     // all held: the window and probation or protected
		allocs float64 // the most per hit
	}{
		{LRU, 100, 0},
		{TinyLFU, 98, 2},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			c, _ := newManual[int, int](t, Options[int]{Size: 100, Shards: 1, Policy: tc.policy})
			keys := intKeys(0, tc.keys)
			for _, k := range keys {
				c.Set(k, k, forever)
			}
			for range 2 { // in turn: each read finds its key the least recently read
				for _, k := range keys {
					mustGet(t, c, k, k)
				}
			}
			s := &c.shards[0]
			seq, i := s.seq.Load(), 0
			allocs := testing.AllocsPerRun(10*len(keys), func() {
				if _, ok := c.Get(keys[i%len(keys)]); !ok {
					t.Fatal("miss")
				}
				i++
			})
			if moved := s.seq.Load() - seq; moved < uint64(i)*9/10 {
				t.Fatalf("%d of %d hits moved their entry to protected, want nearly all", moved, i)
			}
			if allocs > tc.allocs {
				t.Fatalf("a hit that moves its entry allocates %v times, want at most %v", allocs, tc.allocs)
			}
			checkInvariants(t, c)
		})
	}
}
