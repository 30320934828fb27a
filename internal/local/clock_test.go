package local

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// Clock.Now reads the time base of the deadlines: it follows real time
// (within a Tick), wakes an idle clock, and reads past every deadline once
// the Clock is closed.
func TestClockNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := NewClock()
		c, err := New[string, int](Options[int]{Size: 10, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		start := clk.Now()
		c.Set("k", 1, 100*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if d := time.Duration(clk.Now() - start); d < 50*time.Millisecond-Tick || d > 50*time.Millisecond {
			t.Fatalf("Now advanced %v in 50ms", d)
		}
		time.Sleep(time.Second) // idle: the goroutine stops ticking
		synctest.Wait()
		if d := time.Duration(clk.Now() - start); d < 1050*time.Millisecond-Tick || d > 1050*time.Millisecond {
			t.Fatalf("Now of an idle clock advanced %v in 1.05s", d)
		}
		mustMiss(t, c, "k") // its deadline is on the same clock
		clk.Close()
		if n := clk.Now(); n != math.MaxInt64 {
			t.Fatalf("Now of a closed Clock = %d, want math.MaxInt64", n)
		}
	})
}
