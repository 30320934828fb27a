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

	"github.com/tiercache/tiercache/internal/invalidate"
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

	// Pause, when positive, makes B's poller sleep that long between two
	// polls in a raw nanosleep system call (see nanosleep), as a goroutine
	// that polls something else would; 0: a tight loop.
	Pause time.Duration
	// BeforeSet, when not nil, runs after B's poller has started and just
	// before A's Set (to break something, say); an error ends the trial.
	BeforeSet func() error

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

// holdsKey waits (up to 2s) until two Gets in a row on B, the second a
// local hit, show that B's local tier holds the key and may serve it: a Hub
// sends reads to Redis while it cannot prove its local tiers fresh.
func (p *InvalidationProbe) holdsKey(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := p.B.Get(ctx, p.Key); err != nil {
			return err
		}
		h := p.B.Stats().LocalHits
		if _, err := p.B.Get(ctx, p.Key); err != nil {
			return err
		}
		if p.B.Stats().LocalHits == h+1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: B's local tier does not serve the key (%d reads unproven)", p.B.Stats().Unproven)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TrialResult is what one invalidation trial saw.
type TrialResult struct {
	// Latency is from A's Set returning until B's Get returned the new
	// value (negative when B saw it before A's Set returned).
	Latency time.Duration
	// Seen says whether B saw the new value within NeverSeen.
	Seen bool
	// StaleFor is how long after A's Set returned the last Get on B that
	// returned the old value began (negative: none began after it).
	StaleFor time.Duration
}

// Trial runs one trial and returns the latency (negative when B saw the
// value before A's Set returned) and whether B saw the value within
// NeverSeen.
func (p *InvalidationProbe) Trial(ctx context.Context) (time.Duration, bool, error) {
	r, err := p.TrialDetail(ctx)
	return r.Latency, r.Seen, err
}

// TrialDetail runs one trial.
func (p *InvalidationProbe) TrialDetail(ctx context.Context) (TrialResult, error) {
	var res TrialResult
	// B must hold the current value locally, and no older invalidation may
	// still be on its way to B.
	if err := waitUntil(ctx, 5*time.Second, func() bool { return p.B.Stats().Invalidations-p.inv0 >= p.writes }); err != nil {
		return res, fmt.Errorf("bench: B has not applied A's earlier invalidations: %w", err)
	}
	if err := p.holdsKey(ctx); err != nil {
		return res, err
	}

	want := "v" + strconv.FormatUint(p.writes, 10)
	base := time.Now()
	var (
		started, abort atomic.Bool
		ackAt          atomic.Int64 // ns since base; 0 until A's Set returned
		seenAt         int64
		oldAt          int64 = -1 // when the last Get that returned the old value began; -1: none
		pollErr        error
		done           = make(chan struct{})
		every          = 63 // polls between two looks at the clock, minus one
	)
	if p.Pause > 0 {
		every = 0
	}
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			began := int64(time.Since(base))
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
			oldAt = began
			if i&every == 0 {
				if abort.Load() {
					return
				}
				if a := ackAt.Load(); a != 0 && int64(time.Since(base))-a > int64(p.NeverSeen) {
					return
				}
			}
			if p.Pause > 0 {
				nanosleep(p.Pause)
			}
		}
	}()
	for !started.Load() {
		runtime.Gosched()
	}
	var err error
	if p.BeforeSet != nil {
		err = p.BeforeSet()
	}
	if err == nil {
		err = p.A.Set(ctx, p.Key, want)
	}
	ack := max(int64(time.Since(base)), 1)
	ackAt.Store(ack)
	if err != nil {
		abort.Store(true)
		<-done
		return res, err
	}
	p.writes++
	<-done
	if pollErr != nil {
		return res, pollErr
	}
	res.StaleFor = -1
	if oldAt >= 0 {
		res.StaleFor = time.Duration(oldAt - ack)
	}
	if seenAt == 0 {
		return res, nil
	}
	res.Latency, res.Seen = time.Duration(seenAt-ack), true
	return res, nil
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

// HuntResult is what one stale-read hunt found.
type HuntResult struct {
	MaxStaleness    time.Duration `json:"max_staleness_ns"` // negative: off
	Readers         int           `json:"reader_instances"`
	PerReader       int           `json:"goroutines_per_reader"`
	Procs           int           `json:"gomaxprocs"`
	Elapsed         time.Duration `json:"elapsed_ns"`
	Writes          int64         `json:"writes"`
	WriterRate      float64       `json:"writer_sets_per_sec"`
	PlainLoadedRate float64       `json:"plain_sets_per_sec_readers_running"`
	PublishRate     float64       `json:"plain_publishes_per_sec_readers_running"`
	LoadedRatio     float64       `json:"ratio_to_plain_readers_running"`
	Ratio           float64       `json:"ratio_to_plain_alone"`
	Reads           uint64        `json:"reads"`
	RemoteReads     uint64        `json:"reads_answered_by_redis"`
	Unproven        uint64        `json:"reads_unproven"`
	Behind          uint64        `json:"reads_behind_newest_ack"`
	Stale           uint64        `json:"stale_reads"`
	Worst           time.Duration `json:"worst_staleness_ns"`
	StaleInstances  int           `json:"instances_stale_after_settle"`
	WakeP99         time.Duration `json:"wakeup_delay_p99_ns"`
	WakeMax         time.Duration `json:"wakeup_delay_max_ns"`
}

// StaleResult is the stale hunt with MaxStaleness on and off, and plain SETs
// alone.
type StaleResult struct {
	Grace     time.Duration `json:"grace_ns"`
	Settle    time.Duration `json:"settle_ns"`
	PlainRate float64       `json:"plain_sets_per_sec"`
	Fenced    HuntResult    `json:"max_staleness_on"`
	Off       HuntResult    `json:"max_staleness_off"`
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
		if time.Now().After(deadline) { // each time: a starved SET can take many milliseconds
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}

// plainPublishRate times plain PUBLISHes of payload on channel for d.
func plainPublishRate(ctx context.Context, e *Env, channel string, payload []byte, d time.Duration) (float64, error) {
	c := e.NewClient(nil)
	start := time.Now()
	deadline := start.Add(d)
	for n := 1; ; n++ {
		if err := c.Publish(ctx, channel, payload).Err(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
	}
}

// StaleHunt runs the stale-read hunt (see hunt) with MaxStaleness
// cfg.MaxStaleness, then again with it off, then times plain SETs alone.
// A read is stale if it returns a version older than one acknowledged
// cfg.MaxStaleness before it began.
func StaleHunt(ctx context.Context, e *Env, cfg Config) (*StaleResult, error) {
	if cfg.Instances < 2 {
		return nil, errors.New("bench: stalehunt needs -instances >= 2")
	}
	r := &StaleResult{Grace: cfg.MaxStaleness, Settle: cfg.Settle}
	var err error
	if r.Fenced, err = hunt(ctx, e, cfg, cfg.MaxStaleness, "stale:fenced"); err != nil {
		return nil, err
	}
	if r.Off, err = hunt(ctx, e, cfg, -1, "stale:off"); err != nil {
		return nil, err
	}
	cfg.Progress.Update("stalehunt: plain SETs alone, %v", cfg.Duration)
	if r.PlainRate, err = plainSetRate(ctx, e, "stale:plain", cfg.Duration); err != nil {
		return nil, err
	}
	cfg.Progress.Done()
	r.Fenced.Ratio = r.Fenced.WriterRate / r.PlainRate
	r.Off.Ratio = r.Off.WriterRate / r.PlainRate
	return r, nil
}

// hunt has one instance (a Hub of its own with MaxStaleness ms) write 1, 2,
// 3, … to key as fast as it can for cfg.Duration while the other instances
// read it in tight loops, GOMAXPROCS goroutines each, and counts reads that
// return a version older than one acknowledged cfg.MaxStaleness before the
// read began. It checks that every instance serves the last version
// cfg.Settle after it was written, then times plain SETs while the same
// readers spin on their (now local) hits. It closes its instances.
func hunt(ctx context.Context, e *Env, cfg Config, ms time.Duration, key string) (HuntResult, error) {
	r := HuntResult{MaxStaleness: ms, PerReader: runtime.GOMAXPROCS(0)}
	ins, err := NewHubInstances(ctx, e, cfg.Instances, tiered.HubOptions{MaxStaleness: ms}, tiered.Options[int]{})
	if err != nil {
		return r, err
	}
	defer func() {
		for _, in := range ins {
			_ = in.Close()
		}
	}()
	label := "MaxStaleness " + ms.String()
	if ms < 0 {
		label = "MaxStaleness off"
	}
	writer, readers := ins[0], ins[1:]
	r.Readers = len(readers)
	// acks[v] is when the Set of v returned, in ns since base; acked is the
	// newest v whose acks[v] is written.
	capacity := int(min(max(cfg.Duration/time.Microsecond, 1<<16), 1<<24))
	acks := make([]int64, capacity)
	var acked atomic.Int64
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	if err := writer.Set(ctx, key, 0); err != nil {
		return r, err
	}
	acks[0] = now()
	for _, rd := range readers {
		if err := waitUntil(ctx, 5*time.Second, func() bool { v, err := rd.Get(ctx, key); return err == nil && v == 0 }); err != nil {
			return r, fmt.Errorf("bench: a reader does not see the first version: %w", err)
		}
	}
	var s0 []tiered.Stats
	for _, rd := range readers {
		s0 = append(s0, rd.Stats())
	}
	restore := separateProcs(cfg)
	defer restore()
	r.Procs = runtime.GOMAXPROCS(0)

	// Phase 1: the hunt.
	type tally struct {
		reads, behind, stale uint64
		worst                int64
		_                    [64]byte // each reader writes its own cache line
	}
	spinning := len(readers) * r.PerReader
	tallies := make([]tally, spinning)
	grace := int64(cfg.MaxStaleness)
	stopReaders := spinners(spinning, func(i int, stop *atomic.Bool) error {
		rd, t := readers[i/r.PerReader], &tallies[i]
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
		cfg.Progress.Update("stalehunt, %s: hunting, %v of %v, %d writes", label,
			time.Since(base).Round(100*time.Millisecond), cfg.Duration, acked.Load())
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
		if acks[v] > int64(deadline.Sub(base)) {
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
		return r, err
	}
	r.Writes = last
	r.WriterRate = float64(last) / r.Elapsed.Seconds()
	for _, t := range tallies {
		r.Reads += t.reads
		r.Behind += t.behind
		r.Stale += t.stale
		r.Worst = max(r.Worst, time.Duration(t.worst))
	}
	for i, rd := range readers {
		s := rd.Stats()
		r.RemoteReads += s.RemoteHits - s0[i].RemoteHits
		r.Unproven += s.Unproven - s0[i].Unproven
	}
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
			return r, err
		}
		if int64(got) != last {
			r.StaleInstances++
		}
	}

	// Phase 3: plain SETs while the same readers spin on (now local) hits.
	cfg.Progress.Update("stalehunt, %s: plain SETs with the readers running, %v", label, cfg.Duration)
	stopReaders = spinners(spinning, func(i int, stop *atomic.Bool) error {
		rd := readers[i/r.PerReader]
		for !stop.Load() {
			if _, err := rd.Get(ctx, key); err != nil {
				return err
			}
		}
		return nil
	})
	r.PlainLoadedRate, err = plainSetRate(ctx, e, "stale:plain", cfg.Duration)
	if err == nil {
		// What the writer's PUBLISH costs: an invalidation of a key nobody
		// holds, sent to the same subscribers.
		cfg.Progress.Update("stalehunt, %s: plain PUBLISHes with the readers running, %v", label, cfg.Duration)
		msg := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{"stale:none"}}.Append(nil)
		r.PublishRate, err = plainPublishRate(ctx, e, invalidate.Channel(e.Namespace), msg, cfg.Duration)
	}
	if err := errors.Join(err, stopReaders()); err != nil {
		return r, err
	}
	r.LoadedRatio = r.WriterRate / r.PlainLoadedRate
	return r, nil
}

func (r *StaleResult) Name() string { return "stalehunt" }
func (r *StaleResult) Title() string {
	return fmt.Sprintf("stalehunt: 1 writer Sets 1, 2, 3, … on one key for %v while %d other instances × %d "+
		"goroutines Get it in tight loops; MaxStaleness %v, then off", r.Fenced.Elapsed.Round(10*time.Millisecond),
		r.Fenced.Readers, r.Fenced.PerReader, r.Fenced.MaxStaleness)
}
func (r *StaleResult) Rows() []Row {
	f, o := r.Fenced, r.Off
	return []Row{
		Section(maxStalenessLabel(f.MaxStaleness) + ":"),
		{Measure: "  reads (by Redis; unproven)", Tiered: fmt.Sprintf("%d (%d; %d)", f.Reads, f.RemoteReads, f.Unproven)},
		{Measure: fmt.Sprintf("  stale: older than a version acked %v before", r.Grace), Tiered: strconv.FormatUint(f.Stale, 10),
			Target: "0", OK: f.Stale == 0, RedisBound: true},
		{Measure: "  reads behind the newest acked version", Tiered: strconv.FormatUint(f.Behind, 10)},
		{Measure: "  worst staleness", Tiered: dur(f.Worst)},
		{Measure: fmt.Sprintf("  instances old %v after the last write", r.Settle), Tiered: strconv.Itoa(f.StaleInstances),
			Target: "0", OK: f.StaleInstances == 0},
		{Measure: "  writer Sets/s vs SETs/s, same readers", Tiered: fmt.Sprintf("%.0f", f.WriterRate),
			Baseline: fmt.Sprintf("%.0f", f.PlainLoadedRate), Ratio: ratio(f.LoadedRatio), Target: ">= 0.8x", OK: f.LoadedRatio >= 0.8, RedisBound: true},
		{Measure: "  writer Sets/s vs SETs/s alone", Tiered: fmt.Sprintf("%.0f", f.WriterRate),
			Baseline: fmt.Sprintf("%.0f", r.PlainRate), Ratio: ratio(f.Ratio)},
		{Measure: fmt.Sprintf("  control: PUBLISH/s to %d subscribers vs SET/s", f.Readers+1),
			Tiered: fmt.Sprintf("%.0f", f.PublishRate), Baseline: fmt.Sprintf("%.0f", f.PlainLoadedRate), Ratio: ratio(f.PublishRate / f.PlainLoadedRate)},
		{Measure: "  wake-up delay (1ms sleeps) p99 / max", Tiered: dur(f.WakeP99) + " / " + dur(f.WakeMax)},
		Section("control, " + maxStalenessLabel(o.MaxStaleness) + ":"),
		{Measure: "  reads (by Redis)", Tiered: fmt.Sprintf("%d (%d)", o.Reads, o.RemoteReads)},
		{Measure: fmt.Sprintf("  stale: older than a version acked %v before", r.Grace), Tiered: strconv.FormatUint(o.Stale, 10)},
		{Measure: "  worst staleness", Tiered: dur(o.Worst)},
		{Measure: fmt.Sprintf("  instances old %v after the last write", r.Settle), Tiered: strconv.Itoa(o.StaleInstances),
			Target: "0", OK: o.StaleInstances == 0},
		{Measure: "  writer Sets/s vs SETs/s, same readers", Tiered: fmt.Sprintf("%.0f", o.WriterRate),
			Baseline: fmt.Sprintf("%.0f", o.PlainLoadedRate), Ratio: ratio(o.LoadedRatio)},
		{Measure: fmt.Sprintf("  PUBLISH/s to %d subscribers vs SET/s", o.Readers+1),
			Tiered: fmt.Sprintf("%.0f", o.PublishRate), Baseline: fmt.Sprintf("%.0f", o.PlainLoadedRate), Ratio: ratio(o.PublishRate / o.PlainLoadedRate)},
		{Measure: "  wake-up delay (1ms sleeps) p99 / max", Tiered: dur(o.WakeP99) + " / " + dur(o.WakeMax)},
	}
}
func (r *StaleResult) Notes() []string {
	var join []string
	if r.Fenced.Stale > 0 {
		join = append(join, "stale reads with MaxStaleness on: one path is a Get that finds its Hub's proof too old "+
			"and joins another goroutine's Redis read of the key that began before the write (the fence guards "+
			"local hits, not joins)")
	}
	return append(join,
		fmt.Sprintf("%d and %d versions written; worst staleness: how long before a read began the version after "+
			"the one it returned had been acknowledged", r.Fenced.Writes, r.Off.Writes),
		fmt.Sprintf("each instance has a client and a Hub of its own; the hunts and the SETs beside the readers ran "+
			"with GOMAXPROCS %d; the wake-up delay is how long a runnable goroutine waited for a CPU meanwhile", r.Fenced.Procs),
		"unproven: reads the Hub sent to Redis because it could not prove its local tier fresh; SETs and "+
			"PUBLISHes (plain, one client) were timed while the same readers spun on local hits; a Set is a SET "+
			"and a PUBLISH to every instance subscribed (here all of them, in this process): the PUBLISH rows "+
			"show what that fan-out alone costs",
	)
}
