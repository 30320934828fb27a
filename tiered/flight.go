package tiered

import (
	"context"
	"hash/maphash"
	"sync"
)

// readFlights shares one Redis read of a key among the callers that want it
// at the same time. Unlike singleflight.DoChan, which starts a goroutine per
// flight (on a cold read that hand-off between threads costs about as much
// as the Redis round trip itself: see the bench package), the first caller
// reads on its own goroutine; the others wait for it, each giving up when
// its own ctx ends.
//
// The leader reads with its own ctx. If that ctx ends before the read does,
// the waiters do not inherit the leader's cancellation: each one still
// waiting starts the read again (one of them leads), so no caller fails
// because another caller gave up.
type readFlights[V any] struct {
	seed   maphash.Seed
	shards [16]flightShard[V]
}

type flightShard[V any] struct {
	mu    sync.Mutex
	calls map[string]*readCall[V] // guarded by mu: the reads in progress
	_     [40]byte                // keeps neighbouring shards' locks apart
}

// readCall is one read in progress. Its fields are written by the leader
// before done is closed and only read after.
type readCall[V any] struct {
	done      chan struct{}
	v         V
	err       error
	abandoned bool // the leader's ctx ended first: waiters read again
}

func newReadFlights[V any]() *readFlights[V] {
	f := &readFlights[V]{seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].calls = make(map[string]*readCall[V])
	}
	return f
}

// do returns the result of read(ctx) for key, sharing it with the callers
// of do for the same key while it runs.
func (f *readFlights[V]) do(ctx context.Context, key string, read func(context.Context) (V, error)) (V, error) {
	s := &f.shards[maphash.String(f.seed, key)%uint64(len(f.shards))]
	for {
		s.mu.Lock()
		if c, ok := s.calls[key]; ok {
			s.mu.Unlock()
			select {
			case <-c.done:
				if c.abandoned {
					continue
				}
				return c.v, c.err
			case <-ctx.Done():
				var zero V
				return zero, ctx.Err()
			}
		}
		c := &readCall[V]{done: make(chan struct{})}
		s.calls[key] = c
		s.mu.Unlock()

		c.v, c.err = read(ctx)
		c.abandoned = c.err != nil && ctx.Err() != nil
		s.mu.Lock()
		delete(s.calls, key)
		s.mu.Unlock()
		close(c.done)
		return c.v, c.err
	}
}
