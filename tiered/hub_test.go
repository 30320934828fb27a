package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// newHub returns a hub on its own client of addr, closed when the test ends,
// ready.
func newHub(t *testing.T, addr, name string, opts tiered.HubOptions) (*tiered.Hub, *redis.Client) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, ClientName: name})
	t.Cleanup(func() { _ = client.Close() })
	client.AddHook(gateHook{})
	h, err := tiered.NewHub(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return h, client
}

func newHubCache[V any](t *testing.T, h *tiered.Hub, opts tiered.Options[V]) *tiered.Cache[V] {
	t.Helper()
	c, err := tiered.NewCache(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// ourGoroutines counts the goroutines running tiercache's own code (not the
// test's, the client's or the embedded server's).
func ourGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "tiercache/tiered.") || strings.Contains(g, "tiercache/internal/invalidate.") ||
			strings.Contains(g, "tiercache/internal/local.") || strings.Contains(g, "tiercache/internal/remote.") {
			n++
		}
	}
	return n
}

// Caches of several value types and namespaces on one Hub share one
// connection and a fixed number of goroutines, and each hears its own
// namespace's invalidations.
func TestHubSharesOneConnection(t *testing.T) {
	s := redistest.New(t)
	name := s.Namespace + "-hub"
	client := redis.NewClient(&redis.Options{Addr: s.Addr, ClientName: name})
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	h, err := tiered.NewHub(client, tiered.HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	const n = 30
	strs := make([]*tiered.Cache[string], n/2)
	ints := make([]*tiered.Cache[int], n/2)
	for i := range n / 2 {
		strs[i] = newHubCache(t, h, tiered.Options[string]{Namespace: fmt.Sprintf("%s-s%d", s.Namespace, i)})
		ints[i] = newHubCache(t, h, tiered.Options[int]{Namespace: fmt.Sprintf("%s-i%d", s.Namespace, i)})
	}
	// The subscriber's reader, its watchdog's timekeeper and writer, and
	// the clock.
	if ours := ourGoroutines(); ours > 4 {
		t.Fatalf("%d caches on one hub run %d goroutines of tiercache's; want at most 4", n, ours)
	}
	if s.Real() {
		list, err := s.Client.Do(bg, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			if strings.Contains(line, " name="+name+" ") {
				ours = append(ours, line)
			}
		}
		if len(ours) != 1 || !strings.Contains(ours[0], " sub=30 ") {
			t.Fatalf("want 1 pub/sub connection subscribed to 30 channels, got:\n%s", strings.Join(ours, "\n"))
		}
	}

	// Another process writes to one namespace of each type: only those
	// caches drop their copies.
	other, otherClient := newHub(t, s.Addr, s.Namespace+"-other", tiered.HubOptions{})
	_ = otherClient
	w := newHubCache(t, other, tiered.Options[string]{Namespace: strs[3].Namespace()})
	if err := w.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reader applies the first write", func() bool { return strs[3].Stats().Invalidations == 1 })
	if got, err := strs[3].Get(bg, "k"); err != nil || got != "v1" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := w.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reader sees v2", func() bool {
		got, _ := strs[3].Get(bg, "k")
		return got == "v2"
	})
	for i, c := range strs {
		if i != 3 && c.Stats().Invalidations != 0 {
			t.Fatalf("cache %d of another namespace applied %d messages", i, c.Stats().Invalidations)
		}
	}
}

// Two caches of one namespace on one hub (two value views of the same keys,
// say) invalidate each other: each has its own origin.
func TestCachesOfOneNamespaceOnOneHub(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	a := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	b := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b applies a's write", func() bool { return b.Stats().Invalidations == 1 })
	if got, _ := b.Get(bg, "k"); got != "v1" {
		t.Fatalf("b Get = %q", got)
	}
	if err := a.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b sees v2", func() bool {
		got, _ := b.Get(bg, "k")
		return got == "v2"
	})
}

// Hub.Close closes the caches still attached; their calls then return
// ErrClosed. NewCache on a closed hub fails.
func TestHubCloseClosesItsCaches(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(bg, "k"); !errors.Is(err, tiered.ErrClosed) {
		t.Fatalf("Get after Hub.Close: %v; want ErrClosed", err)
	}
	if _, err := tiered.NewCache(h, tiered.Options[string]{}); !errors.Is(err, tiered.ErrHubClosed) {
		t.Fatalf("NewCache on a closed hub: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

// A wrong address shows at startup, at once: WaitReady does not wait out
// its ctx on a refused dial, and its error wraps the cause.
func TestWaitReadyReportsTheConnectionError(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})
	defer client.Close()
	h, err := tiered.NewHub(client, tiered.HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := tiered.NewCache(h, tiered.Options[string]{})
	if err != nil {
		t.Fatal(err)
	}
	// The first dial is refused within milliseconds; half the ctx is a
	// margin a loaded machine never needs.
	const budget = 4 * time.Second
	for name, wait := range map[string]func(context.Context) error{"Hub": h.WaitReady, "Cache": c.WaitReady} {
		ctx, cancel := context.WithTimeout(bg, budget)
		start := time.Now()
		err := wait(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s.WaitReady against a closed port: %v; want the refused dial, not the deadline", name, err)
		}
		if took > budget/2 {
			t.Errorf("%s.WaitReady took %v against a closed port, want it to fail fast", name, took)
		}
	}
}

// A refused dial once the Hub has been confirmed is a restart, not a
// wrong address: WaitReady waits through it and returns nil when the
// server is back.
func TestWaitReadyWaitsThroughARestart(t *testing.T) {
	s := redistest.NewOwn(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{HealthCheck: 100 * time.Millisecond})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	s.Stop()
	waitFor(t, 10*time.Second, "the cache notices the lost subscription", func() bool { return !c.Subscribed() })
	done := make(chan error, 2)
	for _, wait := range []func(context.Context) error{h.WaitReady, c.WaitReady} {
		go func() {
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			defer cancel()
			done <- wait(ctx)
		}()
	}
	// Long enough for several refused dials (the backoff starts at 10ms).
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("WaitReady returned while the server was down: %v", err)
	default:
	}
	s.Start()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("WaitReady across a restart: %v", err)
		}
	}
}

func TestNewCacheOptions(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	if _, err := tiered.NewCache(h, tiered.Options[string]{HealthCheck: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "HealthCheck") {
		t.Errorf("NewCache with a HealthCheck: %v", err)
	}
	if _, err := tiered.NewCache[string](nil, tiered.Options[string]{}); err == nil {
		t.Error("NewCache with a nil hub succeeded")
	}
	for field, opts := range map[string]tiered.HubOptions{
		"HealthCheck":  {HealthCheck: time.Microsecond},
		"MaxBackoff":   {MaxBackoff: -1},
		"MaxStaleness": {MaxStaleness: time.Microsecond},
	} {
		if _, err := tiered.NewHub(s.Client, opts); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("NewHub with a bad %s: %v", field, err)
		}
	}
}

// When the hub's subscription breaks, every cache on it bypasses its local
// tier, and uses it again once the subscription is back.
func TestBrokenSubscriptionBypassesEveryCache(t *testing.T) {
	s := redistest.New(t)
	p := redistest.NewProxy(t, s.Addr)
	h, _ := newHub(t, p.Addr(), s.Namespace+"-h", tiered.HubOptions{HealthCheck: 100 * time.Millisecond})
	caches := []*tiered.Cache[string]{
		newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace + "-a"}),
		newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace + "-b"}),
	}
	p.CutPubSub(true)
	for _, c := range caches {
		waitFor(t, 10*time.Second, "the cache notices the lost subscription", func() bool { return !c.Subscribed() })
	}
	p.CutPubSub(false)
	for _, c := range caches {
		waitFor(t, 10*time.Second, "the cache subscribed again", c.Subscribed)
		if c.Stats().Breaks != 1 {
			t.Fatalf("stats %+v: want 1 break", c.Stats())
		}
	}
}

// MaxStaleness: with the subscription frozen (no reset, no data, the health
// check far off), a local hit stops within MaxStaleness of the last proof:
// reads go to Redis and see a write the frozen subscription never
// delivered. Without the bound, the old value is served until the health
// check notices.
func TestMaxStalenessBoundsAFrozenSubscription(t *testing.T) {
	for _, tc := range []struct {
		name      string
		staleness time.Duration
		bounded   bool
	}{
		{"MaxStaleness 50ms", 50 * time.Millisecond, true},
		{"no bound", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.New(t)
			p := redistest.NewProxy(t, s.Addr)
			hb, _ := newHub(t, p.Addr(), s.Namespace+"-b", tiered.HubOptions{
				HealthCheck: 10 * time.Second, MaxStaleness: tc.staleness,
			})
			b := newHubCache(t, hb, tiered.Options[string]{Namespace: s.Namespace})
			a := newInstance(t, s, "a", tiered.Options[string]{})
			if err := a.Set(bg, "k", "v1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "b applies the write", func() bool { return b.Stats().Invalidations == 1 })
			waitFor(t, 10*time.Second, "b holds v1 locally", func() bool {
				before := b.Stats().LocalHits
				got, _ := b.Get(bg, "k")
				return got == "v1" && b.Stats().LocalHits > before
			})
			p.FreezePubSub()
			if err := a.Set(bg, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			written := time.Now()
			var stale time.Duration
			for time.Since(written) < time.Second {
				got, err := b.Get(bg, "k")
				if err != nil {
					t.Fatal(err)
				}
				if got == "v2" {
					break
				}
				stale = time.Since(written)
				time.Sleep(time.Millisecond)
			}
			if tc.bounded {
				if stale > tc.staleness+50*time.Millisecond {
					t.Fatalf("b served v1 for %v after the write with MaxStaleness %v", stale, tc.staleness)
				}
				if b.Stats().Unproven == 0 {
					t.Fatalf("stats %+v: want the reads that could not be proven counted", b.Stats())
				}
			} else if stale < 500*time.Millisecond {
				t.Fatalf("without the bound b served v1 for only %v: the test no longer freezes the subscription", stale)
			}
		})
	}
}

// MaxStaleness holds for reads that go to Redis too: with the subscription
// frozen (so no invalidation can overtake anything), a Get that begins more
// than MaxStaleness after a Set was acknowledged does not join a Redis read
// that began before the Set.
func TestUnprovenGetNeverJoinsAnOldRead(t *testing.T) {
	s := redistest.New(t)
	p := redistest.NewProxy(t, s.Addr)
	const staleness = 5 * time.Millisecond
	hb, _ := newHub(t, p.Addr(), s.Namespace+"-b", tiered.HubOptions{HealthCheck: 10 * time.Second, MaxStaleness: staleness})
	b := newHubCache(t, hb, tiered.Options[string]{Namespace: s.Namespace})
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "k", "old"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b applies the write", func() bool { return b.Stats().Invalidations == 1 })
	p.FreezePubSub()
	g := newGate(t, false, true)
	first := async(func() (string, error) { return b.Get(g.ctx(bg), "k") })
	g.waitAfter(t) // b's read of "old" is held after its reply
	if err := a.Set(bg, "k", "new"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * staleness)
	time.AfterFunc(200*time.Millisecond, g.releaseAfter) // a joined Get would wait for this
	if got, err := b.Get(bg, "k"); err != nil || got != "new" {
		t.Fatalf("a Get begun %v after the Set returned %q, %v; want new", 2*staleness, got, err)
	}
	if got, _ := await(t, first); got != "old" {
		t.Fatalf("the held Get = %q; want old", got)
	}
}

// A negative HealthCheck turns the health check off: the Hub still
// subscribes, invalidations still arrive, and the freshness proofs (on by
// default) still let local hits be served.
func TestHealthCheckOff(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{HealthCheck: -1})
	r := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace})
	w := newInstance(t, s, "w", tiered.Options[string]{})
	for i := range 5 {
		v := strconv.Itoa(i)
		if err := w.Set(bg, "k", v); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "r sees the write", func() bool {
			got, err := r.Get(bg, "k")
			return err == nil && got == v
		})
	}
	waitFor(t, 5*time.Second, "a local hit", func() bool {
		_, _ = r.Get(bg, "k")
		return r.Stats().LocalHits > 0
	})
	if n := r.Stats().Invalidations; n == 0 {
		t.Error("no invalidation applied with the health check off")
	}
	// New takes the same setting.
	c, err := tiered.New(s.Client, tiered.Options[string]{Namespace: s.Namespace + "-n", HealthCheck: -1})
	if err != nil {
		t.Fatalf("New with HealthCheck -1: %v", err)
	}
	_ = c.Close()
}

// Two caches of one namespace on a Hub share its values: of one type they
// are allowed (as before), of two they are refused, naming the namespace
// and both types; the namespace is free for another type once the caches
// of it are closed.
func TestNamespaceOfTwoValueTypes(t *testing.T) {
	s := redistest.New(t)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	type user struct{ Name string }
	a := newHubCache(t, h, tiered.Options[user]{Namespace: s.Namespace})
	b := newHubCache(t, h, tiered.Options[user]{Namespace: s.Namespace}) // same type: allowed
	c, err := tiered.NewCache(h, tiered.Options[int]{Namespace: s.Namespace})
	if err == nil {
		c.Close()
		t.Fatal("NewCache of an int cache in a namespace of user caches succeeded")
	}
	for _, want := range []string{strconv.Quote(s.Namespace), "tiered_test.user", "int"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// The refused cache left nothing behind: the others still work.
	if err := a.Set(bg, "k", user{"x"}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(bg, "k"); err != nil || v.Name != "x" {
		t.Fatalf("b.Get = %v, %v", v, err)
	}
	a.Close()
	b.Close()
	newHubCache(t, h, tiered.Options[int]{Namespace: s.Namespace})
}
