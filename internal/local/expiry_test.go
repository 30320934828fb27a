package local

import (
	"testing"
	"time"
)

func TestPerEntryExpiry(t *testing.T) {
	c, clk := newManual[string, string](t, Options[string]{Size: 100, Shards: 1})
	c.Set("short", "s", 10*time.Millisecond) // dies at 9ms: one Tick early
	c.Set("long", "l", 50*time.Millisecond)  // dies at 49ms
	c.Set("forever", "f", forever)

	clk.advance(9*time.Millisecond - 1)
	mustGet(t, c, "short", "s")
	clk.advance(1) // 9ms
	mustMiss(t, c, "short")
	mustGet(t, c, "long", "l")
	if st := c.Stats(); st.Expirations != 1 {
		t.Fatalf("Expirations = %d, want 1", st.Expirations)
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2: Get removes the expired entry", n)
	}

	clk.advance(40*time.Millisecond - 1) // 49ms - 1ns
	mustGet(t, c, "long", "l")
	clk.advance(1) // 49ms
	mustMiss(t, c, "long")

	clk.advance(100 * 365 * 24 * time.Hour)
	mustGet(t, c, "forever", "f")
	mustMiss(t, c, "short") // gone, not expired again

	st := c.Stats()
	if st.Expirations != 2 || st.Misses != 3 || st.Hits != 4 {
		t.Fatalf("Stats = %+v, want 2 expirations, 3 misses, 4 hits", st)
	}
}

func TestSetRenewsDeadline(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
	c.Set("k", 1, 10*time.Millisecond)
	clk.advance(5 * time.Millisecond)
	c.Set("k", 2, 10*time.Millisecond) // now dies at 14ms
	clk.advance(8 * time.Millisecond)  // 13ms
	mustGet(t, c, "k", 2)
	c.Set("k", 3, time.Hour) // now dies an hour later
	clk.advance(59 * time.Minute)
	mustGet(t, c, "k", 3)
}

// A life that is over at once (<= 0, or a Tick or less, as entries expire a
// Tick early) means the same to every store: nothing is stored. Set and
// Commit, which replace what the key holds, leave it empty; SetIf leaves it
// alone. There is no "no expiry": Set used to take a life <= 0 for that.
func TestNoLifeStoresNothing(t *testing.T) {
	for _, life := range []time.Duration{0, -1, -time.Hour, Tick} {
		c, _ := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
		c.Set("new", 1, life)
		mustMiss(t, c, "new")

		c.Set("set", 1, forever)
		c.Set("set", 2, life)
		mustMiss(t, c, "set")

		c.Set("setif", 1, forever)
		if c.SetIf("setif", 2, life, c.Token("setif")) {
			t.Errorf("SetIf with life %v stored", life)
		}
		mustGet(t, c, "setif", 1)

		c.Set("commit", 1, forever)
		if c.Commit("commit", 2, life, c.Token("commit")) {
			t.Errorf("Commit with life %v stored", life)
		}
		mustMiss(t, c, "commit")

		if n := c.Len(); n != 1 {
			t.Fatalf("life %v: Len = %d, want 1 (setif's old entry)", life, n)
		}
	}
	c, _ := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
	c.Set("k", 3, Tick+1) // the shortest life that stores
	mustGet(t, c, "k", 3)
}

func TestExpiredEntriesFallOutByLRU(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 2, Shards: 1})
	c.Set("a", 1, 5*time.Millisecond)
	c.Set("b", 2, forever)
	clk.advance(10 * time.Millisecond)
	c.Set("c", 3, forever) // a is the least recently used: out it goes
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if st := c.Stats(); st.Evictions != 1 || st.Expirations != 0 {
		t.Fatalf("Stats = %+v, want 1 eviction, 0 expirations", st)
	}
	mustGet(t, c, "b", 2)
	mustGet(t, c, "c", 3)
}

// A closed Cache's clock is past every deadline: it holds nothing, and
// stores nothing, whatever the life.
func TestClosedCacheExpiresEverything(t *testing.T) {
	c, clk := newManual[string, int](t, Options[int]{Size: 10, Shards: 1})
	c.Set("hour", 1, time.Hour)
	c.Set("forever", 2, forever)
	tok := c.Token("fill")
	clk.advance(time.Millisecond)
	c.Close()
	c.Close()

	mustMiss(t, c, "hour")
	mustMiss(t, c, "forever")
	c.Set("new", 3, forever)
	mustMiss(t, c, "new")
	if c.SetIf("fill", 5, forever, tok) {
		t.Fatal("SetIf stored into a closed Cache")
	}
	if c.Commit("x", 6, forever, c.Token("x")) {
		t.Fatal("Commit stored into a closed Cache")
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("a closed Cache holds %d entries, want 0", n)
	}
}

func TestDeadline(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, tc := range []struct {
		at     int64
		life   time.Duration
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
		d, ok := deadline(tc.at, tc.life, tc.now)
		if d != tc.want || ok != tc.wantOK {
			t.Errorf("deadline(%d, %v, %d) = %d, %v; want %d, %v", tc.at, tc.life, tc.now, d, ok, tc.want, tc.wantOK)
		}
	}
}

// Caches on a shared Clock keep it running when one of them closes; closing
// the Clock expires every entry with a TTL in all of them.
func TestSharedClock(t *testing.T) {
	clk := NewClock()
	a, err := New[string, int](Options[int]{Size: 10, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New[string, int](Options[int]{Size: 10, Clock: clk})
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
