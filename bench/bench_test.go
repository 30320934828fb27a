package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// newEnv returns an Env on the server at REDIS_ADDR, or on an embedded one,
// closed (and its namespace deleted) when tb ends.
func newEnv(tb testing.TB) *Env {
	tb.Helper()
	url := ""
	if addr := os.Getenv(redistest.EnvAddr); addr != "" {
		url = "redis://" + addr
	}
	e, err := NewEnv(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// must returns a function that returns v, failing tb if err is not nil:
// must[T](tb)(f()).
func must[T any](tb testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

// ------------------------------------------------------------- benchmarks

// loopKeys calls op on ks in turn, as many times as b asks, failing on the
// first error.
func loopKeys(b *testing.B, ks []string, op func(i int, key string) error) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := op(i, ks[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(ks) {
			i = 0
		}
	}
}

// loopKeysParallel is loopKeys from GOMAXPROCS goroutines, each starting at
// its own place in ks.
func loopKeysParallel(b *testing.B, ks []string, op func(key string) error) {
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)*7919) % len(ks)
		for pb.Next() {
			if err := op(ks[i]); err != nil {
				b.Error(err)
				return
			}
			if i++; i == len(ks) {
				i = 0
			}
		}
	})
}

func BenchmarkLocalHit(b *testing.B) {
	ctx := context.Background()
	ks := keys("hot:", 1000)
	in := must[*Instance[string]](b)(WarmInstance(ctx, newEnv(b), ks))
	loopKeys(b, ks, func(_ int, k string) error { _, err := in.Get(ctx, k); return err })
}

func BenchmarkLocalHitParallel(b *testing.B) {
	ctx := context.Background()
	ks := keys("hot:", 1000)
	in := must[*Instance[string]](b)(WarmInstance(ctx, newEnv(b), ks))
	loopKeysParallel(b, ks, func(k string) error { _, err := in.Get(ctx, k); return err })
}

var errMiss = errors.New("miss")

func mutexLRUGet(l *MutexLRU) func(string) error {
	return func(k string) error {
		if _, ok := l.Get(k); !ok {
			return errMiss
		}
		return nil
	}
}

func BenchmarkSimpleLRUMutex(b *testing.B) {
	ks := keys("hot:", 1000)
	get := mutexLRUGet(NewMutexLRU(ks))
	loopKeys(b, ks, func(_ int, k string) error { return get(k) })
}

func BenchmarkSimpleLRUMutexParallel(b *testing.B) {
	ks := keys("hot:", 1000)
	loopKeysParallel(b, ks, mutexLRUGet(NewMutexLRU(ks)))
}

func BenchmarkRemoteHit(b *testing.B) {
	ctx := context.Background()
	ks := keys("cold:", 1000)
	in := must[*Instance[string]](b)(ColdInstance(ctx, newEnv(b), ks))
	loopKeys(b, ks, func(_ int, k string) error { _, err := in.Get(ctx, k); return err })
}

func BenchmarkPlainGET(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ks := keys("cold:", 1000)
	if err := e.Populate(ctx, len(ks), func(i int) string { return ks[i] }, value); err != nil {
		b.Fatal(err)
	}
	c := e.NewClient(nil)
	loopKeys(b, ks, func(_ int, k string) error { return c.Get(ctx, e.Key(k)).Err() })
}

func BenchmarkSet(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ins := must[[]*Instance[string]](b)(NewInstances(ctx, e, DefaultConfig().Instances, tiered.Options[string]{}))
	w := ins[0]
	ks := keys("w:", 1000)
	c0 := w.Calls.Snapshot()
	n := 0
	loopKeys(b, ks, func(i int, k string) error { n++; return w.Set(ctx, k, value(i)) })
	b.ReportMetric(float64(w.Calls.Snapshot().Sub(c0).Trips)/float64(n), "round-trips/op")
}

func BenchmarkPlainSET(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	c := e.NewClient(nil)
	ks := keys("w:", 1000)
	loopKeys(b, ks, func(i int, k string) error { return c.Set(ctx, e.Key(k), value(i), keyTTL).Err() })
}

// BenchmarkZipf reads 100,000 keys drawn with Zipf s=1.01 through one
// instance with a LocalSize of 10,000, from GOMAXPROCS goroutines, after a
// warm-up, and reports the local hit ratio.
func BenchmarkZipf(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	cfg := DefaultConfig()
	in := must[*Instance[string]](b)(NewInstance(ctx, e, tiered.Options[string]{LocalSize: cfg.ZipfLocalSize}))
	ks := must[[]string](b)(ZipfKeys(ctx, e, cfg.ZipfKeys))
	if err := ZipfOp(ctx, in, ks, 0)(5 * cfg.ZipfLocalSize); err != nil {
		b.Fatal(err)
	}
	b.Run("s=1.01", func(b *testing.B) {
		s0 := in.Stats()
		var worker atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			op := ZipfOp(ctx, in, ks, worker.Add(1))
			for pb.Next() {
				if err := op(1); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		s1 := in.Stats()
		local := s1.LocalHits - s0.LocalHits
		all := local + s1.RemoteHits - s0.RemoteHits + s1.Misses - s0.Misses
		b.ReportMetric(float64(local)/float64(max(all, 1)), "hit-ratio")
	})
}

// BenchmarkInvalidation times, per op, A's Set of a key that B holds until
// B's polling Get returns the new value.
func BenchmarkInvalidation(b *testing.B) {
	ctx := context.Background()
	ins := must[[]*Instance[string]](b)(NewInstances(ctx, newEnv(b), 2, tiered.Options[string]{}))
	p := must[*InvalidationProbe](b)(NewInvalidationProbe(ctx, ins[0], ins[1], "inv:key", time.Second))
	var lats []time.Duration
	never := 0
	b.ReportAllocs()
	for b.Loop() {
		lat, seen, err := p.Trial(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !seen {
			never++
			continue
		}
		lats = append(lats, max(lat, 0))
	}
	slices.Sort(lats)
	b.ReportMetric(float64(percentile(lats, 50)), "p50-ns")
	b.ReportMetric(float64(percentile(lats, 99)), "p99-ns")
	b.ReportMetric(float64(never), "never-seen")
}

// ------------------------------------------------------------------ tests

func TestLocalHitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	ks := keys("hot:", 100)
	in := must[*Instance[string]](t)(WarmInstance(ctx, newEnv(t), ks))
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := in.Get(ctx, ks[i%len(ks)]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("a local hit allocates %v times, want 0", allocs)
	}
}

// tinyConfig runs every scenario in a second or two, even under -race.
func tinyConfig() Config {
	return Config{
		Instances:       3,
		Duration:        60 * time.Millisecond,
		Rounds:          2,
		WarmKeys:        50,
		ZipfKeys:        5_000,
		ZipfLocalSize:   500,
		ZipfWorkers:     2,
		ZipfWarmup:      50 * time.Millisecond,
		ZipfWarmupMax:   2 * time.Second,
		StampedeCallers: 40,
		StampedeDelay:   50 * time.Millisecond,
		Trials:          20,
		NeverSeen:       time.Second,
		StaleGrace:      5 * time.Millisecond,
		Settle:          100 * time.Millisecond,
		Separate:        false, // in CI, leave the other test binaries their CPUs
	}
}

func TestScenariosRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cfg := tinyConfig()
	results := map[string]Result{}
	// The stale hunt runs longer than its grace, and the grace allows for a
	// loaded CI machine under -race, where goroutines can wait many
	// milliseconds for a CPU (the report uses 5ms).
	hunt := cfg
	hunt.Duration, hunt.StaleGrace = 500*time.Millisecond, 200*time.Millisecond
	for _, name := range ScenarioNames {
		c := cfg
		if name == "stalehunt" {
			c = hunt
		}
		t0 := time.Now()
		r, err := RunScenario(ctx, e, c, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s took %v", name, time.Since(t0).Round(time.Millisecond))
		if len(r.Rows()) == 0 {
			t.Errorf("%s: no rows", name)
		}
		results[name] = r
	}

	lh := results["localhit"].(*LocalHitResult)
	if !(lh.TieredNs > 0 && lh.BareNs > 0 && lh.TieredParNs > 0 && lh.TieredSpeedUp > 0) {
		t.Errorf("localhit: figures missing: %+v", lh)
	}
	rh := results["remotehit"].(*RemoteHitResult)
	if rh.RemoteShare != 1 || rh.TripsPerGet != 1 {
		t.Errorf("remotehit: %.3f of reads answered by Redis in %.3f round trips each, want 1 and 1", rh.RemoteShare, rh.TripsPerGet)
	}
	w := results["write"].(*WriteResult)
	if w.Sets == 0 || w.TripsPerSet != 1 {
		t.Errorf("write: %.3f round trips per Set over %d Sets, want exactly 1", w.TripsPerSet, w.Sets)
	}
	z := results["zipf"].(*ZipfResult)
	if z.Ops == 0 || z.LocalHits == 0 || z.RemoteHits == 0 || z.Misses != 0 {
		t.Errorf("zipf: %d reads: %d local hits, %d Redis hits, %d misses", z.Ops, z.LocalHits, z.RemoteHits, z.Misses)
	}
	st := results["stampede"].(*StampedeResult)
	for _, c := range st.Cases {
		// Each instance loads once, unless (on a very slow machine) its read
		// came after another instance had stored the value.
		for i, l := range c.Loads {
			if l > 1 {
				t.Errorf("stampede %s: instance %d called the loader %d times, want 1", c.Name, i, l)
			}
		}
		if c.Total < 1 || (c.Instances == 1 && c.Total != 1) {
			t.Errorf("stampede %s: %d loader calls", c.Name, c.Total)
		}
		// One read per instance, and one write per load.
		if want := uint64(c.Instances) + c.Total; c.Calls.Trips != want {
			t.Errorf("stampede %s: %v round trips, want %d", c.Name, c.Calls, want)
		}
	}
	inv := results["invalidation"].(*InvalidationResult)
	if inv.NeverSeen != 0 || len(inv.Latencies) != cfg.Trials {
		t.Errorf("invalidation: %d of %d trials never seen", inv.NeverSeen, cfg.Trials)
	}
	sh := results["stalehunt"].(*StaleResult)
	if sh.Writes == 0 || sh.Reads == 0 {
		t.Errorf("stalehunt: %d writes, %d reads", sh.Writes, sh.Reads)
	}
	if sh.StaleInstances != 0 {
		t.Errorf("stalehunt: %d instances serve an old version %v after the last write", sh.StaleInstances, hunt.Settle)
	}
	if sh.Stale != 0 {
		t.Errorf("stalehunt: %d of %d reads older than a version acknowledged %v before, worst staleness %v",
			sh.Stale, sh.Reads, hunt.StaleGrace, sh.Worst)
	}
	t.Logf("stalehunt: %d writes, %d reads, worst staleness %v", sh.Writes, sh.Reads, sh.Worst)
}

func TestScenariosSkipWithOneInstance(t *testing.T) {
	cfg := tinyConfig()
	cfg.Instances = 1
	for _, name := range []string{"invalidation", "stalehunt"} {
		r, err := RunScenario(context.Background(), nil, cfg, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(Skipped); !ok {
			t.Errorf("%s with one instance: %T, want Skipped", name, r)
		}
	}
}

// TestCleanup runs scenarios that leave keys behind in Redis, then checks
// that closing the Env deleted every key of its namespace and nothing else.
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	// A key of the test's own namespace, which the Env must not touch.
	other := s.Namespace + ":keep"
	if err := s.Client.Set(ctx, other, "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	e, err := NewEnv(ctx, "redis://"+s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	for _, name := range []string{"remotehit", "write", "stampede"} {
		if _, err := RunScenario(ctx, e, cfg, name); err != nil {
			_ = e.Close()
			t.Fatal(err)
		}
	}
	n, err := e.CountKeys(ctx)
	if err != nil || n == 0 {
		t.Fatalf("before cleanup: %d keys of %s (%v), want some", n, e.Namespace, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var left []string
	iter := s.Client.Scan(ctx, 0, e.Namespace+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d keys of %s left after Close, e.g. %q", len(left), e.Namespace, left[0])
	}
	if n, err := s.Client.Exists(ctx, other).Result(); err != nil || n != 1 {
		t.Errorf("Close deleted a key of another namespace (exists=%d, %v)", n, err)
	}
	if _, err := NewInstance(ctx, e, tiered.Options[string]{}); err == nil {
		t.Error("NewInstance after Close succeeded")
	}
}

// TestInterruptCleansUp cancels a long scenario part way, as SIGINT does,
// and checks that it returns promptly and that Close still cleans up.
func TestInterruptCleansUp(t *testing.T) {
	e := newEnv(t)
	cfg := tinyConfig()
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := RunScenario(ctx, e, cfg, "zipf")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("zipf after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("zipf took %v to notice the cancel", d)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios(" zipf,localhit,,zipf ")
	if err != nil || !slices.Equal(got, []string{"zipf", "localhit"}) {
		t.Errorf("parseScenarios = %q, %v", got, err)
	}
	if _, err := parseScenarios("zipf,nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := parseScenarios(","); err == nil {
		t.Error("no scenario accepted")
	}
}

func TestCounterSkipsConnectionSetup(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var c Counter
	client := e.NewClient(&c)
	for i := range 5 {
		if err := client.Set(ctx, e.Key("count:"+strconv.Itoa(i)), i, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := c.Snapshot()
	if got.Trips != 5 || got.Names["set"] != 5 {
		t.Errorf("counted %v, want 5 (set×5)", got)
	}
}
