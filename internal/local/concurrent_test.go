package local

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// TestConcurrentUse runs every operation from many goroutines on a small
// set of overlapping keys, with the real clock, for -race to check, under
// each policy, with and without a byte bound; it also checks the bounds and
// counters that must hold throughout, and the shards' consistency after.
func TestConcurrentUse(t *testing.T) {
	const size = 64
	for _, tc := range []struct {
		name     string
		policy   Policy
		maxBytes int64
	}{
		{"TinyLFU", TinyLFU, 0},
		{"LRU", LRU, 0},
		{"TinyLFU/MaxBytes", TinyLFU, size * 20},
		{"LRU/MaxBytes", LRU, size * 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options[int]{Size: size, Shards: 4, Policy: tc.policy, MaxBytes: tc.maxBytes,
				Sizer: func(v int) int64 { return int64(v%100 + 1) }}
			c, err := New[int, int](opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			useConcurrently(t, c, size, tc.maxBytes)
			checkInvariants(t, c)
		})
	}
}

// useConcurrently runs the mix of TestConcurrentUse on c.
func useConcurrently(t *testing.T, c *Cache[int, int], size int, maxBytes int64) {
	const (
		keys       = 200
		workers    = 8
		iterations = 5000
	)
	var gets, wrong atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() { // Len and Stats never exceed their bounds, even mid-flight.
		defer close(watcherDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := c.Len(); n > size {
				t.Errorf("Len = %d > Size %d", n, size)
				return
			}
			if b := c.Stats().Bytes; maxBytes > 0 && b > maxBytes {
				t.Errorf("Bytes = %d > MaxBytes %d", b, maxBytes)
				return
			}
			runtime.Gosched()
		}
	}()
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var n uint64
			for i := range iterations {
				k := rng.IntN(keys)
				v := k*1_000_000 + w*10_000 + i%10_000 // a value always names its key
				life := time.Duration(rng.IntN(5)) * time.Millisecond
				switch op := rng.IntN(100); {
				case op < 50:
					n++
					if got, ok := c.Get(k); ok && got/1_000_000 != k {
						wrong.Add(1)
					}
				case op < 65:
					c.Set(k, v, life)
				case op < 80:
					tok := c.Token(k)
					runtime.Gosched()
					c.SetIf(k, v, life+time.Second, tok)
				case op < 90:
					tok := c.Token(k)
					runtime.Gosched()
					c.Commit(k, v, time.Second, tok)
				case op < 97:
					c.Invalidate(k, rng.IntN(keys))
				case op < 98:
					c.Delete(k)
				default:
					if i%50 == 0 {
						c.Purge()
					}
				}
			}
			gets.Add(n)
		})
	}
	wg.Wait()
	close(stop)
	<-watcherDone

	if n := wrong.Load(); n != 0 {
		t.Errorf("%d Gets returned another key's value", n)
	}
	st := c.Stats()
	if st.Hits+st.Misses != gets.Load() {
		t.Errorf("Hits %d + Misses %d = %d, want the %d Gets made", st.Hits, st.Misses, st.Hits+st.Misses, gets.Load())
	}
	if st.Hits == 0 || st.Misses == 0 || st.Evictions == 0 {
		t.Errorf("Stats = %+v: the mix should produce hits, misses and evictions", st)
	}
	if st.Expirations > st.Misses {
		t.Errorf("Expirations %d > Misses %d", st.Expirations, st.Misses)
	}
}

// TestCloseIsIdempotentAndConcurrent closes a Cache from several goroutines
// while others use it; TestMain's leak check proves the clock goroutine
// exits.
func TestCloseIsIdempotentAndConcurrent(t *testing.T) {
	c, err := New[int, int](Options[int]{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				c.Set(i%150, w, time.Hour)
				c.Get(i % 150)
				c.Commit(i%150, w, time.Hour, c.Token(i%150))
			}
		})
	}
	for range 3 {
		wg.Go(c.Close)
	}
	wg.Wait()
	c.Close()
	select {
	case <-c.clock.done:
	default:
		t.Fatal("the clock goroutine is still running after Close returned")
	}
	if got := c.clock.read(); got != ended {
		t.Fatalf("closed clock reads %d, want %d", got, int64(ended))
	}
	// Still usable, but it stores nothing: its clock is past every deadline.
	c.Set(1, 42, forever)
	mustMiss(t, c, 1)
}

// TestDroppedCacheStopsItsClock checks that the clock goroutine does not keep
// an un-Closed Cache alive, and that collecting the Cache stops it.
func TestDroppedCacheStopsItsClock(t *testing.T) {
	clk := func() *clock {
		c, err := New[string, int](Options[int]{})
		if err != nil {
			t.Fatal(err)
		}
		c.Set("k", 1, forever)
		return c.clock
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-clk.done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the clock goroutine of a dropped Cache is still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRealClockAdvances(t *testing.T) {
	c, err := New[string, int](Options[int]{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Set("k", 1, 20*time.Millisecond)
	mustGet(t, c, "k", 1)
	start := time.Now()
	for {
		if _, ok := c.Get("k"); !ok {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("an entry with a 20ms TTL was still there after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Each cell of the hit and miss counters is a cache line of its own, so
// that hits on different cores adding to different cells share no line.
func TestCounterCellsOwnTheirLines(t *testing.T) {
	c, _ := newManual[int, int](t, Options[int]{})
	for i := range c.shards {
		for _, ctr := range []*counter{c.shards[i].hits, c.shards[i].misses} {
			if p := uintptr(unsafe.Pointer(ctr)); p%64 != 0 {
				t.Fatalf("shard %d: a counter at %#x, not on a 64-byte boundary", i, p)
			}
		}
	}
}
