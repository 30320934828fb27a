package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

func TestMain(m *testing.M) {
	installGoRedisLog()
	leakcheck.Main(m)
}

// newEnv returns an Env on the server at REDIS_ADDR, or on an embedded one,
// closed (and its namespace deleted) when tb ends.
func newEnv(tb testing.TB) *Env {
	tb.Helper()
	url := ""
	if addr := os.Getenv(redistest.EnvAddr); addr != "" {
		url = "redis://" + addr
	}
	return envAt(tb, url)
}

// embeddedEnv returns an Env on an embedded server, closed when tb ends.
func embeddedEnv(tb testing.TB) *Env {
	tb.Helper()
	return envAt(tb, "")
}

func envAt(tb testing.TB, url string) *Env {
	tb.Helper()
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

// BenchmarkHubLocalHit is BenchmarkLocalHit on a cache made with NewCache on
// a Hub, MaxStaleness at its default and off; unproven/op counts the reads
// the Hub sent to Redis because it could not prove its local tier fresh.
func BenchmarkHubLocalHit(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	ks := keys("hot:", 1000)
	for _, bc := range []struct {
		name string
		ms   time.Duration
	}{{"MaxStaleness=default", 0}, {"MaxStaleness=off", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			in := must[*Instance[string]](b)(NewHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: bc.ms}, nil, tiered.Options[string]{}))
			for i, k := range ks {
				if err := in.Set(ctx, k, value(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := warmLocal(ctx, in.Cache, ks); err != nil {
				b.Fatal(err)
			}
			u0 := in.Stats().Unproven
			n := 0
			loopKeys(b, ks, func(_ int, k string) error { n++; _, err := in.Get(ctx, k); return err })
			b.ReportMetric(float64(in.Stats().Unproven-u0)/float64(max(n, 1)), "unproven/op")
			_ = in.Close()
		})
	}
}

// BenchmarkInvalidationNanosleep is BenchmarkInvalidation with B polled
// between raw nanosleeps of 75µs, MaxStaleness 5ms and off.
func BenchmarkInvalidationNanosleep(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	for _, bc := range []struct {
		name string
		ms   time.Duration
	}{{"MaxStaleness=5ms", 5 * time.Millisecond}, {"MaxStaleness=off", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ins := must[[]*Instance[string]](b)(NewHubInstances(ctx, e, 2, tiered.HubOptions{MaxStaleness: bc.ms}, tiered.Options[string]{}))
			p := must[*InvalidationProbe](b)(NewInvalidationProbe(ctx, ins[0], ins[1], "sleepy:"+bc.name, time.Second))
			p.Pause = DefaultConfig().PollPause
			var lats Latencies
			b.ReportAllocs()
			for b.Loop() {
				tr, err := p.TrialDetail(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lats.add(tr)
			}
			lats.finish()
			b.ReportMetric(float64(lats.P50), "p50-ns")
			b.ReportMetric(float64(lats.P99), "p99-ns")
			b.ReportMetric(float64(lats.Max), "max-ns")
			b.ReportMetric(float64(lats.NeverSeen), "never-seen")
			b.ReportMetric(float64(lats.StaleFor), "stale-for-max-ns")
			for _, in := range ins {
				_ = in.Close()
			}
		})
	}
}

// BenchmarkFrozenSubscription times, per op, how long B (a new instance per
// op, MaxStaleness 5ms, HealthCheck 10s) keeps returning an old value once
// its pub/sub connection is frozen and A writes a new one.
func BenchmarkFrozenSubscription(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	cfg := DefaultConfig()
	proxy := must[*Proxy](b)(NewProxy(e.opts.Network, e.opts.Addr))
	if err := e.Track(proxy); err != nil {
		b.Fatal(err)
	}
	a := must[*Instance[string]](b)(NewHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: cfg.MaxStaleness}, nil, tiered.Options[string]{}))
	var worst, staleFor time.Duration
	never, i := 0, 0
	for b.Loop() {
		tr, err := frozenTrial(ctx, e, cfg, a, proxy, cfg.MaxStaleness, "frozen:"+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		i++
		if !tr.Seen {
			never++
		}
		worst = max(worst, tr.Latency)
		staleFor = max(staleFor, tr.StaleFor)
	}
	b.ReportMetric(float64(worst), "max-ns")
	b.ReportMetric(float64(staleFor), "stale-for-max-ns")
	b.ReportMetric(float64(never), "never-seen")
}

// ------------------------------------------------------------------ tests

func TestLocalHitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	ks := keys("hot:", 100)
	in := must[*Instance[string]](t)(WarmInstance(ctx, newEnv(t), ks))
	if allocs := localHitAllocs(t, in.Cache, ks); allocs != 0 {
		t.Errorf("a local hit allocates %v times, want 0", allocs)
	}
}

// localHitAllocs returns the allocations per Get of ks on c, counted over
// Gets that the local tier answered. A Hub that cannot prove its local
// tiers fresh (its subscriber starved for a moment, as happens under -race
// on a busy machine) sends reads to Redis, which allocate. So each attempt
// starts right after a local hit (a fresh proof, which lasts MaxStaleness)
// and is short (200 Gets); one that included a Redis read is thrown away and
// taken again, up to 50 times.
func localHitAllocs(t *testing.T, c *tiered.Cache[string], ks []string) float64 {
	t.Helper()
	ctx := context.Background()
	get := func(k string) {
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	var allocs float64
	var unproven, remote uint64
	for range 50 {
		deadline := time.Now().Add(time.Second)
		for h := c.Stats().LocalHits; time.Now().Before(deadline); {
			get(ks[0])
			if c.Stats().LocalHits > h {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		i := 0
		s0 := c.Stats()
		allocs = testing.AllocsPerRun(200, func() {
			get(ks[i%len(ks)])
			i++
		})
		s1 := c.Stats()
		if s1.RemoteHits == s0.RemoteHits && s1.Unproven == s0.Unproven {
			return allocs
		}
		unproven += s1.Unproven - s0.Unproven
		remote += s1.RemoteHits - s0.RemoteHits
	}
	t.Logf("every attempt included reads sent to Redis (%d unproven, %d answered by Redis in all)", unproven, remote)
	return allocs
}

// TestHubLocalHitAllocatesNothing checks a local hit on a Hub's cache, with
// MaxStaleness at its default and off.
func TestHubLocalHitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ks := keys("hot:", 100)
	for _, ms := range []time.Duration{0, -1} {
		in := must[*Instance[string]](t)(NewHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: ms}, nil, tiered.Options[string]{}))
		for i, k := range ks {
			if err := in.Set(ctx, k, value(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := warmLocal(ctx, in.Cache, ks); err != nil {
			t.Fatal(err)
		}
		if allocs := localHitAllocs(t, in.Cache, ks); allocs != 0 {
			t.Errorf("MaxStaleness %v: a local hit on a Hub's cache allocates %v times, want 0", ms, allocs)
		}
	}
}

// tinyConfig runs every scenario in a second or two, even under -race.
func tinyConfig() Config {
	return Config{
		Instances:         3,
		Duration:          60 * time.Millisecond,
		Rounds:            2,
		WarmKeys:          50,
		ZipfKeys:          5_000,
		ZipfLocalSize:     500,
		ZipfWorkers:       2,
		ZipfWarmup:        50 * time.Millisecond,
		ZipfWarmupMax:     2 * time.Second,
		StampedeCallers:   40,
		StampedeDelay:     50 * time.Millisecond,
		LeaseTTL:          50 * time.Millisecond,
		LeaseTrials:       2,
		ExpiredLeaseTTL:   50 * time.Millisecond,
		ExpiredTrials:     10,
		Trials:            20,
		NeverSeen:         time.Second,
		MaxStaleness:      5 * time.Millisecond,
		Settle:            100 * time.Millisecond,
		HubCaches:         30,
		IdleFor:           100 * time.Millisecond,
		PollPause:         75 * time.Microsecond,
		FrozenTrials:      2,
		FrozenCap:         300 * time.Millisecond,
		FrozenHealthCheck: 10 * time.Second,
		Separate:          false, // in CI, leave the other test binaries their CPUs
	}
}

func TestScenariosRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cfg := tinyConfig()
	results := map[string]Result{}
	rep := NewReport(e, cfg)
	// The stale hunt runs much longer than MaxStaleness. Its staleness bound
	// holds by construction, on a loaded CI machine under -race too, where
	// goroutines can wait many milliseconds for a CPU.
	hunt := cfg
	hunt.Duration = 250 * time.Millisecond
	for _, name := range ScenarioNames {
		if name == "hub" || name == "lag" || name == "outage" {
			continue // TestHubScenario, TestLagScenario, TestOutageScenario
		}
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
		rep.Add(r, time.Since(t0))
	}
	checkWidth(t, rep)

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
	checkStampede(t, results["stampede"].(*StampedeResult))
	checkBatch(t, results["batch"].(*BatchResult))
	checkLease(t, cfg, results["lease"].(*LeaseResult))
	inv := results["invalidation"].(*InvalidationResult)
	if inv.NeverSeen != 0 || len(inv.Latencies) != cfg.Trials {
		t.Errorf("invalidation: %d of %d trials never seen", inv.NeverSeen, cfg.Trials)
	}
	sh := results["stalehunt"].(*StaleResult)
	for _, h := range []HuntResult{sh.Fenced, sh.Off} {
		if h.Writes == 0 || h.Reads == 0 {
			t.Errorf("stalehunt, %s: %d writes, %d reads", maxStalenessLabel(h.MaxStaleness), h.Writes, h.Reads)
		}
		if h.StaleInstances != 0 {
			t.Errorf("stalehunt, %s: %d instances serve an old version %v after the last write",
				maxStalenessLabel(h.MaxStaleness), h.StaleInstances, hunt.Settle)
		}
		t.Logf("stalehunt, %s: %d writes, %d reads (%d by Redis, %d unproven), %d stale, worst staleness %v",
			maxStalenessLabel(h.MaxStaleness), h.Writes, h.Reads, h.RemoteReads, h.Unproven, h.Stale, h.Worst)
	}
	// Not asserted (yet): with several goroutines reading one instance, a Get
	// that finds its Hub's proof too old joins a Redis read of the same key
	// that may have begun before a write acknowledged more than MaxStaleness
	// earlier; the fence guards local hits only. Under CPU contention this
	// shows now and then (1 read in 31,359, 6.8ms behind). Assert it once
	// joins respect MaxStaleness.
	if f := sh.Fenced; f.Stale != 0 {
		t.Logf("stalehunt: %d of %d reads older than a version acknowledged %v (MaxStaleness) before, worst staleness %v",
			f.Stale, f.Reads, hunt.MaxStaleness, f.Worst)
	}
	sl := results["nanosleep"].(*NanosleepResult)
	for _, set := range sl.Settings {
		for _, l := range []Latencies{set.Fenced, set.Off} {
			if l.Trials != cfg.Trials || l.NeverSeen != 0 {
				t.Errorf("nanosleep, GOMAXPROCS %d: %d of %d trials never seen", set.Procs, l.NeverSeen, l.Trials)
			}
		}
		// The guarantee of MaxStaleness, whatever the scheduler does, for
		// one goroutine reading B (with two, a Get may join another's
		// Redis read: see stalehunt above).
		if set.Pollers == 1 && set.Fenced.StaleFor > cfg.MaxStaleness {
			t.Errorf("nanosleep, GOMAXPROCS %d: a read that began %v after the ack returned the old value, MaxStaleness %v",
				set.Procs, set.Fenced.StaleFor, cfg.MaxStaleness)
		}
		t.Logf("nanosleep, GOMAXPROCS %d, %d pollers: p99 %v, max %v, stale for %v; off: p99 %v, max %v, stale for %v",
			set.Procs, set.Pollers, set.Fenced.P99, set.Fenced.Max, set.Fenced.StaleFor, set.Off.P99, set.Off.Max, set.Off.StaleFor)
	}
	fr := results["frozen"].(*FrozenResult)
	if len(fr.Fenced) != cfg.FrozenTrials || len(fr.Off) != 1 {
		t.Errorf("frozen: %d and %d trials", len(fr.Fenced), len(fr.Off))
	}
	for _, tr := range fr.Fenced {
		if !tr.Seen || tr.StaleFor > cfg.MaxStaleness {
			t.Errorf("frozen: with MaxStaleness %v, B served the old value for %v after the ack (seen within %v: %v)",
				cfg.MaxStaleness, tr.StaleFor, cfg.FrozenCap, tr.Seen)
		}
	}
	t.Logf("frozen: %+v; off: %+v", fr.Fenced, fr.Off)
}

// checkWidth prints rep and fails t if a line is wider than Width.
func checkWidth(t *testing.T, rep *Report) {
	t.Helper()
	var b strings.Builder
	rep.PrintHeader(&b)
	for _, s := range rep.Scenarios {
		PrintScenario(&b, s)
	}
	rep.PrintSummary(&b)
	for l := range strings.Lines(b.String()) {
		l = strings.TrimSuffix(l, "\n")
		if n := width(l); n > Width {
			t.Errorf("report line of %d columns, want <= %d: %q", n, Width, l)
		}
	}
	if !strings.Contains(b.String(), " targets pass") {
		t.Errorf("report has no summary line:\n%s", b.String())
	}
	if testing.Verbose() {
		t.Log("\n" + b.String())
	}
}

// servers are the Envs a scenario test runs on: the embedded server, and
// the one at REDIS_ADDR when it is set.
func servers() map[string]func(testing.TB) *Env {
	envs := map[string]func(testing.TB) *Env{"embedded": embeddedEnv}
	if os.Getenv(redistest.EnvAddr) != "" {
		envs["real"] = newEnv
	}
	return envs
}

// TestHubScenario runs the hub scenario on the embedded server, and on the
// one at REDIS_ADDR when it is set, with tiny durations.
func TestHubScenario(t *testing.T) {
	for name, env := range servers() {
		t.Run(name, func(t *testing.T) {
			e := env(t)
			cfg := tinyConfig()
			res, err := RunScenario(context.Background(), e, cfg, "hub")
			if err != nil {
				t.Fatal(err)
			}
			r := res.(*HubResult)
			if got := r.Hub.pubsubFigure(); got != 1 || r.Hub.PubSubSeen != 1 {
				t.Errorf("one hub: %d pub/sub connections (the client saw %d), want 1", got, r.Hub.PubSubSeen)
			}
			if got := r.Own.pubsubFigure(); got != cfg.HubCaches || r.Own.PubSubSeen != cfg.HubCaches {
				t.Errorf("%d × New: %d pub/sub connections (the client saw %d), want %d", cfg.HubCaches, got, r.Own.PubSubSeen, cfg.HubCaches)
			}
			if r.Hub.Goroutines > r.HubGoroutines || r.Hub.Goroutines < 1 {
				t.Errorf("one hub: %d goroutines added (%v), want 1 to %d", r.Hub.Goroutines, r.Hub.Started, r.HubGoroutines)
			}
			if r.Own.Goroutines < cfg.HubCaches {
				t.Errorf("%d × New: %d goroutines added (%v), want at least %d", cfg.HubCaches, r.Own.Goroutines, r.Own.Started, cfg.HubCaches)
			}
			if !(r.OnNs > 0 && r.OffNs > 0 && r.BareNs > 0) {
				t.Errorf("hub: local hit figures missing: %+v", r)
			}
			if r.Hub.IdleCPU < 0 || r.Own.IdleCPU < 0 {
				t.Logf("idle CPU not measured: %s", r.Hub.IdleCPUNote)
			}
			t.Logf("hub: %d goroutines %v, CPU %.3f%%; %d × New: %d goroutines, CPU %.3f%%; hit %.1f / %.1f / bare %.1f ns",
				r.Hub.Goroutines, r.Hub.Started, 100*r.Hub.IdleCPU, cfg.HubCaches, r.Own.Goroutines, 100*r.Own.IdleCPU, r.OnNs, r.OffNs, r.BareNs)
			rep := NewReport(e, cfg)
			rep.Add(r, time.Second)
			checkWidth(t, rep)
		})
	}
}

func TestScenariosSkipWithOneInstance(t *testing.T) {
	cfg := tinyConfig()
	cfg.Instances = 1
	for _, name := range []string{"invalidation", "stalehunt", "lag"} {
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
	// A key of a SubNamespace, which Close must delete too.
	sub := e.SubNamespace("sub")
	if err := s.Client.Set(ctx, sub+":x", "1", time.Minute).Err(); err != nil {
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
	for _, k := range []string{sub + ":x"} {
		if n, err := s.Client.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s still exists after Close (exists=%d, %v)", k, n, err)
		}
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
