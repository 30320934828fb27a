package tiered

import (
	"context"
	"errors"
	"time"

	"github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/internal/remote"
)

// StaleIfError: what this instance held for a key, kept while it cannot be
// trusted, and served only in place of a Redis error.
//
// Two states hold suspect values:
//   - The subscription is lost (stateBypass). When it breaks, the local
//     tier's entries are moved to the suspect tier, and reads that Redis
//     answers while it stays down refresh it; nothing there is ever served
//     as a hit. Its entries live StaleIfError from when they were last known
//     current: the Hub's last proof of freshness before the loss, or the
//     read that brought them. It is emptied when the subscription is
//     confirmed again.
//   - The subscription is live but the Hub cannot prove the local tier
//     fresh (MaxStaleness): reads go to Redis, and the local tier's entries
//     are suspect, last known current at the last proof.
//
// A write by this instance drops the key from the suspect tier, so that no
// value older than this instance's own write is ever served.

// staleEntry is what the suspect tier holds for a key.
type staleEntry[V any] struct {
	e     entry[V]
	since time.Time // when e was last known current
}

// fillToken is taken before a read from Redis, and lets what was read fill
// the local tier (when live) or the suspect tier (when not), unless the key
// was invalidated meanwhile.
type fillToken struct {
	local, suspect local.Token
}

func (c *Cache[V]) fillToken(key string) fillToken {
	t := fillToken{local: c.local.Token(key)}
	if c.suspect != nil {
		t.suspect = c.suspect.Token(key)
	}
	return t
}

// keepSuspect copies the local tier's entries to the suspect tier, as last
// known current at the Hub's last proof of freshness (not now: a silent loss
// is noticed late, and every invalidation since that proof may have been
// lost); called when the subscription is lost, before the cache bypasses
// and purges the local tier. Nothing is kept without a proof, or with one
// StaleIfError old. A key that this instance writes while it runs keeps no
// suspect entry, or the value written: the write drops the key from the
// suspect tier after its commit (see settleWrite), which makes a token
// taken here before the commit stale.
func (c *Cache[V]) keepSuspect() {
	since := c.hub.sub.LastProof()
	life := c.staleIfError - time.Since(since)
	if since.IsZero() || life <= 0 {
		return
	}
	type kept struct {
		key string
		e   entry[V]
		tok local.Token
	}
	var all []kept
	c.local.Range(func(key string, e entry[V]) bool {
		all = append(all, kept{key, e, c.suspect.Token(key)})
		return true
	})
	for _, k := range all {
		c.suspect.SetIf(k.key, staleEntry[V]{e: k.e, since: since}, life, k.tok)
	}
}

// dropSuspect removes keys from the suspect tier and stops suspect fills of
// them that began before.
func (c *Cache[V]) dropSuspect(keys ...string) {
	if c.suspect != nil {
		c.suspect.Invalidate(keys...)
	}
}

// foundNone is told that Redis holds no value at key (nothing, a lease, a
// load's outcome): whatever this instance held for key is no longer the
// last it knew, so it must not be served, stale or after a repair. While
// the subscription is live and proven, the local tier cannot hold key (an
// invalidation would have dropped it); unproven, it may, and is dropped.
func (c *Cache[V]) foundNone(key string) {
	switch c.state.Load() {
	case stateBypass:
		c.local.Invalidate(key) // kept through the loss (see storeFill)
		c.dropSuspect(key)
	case stateLive:
		if c.suspect != nil && !c.hub.fresh() {
			c.local.Delete(key)
		}
	}
}

// stale returns what this instance last held for key, if err is a failure
// of Redis (not an answer such as ErrNotFound or bytes that do not decode)
// and that value was known current less than StaleIfError ago, with its
// age. It counts and reports the value served under op.
func (c *Cache[V]) stale(op, key string, err error) (entry[V], bool) {
	if c.staleIfError <= 0 || !redisFailed(err) {
		return entry[V]{}, false
	}
	se, ok := c.suspectOf(key)
	if !ok {
		return entry[V]{}, false
	}
	c.servedStale(op, 1, time.Since(se.since), err)
	return se.e, true
}

// orStale is the result of op on key that failed with err: the value this
// instance last held for key, when Redis failed and StaleIfError allows it
// (see stale), or err, labelled.
func (c *Cache[V]) orStale(op, key string, err error) (V, error) {
	if e, ok := c.stale(op, key, err); ok {
		if e.absent {
			return e.v, c.fail(op, key, ErrNotFound)
		}
		return e.v, nil
	}
	return *new(V), c.fail(op, key, err)
}

// suspectOf finds key's suspect value, if any is young enough.
func (c *Cache[V]) suspectOf(key string) (staleEntry[V], bool) {
	switch c.state.Load() {
	case stateBypass:
		return c.suspect.Get(key) // expires StaleIfError after its since
	case stateLive:
		if c.retained.Load() {
			if se, ok := c.suspect.Get(key); ok {
				return se, true
			}
		}
		if c.hub.fresh() {
			return staleEntry[V]{}, false // the local tier answered already, or had nothing
		}
		last := c.hub.sub.LastProof()
		if last.IsZero() || time.Since(last) >= c.staleIfError {
			return staleEntry[V]{}, false
		}
		e, ok := c.local.Get(key)
		return staleEntry[V]{e: e, since: last}, ok
	}
	return staleEntry[V]{}, false
}

// retainSuspect keeps the suspect tier servable, in place of a Redis
// failure, once the subscription is back: Redis answers the Subscriber
// before the client's pool is back (go-redis probes a pool whose dials
// failed once a second), and calls would fail meanwhile. What is kept still
// lives no longer than StaleIfError from when it was last known current,
// and goes as before with a write or an invalidation of its key; all of it
// goes with the first Redis call that succeeds (see redisAnswered).
func (c *Cache[V]) retainSuspect() {
	if c.suspect != nil {
		c.retained.Store(true)
	}
}

// redisAnswered is told that a Redis call succeeded: the suspect tier that
// outlived the outage is dropped.
func (c *Cache[V]) redisAnswered() {
	if c.retained.Load() && c.retained.CompareAndSwap(true, false) {
		c.suspect.Purge()
	}
}

// servedStale counts and reports n stale values served under op, the oldest
// of them age old, in place of err.
func (c *Cache[V]) servedStale(op string, n int, age time.Duration, err error) {
	c.stats.staleServed.Add(uint64(n))
	if c.obs != nil {
		c.observe(Event{Kind: EventStale, Op: op, Keys: n, Duration: age, Err: err})
	}
}

// staleMany replaces, in a batch's result, the failures that Redis caused
// with the suspect values it can serve: it moves them from failed to out
// (a suspect absence just leaves its key out), and returns what is left of
// failed.
func (c *Cache[V]) staleMany(op string, out map[string]V, failed map[string]error) map[string]error {
	if c.staleIfError <= 0 || len(failed) == 0 {
		return failed
	}
	n, oldest := 0, time.Duration(0)
	var cause error
	for key, err := range failed {
		if !redisFailed(err) {
			continue
		}
		se, ok := c.suspectOf(key)
		if !ok {
			continue
		}
		if !se.e.absent {
			out[key] = se.e.v
		}
		delete(failed, key)
		n, oldest, cause = n+1, max(oldest, time.Since(se.since)), err
	}
	if n > 0 {
		c.servedStale(op, n, oldest, cause)
	}
	if len(failed) == 0 {
		return nil
	}
	return failed
}

// loadError is a loader's error; redis is the Redis error it was the
// fallback for, if any.
type loadError struct {
	err, redis error
}

func (e *loadError) Error() string {
	if e.redis != nil {
		return "load: " + e.err.Error() + " (called because Redis failed: " + e.redis.Error() + ")"
	}
	return "load: " + e.err.Error()
}

func (e *loadError) Unwrap() []error {
	if e.redis != nil {
		return []error{e.err, e.redis}
	}
	return []error{e.err}
}

// redisFailed reports whether err says that Redis failed or did not answer
// in time, rather than that it answered (ErrNotFound, a value that does not
// decode), that a Codec or loader panicked, or that the cache is closed.
func redisFailed(err error) bool {
	var (
		re *remote.Error
		de *decodeError
		pe *panicError
		le *loadError
	)
	if errors.As(err, &le) {
		return le.redis != nil // the loader was the fallback for a Redis failure
	}
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrClosed),
		errors.As(err, &de), errors.As(err, &pe):
		return false
	}
	return errors.As(err, &re) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRedisDown)
}
