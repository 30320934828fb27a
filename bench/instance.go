package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// instance is one tiered.Cache with a Redis client of its own, as a separate
// process would have (env.close closes the client), and a counter of that
// client's round trips.
type instance[V any] struct {
	*tiered.Cache[V]
	hub   *tiered.Hub // nil for a cache made by tiered.New (a hub of its own, defaults)
	calls *counter    // counts the round trips of the instance's own client
}

// newCacheInstance returns a cache made by tiered.New in the run's namespace
// (unless opts names one) whose values live keyTTL in Redis (unless opts
// sets a TTL), once its invalidation subscription is confirmed and its
// connection is open.
func newCacheInstance[V any](ctx context.Context, e *env, opts tiered.Options[V]) (*instance[V], error) {
	return newInstance(ctx, e, nil, nil, opts)
}

// newHubInstance is newCacheInstance with a Hub of its own made with hopts
// (tiered.NewHub and tiered.NewCache), over a new client of the server, or
// of the address edit sets.
func newHubInstance[V any](ctx context.Context, e *env, hopts tiered.HubOptions, edit func(*redis.Options), opts tiered.Options[V]) (*instance[V], error) {
	return newInstance(ctx, e, &hopts, edit, opts)
}

func newInstance[V any](ctx context.Context, e *env, hopts *tiered.HubOptions, edit func(*redis.Options), opts tiered.Options[V]) (*instance[V], error) {
	if opts.Namespace == "" {
		opts.Namespace = e.namespace
	}
	if opts.TTL == 0 {
		opts.TTL = keyTTL
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	calls := &counter{}
	client := e.newClientWith(calls, edit)
	in := &instance[V]{calls: calls}
	var err error
	if hopts == nil {
		in.Cache, err = tiered.New(client, opts)
	} else {
		if in.hub, err = tiered.NewHub(client, *hopts); err != nil {
			return nil, err
		}
		if err := e.track(in.hub.Close); err != nil {
			return nil, err
		}
		in.Cache, err = tiered.NewCache(in.hub, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := e.track(in.Cache.Close); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = in.WaitReady(wctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("bench: waiting for the invalidation subscription: %w", err)
	}
	// Open the client's first connection now, not during a measurement.
	if _, err := in.Get(ctx, "\x00warm-up"); err != nil && !errors.Is(err, tiered.ErrNotFound) {
		return nil, fmt.Errorf("bench: first read: %w", err)
	}
	return in, nil
}

// close closes the instance's cache and, if it has one of its own, its Hub
// (env.close would too); its client stays open until env.close.
func (in *instance[V]) close() error {
	err := in.Cache.Close()
	if in.hub != nil {
		err = errors.Join(err, in.hub.Close())
	}
	return err
}

// newCacheInstances returns n instances with the same options.
func newCacheInstances[V any](ctx context.Context, e *env, n int, opts tiered.Options[V]) ([]*instance[V], error) {
	return newInstances(ctx, e, n, nil, opts)
}

// newHubInstances returns n instances, each with a Hub of its own made with
// hopts.
func newHubInstances[V any](ctx context.Context, e *env, n int, hopts tiered.HubOptions, opts tiered.Options[V]) ([]*instance[V], error) {
	return newInstances(ctx, e, n, &hopts, opts)
}

func newInstances[V any](ctx context.Context, e *env, n int, hopts *tiered.HubOptions, opts tiered.Options[V]) ([]*instance[V], error) {
	out := make([]*instance[V], n)
	for i := range out {
		in, err := newInstance(ctx, e, hopts, nil, opts)
		if err != nil {
			return nil, err
		}
		out[i] = in
	}
	return out, nil
}

// warmInstance returns an instance whose local tier holds ks (with values
// value(i)), checked by reading each once more as a local hit.
func warmInstance(ctx context.Context, e *env, ks []string) (*instance[string], error) {
	in, err := newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: max(tiered.DefaultLocalSize, len(ks))})
	if err != nil {
		return nil, err
	}
	return in, fill(ctx, in.Cache, ks)
}

// fill Sets value(i) under ks[i] through c and reads them until c's local
// tier answers (see warmLocal).
func fill(ctx context.Context, c *tiered.Cache[string], ks []string) error {
	for i, k := range ks {
		if err := c.Set(ctx, k, value(i)); err != nil {
			return err
		}
	}
	return warmLocal(ctx, c, ks)
}

// warmLocal reads ks through c until one pass over them is answered by the
// local tier alone: at most 50 passes, 10ms apart. Passes before the last
// fill the local tier, or find it not yet proven fresh (a Hub with no
// recent proof of freshness sends reads to Redis; see Stats.Unproven).
func warmLocal[V any](ctx context.Context, c *tiered.Cache[V], ks []string) error {
	var got uint64
	for pass := range 50 {
		if pass > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		before := c.Stats().LocalHits
		for _, k := range ks {
			if _, err := c.Get(ctx, k); err != nil {
				return err
			}
		}
		if got = c.Stats().LocalHits - before; got == uint64(len(ks)) {
			return nil
		}
	}
	return fmt.Errorf("bench: the local tier answered %d of %d reads of warm keys (%d reads unproven so far)",
		got, len(ks), c.Stats().Unproven)
}

// coldInstance returns an instance with a one-entry local tier, so that
// reading ks in turn misses it every time.
func coldInstance(ctx context.Context, e *env, ks []string) (*instance[string], error) {
	if err := e.populate(ctx, ks, value); err != nil {
		return nil, err
	}
	return newCacheInstance(ctx, e, tiered.Options[string]{LocalSize: 1})
}
