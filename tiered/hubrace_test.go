package tiered_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// Closing the last cache of a namespace on a Hub while another cache of that
// namespace is made on it never leaves the new cache deaf: however the two
// interleave (and while other namespaces come and go on the Hub), the new
// cache ends up subscribed, and hears the next write of another instance.
// Many pairs race at once, for many rounds.
func TestCloseRacingNewCacheOfTheSameNamespace(t *testing.T) {
	s := redistest.New(t)
	const pairs, rounds = 32, 15
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	w, _ := newHub(t, s.Addr, s.Namespace+"-w", tiered.HubOptions{})
	ns := func(i int) string { return fmt.Sprintf("%s-%d", s.Namespace, i) }
	writers := make([]*tiered.Cache[string], pairs)
	old := make([]*tiered.Cache[string], pairs)
	for i := range pairs {
		writers[i] = newHubCache(t, w, tiered.Options[string]{Namespace: ns(i)})
		old[i] = newHubCache(t, h, tiered.Options[string]{Namespace: ns(i)})
	}
	// Other namespaces come and go on the Hub meanwhile.
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for g := range 4 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: fmt.Sprintf("%s-churn%d-%d", s.Namespace, g, j%7)})
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.Close()
				time.Sleep(time.Millisecond) // churn, not a CPU hog starving the rounds
			}
		}()
	}
	defer func() { close(stop); churn.Wait() }()

	for r := range rounds {
		fresh := make([]*tiered.Cache[string], pairs)
		var wg sync.WaitGroup
		for i := range pairs {
			wg.Add(2)
			// NewCache does more work before it attaches than Close before it
			// detaches: a random head start for NewCache spreads the pairs
			// over every interleaving.
			delay := time.Duration(rand.N(300)) * time.Microsecond
			go func() {
				defer wg.Done()
				for start := time.Now(); time.Since(start) < delay; {
				}
				_ = old[i].Close()
			}()
			go func() {
				defer wg.Done()
				c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: ns(i)})
				if err != nil {
					t.Error(err)
					return
				}
				fresh[i] = c
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, c := range fresh {
			t.Cleanup(func() { _ = c.Close() })
			// A deaf cache never subscribes: the bound only has to outlast
			// a loaded machine's subscribing of 32 namespaces at once.
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			err := c.WaitReady(ctx)
			cancel()
			if err != nil {
				t.Fatalf("round %d: the new cache of %s never subscribed: %v", r, ns(i), err)
			}
			key := fmt.Sprintf("k%d", r)
			write := func(v string) func() error { return func() error { return writers[i].Set(bg, key, v) } }
			who := fmt.Sprintf("round %d: the new cache of %s", r, ns(i))
			hears(t, c, write("old"), who)
			if got, err := c.Get(bg, key); err != nil || got != "old" {
				t.Fatalf("round %d: Get = %q, %v", r, got, err)
			}
			hears(t, c, write("new"), who)
			if got, err := c.Get(bg, key); err != nil || got != "new" {
				n, _ := s.Client.PubSubNumSub(bg, "tiercache:invalidate:"+ns(i)).Result()
				t.Fatalf("round %d: Get after the write = %q, %v; %+v; numsub %v", r, got, err, c.Stats(), n)
			}
		}
		old = fresh
	}
}

// hears checks that c applies the invalidation of write, another instance's
// write: hearing it is applying its message, not just reading Redis. Each
// write of the test is heard before the next is made, so the count says
// which. A subscription that broke meanwhile (a loaded machine can fail a
// health check) may have lost the message; the write is then made again,
// once the cache is subscribed again.
func hears(t *testing.T, c *tiered.Cache[string], write func() error, who string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		before := c.Stats()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second) // one message; a cache that missed it never hears it
		for {
			st := c.Stats()
			if st.Invalidations > before.Invalidations {
				return
			}
			if st.Breaks > before.Breaks && attempt < 3 {
				waitFor(t, 10*time.Second, who+" subscribed again", c.Subscribed)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never heard the write: %+v", who, st)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// A Hub keeps nothing for a namespace whose last cache is closed: churning
// thousands of namespaces through one Hub leaves its memory where it was.
func TestHubForgetsClosedNamespaces(t *testing.T) {
	s := redistest.NewReal(t) // the embedded server's own memory would count, and it keeps some per channel
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	churn := func(from, n int) {
		for i := range n {
			c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: fmt.Sprintf("%s-%d", s.Namespace, from+i)})
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
		}
	}
	churn(0, 500) // warm up: connections, maps at their working size
	before := heapInUse()
	const n = 5000
	churn(500, n)
	grew := heapInUse() - before
	// 165 bytes a namespace, the cost this test was written against, would
	// be 825 KB; a few allocations' noise is all that may remain.
	if grew > 100<<10 {
		t.Errorf("the heap grew by %d bytes over %d namespaces churned (%d a namespace)", grew, n, grew/n)
	}
	t.Logf("heap grew by %d bytes over %d namespaces churned", grew, n)
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
