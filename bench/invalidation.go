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

	"github.com/tiercache/tiercache/tiered"
)

// invalidationProbe runs invalidation trials on one key: B holds the current
// value in its local tier, A writes a new one, B polls until it sees it.
type invalidationProbe struct {
	a, b      *instance[string]
	key       string
	neverSeen time.Duration

	// pause, when positive, makes B's poller sleep that long between two
	// polls in a raw nanosleep system call (see nanosleep), as a goroutine
	// that polls something else would; 0: a tight loop.
	pause time.Duration
	// beforeSet, when not nil, runs after B's poller has started and just
	// before A's Set (to break something, say); an error ends the trial.
	beforeSet func() error

	writes uint64 // A's Sets so far
	inv0   uint64 // B's applied invalidations before A's first Set
}

// newInvalidationProbe writes the key's first value through A.
func newInvalidationProbe(ctx context.Context, a, b *instance[string], key string, neverSeen time.Duration) (*invalidationProbe, error) {
	p := &invalidationProbe{a: a, b: b, key: key, neverSeen: neverSeen, inv0: b.Stats().Invalidations}
	if err := a.Set(ctx, key, "v0"); err != nil {
		return nil, err
	}
	p.writes = 1
	return p, nil
}

// holdsKey waits (up to 2s) until two Gets in a row on B, the second a
// local hit, show that B's local tier holds the key and may serve it: a Hub
// sends reads to Redis while it cannot prove its local tiers fresh.
func (p *invalidationProbe) holdsKey(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := p.b.Get(ctx, p.key); err != nil {
			return err
		}
		h := p.b.Stats().LocalHits
		if _, err := p.b.Get(ctx, p.key); err != nil {
			return err
		}
		if p.b.Stats().LocalHits == h+1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: B's local tier does not serve the key (%d reads unproven)", p.b.Stats().Unproven)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// trialResult is what one invalidation trial saw.
type trialResult struct {
	// Latency is from A's Set returning until B's Get returned the new
	// value (negative when B saw it before A's Set returned).
	Latency time.Duration
	// Seen says whether B saw the new value within neverSeen.
	Seen bool
	// StaleFor is how long after A's Set returned the last Get on B that
	// returned the old value began (negative: none began after it).
	StaleFor time.Duration
}

// trial runs one trial.
func (p *invalidationProbe) trial(ctx context.Context) (trialResult, error) {
	var res trialResult
	// B must hold the current value locally, and no older invalidation may
	// still be on its way to B.
	if err := waitUntil(ctx, 5*time.Second, func() bool { return p.b.Stats().Invalidations-p.inv0 >= p.writes }); err != nil {
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
	if p.pause > 0 {
		every = 0
	}
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			began := int64(time.Since(base))
			v, err := p.b.Get(ctx, p.key)
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
				if a := ackAt.Load(); a != 0 && int64(time.Since(base))-a > int64(p.neverSeen) {
					return
				}
			}
			if p.pause > 0 {
				nanosleep(p.pause)
			}
		}
	}()
	for !started.Load() {
		runtime.Gosched()
	}
	var err error
	if p.beforeSet != nil {
		err = p.beforeSet()
	}
	if err == nil {
		err = p.a.Set(ctx, p.key, want)
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

// latencies summarizes invalidation trials: the one summary of them, in
// invalidation, nanosleep and the Go benchmarks.
type latencies struct {
	Trials    int           `json:"trials"`
	NeverSeen int           `json:"never_seen"`
	Early     int           `json:"seen_before_ack"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	// StaleFor is the longest time after A's Set returned at which a Get
	// on B that returned the old value began (0: none began after it).
	StaleFor time.Duration `json:"stale_for_max_ns"`
	Unproven uint64        `json:"b_reads_unproven"`

	lats []time.Duration
}

// add records a trial.
func (l *latencies) add(t trialResult) {
	l.Trials++
	l.StaleFor = max(l.StaleFor, t.StaleFor)
	switch {
	case !t.Seen:
		l.NeverSeen++
		return
	case t.Latency < 0:
		l.Early++
		t.Latency = 0
	}
	l.lats = append(l.lats, t.Latency)
}

// finish computes the percentiles.
func (l *latencies) finish() {
	slices.Sort(l.lats)
	l.P50, l.P90, l.P99 = percentile(l.lats, 50), percentile(l.lats, 90), percentile(l.lats, 99)
	l.Max = percentile(l.lats, 100)
}

// invalidationResult is the time from a Set's acknowledgement on A until a
// Get on B, polling, returns the new value.
type invalidationResult struct {
	latencies
	Limit time.Duration `json:"never_seen_after_ns"`
}

// invalidation runs cfg.trials invalidation trials between two instances.
func invalidation(ctx context.Context, e *env, cfg config) (*invalidationResult, error) {
	if cfg.instances < 2 {
		return nil, errors.New("bench: invalidation needs -instances >= 2")
	}
	ins, err := newCacheInstances(ctx, e, cfg.instances, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	// Only B's poller spins, so GOMAXPROCS stays as it is (see
	// config.separate).
	p, err := newInvalidationProbe(ctx, ins[0], ins[1], "inv:key", cfg.neverSeen)
	if err != nil {
		return nil, err
	}
	r := &invalidationResult{Limit: cfg.neverSeen}
	for i := range cfg.trials {
		if i%25 == 0 {
			cfg.progress.update("invalidation: trial %d/%d", i+1, cfg.trials)
		}
		tr, err := p.trial(ctx)
		if err != nil {
			return nil, err
		}
		r.add(tr)
	}
	cfg.progress.done()
	r.finish()
	return r, nil
}

func (r *invalidationResult) name() string { return "invalidation" }
func (r *invalidationResult) title() string {
	return fmt.Sprintf("invalidation: A's Set returns → B's polling Get returns the new value (%d trials)", r.Trials)
}
func (r *invalidationResult) rows() []row {
	return []row{
		{Measure: "p50", Tiered: dur(r.P50)},
		{Measure: "p90", Tiered: dur(r.P90)},
		{Measure: "p99", Tiered: dur(r.P99), Target: "<= 300µs", OK: r.P99 <= 300*time.Microsecond, RedisBound: true},
		{Measure: "max", Tiered: dur(r.Max), Target: "<= 2ms", OK: r.Max <= 2*time.Millisecond, RedisBound: true},
		{Measure: "never seen within " + r.Limit.String(), Tiered: strconv.Itoa(r.NeverSeen), Target: "0", OK: r.NeverSeen == 0},
	}
}
func (r *invalidationResult) notes() []string {
	return []string{fmt.Sprintf("B's poll includes its re-read from Redis after the invalidation; %d trials saw the value before A's Set returned (counted as 0)", r.Early)}
}
