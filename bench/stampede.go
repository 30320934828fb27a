package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// stampedeInstances is how many instances the spread stampedes use, as the
// targets are stated for it (whatever -instances says).
const stampedeInstances = 4

// stampedeSlack is how much longer than the loader a stampede whose
// instances share one load (with leases) may take, all callers included.
const stampedeSlack = 5 * time.Millisecond

// stampedeCase is one stampede: callers Fetch one cold key at once.
type stampedeCase struct {
	Name       string        `json:"name"`
	Callers    int           `json:"callers"`
	Instances  int           `json:"instances"`
	Leases     bool          `json:"leases"`
	Loads      []uint64      `json:"loads_per_instance"`
	Total      uint64        `json:"loads"`
	Values     int           `json:"distinct_values"`
	LeaseWaits uint64        `json:"lease_waits"`
	Calls      calls         `json:"redis"`
	Wall       time.Duration `json:"wall_ns"`
}

// stampedeResult is every stampede.
type stampedeResult struct {
	Delay time.Duration  `json:"loader_delay_ns"`
	Cases []stampedeCase `json:"cases"`
}

// runStampede starts callers goroutines that Fetch key at once, caller i on
// ins[i%len(ins)], with a loader that sleeps delay and returns a value of
// its own (which instance, which of its loads), and counts loads, the
// distinct values the callers got, lease waits and the instances' round
// trips.
func runStampede(ctx context.Context, ins []*instance[string], key string, callers int, delay time.Duration) (stampedeCase, error) {
	c := stampedeCase{Callers: callers, Instances: len(ins), Loads: make([]uint64, len(ins))}
	loads := make([]atomic.Uint64, len(ins))
	before := make([]calls, len(ins))
	waits0 := make([]uint64, len(ins))
	for i, in := range ins {
		before[i] = in.calls.snapshot()
		waits0[i] = in.Stats().LeaseWaits
	}
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		errs   = make([]error, callers)
		values = make([]string, callers)
	)
	for i := range callers {
		in, idx := ins[i%len(ins)], i%len(ins)
		wg.Go(func() {
			<-start
			v, err := in.Fetch(ctx, key, func(ctx context.Context) (string, error) {
				n := loads[idx].Add(1)
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-t.C:
					return "loaded by instance " + strconv.Itoa(idx) + ", load " + strconv.FormatUint(n, 10), nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			})
			if err == nil && v == "" {
				err = errors.New("Fetch returned an empty value")
			}
			values[i], errs[i] = v, err
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	c.Wall = time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	distinct := map[string]bool{}
	for _, v := range values {
		distinct[v] = true
	}
	c.Values = len(distinct)
	c.Calls = calls{Names: map[string]uint64{}}
	for i, in := range ins {
		c.Loads[i] = loads[i].Load()
		c.Total += c.Loads[i]
		c.Calls = c.Calls.add(in.calls.snapshot().sub(before[i]))
		c.LeaseWaits += in.Stats().LeaseWaits - waits0[i]
	}
	return c, nil
}

// stampede runs three stampedes of cfg.stampedeCallers goroutines on a cold
// key: all on one instance; spread over 4 instances with leases (the
// default), which should load once in all; and spread over 4 instances with
// LeaseTTL -1 (no leases), the control, which loads once per instance.
func stampede(ctx context.Context, e *env, cfg config) (*stampedeResult, error) {
	const n = stampedeInstances
	leased, err := newCacheInstances(ctx, e, n, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	r := &stampedeResult{Delay: cfg.stampedeDelay}
	cfg.progress.update("stampede: %d callers on one instance", cfg.stampedeCallers)
	a, err := runStampede(ctx, leased[:1], "stampede:one", cfg.stampedeCallers, cfg.stampedeDelay)
	if err != nil {
		return nil, err
	}
	a.Name, a.Leases = "(a) all on 1 instance", true
	cfg.progress.update("stampede: %d callers over %d instances, leases on", cfg.stampedeCallers, n)
	b, err := runStampede(ctx, leased, "stampede:all", cfg.stampedeCallers, cfg.stampedeDelay)
	if err != nil {
		return nil, err
	}
	b.Name, b.Leases = fmt.Sprintf("(b) over %d instances, leases on (default)", n), true
	off, err := newCacheInstances(ctx, e, n, tiered.Options[string]{LeaseTTL: -1})
	if err != nil {
		return nil, err
	}
	cfg.progress.update("stampede: %d callers over %d instances, leases off", cfg.stampedeCallers, n)
	c, err := runStampede(ctx, off, "stampede:off", cfg.stampedeCallers, cfg.stampedeDelay)
	if err != nil {
		return nil, err
	}
	c.Name = fmt.Sprintf("(c) over %d instances, LeaseTTL -1 (off): control", n)
	cfg.progress.done()
	r.Cases = []stampedeCase{a, b, c}
	return r, nil
}

func (r *stampedeResult) name() string { return "stampede" }
func (r *stampedeResult) title() string {
	return fmt.Sprintf("stampede: %d goroutines Fetch one cold key, loader sleeps %v", r.Cases[0].Callers, r.Delay)
}
func (r *stampedeResult) rows() []row {
	var rows []row
	for _, c := range r.Cases {
		loads := row{Measure: "  loader calls", Tiered: fmt.Sprintf("%d %v", c.Total, c.Loads),
			Baseline: fmt.Sprintf("%d without sharing", c.Callers)}
		values := row{Measure: "  distinct values returned", Tiered: strconv.Itoa(c.Values)}
		wall := row{Measure: "  wall time, all callers", Tiered: dur(c.Wall)}
		if c.Leases && c.Instances > 1 {
			loads.Target, loads.OK = "1 in total", c.Total == 1
			values.Target, values.OK = "1", c.Values == 1
			limit := r.Delay + stampedeSlack
			wall.Target, wall.OK, wall.RedisBound = "<= "+dur(limit), c.Wall <= limit, true
		} else {
			ok := c.Total >= 1
			for _, l := range c.Loads {
				ok = ok && l <= 1
			}
			loads.Target, loads.OK = "1 per instance", ok
		}
		rows = append(rows, section(c.Name+":"), loads, values, wall,
			row{Measure: "  Redis round trips", Tiered: strconv.FormatUint(c.Calls.Trips, 10)})
		if c.Leases {
			rows = append(rows, row{Measure: "  lease waits", Tiered: strconv.FormatUint(c.LeaseWaits, 10)})
		}
	}
	return rows
}
func (r *stampedeResult) notes() []string {
	notes := []string{
		"loader calls are listed per instance in brackets; each load returns a value of its own, so distinct values " +
			"counts the loads whose value reached a caller; lease waits is the instances' Stats.LeaseWaits",
		"round trips are those of the instances' clients: with leases, each instance's read and lease attempt, " +
			"the holder's write, and each waiter's read once that write's invalidation woke it; without, each " +
			"instance's read and its SET NX of what it loaded",
	}
	for _, c := range r.Cases {
		notes = append(notes, fmt.Sprintf("%s sent %s", c.Name[:3], c.Calls.text()))
	}
	return notes
}
