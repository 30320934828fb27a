package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// reader is one reader instance of the outage scenario and what its
// goroutine counted: touched by that goroutine alone until the side ends.
type reader struct {
	idx    int
	in     *ownInstance
	keys   outageKeys
	clock  *outageClock
	newest *atomic.Pointer[ack] // the writer's newest acknowledged write
	rng    *rand.Rand

	counts   [phases]readCounts
	maxSeen  map[string]int // the newest version this instance returned for each key
	wrong    []string
	nwrong   int
	answered int // stale values served in calls whose Redis calls all succeeded
	// misreported counts calls in which the client saw a failed round trip
	// but the cache observed only Redis calls without error (EventRedis).
	misreported   int
	misreportedOp string           // the first such call's method
	heldErrs      []string         // the first held keys that failed in the outage
	errs          [phases][]string // the first distinct errors of each phase
	loads         int
	// converged is when this instance, Subscribed, first read the writer's
	// newest value written after the start (since base; 0: not yet).
	converged atomic.Int64
}

func newReader(idx int, in *ownInstance, keys outageKeys, clock *outageClock, newest *atomic.Pointer[ack]) *reader {
	rd := &reader{idx: idx, in: in, keys: keys, clock: clock, newest: newest,
		rng: rand.New(rand.NewPCG(uint64(idx), 7)), maxSeen: make(map[string]int, len(keys.all))}
	for _, k := range keys.all {
		rd.maxSeen[k] = 0
	}
	return rd
}

// run makes one call every every, on a schedule, until c stops.
func (rd *reader) run(ctx context.Context, c *crew, every time.Duration) error {
	return c.paced(time.Now(), every, func(int) error { return rd.call(ctx) })
}

// opName names a reader's op: below 8 Get, 8 GetMany, 9 Fetch.
func opName(op int) string { return [...]string{"Get", "GetMany", "Fetch"}[min(max(op-7, 0), 2)] }

// pick draws a key: a hot one a time in four, else a held one.
func (rd *reader) pick() string {
	if rd.rng.IntN(4) == 0 {
		return rd.keys.hot[rd.rng.IntN(len(rd.keys.hot))]
	}
	return rd.keys.held[rd.rng.IntN(len(rd.keys.held))]
}

// load is the loader of a reader's Fetches: the source of truth is down too.
func (rd *reader) load(context.Context) (string, error) {
	rd.loads++
	return "", errBackendDown
}

// choose draws the next call: its op (see opName) and keys. After the
// start, until converged, it is a Get of the writer's newest key: probe,
// with sub whether the instance was Subscribed as it began.
func (rd *reader) choose() (op int, ks []string, probe *ack, sub bool) {
	op = rd.rng.IntN(10)
	if restart := rd.clock.restart.Load(); restart != 0 && rd.converged.Load() == 0 {
		if a := rd.newest.Load(); a != nil && a.at > restart {
			return 0, []string{a.key}, a, rd.in.Subscribed()
		}
	}
	if op != 8 {
		return op, []string{rd.pick()}, nil, false
	}
	for j := range outageManyKeys {
		if j < 2 {
			ks = append(ks, rd.keys.hot[rd.rng.IntN(len(rd.keys.hot))])
		} else {
			ks = append(ks, rd.keys.held[rd.rng.IntN(len(rd.keys.held))])
		}
	}
	return op, ks, nil, false
}

// outcome is what one call returned: values found, and the keys that
// failed, with their errors.
type outcome struct {
	values map[string]string
	errOf  map[string]error
}

// do makes the call. Its error is one that ends the reader (the cache
// closed, ctx done); the call's own errors are in the outcome, and the
// first distinct ones of each phase in rd.errs.
func (rd *reader) do(ctx context.Context, ph, op int, ks []string) (outcome, error) {
	o := outcome{values: map[string]string{}, errOf: map[string]error{}}
	note := func(err error) {
		msg := err.Error()
		for _, m := range rd.errs[ph] {
			if m == msg {
				return
			}
		}
		if len(rd.errs[ph]) < 3 {
			rd.errs[ph] = append(rd.errs[ph], msg)
		}
	}
	if op != 8 {
		var v string
		var err error
		if op < 8 {
			v, err = rd.in.Get(ctx, ks[0])
		} else {
			v, err = rd.in.Fetch(ctx, ks[0], rd.load)
		}
		switch {
		case err == nil:
			o.values[ks[0]] = v
		case errors.Is(err, tiered.ErrClosed):
			return o, err
		case !errors.Is(err, tiered.ErrNotFound):
			o.errOf[ks[0]] = err
			note(err)
		}
		return o, ctx.Err()
	}
	out, err := rd.in.GetMany(ctx, ks)
	o.values = out
	var be *tiered.BatchError
	switch {
	case err == nil:
	case errors.As(err, &be):
		for k, err := range be.Keys {
			o.errOf[k] = err
		}
		note(err)
	case errors.Is(err, tiered.ErrClosed):
		return o, err
	default:
		for _, k := range ks {
			o.errOf[k] = err
		}
		note(err)
	}
	return o, ctx.Err()
}

// call makes one call and counts what became of it.
func (rd *reader) call(ctx context.Context) error {
	t := rd.clock.now()
	ph := rd.clock.phase(t, rd.in.obs.subscribed.Load())
	op, ks, probe, sub := rd.choose()
	sub0 := rd.in.Subscribed()
	stale0, hookFail0 := rd.in.Stats().StaleServed, rd.in.hook.failed.Load()
	evOK0, evFail0 := rd.in.obs.ok.Load(), rd.in.obs.failed.Load()
	o, err := rd.do(ctx, ph, op, ks)
	if err != nil {
		return err
	}
	staleN := int(rd.in.Stats().StaleServed - stale0)
	hookFailed := rd.in.hook.failed.Load() != hookFail0
	if hookFailed && rd.in.obs.failed.Load() == evFail0 && rd.in.obs.ok.Load() != evOK0 {
		// The client saw a failed round trip; the cache reported its
		// Redis calls as answered.
		rd.misreported++
		if rd.misreportedOp == "" {
			rd.misreportedOp = opName(op)
		}
	}
	if staleN > 0 && !hookFailed {
		// A stale value is served only in place of a Redis failure.
		rd.answered += staleN
		if len(rd.wrong) < 3 {
			rd.wrong = append(rd.wrong, fmt.Sprintf("instance %d: %d values served stale by a call (%q) "+
				"whose Redis round trips all succeeded", rd.idx, staleN, ks))
		}
	}
	c := &rd.counts[ph]
	c.Calls++
	c.Stale += staleN
	seen := map[string]bool{}
	for _, k := range ks {
		if seen[k] {
			continue
		}
		seen[k] = true
		rd.countKey(c, ph, t, op, k, len(ks), staleN, o, sub0)
	}
	if probe != nil && sub && len(o.errOf) == 0 {
		if v, ok := o.values[probe.key]; ok && versionOf(v) >= probe.ver {
			rd.converged.CompareAndSwap(0, rd.clock.now())
		}
	}
	return nil
}

// countKey counts key k of a call begun at t in phase ph that asked for n
// keys and was served staleN values stale, and checks a stale value
// against the newest version the instance had returned.
func (rd *reader) countKey(c *readCounts, ph int, t int64, op int, k string, n, staleN int, o outcome, sub0 bool) {
	c.Keys++
	err, bad := o.errOf[k]
	if rd.keys.isHeld(k) {
		c.HeldKeys++
		if bad {
			c.HeldErrors++
			if ph == phaseOutage && len(rd.heldErrs) < 3 {
				rd.heldErrs = append(rd.heldErrs, rd.heldError(t, op, k, err, sub0))
			}
		}
	} else {
		c.HotKeys++
		if bad {
			c.HotErrors++
		}
	}
	v, ok := o.values[k]
	switch {
	case bad:
		c.Errors++
		return
	case !ok:
		c.NotFound++
		return
	}
	c.Values++
	ver, had := versionOf(v), rd.maxSeen[k]
	// A stale value must be the newest this instance had returned for the
	// key: during the outage (when no value can be fresh) and for a single
	// key served stale; in a batch that mixes stale and fresh values, none
	// may be older than that.
	if staleN > 0 {
		exact := ph == phaseOutage || n == 1
		if ver < had || (exact && ver != had) {
			rd.nwrong++
			if len(rd.wrong) < 3 {
				rd.wrong = append(rd.wrong, fmt.Sprintf("instance %d, %q: served %q stale, had returned version %d",
					rd.idx, k, v, had))
			}
		}
	}
	if ver > had {
		rd.maxSeen[k] = ver
	}
}

// heldError describes a held key's failure in the outage: when the call
// began, against the stop and the instance's Broken event.
func (rd *reader) heldError(t int64, op int, k string, err error, sub0 bool) string {
	since := "before Broken was observed"
	if b := rd.in.obs.broken.Load(); b != 0 && t >= b {
		since = time.Duration(t-b).Round(time.Microsecond).String() + " after Broken was observed"
	} else if b != 0 {
		since = time.Duration(b-t).Round(time.Microsecond).String() + " before Broken was observed"
	}
	return fmt.Sprintf("instance %d, %s %q begun %v after the stop, %s (Subscribed %v → %v, %d gaps): %v",
		rd.idx, opName(op), k, time.Duration(t-rd.clock.stop.Load()).Round(time.Microsecond), since, sub0,
		rd.in.Subscribed(), rd.in.obs.gaps.Load(), causeText(err))
}

// causeText is err's text without the cache's `tiered: get "k" in
// namespace "ns": ` prefix.
func causeText(err error) string {
	msg := fmt.Sprint(err)
	if i := strings.Index(msg, `in namespace "`); i >= 0 {
		if j := strings.Index(msg[i+len(`in namespace "`):], `": `); j >= 0 {
			return msg[i+len(`in namespace "`)+j+3:]
		}
	}
	return msg
}
