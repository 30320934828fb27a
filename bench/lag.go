package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// The lag scenario: lagInstances instances write lagRate Sets a second in
// all over 1,000 keys, and read them (mostly local hits).
const (
	lagInstances = 3
	lagRate      = 1000
)

// lags keeps lags, from many goroutines.
type lags struct {
	mu  sync.Mutex
	all []time.Duration // guarded by mu
}

func (l *lags) add(d time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
}

// Observe keeps the lag of each invalidation a Hub applies (a
// tiered.Observer).
func (l *lags) Observe(ev tiered.Event) {
	if ev.Kind == tiered.EventInvalidation && ev.Duration >= 0 {
		l.add(ev.Duration)
	}
}

// p50p99 returns the median and the 99th percentile, and how many.
func (l *lags) p50p99() (float64, float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.all)
	return float64(percentile(l.all, 50)), float64(percentile(l.all, 99)), len(l.all)
}

// every calls f every period until stop is set or f fails.
func every(period time.Duration, stop *atomic.Bool, f func() error) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for range t.C {
		if stop.Load() {
			return nil
		}
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// subscribePlain subscribes a plain go-redis client to channel and keeps,
// in into, each message's lag from the send time it carries, until the
// returned stop is called.
func subscribePlain(ctx context.Context, e *env, channel string, into *lags) (stop func(), err error) {
	ps := e.client(nil).Subscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range ps.Channel() {
			if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
				into.add(time.Duration(time.Now().UnixNano() - sent))
			}
		}
	})
	return func() { _ = ps.Close(); wg.Wait() }, nil
}

// lag measures how long an invalidation takes from the publisher to its
// being applied by another instance (EventInvalidation's lag), while the
// instances write and read; beside it, plain PUBLISHes of a send time at
// the same rate, each timed by plain go-redis subscribers as it arrives.
func lag(ctx context.Context, e *env, cfg config) ([]row, error) {
	ns, ks := e.ns("lag"), keys("l", 1000)
	if err := e.populate(ctx, ns, ks, value); err != nil {
		return nil, err
	}
	var tl, pl lags
	channel, pub := ns+":plain", e.client(nil)
	var ins []*tiered.Cache[string]
	var unsubs []func()
	defer func() {
		for _, u := range unsubs {
			u()
		}
	}()
	for range lagInstances {
		c, err := newCache(ctx, e, ns, tiered.HubOptions{Observer: &tl}, tiered.Options[string]{})
		if err != nil {
			return nil, err
		}
		ins = append(ins, c)
		unsub, err := subscribePlain(ctx, e, channel, &pl)
		if err != nil {
			return nil, err
		}
		unsubs = append(unsubs, unsub)
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		errs = make([]error, 3*len(ins))
	)
	period := time.Second * lagInstances / lagRate
	for i, c := range ins {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		wg.Go(func() {
			errs[3*i] = every(period, &stop, func() error { return c.Set(ctx, ks[rng.IntN(len(ks))], "v") })
		})
		wg.Go(func() {
			errs[3*i+1] = every(period, &stop, func() error {
				return pub.Publish(ctx, channel, strconv.FormatInt(time.Now().UnixNano(), 10)).Err()
			})
		})
		wg.Go(func() {
			errs[3*i+2] = every(time.Millisecond, &stop, func() error {
				for range 64 {
					if _, err := c.Get(ctx, ks[rand.IntN(len(ks))]); err != nil && !errors.Is(err, tiered.ErrNotFound) {
						return err
					}
				}
				return nil
			})
		})
	}
	time.Sleep(cfg.lag)
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond) // the last messages' delivery
	t50, t99, tn := tl.p50p99()
	p50, p99, pn := pl.p50p99()
	if tn == 0 || pn == 0 {
		return nil, fmt.Errorf("bench: lag: %d invalidations and %d plain messages timed", tn, pn)
	}
	return []row{judge(row{
		Measure:  "invalidation lag: p50, p99",
		Tiered:   dur(t50) + ", " + dur(t99),
		Baseline: "PUBLISH " + dur(p50) + ", " + dur(p99),
		Target:   "p99 ≤ 2× baseline",
	}, t99 <= 2*p99)}, nil
}
