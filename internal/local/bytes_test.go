package local

import (
	"fmt"
	"testing"
	"time"
)

func byteLen(v []byte) int64 { return int64(len(v)) }

// heldBytes sums the Sizer's count over what c holds, live or not, for a
// check of Stats.Bytes that does not trust the shards' bookkeeping.
func heldBytes(c *Cache[string, []byte]) (n int, b int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, l := range []*segment[string, []byte]{&s.window, &s.probation, &s.protected} {
			l.each(func(e *entry[string, []byte]) bool {
				n++
				b += int64(len(e.value))
				return true
			})
		}
		s.mu.Unlock()
	}
	return n, b
}

// fill reads key the way tiered does: a miss takes a token, reads the
// source, and stores what it read with SetIf.
func fill[K comparable, V any](c *Cache[K, V], key K, source func(K) V) {
	if _, ok := c.Get(key); !ok {
		tok := c.Token(key)
		c.SetIf(key, source(key), time.Hour, tok)
	}
}

// The byte bound holds whatever the entry count: 4,000 values of 1 KiB
// read into a 1 MiB tier leave about 1,000 of them.
func TestMaxBytesBoundsWhatIsHeld(t *testing.T) {
	for _, p := range []Policy{TinyLFU, LRU} {
		t.Run(p.String(), func(t *testing.T) {
			const maxBytes = 1 << 20
			c, _ := newManual[string, []byte](t, Options[[]byte]{MaxBytes: maxBytes, Sizer: byteLen, Policy: p})
			kib := func(string) []byte { return make([]byte, 1024) }
			for i := range 4000 {
				fill(c, fmt.Sprintf("key-%05d", i), kib)
			}
			st := c.Stats()
			n, b := heldBytes(c)
			t.Logf("%d entries, %d bytes held; %+v", n, b, st)
			if st.Bytes != b {
				t.Errorf("Stats.Bytes = %d, but the entries held add up to %d", st.Bytes, b)
			}
			if b > maxBytes*11/10 {
				t.Errorf("%d bytes held, want <= 1.1 MiB", b)
			}
			if n < 900 || n > 1024 {
				t.Errorf("%d entries held, want about 1,000 (900 to 1,024)", n)
			}
			if got := c.Len(); got != n {
				t.Errorf("Len = %d, want %d", got, n)
			}
			if st.Evictions+st.Rejections != uint64(4000-n) {
				t.Errorf("Evictions %d + Rejections %d, want %d", st.Evictions, st.Rejections, 4000-n)
			}
		})
	}
}

func newBytes(t *testing.T, maxBytes int64, p Policy) *Cache[string, []byte] {
	c, _ := newManual[string, []byte](t, Options[[]byte]{MaxBytes: maxBytes, Sizer: byteLen, Shards: 1, Policy: p})
	return c
}

// checkBytes fails t unless Stats.Bytes is what c's entries add up to.
func checkBytes(t *testing.T, c *Cache[string, []byte], want int64) {
	t.Helper()
	checkInvariants(t, c)
	if _, b := heldBytes(c); b != want {
		t.Fatalf("entries held add up to %d bytes, want %d", b, want)
	}
	if got := c.Stats().Bytes; got != want {
		t.Fatalf("Stats.Bytes = %d, want %d", got, want)
	}
}

// An entry larger than a shard's byte bound is not stored, and the key's
// old entry goes, whichever store it came through.
func TestTooLargeIsNotStored(t *testing.T) {
	for _, p := range []Policy{TinyLFU, LRU} {
		t.Run(p.String(), func(t *testing.T) {
			c := newBytes(t, 1000, p)
			big, small := make([]byte, 1001), []byte("small")
			stores := map[string]func(k string, v []byte) bool{
				"Set":    func(k string, v []byte) bool { c.Set(k, v, forever); return false },
				"SetIf":  func(k string, v []byte) bool { return c.SetIf(k, v, forever, c.Token(k)) },
				"Commit": func(k string, v []byte) bool { return c.Commit(k, v, forever, c.Token(k)) },
			}
			rejected := uint64(0)
			for name, store := range stores {
				c.Set(name, small, forever)
				before := c.Token(name)
				if store(name, big) {
					t.Errorf("%s of %d bytes into a 1000-byte shard reported stored", name, len(big))
				}
				rejected++
				if _, ok := c.Get(name); ok {
					t.Errorf("%s of a value too large left the key's old value", name)
				}
				if name == "Commit" && c.SetIf(name, small, forever, before) {
					t.Error("a Commit that stored nothing did not advance the generation")
				}
			}
			if st := c.Stats(); st.Rejections != rejected {
				t.Errorf("Rejections = %d, want %d", st.Rejections, rejected)
			}
			checkBytes(t, c, 0)
			// An entry of exactly the bound fits an empty shard.
			c.Set("whole", make([]byte, 1000), forever)
			if _, ok := c.Get("whole"); !ok {
				t.Error("an entry of exactly the shard's bound was not stored in an empty shard")
			}
			checkBytes(t, c, 1000)
		})
	}
}

// Stats.Bytes follows every way an entry goes.
func TestBytesFollowEveryRemoval(t *testing.T) {
	c, clk := newManual[string, []byte](t, Options[[]byte]{MaxBytes: 1 << 20, Sizer: byteLen, Shards: 1})
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		c.Set(k, make([]byte, 10*(i+1)), forever)
	}
	c.Set("short", make([]byte, 100), 5*time.Millisecond)
	checkBytes(t, c, 250)
	c.Set("a", make([]byte, 1), forever) // an update: 10 bytes become 1
	checkBytes(t, c, 241)
	c.Delete("b")
	checkBytes(t, c, 221)
	c.Invalidate("c")
	checkBytes(t, c, 191)
	clk.advance(5 * time.Millisecond)
	mustMiss(t, c, "short")
	checkBytes(t, c, 91)
	c.Commit("d", nil, forever, Token{}) // refused: d goes
	checkBytes(t, c, 51)
	c.Purge()
	checkBytes(t, c, 0)
}

// An update that grows an entry evicts others for its bytes.
func TestGrowingUpdateEvicts(t *testing.T) {
	for _, p := range []Policy{TinyLFU, LRU} {
		t.Run(p.String(), func(t *testing.T) {
			c := newBytes(t, 100, p)
			for _, k := range []string{"a", "b", "c"} {
				c.Set(k, make([]byte, 30), forever)
			}
			c.Set("a", make([]byte, 60), forever)
			checkBytes(t, c, 90)
			if got, _ := c.Get("a"); len(got) != 60 {
				t.Fatalf("a holds %d bytes, want the 60 of its update", len(got))
			}
			if st := c.Stats(); st.Evictions != 1 || c.Len() != 2 {
				t.Fatalf("Stats = %+v, Len %d; want 1 eviction, 2 entries", st, c.Len())
			}
		})
	}
}

func TestNegativeCostCountsZero(t *testing.T) {
	c, _ := newManual[string, int](t, Options[int]{MaxBytes: 10, Sizer: func(int) int64 { return -5 }, Shards: 1})
	for i := range 20 {
		c.Set(fmt.Sprint(i), i, forever)
	}
	if st := c.Stats(); st.Bytes != 0 || c.Len() != 20 {
		t.Fatalf("Stats = %+v, Len %d; want 0 bytes, 20 entries", st, c.Len())
	}
}

// A candidate larger than one victim takes the room of as many as it
// needs, if it beats each.
func TestLargeCandidateTakesSeveralVictims(t *testing.T) {
	c := newBytes(t, 1000, TinyLFU) // a window of 10 bytes: every entry below contests at once
	hundred := func(string) []byte { return make([]byte, 100) }
	for i := range 10 {
		fill(c, fmt.Sprint("small", i), hundred)
	}
	checkBytes(t, c, 1000)
	large := func(string) []byte { return make([]byte, 500) }
	fill(c, "large", large) // read once, as the victims were: refused
	if st := c.Stats(); st.Rejections != 1 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want the large entry refused, nothing evicted", st)
	}
	fill(c, "large", large) // read twice: beats five victims read once
	if held(c, []string{"large"}) != 1 {
		t.Fatal("a candidate read more often than five victims was refused")
	}
	if st := c.Stats(); st.Evictions != 5 {
		t.Fatalf("Evictions = %d, want 5", st.Evictions)
	}
	checkBytes(t, c, 1000)
}
