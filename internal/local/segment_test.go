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
