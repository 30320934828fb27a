package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// countHandler is a slog.Handler that keeps the message (and the
// "suppressed" count) of every record at Info or above.
type countHandler struct {
	mu   sync.Mutex
	msgs []string // guarded by mu
}

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			s += fmt.Sprintf(" suppressed=%v", a.Value)
		}
		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, s)
	h.mu.Unlock()
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs[n:])
}

func (h *countHandler) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// outageLatency bounds the p99 of a call once the outage is known. The
// targets are 10ms (held) and 20ms (unheld): what is measured here never
// waits for the network, so a loaded machine running -race is the margin
// up to 50ms; before the Hub knew of outages the same calls waited for
// go-redis's redial, 100-500ms each. faults/ holds the targets themselves.
const outageLatency = 50 * time.Millisecond

// p99 returns the 99th percentile of lats.
func p99(lats []time.Duration) time.Duration {
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// timed runs f n times and returns each call's latency; it fails t for an
// error f returns.
func timed(t *testing.T, n int, what string, f func(i int) error) []time.Duration {
	t.Helper()
	lats := make([]time.Duration, 0, n)
	fails := 0
	for i := range n {
		t0 := time.Now()
		err := f(i)
		lats = append(lats, time.Since(t0))
		if err != nil {
			if fails++; fails <= 3 {
				t.Errorf("%s #%d: %v", what, i, err)
			}
		}
	}
	if fails > 0 {
		t.Errorf("%s: %d of %d calls failed", what, fails, n)
	}
	return lats
}

// TestOutageKnownIsAnsweredAtOnce: with go-redis's default client options
// (no ContextTimeoutEnabled, 5 dial attempts per call) and StaleIfError 1
// minute, once Redis has been stopped for 1s a held key is served stale, an
// unheld key fails with ErrRedisDown and the cause, and a Fetch gets its
// loader's value, each without waiting for a redial; 200 failing reads log
// at most 10 records; and in the 1.5s after the server returns, no read of
// the held key fails.
func TestOutageKnownIsAnsweredAtOnce(t *testing.T) {
	s := redistest.NewOwn(t)
	logs := &countHandler{}
	h, _ := newHub(t, s.Addr, "outage", tiered.HubOptions{Logger: slog.New(logs)})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace, StaleIfError: time.Minute})
	ctx := context.Background()
	waitFor(t, 10*time.Second, "subscribed", c.Subscribed)
	if err := c.Set(ctx, "held", "v1"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "held"); v != "v1" || err != nil {
		t.Fatalf("Get held = %q, %v", v, err)
	}

	s.Stop()
	time.Sleep(time.Second) // the outage is known by now
	held := timed(t, 200, "outage: Get held", func(int) error {
		v, err := c.Get(ctxFor(t, 500*time.Millisecond), "held")
		if v != "v1" || err != nil {
			return fmt.Errorf("= %q, %v; want the held value v1", v, err)
		}
		return nil
	})
	before := logs.len()
	unheld := timed(t, 200, "outage: Get unheld", func(i int) error {
		_, err := c.Get(ctxFor(t, 500*time.Millisecond), fmt.Sprintf("unheld-%d", i))
		if !errors.Is(err, tiered.ErrRedisDown) {
			return fmt.Errorf("error %v; want one wrapping ErrRedisDown", err)
		}
		return nil
	})
	fetched := timed(t, 200, "outage: Fetch", func(i int) error {
		fctx := ctxFor(t, 200*time.Millisecond)
		v, err := c.Fetch(fctx, fmt.Sprintf("fetch-%d", i), func(context.Context) (string, error) { return "loaded", nil })
		if v != "loaded" || err != nil || fctx.Err() != nil {
			return fmt.Errorf("= %q, %v (ctx %v); want the loader's value within the deadline", v, err, fctx.Err())
		}
		return nil
	})
	if recs := logs.since(before); len(recs) > 10 {
		t.Errorf("400 calls during the outage logged %d records, want <= 10; the first: %q", len(recs), recs[:10])
	}
	for _, x := range []struct {
		what string
		lats []time.Duration
	}{{"Get held", held}, {"Get unheld", unheld}, {"Fetch", fetched}} {
		if p := p99(x.lats); p > outageLatency {
			t.Errorf("outage: %s p99 %v, want <= %v", x.what, p, outageLatency)
		}
	}

	s.Start()
	raw := s.NewClient("raw") // a redis-server comes back empty
	if err := raw.Set(ctx, s.Namespace+":held", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	failed := 0
	for n := 0; time.Since(back) < 1500*time.Millisecond; n++ {
		if v, err := c.Get(ctxFor(t, 500*time.Millisecond), "held"); v != "v1" || err != nil {
			if failed++; failed <= 3 {
				t.Errorf("back +%v: Get held = %q, %v", time.Since(back).Round(time.Millisecond), v, err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if failed > 0 {
		t.Errorf("%d reads of the held key failed in the 1.5s after the server returned, want 0", failed)
	}
}

// TestOutageHungRedis: Redis stops answering on every connection, old and
// new, without closing any (a stalled proxy in front of it). Every call
// returns by its deadline; once the Hub has evidence (data calls run out of
// time, and the subscription hears nothing for two health checks), Fetch
// answers from its loader and a held key is served stale; then the cache's
// Close and the Hub's return promptly, Redis still hung: they wait for no
// answer from it.
func TestOutageHungRedis(t *testing.T) {
	s := redistest.NewOwn(t)
	p := redistest.NewProxy(t, s.Addr)
	h, _ := newHub(t, p.Addr(), "hung", tiered.HubOptions{HealthCheck: 100 * time.Millisecond})
	c := newHubCache(t, h, tiered.Options[string]{Namespace: s.Namespace, StaleIfError: time.Minute})
	ctx := context.Background()
	waitFor(t, 10*time.Second, "subscribed", c.Subscribed)
	if err := c.Set(ctx, "held", "v1"); err != nil {
		t.Fatal(err)
	}

	p.Stall(true)
	stalled := time.Now()
	defer p.Stall(false) // after Close: the proxy's links end with the test
	const deadline = 200 * time.Millisecond
	var fellBack, servedStale bool
	for i := 0; time.Since(stalled) < 4*time.Second && !(fellBack && servedStale); i++ {
		fctx := ctxFor(t, deadline)
		t0 := time.Now()
		v, err := c.Fetch(fctx, fmt.Sprintf("f%d", i), func(context.Context) (string, error) { return "loaded", nil })
		fellBack = fellBack || (v == "loaded" && err == nil)
		held, herr := c.Get(ctxFor(t, deadline), "held")
		servedStale = servedStale || (held == "v1" && herr == nil)
		// A call that waited for the hung server would wait forever or
		// go-redis's 3s ReadTimeout; a second is a loaded machine's margin.
		if d := time.Since(t0); d > 2*deadline+time.Second {
			t.Fatalf("+%v: a Fetch and a Get took %v, past their deadlines (%v each)", t0.Sub(stalled), d, deadline)
		}
	}
	if !fellBack || !servedStale {
		t.Errorf("in the 4s after Redis hung: Fetch answered from its loader %v, held key served stale %v; want both", fellBack, servedStale)
	}
	// Close waits for no reply and no timeout of go-redis's, only for
	// goroutines whose sockets it closed; the rest is a margin for a loaded
	// machine.
	const closeBound = time.Second
	t0 := time.Now()
	_ = c.Close()
	cacheClosed := time.Since(t0)
	t1 := time.Now()
	_ = h.Close()
	hubClosed := time.Since(t1)
	if cacheClosed > closeBound || hubClosed > closeBound {
		t.Errorf("while Redis hung, the cache's Close took %v and the Hub's %v, want each within %v", cacheClosed, hubClosed, closeBound)
	}
	t.Logf("while Redis hung, the cache's Close took %v and the Hub's %v", cacheClosed, hubClosed)
}
