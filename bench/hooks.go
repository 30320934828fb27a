package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// The bench's adapters to go-redis's and tiercache's interfaces: what it
// watches of a client or a Hub, it watches through one of these.

// tripHook is a redis.Hook that calls itself after each round trip of a
// client: with the command, or for a pipeline with cmd nil and its
// commands, and the error the round trip returned.
type tripHook func(cmd redis.Cmder, cmds []redis.Cmder, err error)

var _ redis.Hook = tripHook(nil)

func (f tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		f(cmd, nil, err)
		return err
	}
}

func (f tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		f(nil, cmds, err)
		return err
	}
}

// observerFunc is a tiered.Observer that calls itself with each event.
type observerFunc func(tiered.Event)

func (f observerFunc) Observe(ev tiered.Event) { f(ev) }
