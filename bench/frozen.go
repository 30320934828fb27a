package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// frozenResult is how long B serves an old value once its pub/sub connection
// is frozen, with MaxStaleness on and off.
type frozenResult struct {
	MaxStaleness time.Duration `json:"max_staleness_ns"`
	HealthCheck  time.Duration `json:"health_check_ns"`
	Cap          time.Duration `json:"cap_ns"`
	Fenced       []trialResult `json:"max_staleness_on"` // per trial
	Off          []trialResult `json:"max_staleness_off"`
}

// frozenTrial makes B, an instance with a Hub of its own (HealthCheck
// cfg.frozenHealthCheck, MaxStaleness ms) whose client goes through proxy,
// lets it hold key's value, freezes its pub/sub connection, has A write a
// new value and measures how long B's Get keeps returning the old one, up
// to cfg.frozenCap. It closes B.
func frozenTrial(ctx context.Context, e *env, cfg config, a *instance[string], proxy *proxy, ms time.Duration, key string) (trialResult, error) {
	b, err := newHubInstance(ctx, e, tiered.HubOptions{HealthCheck: cfg.frozenHealthCheck, MaxStaleness: ms},
		func(o *redis.Options) { o.Network, o.Addr = "tcp", proxy.addr() }, tiered.Options[string]{})
	if err != nil {
		return trialResult{}, err
	}
	defer b.close()
	p, err := newInvalidationProbe(ctx, a, b, key, cfg.frozenCap)
	if err != nil {
		return trialResult{}, err
	}
	p.beforeSet = func() error {
		if n := proxy.freezePubSub(); n != 1 {
			return fmt.Errorf("bench: frozen: froze %d pub/sub connections, want 1", n)
		}
		return nil
	}
	return p.trial(ctx)
}

// frozen runs cfg.frozenTrials frozen-subscription trials with MaxStaleness
// cfg.maxStaleness, then one with it off (which lasts cfg.frozenCap: the
// health check, cfg.frozenHealthCheck, comes later).
func frozen(ctx context.Context, e *env, cfg config) (result, error) {
	if e.opts.TLSConfig != nil {
		return skipped{Scenario: "frozen", Reason: "the proxy cannot see SUBSCRIBE through TLS"}, nil
	}
	proxy, err := newProxy(e.opts.Network, e.opts.Addr)
	if err != nil {
		return nil, err
	}
	if err := e.track(proxy.close); err != nil {
		return nil, err
	}
	a, err := newHubInstance(ctx, e, tiered.HubOptions{MaxStaleness: cfg.maxStaleness}, nil, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	r := &frozenResult{MaxStaleness: cfg.maxStaleness, HealthCheck: cfg.frozenHealthCheck, Cap: cfg.frozenCap}
	for i := range cfg.frozenTrials {
		cfg.progress.update("frozen: %s, trial %d/%d", maxStalenessLabel(cfg.maxStaleness), i+1, cfg.frozenTrials)
		tr, err := frozenTrial(ctx, e, cfg, a, proxy, cfg.maxStaleness, "frozen:on:"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		r.Fenced = append(r.Fenced, tr)
	}
	cfg.progress.update("frozen: MaxStaleness off, waiting up to %v", cfg.frozenCap)
	tr, err := frozenTrial(ctx, e, cfg, a, proxy, -1, "frozen:off")
	if err != nil {
		return nil, err
	}
	r.Off = append(r.Off, tr)
	cfg.progress.done()
	return r, nil
}

// notSeen stands for a trial that never saw the new value, in summaries.
const notSeen = time.Duration(1<<63 - 1)

// summary returns the median and the max of the trials' latencies (never
// for a trial that did not see the new value), and the latest time after
// the ack at which a read that returned the old value began.
func (r *frozenResult) summary(trials []trialResult) (med, worst, staleFor time.Duration) {
	var lats []time.Duration
	for _, t := range trials {
		staleFor = max(staleFor, t.StaleFor)
		if t.Seen {
			lats = append(lats, max(t.Latency, 0))
		} else {
			lats = append(lats, notSeen)
		}
	}
	slices.Sort(lats)
	return percentile(lats, 50), percentile(lats, 100), staleFor
}

func (r *frozenResult) figure(d time.Duration) string {
	if d == notSeen {
		return "> " + r.Cap.String()
	}
	return dur(d)
}

func (r *frozenResult) name() string { return "frozen" }
func (r *frozenResult) title() string {
	return fmt.Sprintf("frozen: B's pub/sub connection frozen (a proxy drops its bytes; HealthCheck %v), then A's Set; "+
		"how long B's Get keeps returning the old value; %s (%d trials) and off",
		r.HealthCheck, maxStalenessLabel(r.MaxStaleness), len(r.Fenced))
}
func (r *frozenResult) rows() []row {
	med, worst, staleFor := r.summary(r.Fenced)
	limit := r.MaxStaleness + time.Millisecond
	_, off, offStale := r.summary(r.Off)
	return []row{
		{Measure: "A's Set returns → B's Get returns the new value: median", Tiered: r.figure(med)},
		{Measure: "A's Set returns → B's Get returns the new value: max", Tiered: r.figure(worst),
			Target: "<= " + limit.String(), OK: worst <= limit, RedisBound: true},
		{Measure: "old value read after the ack, latest", Tiered: dur(staleFor),
			Target: "<= " + r.MaxStaleness.String(), OK: worst != notSeen && staleFor <= r.MaxStaleness, RedisBound: true},
		{Measure: "  control, MaxStaleness off: Set → new value", Tiered: r.figure(off)},
		{Measure: "  control, off: old value read after the ack, latest", Tiered: dur(offStale)},
	}
}
func (r *frozenResult) notes() []string {
	return []string{
		"B has a client and a Hub of its own through a proxy that, once frozen, passes nothing on B's pub/sub " +
			"connection and leaves its other connections alone; B's poller reads in a tight loop; a new B per trial",
		fmt.Sprintf("with MaxStaleness off the old value is served until the health check notices (%v of silence "+
			"and %v more), so the wait is capped at %v", r.HealthCheck, r.HealthCheck, r.Cap),
	}
}
