package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// The outage's keys: held keys are only read, so every reader holds them
// when the server stops; the writer Sets the hot ones in turn.
const (
	outageHeld  = 200
	outageHot   = 20
	outageBatch = 8 // keys per GetMany: 2 hot, 6 held
)

func heldKey(i int) string { return "held-" + strconv.Itoa(i) }
func hotKey(i int) string  { return "hot-" + strconv.Itoa(i) }

// versioned is key's value at version v; versionOf parses it (-1: not one).
func versioned(key string, v int64) string { return key + "#" + strconv.FormatInt(v, 10) }

func versionOf(s string) int64 {
	_, v, ok := strings.Cut(s, "#")
	if !ok {
		return -1
	}
	return version(v)
}

// The phases of a call, by when it began.
const (
	phaseBefore = iota // before the stop
	phaseOutage        // from the stop until the server answered again
	phaseFirst         // the first second after that
	phaseLater
	nPhases
)

// outageClock is a side's timeline, in ns since epoch (0: not yet).
type outageClock struct {
	stop, up     atomic.Int64
	newest       atomic.Pointer[written] // the writer's newest acknowledged Set
	lastVersions [outageHot]atomic.Int64 // each hot key's newest acknowledged version
}

func (c *outageClock) phase(t int64) int {
	switch stop, up := c.stop.Load(), c.up.Load(); {
	case stop == 0 || t < stop:
		return phaseBefore
	case up == 0 || t < up:
		return phaseOutage
	case t < up+int64(time.Second):
		return phaseFirst
	}
	return phaseLater
}

// written is a Set the writer made.
type written struct {
	key string
	ver int64
	at  int64
}

// counts are what a phase's calls did, key by key.
type counts struct {
	calls, keys, values, stale, notFound, errs int
	heldKeys, heldErrs                         int
	lats                                       []time.Duration
}

// outageCall is a call begun in the outage, as its judge needs it.
type outageCall struct {
	start, lastHit, unsub int64 // when it began; the reader's last local hit and first unsubscribed call before it
	heldKeys, heldErrs    int
	stale                 int
}

// reader is a reader instance and what its one goroutine counted.
type reader struct {
	n     *node
	clock *outageClock
	rng   *rand.Rand

	phases    [nPhases]counts
	outage    []outageCall
	maxSeen   map[string]int64 // the newest version this instance returned, per key
	wrong     int              // stale values that were not that version
	examples  []string         // the first of them
	answered  int              // stale values served by calls whose Redis round trips all succeeded
	lastHit   int64            // the start of the last call a local hit answered
	unsub     int64            // the start of the first call after the stop that found the cache unsubscribed
	converged atomic.Int64     // after the restart: subscribed and reading the writer's newest Set
}

var errBackendDown = errors.New("backend down too")

// call makes one call (80% Get, 10% GetMany, 10% Fetch whose loader
// fails), or, after the restart until converged, a Get of the newest key
// the writer Set since, and counts what became of it.
func (rd *reader) call(ctx context.Context) error {
	start := sinceEpoch()
	ph := rd.clock.phase(start)
	if ph == phaseOutage && rd.unsub == 0 && !rd.n.Subscribed() {
		rd.unsub = start
	}
	op, ks := rd.rng.IntN(10), []string{heldKey(rd.rng.IntN(outageHeld))}
	if rd.rng.IntN(4) == 0 {
		ks[0] = hotKey(rd.rng.IntN(outageHot))
	}
	probe := rd.clock.newest.Load()
	if probe == nil || rd.converged.Load() != 0 || probe.at < rd.clock.up.Load() || rd.clock.up.Load() == 0 {
		probe = nil
	} else {
		op, ks = 0, []string{probe.key}
	}
	if op == 8 {
		ks = []string{hotKey(rd.rng.IntN(outageHot)), hotKey(rd.rng.IntN(outageHot))}
		for range outageBatch - 2 {
			ks = append(ks, heldKey(rd.rng.IntN(outageHeld)))
		}
	}
	sub, hits, stale0, failed0 := rd.n.Subscribed(), rd.n.hits.Load(), rd.n.Stats().StaleServed, rd.n.failed.Load()
	t0 := time.Now()
	values, errOf, err := rd.do(ctx, op, ks)
	took := time.Since(t0)
	if err != nil {
		return err
	}
	if rd.n.hits.Load() != hits && ph <= phaseOutage {
		rd.lastHit = start
	}
	staleN := int(rd.n.Stats().StaleServed - stale0)
	if staleN > 0 && rd.n.failed.Load() == failed0 {
		rd.answered += staleN
	}
	c := &rd.phases[ph]
	c.calls, c.stale, c.lats = c.calls+1, c.stale+staleN, append(c.lats, took)
	oc := outageCall{start: start, lastHit: rd.lastHit, unsub: rd.unsub, stale: staleN}
	for _, k := range dedup(ks) {
		rd.count(c, &oc, k, values, errOf, staleN > 0, ph == phaseOutage || len(ks) == 1)
	}
	if ph == phaseOutage {
		rd.outage = append(rd.outage, oc)
	}
	if v, ok := values[ks[0]]; probe != nil && sub && ok && len(errOf) == 0 && versionOf(v) >= probe.ver {
		rd.converged.CompareAndSwap(0, sinceEpoch())
	}
	return nil
}

// do makes the call; its error is one that ends the reader (the cache
// closed), the call's own are in errOf.
func (rd *reader) do(ctx context.Context, op int, ks []string) (map[string]string, map[string]error, error) {
	values, errOf := map[string]string{}, map[string]error{}
	var err error
	switch op {
	case 8:
		values, err = rd.n.GetMany(ctx, ks)
		var be *tiered.BatchError
		if errors.As(err, &be) {
			errOf, err = be.Keys, nil
		}
	case 9:
		var v string
		if v, err = rd.n.Fetch(ctx, ks[0], func(context.Context) (string, error) { return "", errBackendDown }); err == nil {
			values[ks[0]] = v
		}
	default:
		var v string
		if v, err = rd.n.Get(ctx, ks[0]); err == nil {
			values[ks[0]] = v
		}
	}
	switch {
	case err == nil, errors.Is(err, tiered.ErrNotFound):
		return values, errOf, nil
	case errors.Is(err, tiered.ErrClosed):
		return nil, nil, err
	}
	for _, k := range ks {
		errOf[k] = err
	}
	return values, errOf, nil
}

// count counts key k of a call; a stale value must be the newest version
// this instance had returned for k (exact: when the call served only
// stale values; else not older).
func (rd *reader) count(c *counts, oc *outageCall, k string, values map[string]string, errOf map[string]error, stale, exact bool) {
	c.keys++
	_, bad := errOf[k]
	if strings.HasPrefix(k, "held-") {
		c.heldKeys++
		oc.heldKeys++
		if bad {
			c.heldErrs++
			oc.heldErrs++
		}
	}
	v, ok := values[k]
	switch {
	case bad:
		c.errs++
		return
	case !ok:
		c.notFound++
		return
	}
	c.values++
	ver, had := versionOf(v), rd.maxSeen[k]
	if stale && (ver < had || (exact && ver != had)) {
		if rd.wrong++; len(rd.examples) < 3 {
			rd.examples = append(rd.examples, fmt.Sprintf("%q: served %q stale, had returned version %d", k, v, had))
		}
	}
	rd.maxSeen[k] = max(had, ver)
}

func dedup(ks []string) []string {
	seen, out := map[string]bool{}, ks[:0:0]
	for _, k := range ks {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
