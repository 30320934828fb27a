package local

import (
	"testing"
	"time"
)

func TestPerEntryExpiry(t *testing.T) {
	c, clk := newManual[string, string](t, Options{Size: 100, Shards: 1})
	c.Set("short", "s", 10*time.Millisecond) // dies at 9ms: one Tick early
	c.Set("long", "l", 50*time.Millisecond)  // dies at 49ms
	c.Set("forever", "f", 0)
	c.Set("negative", "n", -time.Second)

	clk.advance(9*time.Millisecond - 1)
	mustGet(t, c, "short", "s")
	clk.advance(1) // 9ms
	mustMiss(t, c, "short")
	mustGet(t, c, "long", "l")
	if st := c.Stats(); st.Expirations != 1 {
		t.Fatalf("Expirations = %d, want 1", st.Expirations)
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3: Get removes the expired entry", n)
	}

	clk.advance(40*time.Millisecond - 1) // 49ms - 1ns
	mustGet(t, c, "long", "l")
	clk.advance(1) // 49ms
	mustMiss(t, c, "long")

	clk.advance(time.Hour)
	mustGet(t, c, "forever", "f")
	mustGet(t, c, "negative", "n")
	mustMiss(t, c, "short") // gone, not expired again

	st := c.Stats()
	if st.Expirations != 2 || st.Misses != 3 || st.Hits != 5 {
		t.Fatalf("Stats = %+v, want 2 expirations, 3 misses, 5 hits", st)
	}
}

func TestSetRenewsDeadline(t *testing.T) {
	c, clk := newManual[string, int](t, Options{Size: 10, Shards: 1})
	c.Set("k", 1, 10*time.Millisecond)
	clk.advance(5 * time.Millisecond)
	c.Set("k", 2, 10*time.Millisecond) // now dies at 14ms
	clk.advance(8 * time.Millisecond)  // 13ms
	mustGet(t, c, "k", 2)
	c.Set("k", 3, 0) // no expiry any more
	clk.advance(time.Hour)
	mustGet(t, c, "k", 3)
}

func TestSetTooShortRemoves(t *testing.T) {
	c, _ := newManual[string, int](t, Options{Size: 10, Shards: 1})
	c.Set("k", 1, 0)
	c.Set("k", 2, Tick) // would expire at once
	mustMiss(t, c, "k")
	if n := c.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	c.Set("k", 3, Tick+1)
	mustGet(t, c, "k", 3)
}

func TestExpiredEntriesFallOutByLRU(t *testing.T) {
	c, clk := newManual[string, int](t, Options{Size: 2, Shards: 1})
	c.Set("a", 1, 5*time.Millisecond)
	c.Set("b", 2, 0)
	clk.advance(10 * time.Millisecond)
	c.Set("c", 3, 0) // a is the least recently used: out it goes
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if st := c.Stats(); st.Evictions != 1 || st.Expirations != 0 {
		t.Fatalf("Stats = %+v, want 1 eviction, 0 expirations", st)
	}
	mustGet(t, c, "b", 2)
	mustGet(t, c, "c", 3)
}

func TestClosedCacheExpiresEverythingWithATTL(t *testing.T) {
	c, clk := newManual[string, int](t, Options{Size: 10, Shards: 1})
	c.Set("ttl", 1, time.Hour)
	c.Set("forever", 2, 0)
	tok := c.Token("fill")
	clk.advance(time.Millisecond)
	c.Close()
	c.Close()

	mustMiss(t, c, "ttl")
	mustGet(t, c, "forever", 2)
	c.Set("new-ttl", 3, time.Hour)
	mustMiss(t, c, "new-ttl")
	c.Set("new-forever", 4, 0)
	mustGet(t, c, "new-forever", 4)
	if c.SetIf("fill", 5, time.Hour, tok) {
		t.Fatal("SetIf stored into a closed Cache")
	}
	c.Set("x", 1, 0)
	if c.Commit("x", 6, time.Hour, c.Token("x")) {
		t.Fatal("Commit stored into a closed Cache")
	}
	mustMiss(t, c, "x") // removed rather than left stale
}

func TestDeadline(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, tc := range []struct {
		at     int64
		ttl    time.Duration
		now    int64
		want   int64
		wantOK bool
	}{
		{0, 10 * time.Millisecond, 0, 9 * ms, true},
		{5 * ms, 10 * time.Millisecond, 13 * ms, 14 * ms, true},
		{5 * ms, 10 * time.Millisecond, 14 * ms, 14 * ms, false},
		{0, Tick, 0, 0, false},
		{0, 0, 0, 0, false},
		{0, -time.Second, 0, 0, false},
		{100 * ms, 1 << 62, 100 * ms, 100*ms + 1<<62 - ms, true},
		{1 << 62, 1<<63 - 1, 1 << 62, ended, true}, // clamped, not wrapped
		{1 << 62, 1<<63 - 1, ended, ended, false},  // a closed clock
	} {
		d, ok := deadline(tc.at, tc.ttl, tc.now)
		if d != tc.want || ok != tc.wantOK {
			t.Errorf("deadline(%d, %v, %d) = %d, %v; want %d, %v", tc.at, tc.ttl, tc.now, d, ok, tc.want, tc.wantOK)
		}
	}
}

// Caches on a shared Clock keep it running when one of them closes; closing
// the Clock expires every entry with a TTL in all of them.
func TestSharedClock(t *testing.T) {
	clk := NewClock()
	a, err := New[string, int](Options{Size: 10, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New[string, int](Options{Size: 10, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	a.Set("k", 1, time.Hour)
	b.Set("k", 2, time.Hour)
	b.Set("short", 3, 5*time.Millisecond)
	a.Close()
	mustGet(t, b, "k", 2)
	deadline := time.Now().Add(10 * time.Second)
	for { // the shared clock still advances: the short entry expires
		if _, ok := b.Get("short"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry of a Cache on a shared Clock never expired after another Cache closed")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Close()
	clk.Close()
	mustMiss(t, b, "k")
	b.Close()
}

// An idle clock stops ticking, and a read then gets the real time (and
// wakes it): an entry never outlives its deadline because the clock slept.
func TestIdleClockSleepsAndStaysExact(t *testing.T) {
	k := startClock()
	defer k.close()
	deadline := time.Now().Add(10 * time.Second)
	for !k.asleep.Load() {
		if time.Now().After(deadline) {
			t.Fatal("an unread clock never went to sleep")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the stored reading is now 50ms old
	if got, real := k.read(), int64(time.Since(k.base)); real-got > int64(5*time.Millisecond) {
		t.Fatalf("a read of the sleeping clock was %v behind real time", time.Duration(real-got))
	}
	for k.asleep.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a read did not wake the clock")
		}
		_ = k.read()
		time.Sleep(time.Millisecond)
	}
}
