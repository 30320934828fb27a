package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/tiercache/tiercache/tiered"
)

// mutexLRU is the baseline of a local hit: golang-lru's simplelru under one
// sync.Mutex, the least a local tier could cost.
type mutexLRU struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, string] // guarded by mu
}

// newMutexLRU returns a mutexLRU of size entries holding ks, with values
// value(i).
func newMutexLRU(size int, ks []string) *mutexLRU {
	l, err := simplelru.NewLRU[string, string](size, nil)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	for i, k := range ks {
		l.Add(k, value(i))
	}
	return &mutexLRU{lru: l}
}

func (m *mutexLRU) get(k string) (string, bool) {
	m.mu.Lock()
	v, ok := m.lru.Get(k)
	m.mu.Unlock()
	return v, ok
}

func (m *mutexLRU) add(k, v string) {
	m.mu.Lock()
	m.lru.Add(k, v)
	m.mu.Unlock()
}

func (m *mutexLRU) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

var errLost = errors.New("bench: the bare LRU lost a key")

// read is get as an operation to time: a miss is an error.
func (m *mutexLRU) read(k string) error {
	if _, ok := m.get(k); !ok {
		return errLost
	}
	return nil
}

// getter is c's Get as an operation to time.
func getter(ctx context.Context, c *tiered.Cache[string]) func(string) error {
	return func(k string) error { _, err := c.Get(ctx, k); return err }
}

// warmCache returns a cache (default options) whose local tier holds ks,
// with values value(i).
func warmCache(ctx context.Context, e *env, ns string, ks []string) (*tiered.Cache[string], error) {
	c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	for i, k := range ks {
		if err := c.Set(ctx, k, value(i)); err != nil {
			return nil, err
		}
	}
	return c, warm(ctx, c, ks)
}

// localHit times a Get of 1,000 warm keys against the bare LRU, on one
// goroutine and on two.
func localHit(ctx context.Context, e *env, cfg config) ([]row, error) {
	ks := keys("hot", 1000)
	c, err := warmCache(ctx, e, e.ns("localhit"), ks)
	if err != nil {
		return nil, err
	}
	tget, bget := getter(ctx, c), newMutexLRU(len(ks), ks).read
	f, err := compare(ctx, cfg.duration, cfg.rounds,
		job{workers: 1, batch: 1000, op: cycle(ks, tget)},
		job{workers: 1, batch: 1000, op: cycle(ks, bget)},
		job{workers: 2, batch: 1000, op: cycle(ks, tget)},
		job{workers: 2, batch: 1000, op: cycle(ks, bget)},
	)
	if err != nil {
		return nil, err
	}
	tUp, bUp := f[2].perSec/f[0].perSec, f[3].perSec/f[1].perSec
	return []row{
		judge(row{Measure: "local hit, 1 goroutine", Tiered: dur(f[0].ns), Baseline: "bare LRU " + dur(f[1].ns),
			Target: "≤ 2× baseline"}, f[0].ns <= 2*f[1].ns),
		judge(row{Measure: "local hit: allocs", Tiered: allocs(f[0].allocs), Baseline: "bare LRU " + allocs(f[1].allocs),
			Target: "0"}, f[0].allocs < 0.005),
		judge(row{Measure: "local hit: 2-goroutine speed-up", Tiered: fmt.Sprintf("%.2f×", tUp),
			Baseline: fmt.Sprintf("bare LRU %.2f×", bUp), Target: "> baseline"}, tUp > bUp),
	}, nil
}

// allocs prints allocations per operation.
func allocs(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
