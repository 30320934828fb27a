package tiercacheotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/tiercache/tiercache/internal/redistest"
	tiercacheotel "github.com/tiercache/tiercache/otel"
	"github.com/tiercache/tiercache/tiered"
)

// newHub returns a Hub over a client of its own (as a separate process
// would have), with MaxStaleness off so that a local hit never depends on
// the timing of a freshness proof.
func newHub(t *testing.T, s *redistest.Server, obs tiered.Observer) *tiered.Hub {
	t.Helper()
	client := s.NewClient("")
	h, err := tiered.NewHub(client, tiered.HubOptions{Observer: obs, MaxStaleness: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// newCache returns a cache of namespace on h whose subscription is
// confirmed.
func newCache(t *testing.T, h *tiered.Hub, namespace string) *tiered.Cache[string] {
	t.Helper()
	c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: namespace, TTL: time.Minute})
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

func mustGet(t *testing.T, c *tiered.Cache[string], key, want string) {
	t.Helper()
	if v, err := c.Get(bg, key); err != nil || v != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, want)
	}
}

// A real cache, against the embedded Redis or the one at REDIS_ADDR, with a
// second instance whose writes invalidate the first: every instrument shows
// what happened.
func TestCacheMetrics(t *testing.T) {
	s := redistest.New(t)
	obs, r := newObserver(t, tiercacheotel.Options{})
	a := newCache(t, newHub(t, s, obs), s.Namespace)
	b := newCache(t, newHub(t, s, nil), s.Namespace) // another process, unobserved

	if err := a.Set(bg, "k1", "v1"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustGet(t, a, "k1", "v1") // local hits: Set kept the value
	}
	if err := b.Set(bg, "k1", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's invalidation to reach a", func() bool { return a.Stats().Invalidations >= 1 })
	mustGet(t, a, "k1", "v2") // a local miss, then Redis
	v, err := a.Fetch(bg, "k2", func(context.Context) (string, error) { return "loaded", nil })
	if err != nil || v != "loaded" {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if _, err := a.GetMany(bg, []string{"k1", "k2", "k3"}); err != nil {
		t.Fatal(err)
	}
	// A value of the wrong type in Redis: the server's error code is the
	// error.type.
	if err := s.Client.RPush(bg, s.Namespace+":list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(bg, "list"); err == nil || errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get of a list: %v, want a WRONGTYPE error", err)
	}

	m := collect(t, r)
	n := ns(s.Namespace)
	if got := m.sum("tiercache.local.hits", "{key}", n, op("Get")); got != 3 {
		t.Errorf("local hits (get) = %d, want 3", got)
	}
	if got := m.sum("tiercache.local.misses", "{key}", n, op("Get")); got != 2 { // k1 after b's Set, list
		t.Errorf("local misses (get) = %d, want 2", got)
	}
	if got := m.sum("tiercache.local.misses", "{key}", n, op("Fetch")); got != 1 {
		t.Errorf("local misses (fetch) = %d, want 1", got)
	}
	var many int64
	for _, name := range []string{"tiercache.local.hits", "tiercache.local.misses"} {
		if m.hasSum(name, "{key}", n, op("GetMany")) {
			many += m.sum(name, "{key}", n, op("GetMany"))
		}
	}
	if many != 3 {
		t.Errorf("local hits and misses of GetMany = %d, want 3", many)
	}
	st := a.Stats()
	if hits := m.sum("tiercache.local.hits", "{key}", n, op("Get")); st.LocalHits < uint64(hits) {
		t.Errorf("Stats.LocalHits %d < %d hits observed", st.LocalHits, hits)
	}

	// Redis calls: one point per operation, every one timed.
	const redisDur = "db.client.operation.duration"
	for _, o := range []string{"set", "get", "get-many"} {
		p := m.hist(redisDur, "s", n, redisSystem(), dbOp(o))
		lo, hi := bounds(t, redisDur, p)
		if p.Count < 1 || lo <= 0 || hi > 10 {
			t.Errorf("redis %s: count %d, min %v, max %v", o, p.Count, lo, hi)
		}
	}
	if p := m.hist(redisDur, "s", n, redisSystem(), dbOp("set")); p.Count != 1 {
		t.Errorf("redis set: count %d, want 1 (b's Set is not observed)", p.Count)
	}
	if p := m.hist(redisDur, "s", n, redisSystem(), dbOp("get"), errType("WRONGTYPE"), dbStatus("WRONGTYPE")); p.Count != 1 {
		t.Errorf("redis get WRONGTYPE: count %d, want 1", p.Count)
	}
	for _, p := range histPoints[float64](m, redisDur, "s") {
		if v, _ := p.Attributes.Value("db.system.name"); v.AsString() != "redis" {
			t.Errorf("redis point without db.system.name=redis: %v", p.Attributes.Encoded(nil))
		}
		if v, _ := p.Attributes.Value("tiercache.namespace"); v.AsString() != s.Namespace {
			t.Errorf("redis point without the namespace: %v", p.Attributes.Encoded(nil))
		}
	}

	if p := m.hist("tiercache.load.duration", "s", n, op("Fetch")); p.Count != 1 || p.Sum <= 0 {
		t.Errorf("load: count %d, sum %v", p.Count, p.Sum)
	}
	if p := m.intHist("tiercache.batch.size", "{key}", n, op("GetMany")); p.Count != 1 || p.Sum != 3 {
		t.Errorf("batch size: count %d, sum %d; want 1, 3", p.Count, p.Sum)
	}

	if got := m.sum("tiercache.invalidations", "{message}", n, scope("keys")); got != 1 {
		t.Errorf("invalidations = %d, want 1 (a ignores its own)", got)
	}
	lag := m.hist("tiercache.invalidation.lag", "s", n)
	if lo, hi := bounds(t, "lag", lag); lag.Count != 1 || lo < 0 || hi > 10 {
		t.Errorf("lag: count %d, min %v, max %v; want 1 in [0, 10s]", lag.Count, lo, hi)
	}
	if lag.Bounds[0] != 0.0001 || lag.Bounds[len(lag.Bounds)-1] != 10 {
		t.Errorf("lag buckets %v, want 100µs to 10s", lag.Bounds)
	}

	if got := m.sum("tiercache.subscription.events", "{event}", n, state("Subscribed")); got < 1 {
		t.Errorf("Subscribed events = %d, want >= 1", got)
	}
	if got := m.gauge("tiercache.subscription.up", "{subscription}", n); got != 1 {
		t.Errorf("subscription up = %d, want 1", got)
	}
}

// Two caches on one Hub (and one Observer) are told apart by their
// namespace.
func TestNamespacesAreToldApart(t *testing.T) {
	s := redistest.New(t)
	obs, r := newObserver(t, tiercacheotel.Options{})
	h := newHub(t, s, obs)
	nsA, nsB := s.Namespace+"-a", s.Namespace+"-b"
	a, b := newCache(t, h, nsA), newCache(t, h, nsB)
	for c, gets := range map[*tiered.Cache[string]]int{a: 1, b: 2} {
		if err := c.Set(bg, "k", "v"); err != nil {
			t.Fatal(err)
		}
		for range gets {
			mustGet(t, c, "k", "v")
		}
	}
	m := collect(t, r)
	for _, c := range []struct {
		ns   string
		hits int64
	}{{nsA, 1}, {nsB, 2}} {
		if got := m.sum("tiercache.local.hits", "{key}", ns(c.ns), op("Get")); got != c.hits {
			t.Errorf("%s: local hits %d, want %d", c.ns, got, c.hits)
		}
		if p := m.hist("db.client.operation.duration", "s", ns(c.ns), redisSystem(), dbOp("set")); p.Count != 1 {
			t.Errorf("%s: redis set count %d, want 1", c.ns, p.Count)
		}
		if got := m.gauge("tiercache.subscription.up", "{subscription}", ns(c.ns)); got != 1 {
			t.Errorf("%s: up %d, want 1", c.ns, got)
		}
	}
}

// A cache whose subscription is lost reports it, with the cause's class,
// and reports it back once it is confirmed again, repaired.
func TestLostSubscriptionIsReported(t *testing.T) {
	s := redistest.NewOwn(t)
	obs, r := newObserver(t, tiercacheotel.Options{})
	c := newCache(t, newHub(t, s, obs), s.Namespace)
	s.KillPubSub("")
	waitFor(t, 10*time.Second, "the subscription to break", func() bool { return c.Stats().Breaks >= 1 })
	waitFor(t, 10*time.Second, "the subscription to be confirmed again", c.Subscribed)

	m := collect(t, r)
	n := ns(s.Namespace)
	broken, points := m.sumWhere("tiercache.subscription.events", "{event}", func(a attribute.Set) bool {
		v, _ := a.Value("tiercache.subscription.state")
		return v.AsString() == "Broken"
	})
	if broken < 1 {
		t.Errorf("Broken events = %d, want >= 1", broken)
	}
	for _, a := range points {
		if v, ok := a.Value("error.type"); !ok || v.AsString() == "" {
			t.Errorf("a Broken event without error.type: %s", a.Encoded(nil))
		} else {
			t.Logf("Broken: error.type %q", v.AsString())
		}
	}
	// Confirmed again: by a repair from the namespace's log, which is what
	// a Hub of the default wire version does after a break.
	sub := m.sum("tiercache.subscription.events", "{event}", n, state("Subscribed"))
	rep := m.sum("tiercache.subscription.events", "{event}", n, state("Repaired"))
	if sub != 1 || rep < 1 {
		t.Errorf("Subscribed events = %d, Repaired %d; want 1 (the first) and >= 1", sub, rep)
	}
	if got := m.gauge("tiercache.subscription.up", "{subscription}", n); got != 1 {
		t.Errorf("up = %d once confirmed again, want 1", got)
	}
}

// tiercache.reads counts every key a read call asked for once, by how it
// was answered, so a hit ratio is one query: the local and remote results
// over all of them.
func TestReadsGiveTheHitRatio(t *testing.T) {
	s := redistest.New(t)
	obs, r := newObserver(t, tiercacheotel.Options{})
	a := newCache(t, newHub(t, s, obs), s.Namespace)
	b := newCache(t, newHub(t, s, nil), s.Namespace) // another process, unobserved

	if err := a.Set(bg, "k", "v"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustGet(t, a, "k", "v") // local
	}
	if err := b.Set(bg, "r", "w"); err != nil {
		t.Fatal(err)
	}
	// So that b's message does not drop what a reads next.
	waitFor(t, 10*time.Second, "b's invalidation to reach a", func() bool { return a.Stats().Invalidations >= 1 })
	mustGet(t, a, "r", "w") // remote
	if _, err := a.Get(bg, "none"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get(none) = %v", err)
	}
	if _, err := a.Fetch(bg, "f", func(context.Context) (string, error) { return "x", nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetMany(bg, []string{"k", "r", "gone"}); err != nil { // local, local, miss
		t.Fatal(err)
	}

	m := collect(t, r)
	n := ns(s.Namespace)
	res := func(r string) attribute.KeyValue { return attribute.String("tiercache.read.result", r) }
	for _, c := range []struct {
		op, result string
		want       int64
	}{
		{"Get", "local", 3}, {"Get", "remote", 1}, {"Get", "miss", 1}, {"Fetch", "loader", 1},
		{"GetMany", "local", 2}, {"GetMany", "miss", 1},
	} {
		if got := m.sum("tiercache.reads", "{key}", n, op(c.op), res(c.result)); got != c.want {
			t.Errorf("reads %s %s = %d, want %d", c.op, c.result, got, c.want)
		}
	}
	hits, _ := m.sumWhere("tiercache.reads", "{key}", func(s attribute.Set) bool {
		v, _ := s.Value("tiercache.read.result")
		return v.AsString() == "local" || v.AsString() == "remote"
	})
	all, sets := m.sumWhere("tiercache.reads", "{key}", func(attribute.Set) bool { return true })
	if hits != 6 || all != 9 {
		t.Errorf("hit ratio %d/%d, want 6/9 (points %v)", hits, all, sets)
	}
}
