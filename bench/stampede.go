package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// The stampede: stampedeCallers goroutines, spread over stampedeInstances
// instances, Fetch one cold key whose loader takes stampedeLoad.
const (
	stampedeCallers   = 200
	stampedeInstances = 4
	stampedeLoad      = 50 * time.Millisecond
)

// runStampede has the callers Fetch key at once, caller i on ins[i%n], and
// returns how many times the loader ran.
func runStampede(ctx context.Context, ins []*tiered.Cache[string], key string) (uint64, error) {
	var loads atomic.Uint64
	load := func(ctx context.Context) (string, error) {
		loads.Add(1)
		select {
		case <-time.After(stampedeLoad):
			return "loaded", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, stampedeCallers)
	for i := range stampedeCallers {
		wg.Go(func() {
			<-start
			_, errs[i] = ins[i%len(ins)].Fetch(ctx, key, load)
		})
	}
	close(start)
	wg.Wait()
	return loads.Load(), errors.Join(errs...)
}

// stampede counts the loader calls of a stampede with leases (the default)
// and without (LeaseTTL -1, each instance loads on its own).
func stampede(ctx context.Context, e *env, _ config) ([]row, error) {
	ns := e.ns("stampede")
	var calls [2]uint64
	for i, lease := range []time.Duration{0, -1} {
		ins := make([]*tiered.Cache[string], stampedeInstances)
		for j := range ins {
			c, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LeaseTTL: lease})
			if err != nil {
				return nil, err
			}
			ins[j] = c
		}
		n, err := runStampede(ctx, ins, fmt.Sprintf("cold-%d", i))
		if err != nil {
			return nil, err
		}
		calls[i] = n
	}
	return []row{judge(row{
		Measure:  "stampede: loader calls",
		Tiered:   fmt.Sprint(calls[0]),
		Baseline: fmt.Sprintf("no cache %d, no leases %d", stampedeCallers, calls[1]),
		Target:   "1",
	}, calls[0] == 1)}, nil
}
