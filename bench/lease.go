package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// takeoverSlack is how long after a dead holder's lease expires a waiter
// may take to call its loader.
const takeoverSlack = 10 * time.Millisecond

// leaseResult is what happens when a lease holder dies mid-load, and when
// one outlives its lease.
type leaseResult struct {
	LeaseTTL  time.Duration   `json:"dead_lease_ttl_ns"`
	Takeovers []time.Duration `json:"takeover_ns"` // per trial, from the lease taken to the waiter's loader call
	Median    time.Duration   `json:"takeover_median_ns"`
	Worst     time.Duration   `json:"takeover_max_ns"`

	ExpiredTTL time.Duration `json:"expired_lease_ttl_ns"`
	Expired    expiredCounts `json:"expired_holder"`
}

// expiredCounts counts the outcomes of the expired-holder trials.
type expiredCounts struct {
	Trials       int `json:"trials"`
	Gone         int `json:"leases_gone_before_b_wrote"`
	StaleInRedis int `json:"stale_in_redis"`
	OtherInRedis int `json:"neither_in_redis"`
	StaleOnA     int `json:"stale_get_on_a"`
	ReturnedOwn  int `json:"fetches_given_a_own_value"`
}

// advance moves the server's clock on by d, so that leases expire: real
// time does it on a real server; the embedded one's clock moves only when
// told.
func (e *env) advance(d time.Duration) {
	if e.mini != nil {
		e.mini.FastForward(d)
	}
}

// lease runs the dead-holder trials, then the expired-holder ones.
func lease(ctx context.Context, e *env, cfg config) (*leaseResult, error) {
	r := &leaseResult{LeaseTTL: cfg.leaseTTL, ExpiredTTL: cfg.expiredLeaseTTL}
	if err := deadHolder(ctx, e, cfg, r); err != nil {
		return nil, err
	}
	if err := expiredHolder(ctx, e, cfg, r); err != nil {
		return nil, err
	}
	cfg.progress.done()
	return r, nil
}

// deadHolder takes a key's lease directly (as an instance would before its
// loader) and never writes, as if the holder died; then times how long an
// instance with LeaseTTL cfg.leaseTTL, Fetching the key, takes to call its
// loader.
func deadHolder(ctx context.Context, e *env, cfg config, r *leaseResult) error {
	in, err := newCacheInstance(ctx, e, tiered.Options[string]{LeaseTTL: cfg.leaseTTL})
	if err != nil {
		return err
	}
	dead, err := remote.New(e.newClient(nil), remote.Options{Namespace: e.namespace})
	if err != nil {
		return err
	}
	for i := range cfg.leaseTrials {
		cfg.progress.update("lease: dead holder, trial %d/%d", i+1, cfg.leaseTrials)
		key := "lease:dead:" + strconv.Itoa(i)
		claims, err := dead.Acquire(ctx, []string{key}, remote.NewLeaseToken(), cfg.leaseTTL)
		if err != nil {
			return fmt.Errorf("lease: take the dead holder's lease: %w", err)
		}
		if len(claims) != 1 || !claims[0].Acquired {
			return fmt.Errorf("lease: the dead holder's lease on a fresh key was not acquired: %+v", claims)
		}
		taken := time.Now()
		clock := time.AfterFunc(cfg.leaseTTL, func() { e.advance(cfg.leaseTTL) })
		var called atomic.Int64
		v, err := in.Fetch(ctx, key, func(context.Context) (string, error) {
			called.CompareAndSwap(0, time.Now().UnixNano())
			return "taken over", nil
		})
		clock.Stop()
		if err != nil {
			return fmt.Errorf("lease: Fetch of a key whose holder died: %w", err)
		}
		if v != "taken over" || called.Load() == 0 {
			return fmt.Errorf("lease: Fetch of a key whose holder died returned %q without calling its loader", v)
		}
		r.Takeovers = append(r.Takeovers, time.Unix(0, called.Load()).Sub(taken))
	}
	sorted := slices.Clone(r.Takeovers)
	slices.Sort(sorted)
	r.Median, r.Worst = percentile(sorted, 50), sorted[len(sorted)-1]
	return nil
}

// expiredHolder runs cfg.expiredTrials trials at once, each on a key of its
// own: A (LeaseTTL cfg.expiredLeaseTTL) Fetches the key with a loader that
// blocks; once every loader is blocked and every lease has expired, B Sets
// a newer value; then the loaders return A's (stale) values. It counts the
// keys whose Redis value is A's afterwards, and A's Gets that return it.
func expiredHolder(ctx context.Context, e *env, cfg config, r *leaseResult) error {
	a, err := newCacheInstance(ctx, e, tiered.Options[string]{LeaseTTL: cfg.expiredLeaseTTL})
	if err != nil {
		return err
	}
	b, err := newCacheInstance(ctx, e, tiered.Options[string]{})
	if err != nil {
		return err
	}
	n := cfg.expiredTrials
	cfg.progress.update("lease: expired holder, %d trials at once", n)
	ks := keys("lease:expired:", n)
	stale := func(i int) string { return "stale from A " + strconv.Itoa(i) }
	newer := func(i int) string { return "newer from B " + strconv.Itoa(i) }
	var (
		wg      sync.WaitGroup
		called  = make(chan struct{}, n)
		release = make(chan struct{})
		got     = make([]string, n)
		errs    = make([]error, n)
	)
	for i, k := range ks {
		wg.Go(func() {
			got[i], errs[i] = a.Fetch(ctx, k, func(lctx context.Context) (string, error) {
				called <- struct{}{}
				select {
				case <-release:
					return stale(i), nil
				case <-lctx.Done():
					return "", lctx.Err()
				}
			})
		})
	}
	released := false
	unblock := func() {
		if !released {
			close(release)
			released = true
		}
	}
	defer func() { unblock(); wg.Wait() }()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-called:
		case <-timeout.C:
			return errors.New("lease: A's loaders not all called within 10s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Every lease was taken before its loader was called: all have expired
	// cfg.expiredLeaseTTL (and a margin) later.
	past := cfg.expiredLeaseTTL + 5*time.Millisecond
	time.Sleep(past)
	e.advance(past)
	plain := e.newClient(nil)
	rks := make([]string, n)
	for i, k := range ks {
		rks[i] = e.key(k)
	}
	held, err := plain.MGet(ctx, rks...).Result()
	if err != nil {
		return fmt.Errorf("lease: read the leases: %w", err)
	}
	for i, k := range ks {
		if held[i] == nil {
			r.Expired.Gone++
		}
		if err := b.Set(ctx, k, newer(i)); err != nil {
			return fmt.Errorf("lease: B's Set: %w", err)
		}
	}
	unblock()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lease: A's Fetch: %w", err)
	}
	after, err := plain.MGet(ctx, rks...).Result()
	if err != nil {
		return fmt.Errorf("lease: read the values: %w", err)
	}
	x := &r.Expired
	x.Trials = n
	for i, k := range ks {
		switch after[i] {
		case stale(i):
			x.StaleInRedis++
		case newer(i):
		default:
			x.OtherInRedis++
		}
		if got[i] == stale(i) {
			x.ReturnedOwn++
		}
		v, err := a.Get(ctx, k)
		if err != nil && !errors.Is(err, tiered.ErrNotFound) {
			return fmt.Errorf("lease: A's Get afterwards: %w", err)
		}
		if v == stale(i) {
			x.StaleOnA++
		}
	}
	return nil
}

func (r *leaseResult) name() string { return "lease" }
func (r *leaseResult) title() string {
	return "lease: a lease holder that dies mid-load, and one whose loader outlives its lease"
}
func (r *leaseResult) rows() []row {
	limit := r.LeaseTTL + takeoverSlack
	x := r.Expired
	of := func(k int) string { return fmt.Sprintf("%d of %d", k, x.Trials) }
	return []row{
		section(fmt.Sprintf("dead holder (lease taken directly, never written), waiter's LeaseTTL %v:", r.LeaseTTL)),
		{Measure: fmt.Sprintf("  lease taken → loader called, median of %d", len(r.Takeovers)), Tiered: dur(r.Median)},
		{Measure: "  lease taken → loader called, worst", Tiered: dur(r.Worst),
			Target: "<= " + dur(limit), OK: r.Worst <= limit, RedisBound: true},
		section(fmt.Sprintf("expired holder: A's loader outlives its LeaseTTL %v, B Sets meanwhile:", r.ExpiredTTL)),
		{Measure: "  A's lease expired when B wrote", Tiered: of(x.Gone), Baseline: of(x.Trials)},
		{Measure: "  Redis holds A's stale value after", Tiered: of(x.StaleInRedis), Target: "0", OK: x.StaleInRedis == 0},
		{Measure: "  Redis holds neither A's nor B's", Tiered: of(x.OtherInRedis), Target: "0", OK: x.OtherInRedis == 0},
		{Measure: "  A's Get after returns A's value", Tiered: of(x.StaleOnA), Target: "0", OK: x.StaleOnA == 0},
		{Measure: "  A's Fetch returned A's value", Tiered: of(x.ReturnedOwn)},
	}
}
func (r *leaseResult) notes() []string {
	return []string{
		"dead holder: the time runs from the moment the lease was taken (just before the Fetch), so it includes " +
			"the Fetch's reads; on the embedded server, whose clock moves only when told, the bench moves it on by " +
			"the lease's TTL once that has passed",
		"expired holder: every trial runs at once, on a key of its own; a Fetch caller given A's own loaded " +
			"value is documented behaviour (Options.LeaseTTL): the late value is returned but not stored",
	}
}
