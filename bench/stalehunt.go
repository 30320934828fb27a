package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/tiered"
)

// huntResult is what one stale-read hunt found.
type huntResult struct {
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

// staleResult is the stale hunt with MaxStaleness on and off, and plain SETs
// alone.
type staleResult struct {
	Grace     time.Duration `json:"grace_ns"`
	Settle    time.Duration `json:"settle_ns"`
	PlainRate float64       `json:"plain_sets_per_sec"`
	Fenced    huntResult    `json:"max_staleness_on"`
	Off       huntResult    `json:"max_staleness_off"`
}

// wakeDelays samples, until c stops, how late a goroutine wakes from 1ms
// sleeps: how long a goroutine that becomes runnable waits for a CPU under
// the current load.
func wakeDelays(c *crew) []time.Duration {
	var lates []time.Duration
	for !c.done() {
		t := time.Now()
		time.Sleep(time.Millisecond)
		lates = append(lates, max(time.Since(t)-time.Millisecond, 0))
	}
	return lates
}

// plainSetRate times plain SETs of increasing integers to key for d, as
// the writer's Sets are timed.
func plainSetRate(ctx context.Context, e *env, key string, d time.Duration) (float64, error) {
	c, k, n := e.newClient(nil), e.key(key), int64(0)
	s, err := sequential(ctx, d, func() error { n++; return c.Set(ctx, k, n, keyTTL).Err() })
	return s.opsPerSec(), err
}

// plainPublishRate times plain PUBLISHes of payload on channel for d.
func plainPublishRate(ctx context.Context, e *env, channel string, payload []byte, d time.Duration) (float64, error) {
	c := e.newClient(nil)
	s, err := sequential(ctx, d, func() error { return c.Publish(ctx, channel, payload).Err() })
	return s.opsPerSec(), err
}

// staleHunt runs the stale-read hunt (see hunt) with MaxStaleness
// cfg.maxStaleness, then again with it off, then times plain SETs alone.
// A read is stale if it returns a version older than one acknowledged
// cfg.maxStaleness before it began.
func staleHunt(ctx context.Context, e *env, cfg config) (*staleResult, error) {
	if cfg.instances < 2 {
		return nil, errors.New("bench: stalehunt needs -instances >= 2")
	}
	r := &staleResult{Grace: cfg.maxStaleness, Settle: cfg.settle}
	var err error
	if r.Fenced, err = hunt(ctx, e, cfg, cfg.maxStaleness, "stale:fenced"); err != nil {
		return nil, err
	}
	if r.Off, err = hunt(ctx, e, cfg, -1, "stale:off"); err != nil {
		return nil, err
	}
	cfg.progress.update("stalehunt: plain SETs alone, %v", cfg.duration)
	if r.PlainRate, err = plainSetRate(ctx, e, "stale:plain", cfg.duration); err != nil {
		return nil, err
	}
	cfg.progress.done()
	r.Fenced.Ratio = r.Fenced.WriterRate / r.PlainRate
	r.Off.Ratio = r.Off.WriterRate / r.PlainRate
	return r, nil
}

// ledger is the writer's acknowledgements: acks[v] is when the Set of
// version v returned, in ns since base; acked is the newest v whose acks[v]
// is written.
type ledger struct {
	base  time.Time
	acks  []int64
	acked atomic.Int64
}

func (l *ledger) now() int64 { return int64(time.Since(l.base)) }

// write has w Set key to the next version and records its acknowledgement.
func (l *ledger) write(ctx context.Context, w *instance[int], key string) error {
	v := l.acked.Load() + 1
	if v >= int64(len(l.acks)) {
		return fmt.Errorf("bench: stalehunt: more than %d writes", len(l.acks)-1)
	}
	if err := w.Set(ctx, key, int(v)); err != nil {
		return err
	}
	l.acks[v] = l.now()
	l.acked.Store(v)
	return nil
}

// tally is what one reading goroutine counted.
type tally struct {
	reads, behind, stale uint64
	worst                int64
	_                    [64]byte // each reader writes its own cache line
}

// read Gets key from rd until c stops, and counts in t the reads behind the
// newest version acknowledged before they began, and the stale ones: behind
// one acknowledged grace before.
func (l *ledger) read(ctx context.Context, c *crew, rd *instance[int], key string, grace time.Duration, t *tally) error {
	var graced, newest int64 // newest versions acked before start-grace and before start
	for !c.done() {
		start := l.now()
		v, err := rd.Get(ctx, key)
		if err != nil {
			return err
		}
		t.reads++
		lim := l.acked.Load()
		for graced < lim && l.acks[graced+1] < start-int64(grace) {
			graced++
		}
		for newest < lim && l.acks[newest+1] < start {
			newest++
		}
		if ver := int64(v); ver < newest {
			t.behind++
			t.worst = max(t.worst, start-l.acks[ver+1])
			if ver < graced {
				t.stale++
			}
		}
	}
	return nil
}

// hunt has one instance (a Hub of its own with MaxStaleness ms) write 1, 2,
// 3, … to key as fast as it can for cfg.duration while the other instances
// read it in tight loops, GOMAXPROCS goroutines each, and counts reads that
// return a version older than one acknowledged cfg.maxStaleness before the
// read began. It checks that every instance serves the last version
// cfg.settle after it was written, then times plain SETs while the same
// readers spin on their (now local) hits. It closes its instances.
func hunt(ctx context.Context, e *env, cfg config, ms time.Duration, key string) (huntResult, error) {
	r := huntResult{MaxStaleness: ms, PerReader: runtime.GOMAXPROCS(0)}
	ins, err := newHubInstances(ctx, e, cfg.instances, tiered.HubOptions{MaxStaleness: ms}, tiered.Options[int]{})
	if err != nil {
		return r, err
	}
	defer func() {
		for _, in := range ins {
			_ = in.close()
		}
	}()
	label := maxStalenessLabel(ms)
	writer, readers := ins[0], ins[1:]
	r.Readers = len(readers)
	capacity := int(min(max(cfg.duration/time.Microsecond, 1<<16), 1<<24))
	l := &ledger{base: time.Now(), acks: make([]int64, capacity)}
	if err := writer.Set(ctx, key, 0); err != nil {
		return r, err
	}
	l.acks[0] = l.now()
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

	// Phase 1: the hunt, with a goroutine that samples wake-up delays.
	spinning := len(readers) * r.PerReader
	tallies := make([]tally, spinning)
	var hunters crew
	for i := range spinning {
		rd := readers[i/r.PerReader]
		hunters.run(func() error { return l.read(ctx, &hunters, rd, key, cfg.maxStaleness, &tallies[i]) })
	}
	var lates []time.Duration
	hunters.run(func() error { lates = wakeDelays(&hunters); return nil })
	stopTicker := cfg.progress.ticker(func() {
		cfg.progress.update("stalehunt, %s: hunting, %v of %v, %d writes", label,
			time.Since(l.base).Round(100*time.Millisecond), cfg.duration, l.acked.Load())
	})
	s, werr := sequential(ctx, cfg.duration, func() error { return l.write(ctx, writer, key) })
	rerr := hunters.finish()
	stopTicker()
	if err := errors.Join(werr, rerr); err != nil {
		return r, err
	}
	last := l.acked.Load()
	r.Elapsed, r.Writes, r.WriterRate = s.Elapsed, last, s.opsPerSec()
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
	slices.Sort(lates)
	r.WakeP99, r.WakeMax = percentile(lates, 99), percentile(lates, 100)

	// Phase 2: cfg.settle after the last write, every instance serves it.
	time.Sleep(time.Until(l.base.Add(time.Duration(l.acks[last]) + cfg.settle)))
	for _, in := range ins {
		got, err := in.Get(ctx, key)
		if err != nil {
			return r, err
		}
		if int64(got) != last {
			r.StaleInstances++
		}
	}

	// Phase 3: plain SETs, then PUBLISHes, while the same readers spin on
	// (now local) hits.
	cfg.progress.update("stalehunt, %s: plain SETs with the readers running, %v", label, cfg.duration)
	var spinners crew
	for i := range spinning {
		rd := readers[i/r.PerReader]
		spinners.run(func() error {
			for !spinners.done() {
				if _, err := rd.Get(ctx, key); err != nil {
					return err
				}
			}
			return nil
		})
	}
	r.PlainLoadedRate, err = plainSetRate(ctx, e, "stale:plain", cfg.duration)
	if err == nil {
		// What the writer's PUBLISH costs: an invalidation of a key nobody
		// holds, sent to the same subscribers.
		cfg.progress.update("stalehunt, %s: plain PUBLISHes with the readers running, %v", label, cfg.duration)
		msg := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{"stale:none"}}.Append(nil)
		r.PublishRate, err = plainPublishRate(ctx, e, invalidate.Channel(e.namespace), msg, cfg.duration)
	}
	if err := errors.Join(err, spinners.finish()); err != nil {
		return r, err
	}
	r.LoadedRatio = r.WriterRate / r.PlainLoadedRate
	return r, nil
}

func (r *staleResult) name() string { return "stalehunt" }
func (r *staleResult) title() string {
	return fmt.Sprintf("stalehunt: 1 writer Sets 1, 2, 3, … on one key for %v while %d other instances × %d "+
		"goroutines Get it in tight loops; MaxStaleness %v, then off", r.Fenced.Elapsed.Round(10*time.Millisecond),
		r.Fenced.Readers, r.Fenced.PerReader, r.Fenced.MaxStaleness)
}
func (r *staleResult) rows() []row {
	f, o := r.Fenced, r.Off
	return []row{
		section(maxStalenessLabel(f.MaxStaleness) + ":"),
		{Measure: "  reads (by Redis; unproven)", Tiered: fmt.Sprintf("%d (%d; %d)", f.Reads, f.RemoteReads, f.Unproven)},
		{Measure: fmt.Sprintf("  stale: older than a version acked %v before", r.Grace), Tiered: strconv.FormatUint(f.Stale, 10),
			Target: "0", OK: f.Stale == 0, RedisBound: true},
		{Measure: "  reads behind the newest acked version", Tiered: strconv.FormatUint(f.Behind, 10)},
		{Measure: "  worst staleness", Tiered: dur(f.Worst)},
		{Measure: fmt.Sprintf("  instances old %v after the last write", r.Settle), Tiered: strconv.Itoa(f.StaleInstances),
			Target: "0", OK: f.StaleInstances == 0},
		{Measure: "  writer Sets/s vs SETs/s, same readers", Tiered: fmt.Sprintf("%.0f", f.WriterRate),
			Baseline: fmt.Sprintf("%.0f", f.PlainLoadedRate), Ratio: ratio(f.LoadedRatio), Target: ">= 0.8x", OK: f.LoadedRatio >= 0.8, RedisBound: true, serverWork: true},
		{Measure: "  writer Sets/s vs SETs/s alone", Tiered: fmt.Sprintf("%.0f", f.WriterRate),
			Baseline: fmt.Sprintf("%.0f", r.PlainRate), Ratio: ratio(f.Ratio), serverWork: true},
		{Measure: fmt.Sprintf("  control: PUBLISH/s to %d subscribers vs SET/s", f.Readers+1),
			Tiered: fmt.Sprintf("%.0f", f.PublishRate), Baseline: fmt.Sprintf("%.0f", f.PlainLoadedRate), Ratio: ratio(f.PublishRate / f.PlainLoadedRate), serverWork: true},
		{Measure: "  wake-up delay (1ms sleeps) p99 / max", Tiered: dur(f.WakeP99) + " / " + dur(f.WakeMax)},
		section("control, " + maxStalenessLabel(o.MaxStaleness) + ":"),
		{Measure: "  reads (by Redis)", Tiered: fmt.Sprintf("%d (%d)", o.Reads, o.RemoteReads)},
		{Measure: fmt.Sprintf("  stale: older than a version acked %v before", r.Grace), Tiered: strconv.FormatUint(o.Stale, 10)},
		{Measure: "  worst staleness", Tiered: dur(o.Worst)},
		{Measure: fmt.Sprintf("  instances old %v after the last write", r.Settle), Tiered: strconv.Itoa(o.StaleInstances),
			Target: "0", OK: o.StaleInstances == 0},
		{Measure: "  writer Sets/s vs SETs/s, same readers", Tiered: fmt.Sprintf("%.0f", o.WriterRate),
			Baseline: fmt.Sprintf("%.0f", o.PlainLoadedRate), Ratio: ratio(o.LoadedRatio), serverWork: true},
		{Measure: fmt.Sprintf("  PUBLISH/s to %d subscribers vs SET/s", o.Readers+1),
			Tiered: fmt.Sprintf("%.0f", o.PublishRate), Baseline: fmt.Sprintf("%.0f", o.PlainLoadedRate), Ratio: ratio(o.PublishRate / o.PlainLoadedRate), serverWork: true},
		{Measure: "  wake-up delay (1ms sleeps) p99 / max", Tiered: dur(o.WakeP99) + " / " + dur(o.WakeMax)},
	}
}
func (r *staleResult) notes() []string {
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
