package local

import (
	"fmt"
	"hash/maphash"
	"slices"
	"testing"
	"time"
)

// one is a source that holds 1 under every key.
func one[K any](K) int { return 1 }

// readAll fills (see fill) each key once, in order, rounds times.
func readAll[K comparable](c *Cache[K, int], keys []K, rounds int) {
	for range rounds {
		for _, k := range keys {
			fill(c, k, one)
		}
	}
}

func intKeys(from, n int) []int {
	ks := make([]int, n)
	for i := range ks {
		ks[i] = from + i
	}
	return ks
}

// held counts the keys of keys that c holds, live, without counting hits.
func held[K comparable, V any](c *Cache[K, V], keys []K) int {
	n := 0
	now := c.clock.read()
	for _, k := range keys {
		if p, ok := c.shard(k).index.Load(k); ok && p.(*entry[K, V]).deadline > now {
			n++
		}
	}
	return n
}

// A scan of keys read once each does not push out keys read often: with
// TinyLFU they stay, with LRU they go.
func TestScanDoesNotFlushHotKeys(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want int
	}{{TinyLFU, 50}, {LRU, 0}} {
		t.Run(tc.p.String(), func(t *testing.T) {
			c, _ := newManual[int, int](t, Options[int]{Size: 100, Shards: 1, Policy: tc.p})
			hot := intKeys(0, 50)
			readAll(c, hot, 5)
			fill(c, -1, one)   // the last hot key leaves the window
			readAll(c, hot, 1) // and is read again there
			readAll(c, intKeys(1000, 10_000), 1)
			checkInvariants(t, c)
			if got := held(c, hot); got != tc.want {
				t.Fatalf("%d of %d hot keys held after the scan, want %d", got, len(hot), tc.want)
			}
		})
	}
}

// apart returns n keys whose counters in c's sketch (one shard) share no
// slot in any row, so that each key's estimate is exactly its count.
func apart(t *testing.T, c *Cache[string, int], n int) []string {
	t.Helper()
	k := &c.shards[0].sketch
	used := map[[2]int]bool{}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		if i > 1_000_000 {
			t.Fatal("no keys apart found")
		}
		key := fmt.Sprint("k", i)
		h := maphash.Comparable(c.seed, key)
		var slots [][2]int
		for row := range sketchDepth {
			w, sh := k.slot(h, row)
			slots = append(slots, [2]int{w, int(sh)})
		}
		if !slices.ContainsFunc(slots, func(s [2]int) bool { return used[s] }) {
			for _, s := range slots {
				used[s] = true
			}
			keys = append(keys, key)
		}
	}
	return keys
}

// A key read again while in the window wins its place against a victim
// read once; a key read once loses to it.
func TestAdmissionComparesCounts(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
	keys := apart(t, c, 13) // exact counts: the sketch would otherwise decide some ties by collisions
	cold, x, y, z := keys[:10], keys[10], keys[11], keys[12]
	readAll(c, cold, 1) // full: cold[0..8] in probation, cold[9] in the window
	fill(c, x, one)     // cold[9] leaves the window and loses to cold[0]: a tie
	mustGet(t, c, x, 1)
	fill(c, y, one) // x, read twice, leaves the window and beats cold[0]
	fill(c, z, one) // y, read once, leaves the window and loses to cold[1]
	checkInvariants(t, c)
	for k, want := range map[string]bool{cold[0]: false, cold[1]: true, cold[9]: false, x: true, y: false, z: true} {
		if got := held(c, []string{k}) == 1; got != want {
			t.Errorf("%s held: %v, want %v", k, got, want)
		}
	}
	if st := c.Stats(); st.Evictions != 3 || st.Rejections != 0 {
		t.Errorf("Stats = %+v, want 3 evictions (cold[9], cold[0], y), 0 rejections", st)
	}
}

// Counts age: keys that were hot and are no longer read give way to keys
// read now, although both reached the counters' cap.
func TestCountsAge(t *testing.T) {
	c, _ := newManual[int, int](t, Options[int]{Size: 100, Shards: 1})
	old, now := intKeys(0, 80), intKeys(1000, 80)
	readAll(c, old, 20)
	readAll(c, now, 40)
	checkInvariants(t, c)
	if got := held(c, now); got < 75 {
		t.Fatalf("%d of %d keys read now are held, want at least 75", got, len(now))
	}
	if got := held(c, old); got > 25 {
		t.Fatalf("%d of %d keys no longer read are still held, want at most 25", got, len(old))
	}
}

// An expired victim loses, however often it was read.
func TestExpiredVictimLoses(t *testing.T) {
	c, clk := newManual[int, int](t, Options[int]{Size: 100, Shards: 1})
	old := intKeys(0, 100)
	for range 10 {
		for _, k := range old {
			if _, ok := c.Get(k); !ok {
				c.Set(k, 1, 10*time.Millisecond)
			}
		}
	}
	clk.advance(10 * time.Millisecond)
	fresh := intKeys(1000, 50)
	readAll(c, fresh, 1)
	checkInvariants(t, c)
	if got := held(c, fresh); got != len(fresh) {
		t.Fatalf("%d of %d keys read once after the others expired are held, want all", got, len(fresh))
	}
}

// A key removed (here invalidated) keeps its count: refilled once, it wins
// against victims read less often than it was.
func TestRemovedKeyKeepsItsCount(t *testing.T) {
	c, _ := newManual[int, int](t, Options[int]{Size: 100, Shards: 1})
	const k = -1
	readAll(c, []int{k}, 10)
	readAll(c, intKeys(0, 99), 3)
	c.Invalidate(k)
	readAll(c, intKeys(1000, 1), 1) // fills the place k left
	fill(c, k, one)
	fill(c, -2, one) // k leaves the window: a victim read 3 times is in its way
	checkInvariants(t, c)
	if held(c, []int{k}) != 1 {
		t.Fatal("a key read 10 times, invalidated and refilled once lost to a key read 3 times")
	}
}

// An update replaces the entry where it is, with its count.
func TestUpdateKeepsPlaceAndCount(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{Size: 100, Shards: 1})
	c.Set("k", 1, forever)
	fill(c, "other", one) // k leaves the window for probation
	mustGet(t, c, "k", 1) // and moves to protected
	mustGet(t, c, "k", 1)
	s := &c.shards[0]
	before := s.lookup("k")
	c.Set("k", 2, forever)
	after := s.lookup("k")
	mustGet(t, c, "k", 2)
	if after.seg.Load() != inProtected {
		t.Fatalf("updated entry in segment %d, want protected (%d)", after.seg.Load(), inProtected)
	}
	if b, a := freqAt(before.freq.Load(), 0), freqAt(after.freq.Load(), 0); a <= b {
		t.Fatalf("updated entry's count %d, want more than the %d it replaced", a, b)
	}
	checkInvariants(t, c)
}

// A hit on an entry that is hot (counted to the cap, recently moved) takes
// no lock and writes nothing but the shard's hit counter: not the entry,
// not the shard's order.
func TestHotHitWritesNothingShared(t *testing.T) {
	for _, p := range []Policy{TinyLFU, LRU} {
		t.Run(p.String(), func(t *testing.T) {
			c, _ := newManual[string, int](t, Options[int]{Size: 1000, Shards: 1, Policy: p})
			c.Set("hot", 1, forever)
			fill(c, "other", one)
			for range 2 * maxFreq {
				mustGet(t, c, "hot", 1)
			}
			s := &c.shards[0]
			e := s.lookup("hot")
			freq, seq, shardSeq := e.freq.Load(), e.seq.Load(), s.seq.Load()

			s.mu.Lock() // a hit that takes the lock now waits for the test
			done := make(chan bool)
			go func() {
				for range 1000 {
					if _, ok := c.Get("hot"); !ok {
						done <- false
						return
					}
				}
				done <- true
			}()
			var ok bool
			select {
			case ok = <-done:
				s.mu.Unlock()
			case <-time.After(10 * time.Second):
				s.mu.Unlock()
				<-done
				t.Fatal("hits on a hot entry waited for the shard's lock")
			}
			if !ok {
				t.Fatal("hot missed")
			}
			if e.freq.Load() != freq || e.seq.Load() != seq || s.seq.Load() != shardSeq {
				t.Fatal("hits on a hot entry wrote its count or the shard's order")
			}
		})
	}
}
