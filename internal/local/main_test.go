package local

import (
	"math"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// forever is a life that outlasts any test: its deadline is clamped to the
// end of the clock, so only Close expires it.
const forever time.Duration = math.MaxInt64

// newManual returns a Cache configured by opts on a manual clock (no
// goroutine), closed when the test ends, and the clock to advance.
func newManual[K comparable, V any](t testing.TB, opts Options[V]) (*Cache[K, V], *clock) {
	t.Helper()
	cfg, err := opts.resolve()
	if err != nil {
		t.Fatal(err)
	}
	clk := manualClock()
	c := newCache[K](cfg, clk)
	c.owned = true // Close ends the manual clock, as it would the Cache's own
	t.Cleanup(c.Close)
	return c, clk
}

// mustGet fails the test unless key holds want.
func mustGet[K comparable, V comparable](t *testing.T, c *Cache[K, V], key K, want V) {
	t.Helper()
	got, ok := c.Get(key)
	if !ok {
		t.Fatalf("Get(%v): miss, want %v", key, want)
	}
	if got != want {
		t.Fatalf("Get(%v) = %v, want %v", key, got, want)
	}
}

// mustMiss fails the test if key holds anything.
func mustMiss[K comparable, V any](t *testing.T, c *Cache[K, V], key K) {
	t.Helper()
	if got, ok := c.Get(key); ok {
		t.Fatalf("Get(%v) = %v, want a miss", key, got)
	}
}
