package tiered

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// SetTTL sets, from inside a loader, the Redis TTL of what the loader
// returns, in place of the cache's TTL (for a value) or NotFoundTTL (for an
// absence): ctx must be the ctx the loader was given. With no keys it
// applies to everything the load returns; with keys (for FetchMany), to
// those keys only, and a key-specific TTL wins over the load-wide one. A ttl
// of 0 means no expiry for a value; for an absence it means "do not
// remember it" (as NotFoundTTL 0 does). A positive ttl must be at least 1ms.
// The cache's TTLJitter applies to it.
//
//	c.Fetch(ctx, id, func(ctx context.Context) (User, error) {
//		u, err := db.User(ctx, id)
//		if err == nil {
//			err = tiered.SetTTL(ctx, u.CacheFor)
//		}
//		return u, err
//	})
//
// SetTTL returns an error, and changes nothing, for a ctx that is not a
// loader's or a ttl that is negative or under 1ms. It is safe to call from
// goroutines the loader starts, until the loader returns.
func SetTTL(ctx context.Context, ttl time.Duration, keys ...string) error {
	t, _ := ctx.Value(loadTTLsKey{}).(*loadTTLs)
	if t == nil {
		return errors.New("tiered: SetTTL outside a loader: ctx is not the one Fetch or FetchMany gave its loader")
	}
	if ttl < 0 || (ttl > 0 && ttl < time.Millisecond) {
		return fmt.Errorf("tiered: SetTTL: ttl must be 0 or at least 1ms, got %v", ttl)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(keys) == 0 {
		t.all, t.allSet = ttl, true
		return nil
	}
	if t.per == nil {
		t.per = make(map[string]time.Duration, len(keys))
	}
	for _, k := range keys {
		t.per[k] = ttl
	}
	return nil
}

type loadTTLsKey struct{}

// loadTTLs collects what a loader asked for with SetTTL.
type loadTTLs struct {
	mu     sync.Mutex
	all    time.Duration
	allSet bool
	per    map[string]time.Duration
}

// ttl returns the TTL a loader chose for key, if it chose one.
func (t *loadTTLs) ttl(key string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.per[key]; ok {
		return d, true
	}
	return t.all, t.allSet
}

// jitter spreads ttl by up to ± the cache's TTLJitter, keeping it whole
// milliseconds and at least 1ms; 0 (no expiry) stays 0.
func (c *Cache[V]) jitter(ttl time.Duration) time.Duration {
	if ttl <= 0 || c.ttlJitter == 0 {
		return ttl
	}
	spread := time.Duration((rand.Float64()*2 - 1) * c.ttlJitter * float64(ttl))
	return max((ttl + spread).Truncate(time.Millisecond), time.Millisecond)
}
