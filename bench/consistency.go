package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// ------------------------------------------------------------ invalidation

// InvalidationResult is the time from a Set's acknowledgement on A until a
// Get on B, polling, returns the new value.
type InvalidationResult struct {
	Trials    int             `json:"trials"`
	NeverSeen int             `json:"never_seen"`
	Early     int             `json:"seen_before_ack"`
	P50       time.Duration   `json:"p50_ns"`
	P90       time.Duration   `json:"p90_ns"`
	P99       time.Duration   `json:"p99_ns"`
	Max       time.Duration   `json:"max_ns"`
	Limit     time.Duration   `json:"never_seen_after_ns"`
	Latencies []time.Duration `json:"-"`
}

// InvalidationProbe runs invalidation trials on one key: B holds the current
// value in its local tier, A writes a new one, B polls until it sees it.
type InvalidationProbe struct {
	A, B      *Instance[string]
	Key       string
	NeverSeen time.Duration

	writes uint64 // A's Sets so far
	inv0   uint64 // B's applied invalidations before A's first Set
}

// NewInvalidationProbe writes the key's first value through A.
func NewInvalidationProbe(ctx context.Context, a, b *Instance[string], key string, neverSeen time.Duration) (*InvalidationProbe, error) {
	p := &InvalidationProbe{A: a, B: b, Key: key, NeverSeen: neverSeen, inv0: b.Stats().Invalidations}
	if err := a.Set(ctx, key, "v0"); err != nil {
		return nil, err
	}
	p.writes = 1
	return p, nil
}

// Trial runs one trial and returns the latency (negative when B saw the
// value before A's Set returned) and whether B saw the value within
// NeverSeen.
func (p *InvalidationProbe) Trial(ctx context.Context) (time.Duration, bool, error) {
	// B must hold the current value locally, and no older invalidation may
	// still be on its way to B.
	if err := waitUntil(ctx, 5*time.Second, func() bool { return p.B.Stats().Invalidations-p.inv0 >= p.writes }); err != nil {
		return 0, false, fmt.Errorf("bench: B has not applied A's earlier invalidations: %w", err)
	}
	held := false
	for range 100 {
		if _, err := p.B.Get(ctx, p.Key); err != nil {
			return 0, false, err
		}
		h := p.B.Stats().LocalHits
		if _, err := p.B.Get(ctx, p.Key); err != nil {
			return 0, false, err
		}
		if p.B.Stats().LocalHits == h+1 {
			held = true
			break
		}
	}
	if !held {
		return 0, false, errors.New("bench: B's local tier does not keep the key")
	}

	want := "v" + strconv.FormatUint(p.writes, 10)
	base := time.Now()
	var (
		started, abort atomic.Bool
		ackAt          atomic.Int64 // ns since base; 0 until A's Set returned
		seenAt         int64
		pollErr        error
		done           = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			v, err := p.B.Get(ctx, p.Key)
			if i == 0 {
				started.Store(true)
			}
			if err != nil {
				pollErr = err
				return
			}
			if v == want {
				seenAt = int64(time.Since(base))
				return
			}
			if i&63 == 0 {
				if abort.Load() {
					return
				}
				if a := ackAt.Load(); a != 0 && int64(time.Since(base))-a > int64(p.NeverSeen) {
					return
				}
			}
		}
	}()
	for !started.Load() {
		runtime.Gosched()
	}
	err := p.A.Set(ctx, p.Key, want)
	ack := max(int64(time.Since(base)), 1)
	ackAt.Store(ack)
	if err != nil {
		abort.Store(true)
		<-done
		return 0, false, err
	}
	p.writes++
	<-done
	if pollErr != nil {
		return 0, false, pollErr
	}
	if seenAt == 0 {
		return 0, false, nil
	}
	return time.Duration(seenAt - ack), true, nil
}

// Invalidation runs cfg.Trials invalidation trials between two instances.
func Invalidation(ctx context.Context, e *Env, cfg Config) (*InvalidationResult, error) {
	if cfg.Instances < 2 {
		return nil, errors.New("bench: invalidation needs -instances >= 2")
	}
	ins, err := NewInstances(ctx, e, cfg.Instances, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	// Only B's poller spins, so GOMAXPROCS stays as it is (see
	// Config.Separate).
	p, err := NewInvalidationProbe(ctx, ins[0], ins[1], "inv:key", cfg.NeverSeen)
	if err != nil {
		return nil, err
	}
	r := &InvalidationResult{Trials: cfg.Trials, Limit: cfg.NeverSeen}
	for i := range cfg.Trials {
		if i%25 == 0 {
			cfg.Progress.Update("invalidation: trial %d/%d", i+1, cfg.Trials)
		}
		lat, seen, err := p.Trial(ctx)
		if err != nil {
			return nil, err
		}
		if !seen {
			r.NeverSeen++
			continue
		}
		if lat < 0 {
			r.Early++
			lat = 0
		}
		r.Latencies = append(r.Latencies, lat)
	}
	cfg.Progress.Done()
	slices.Sort(r.Latencies)
	r.P50, r.P90, r.P99 = percentile(r.Latencies, 50), percentile(r.Latencies, 90), percentile(r.Latencies, 99)
	if len(r.Latencies) > 0 {
		r.Max = r.Latencies[len(r.Latencies)-1]
	}
	return r, nil
}

func (r *InvalidationResult) Name() string { return "invalidation" }
func (r *InvalidationResult) Title() string {
	return fmt.Sprintf("invalidation: A's Set returns → B's polling Get returns the new value (%d trials)", r.Trials)
}
func (r *InvalidationResult) Rows() []Row {
	return []Row{
		{Measure: "p50", Tiered: dur(r.P50)},
		{Measure: "p90", Tiered: dur(r.P90)},
		{Measure: "p99", Tiered: dur(r.P99), Target: "<= 300µs", OK: r.P99 <= 300*time.Microsecond, RedisBound: true},
		{Measure: "max", Tiered: dur(r.Max), Target: "<= 2ms", OK: r.Max <= 2*time.Millisecond, RedisBound: true},
		{Measure: "never seen within " + r.Limit.String(), Tiered: strconv.Itoa(r.NeverSeen), Target: "0", OK: r.NeverSeen == 0},
	}
}
func (r *InvalidationResult) Notes() []string {
	return []string{fmt.Sprintf("B's poll includes its re-read from Redis after the invalidation; %d trials saw the value before A's Set returned (counted as 0)", r.Early)}
}

// --------------------------------------------------------------- stalehunt

// StaleResult is what the stale hunt found.
type StaleResult struct {
	Readers         int           `json:"readers"`
	Procs           int           `json:"gomaxprocs"`
	Elapsed         time.Duration `json:"elapsed_ns"`
	Writes          int64         `json:"writes"`
	WriterRate      float64       `json:"writer_sets_per_sec"`
	PlainRate       float64       `json:"plain_sets_per_sec"`
	PlainLoadedRate float64       `json:"plain_sets_per_sec_readers_running"`
	Ratio           float64       `json:"ratio"`
	LoadedRatio     float64       `json:"ratio_to_plain_readers_running"`
	Reads           uint64        `json:"reads"`
	RemoteReads     uint64        `json:"reads_answered_by_redis"`
	Behind          uint64        `json:"reads_behind_newest_ack"`
	Stale           uint64        `json:"stale_reads"`
	Worst           time.Duration `json:"worst_staleness_ns"`
	StaleInstances  int           `json:"instances_stale_after_settle"`
	WakeP99         time.Duration `json:"wakeup_delay_p99_ns"`
	WakeMax         time.Duration `json:"wakeup_delay_max_ns"`
	Grace           time.Duration `json:"grace_ns"`
	Settle          time.Duration `json:"settle_ns"`
}

// spinners runs body(i, stop) on n goroutines until stop is called; stop
// waits for them and returns the first error.
func spinners(n int, body func(i int, stop *atomic.Bool) error) (stop func() error) {
	var (
		halt atomic.Bool
		wg   sync.WaitGroup
		errs = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			if err := body(i, &halt); err != nil {
				errs[i] = err
				halt.Store(true)
			}
		})
	}
	return func() error {
		halt.Store(true)
		wg.Wait()
		return errors.Join(errs...)
	}
}

// wakeProbe measures how late a goroutine wakes from 1ms sleeps: how long a
// goroutine that becomes runnable waits for a CPU under the current load.
func wakeProbe(stop *atomic.Bool) (lates *[]time.Duration) {
	lates = new([]time.Duration)
	for !stop.Load() {
		t := time.Now()
		time.Sleep(time.Millisecond)
		*lates = append(*lates, max(time.Since(t)-time.Millisecond, 0))
	}
	return lates
}

// plainSetRate times plain SETs of increasing integers to key for d.
func plainSetRate(ctx context.Context, e *Env, key string, d time.Duration) (float64, error) {
	c := e.NewClient(nil)
	k := e.Key(key)
	start := time.Now()
	deadline := start.Add(d)
	for n := int64(1); ; n++ {
		if err := c.Set(ctx, k, n, keyTTL).Err(); err != nil {
			return 0, err
		}
		if n&15 == 0 && time.Now().After(deadline) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}

// StaleHunt has instance 0 write 1, 2, 3, … to one key as fast as it can for
// cfg.Duration while every other instance reads it in a tight loop, and
// counts reads that return a version older than one acknowledged
// cfg.StaleGrace before the read began. It checks that every instance serves
// the last version cfg.Settle after it was written. Then it times plain SETs
// with the same readers spinning on local hits, and plain SETs alone.
func StaleHunt(ctx context.Context, e *Env, cfg Config) (*StaleResult, error) {
	if cfg.Instances < 2 {
		return nil, errors.New("bench: stalehunt needs -instances >= 2")
	}
	ins, err := NewInstances(ctx, e, cfg.Instances, tiered.Options[int]{})
	if err != nil {
		return nil, err
	}
	const key = "stale:counter"
	writer, readers := ins[0], ins[1:]
	// acks[v] is when the Set of v returned, in ns since base; acked is the
	// newest v whose acks[v] is written.
	capacity := int(min(max(cfg.Duration/time.Microsecond, 1<<16), 1<<24))
	acks := make([]int64, capacity)
	var acked atomic.Int64
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	if err := writer.Set(ctx, key, 0); err != nil {
		return nil, err
	}
	acks[0] = now()
	for _, r := range readers {
		if err := waitUntil(ctx, 5*time.Second, func() bool { v, err := r.Get(ctx, key); return err == nil && v == 0 }); err != nil {
			return nil, fmt.Errorf("bench: a reader does not see the first version: %w", err)
		}
	}
	var remote0 uint64
	for _, r := range readers {
		remote0 += r.Stats().RemoteHits
	}
	restore := separateProcs(cfg)
	defer restore()
	r := &StaleResult{Readers: len(readers), Procs: runtime.GOMAXPROCS(0), Grace: cfg.StaleGrace, Settle: cfg.Settle}

	// Phase 1: the hunt.
	type tally struct {
		reads, behind, stale uint64
		worst                int64
		_                    [64]byte // each reader writes its own cache line
	}
	tallies := make([]tally, len(readers))
	grace := int64(cfg.StaleGrace)
	stopReaders := spinners(len(readers), func(i int, stop *atomic.Bool) error {
		rd, t := readers[i], &tallies[i]
		var graced, newest int64 // newest versions acked before start-grace and before start
		for !stop.Load() {
			start := now()
			v, err := rd.Get(ctx, key)
			if err != nil {
				return err
			}
			t.reads++
			lim := acked.Load()
			for graced < lim && acks[graced+1] < start-grace {
				graced++
			}
			for newest < lim && acks[newest+1] < start {
				newest++
			}
			if ver := int64(v); ver < newest {
				t.behind++
				t.worst = max(t.worst, start-acks[ver+1])
				if ver < graced {
					t.stale++
				}
			}
		}
		return nil
	})
	var probeStop atomic.Bool
	var lates *[]time.Duration
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		lates = wakeProbe(&probeStop)
	}()
	stopTicker := cfg.Progress.Ticker(func() {
		cfg.Progress.Update("stalehunt: hunting, %v of %v, %d writes", time.Since(base).Round(100*time.Millisecond), cfg.Duration, acked.Load())
	})
	var werr error
	wstart := time.Now()
	deadline := wstart.Add(cfg.Duration)
	for v := int64(1); v < int64(capacity) && ctx.Err() == nil; v++ {
		if err := writer.Set(ctx, key, int(v)); err != nil {
			werr = err
			break
		}
		acks[v] = now()
		acked.Store(v)
		if v&15 == 0 && time.Now().After(deadline) {
			break
		}
	}
	r.Elapsed = time.Since(wstart)
	last := acked.Load()
	rerr := stopReaders()
	probeStop.Store(true)
	<-probeDone
	stopTicker()
	if err := errors.Join(werr, rerr, ctx.Err()); err != nil {
		return nil, err
	}
	r.Writes = last
	r.WriterRate = float64(last) / r.Elapsed.Seconds()
	for _, t := range tallies {
		r.Reads += t.reads
		r.Behind += t.behind
		r.Stale += t.stale
		r.Worst = max(r.Worst, time.Duration(t.worst))
	}
	for _, rd := range readers {
		r.RemoteReads += rd.Stats().RemoteHits
	}
	r.RemoteReads -= remote0
	slices.Sort(*lates)
	r.WakeP99 = percentile(*lates, 99)
	if n := len(*lates); n > 0 {
		r.WakeMax = (*lates)[n-1]
	}

	// Phase 2: Settle after the last write, every instance serves it.
	time.Sleep(time.Until(base.Add(time.Duration(acks[last]) + cfg.Settle)))
	for _, in := range ins {
		got, err := in.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if int64(got) != last {
			r.StaleInstances++
		}
	}

	// Phase 3: plain SETs while the same readers spin on (now local) hits.
	cfg.Progress.Update("stalehunt: plain SETs with the readers running, %v", cfg.Duration)
	stopReaders = spinners(len(readers), func(i int, stop *atomic.Bool) error {
		for !stop.Load() {
			if _, err := readers[i].Get(ctx, key); err != nil {
				return err
			}
		}
		return nil
	})
	r.PlainLoadedRate, err = plainSetRate(ctx, e, "stale:plain", cfg.Duration)
	if err := errors.Join(err, stopReaders()); err != nil {
		return nil, err
	}

	// Phase 4: plain SETs alone, with the usual GOMAXPROCS.
	restore()
	cfg.Progress.Update("stalehunt: plain SETs alone, %v", cfg.Duration)
	r.PlainRate, err = plainSetRate(ctx, e, "stale:plain", cfg.Duration)
	if err != nil {
		return nil, err
	}
	cfg.Progress.Done()
	r.Ratio = r.WriterRate / r.PlainRate
	r.LoadedRatio = r.WriterRate / r.PlainLoadedRate
	return r, nil
}

func (r *StaleResult) Name() string { return "stalehunt" }
func (r *StaleResult) Title() string {
	return fmt.Sprintf("stalehunt: 1 writer Sets 1, 2, 3, … on one key for %v while %d other instances Get it in tight loops",
		r.Elapsed.Round(10*time.Millisecond), r.Readers)
}
func (r *StaleResult) Rows() []Row {
	return []Row{
		{Measure: "reads (answered by Redis)", Tiered: fmt.Sprintf("%d (%d)", r.Reads, r.RemoteReads)},
		{Measure: fmt.Sprintf("stale reads (older than a version acked %v before)", r.Grace), Tiered: strconv.FormatUint(r.Stale, 10),
			Target: "0", OK: r.Stale == 0, RedisBound: true},
		{Measure: "reads behind the newest acked version (no grace)", Tiered: strconv.FormatUint(r.Behind, 10)},
		{Measure: "worst staleness", Tiered: dur(r.Worst)},
		{Measure: fmt.Sprintf("instances serving an old version %v after the last write", r.Settle), Tiered: strconv.Itoa(r.StaleInstances),
			Target: "0", OK: r.StaleInstances == 0},
		{Measure: "writer Sets/s (readers running) vs plain SETs/s (alone)", Tiered: fmt.Sprintf("%.0f", r.WriterRate),
			Baseline: fmt.Sprintf("%.0f", r.PlainRate), Ratio: ratio(r.Ratio), Target: ">= 0.8x", OK: r.Ratio >= 0.8, RedisBound: true},
		{Measure: "  control: plain SETs/s with the same readers running", Tiered: fmt.Sprintf("%.0f", r.WriterRate),
			Baseline: fmt.Sprintf("%.0f", r.PlainLoadedRate), Ratio: ratio(r.LoadedRatio)},
		{Measure: "  control: goroutine wake-up delay (1ms sleeps) p99 / max", Tiered: dur(r.WakeP99) + " / " + dur(r.WakeMax)},
	}
}
func (r *StaleResult) Notes() []string {
	return []string{
		fmt.Sprintf("%d versions written; worst staleness: how long before a read began the version after the one it returned had been acknowledged", r.Writes),
		fmt.Sprintf("hunt and first control ran with GOMAXPROCS %d; the wake-up delay is how long a runnable goroutine waited for a CPU meanwhile", r.Procs),
	}
}
