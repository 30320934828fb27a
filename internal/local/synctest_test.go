package local

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestExpiryInBubble runs a Cache with its real clock goroutine inside a
// synctest bubble, where the ticker runs on fake time.
func TestExpiryInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New[string, int](Options[int]{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		c.Set("k", 1, 100*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		mustGet(t, c, "k", 1)
		time.Sleep(60 * time.Millisecond)
		mustMiss(t, c, "k")
		if st := c.Stats(); st.Expirations != 1 {
			t.Fatalf("Expirations = %d, want 1", st.Expirations)
		}
		c.Close()
	})
}

// TestExpiryBoundaryInBubble pins the boundary: with the clock goroutine
// caught up (synctest.Wait), an entry stored for 100ms is there at 98ms and
// gone at 99ms, one Tick early.
func TestExpiryBoundaryInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New[string, int](Options[int]{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Set("k", 1, 100*time.Millisecond)
		time.Sleep(98 * time.Millisecond)
		synctest.Wait()
		mustGet(t, c, "k", 1)
		time.Sleep(Tick)
		synctest.Wait()
		mustMiss(t, c, "k")
	})
}
