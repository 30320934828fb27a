package tiered

import (
	"errors"
	"maps"
)

// The results of EventRead: how a key a read call asked for was answered,
// when the local tier did not answer it (those are EventLocalHit).
const (
	ResultRemote = "remote" // a value read from Redis
	ResultLoader = "loader" // a value (or an absence) from Fetch's or FetchMany's loader
	ResultMiss   = "miss"   // not found (ErrNotFound, or left out of a batch's map)
	ResultStale  = "stale"  // a value served stale in place of a Redis error (StaleIfError)
	ResultError  = "error"  // failed
)

// reads tallies the results of the keys of one read call that the local
// tier did not answer.
type reads struct{ remote, loader, miss, stale, failed int }

// observeReads reports r, one EventRead per result that keys had.
func (c *Cache[V]) observeReads(op string, r reads) {
	if c.obs == nil {
		return
	}
	for _, x := range [...]struct {
		result string
		n      int
	}{{ResultRemote, r.remote}, {ResultLoader, r.loader}, {ResultMiss, r.miss}, {ResultStale, r.stale}, {ResultError, r.failed}} {
		if x.n > 0 {
			c.observe(Event{Kind: EventRead, Op: op, Keys: x.n, Result: x.result})
		}
	}
}

// readFailed is the result of a single-key read that failed with err
// (before StaleIfError) and returned final: a miss, a stale answer, or an
// error.
func readFailed(err, final error) reads {
	switch {
	case errors.Is(err, ErrNotFound):
		return reads{miss: 1}
	case final == nil || errors.Is(final, ErrNotFound): // a stale value or absence
		return reads{stale: 1}
	}
	return reads{failed: 1}
}

// batchReads tallies a batch's keys that went past the local tier (rest):
// those still in failed (after StaleIfError) are errors, those that were
// in wasFailed and are no longer were served stale, the others in out were
// read (loaded, for the flights of fls that say so) and those not in out
// were missing.
func batchReads[V any](rest []string, out map[string]V, failed, wasFailed map[string]error, fls []*flight[V]) reads {
	var r reads
	for i, k := range rest {
		switch _, ok := out[k]; {
		case failed[k] != nil:
			r.failed++
		case wasFailed[k] != nil:
			r.stale++
		case !ok:
			r.miss++
		case fls != nil && fls[i] != nil && fls[i].loaded:
			r.loader++
		default:
			r.remote++
		}
	}
	return r
}

// endBatch ends a GetMany or FetchMany (op) whose keys past the local tier
// (rest) failed as failed says: it serves what it can stale, reports the
// reads, and returns the call's error.
func (c *Cache[V]) endBatch(op string, rest []string, out map[string]V, failed map[string]error, fls []*flight[V]) error {
	name := "get-many"
	if op == opFetchMany {
		name = "fetch-many"
	}
	var was map[string]error
	if c.obs != nil && c.staleIfError > 0 && len(failed) > 0 {
		was = maps.Clone(failed) // staleMany takes out what it serves
	}
	failed = c.staleMany(name, out, failed)
	if c.obs != nil {
		c.observeReads(op, batchReads(rest, out, failed, was, fls))
	}
	return c.batchError(name, failed)
}
