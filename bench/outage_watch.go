package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// What the outage scenario watches: its timeline, and each instance on its
// own server as the cache reports it (an Observer) and as the client sees
// it (a hook).

// outageClock is what every goroutine of a side needs to know of its
// timeline: when the server stopped and started again (since base; 0:
// not yet).
type outageClock struct {
	base          time.Time
	stop, restart atomic.Int64
}

func (c *outageClock) now() int64 { return max(int64(time.Since(c.base)), 1) }

// phase is the phase of a call that begins at t on an instance whose
// subscription was confirmed again at subscribed (0: not yet).
func (c *outageClock) phase(t, subscribed int64) int {
	stop, restart := c.stop.Load(), c.restart.Load()
	switch {
	case stop == 0 || t < stop:
		return phaseBefore
	case restart == 0 || t < restart:
		return phaseOutage
	case subscribed == 0 || t < subscribed:
		return phaseAfter
	}
	return phaseResubscribed
}

// outageObserver follows one instance through the outage: its Redis calls
// as the cache reports them (EventRedis), its subscription confirmed again,
// and the stale values it served. Times are the clock's.
type outageObserver struct {
	clock      *outageClock
	ok, failed atomic.Int64 // EventRedis without and with an error
	subscribed atomic.Int64 // the first Subscribed after the restart
	broken     atomic.Int64 // the last Broken observed
	gaps       atomic.Int64 // Gap events (a message that did not decode: the local tier purged)
	staleKeys  atomic.Int64
}

func (o *outageObserver) observe(ev tiered.Event) {
	switch ev.Kind {
	case tiered.EventRedis:
		if ev.Err == nil {
			o.ok.Add(1)
			return
		}
		o.failed.Add(1)
	case tiered.EventSubscription:
		switch {
		case (ev.State == tiered.StateSubscribed || ev.State == tiered.StateRepaired) && o.clock.restart.Load() != 0:
			o.subscribed.CompareAndSwap(0, o.clock.now())
		case ev.State == tiered.StateBroken:
			o.broken.Store(o.clock.now())
		case ev.State == tiered.StateGap:
			o.gaps.Add(1)
		}
	case tiered.EventStale:
		o.staleKeys.Add(int64(ev.Keys))
	}
}

// failHook counts the round trips of a client in which a command failed
// (redis.Nil is an answer), and keeps the time of the last after the
// restart: what the client saw, whatever the cache reports.
type failHook struct {
	clock    *outageClock
	failed   atomic.Int64
	lastFail atomic.Int64 // since clock.base; after clock.restart only
}

func failed(err error) bool { return err != nil && !errors.Is(err, redis.Nil) }

// trip is a tripHook.
func (h *failHook) trip(cmd redis.Cmder, cmds []redis.Cmder, err error) {
	bad := failed(err) || (cmd != nil && failed(cmd.Err()))
	for _, c := range cmds {
		bad = bad || failed(c.Err())
	}
	if !bad {
		return
	}
	h.failed.Add(1)
	if h.clock.restart.Load() != 0 {
		h.lastFail.Store(h.clock.now())
	}
}

// ownInstance is a cache on a Hub of its own over a client of its own, all
// three closed by close, on the scenario's own server.
type ownInstance struct {
	*tiered.Cache[string]
	hub    *tiered.Hub
	client *redis.Client
	obs    *outageObserver
	hook   *failHook
}

// failFast are the options of every outage client: no retries, one dial
// attempt of at most 200ms. By default go-redis dials 5 times 100ms apart
// before it reports a server down, so that each call on a stopped server
// takes about 0.5s.
func failFast(addr string) *redis.Options {
	return &redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: 10 * time.Millisecond}
}

func newOwnInstance(ctx context.Context, addr, ns string, cfg config, stale time.Duration, clock *outageClock) (*ownInstance, error) {
	in := &ownInstance{client: redis.NewClient(failFast(addr)), obs: &outageObserver{clock: clock}, hook: &failHook{clock: clock}}
	in.client.AddHook(tripHook(in.hook.trip))
	var err error
	in.hub, err = tiered.NewHub(in.client, tiered.HubOptions{
		HealthCheck: cfg.outageHealthCheck, MaxBackoff: cfg.outageBackoff, Observer: observerFunc(in.obs.observe)})
	if err != nil {
		_ = in.client.Close()
		return nil, err
	}
	in.Cache, err = tiered.NewCache(in.hub, tiered.Options[string]{
		Namespace: ns, TTL: keyTTL, LocalSize: tiered.DefaultLocalSize, StaleIfError: stale})
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = in.WaitReady(wctx)
		cancel()
	}
	if err != nil {
		_ = in.close()
		return nil, err
	}
	return in, nil
}

// close closes the cache, the Hub and the client.
func (in *ownInstance) close() error {
	var err error
	if in.Cache != nil {
		err = in.Cache.Close()
	}
	return errors.Join(err, in.hub.Close(), in.client.Close())
}

// versioned is the value of key at version v: "<key>#<v>".
func versioned(key string, v int) string { return key + "#" + strconv.Itoa(v) }

// versionOf is the version of a value made by versioned, or -1.
func versionOf(s string) int {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return -1
	}
	v, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return -1
	}
	return v
}
