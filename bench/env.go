package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// keyTTL is the Redis lifetime of every key the bench writes, so that a run
// killed before its cleanup leaves nothing behind for long.
const keyTTL = 10 * time.Minute

// env is a run's server and what the run opened on it. Every key the run
// writes starts with prefix; close deletes them all.
type env struct {
	server   string // names the server in the report
	embedded bool
	mini     *miniredis.Miniredis // nil against a real server
	opts     redis.Options        // template of every client
	admin    *redis.Client        // populates and cleans up
	prefix   string               // "tcbench-<random hex>"

	mu      sync.Mutex
	closers []func() error // guarded by mu: caches, hubs, clients, newest last
}

// parseRedis parses -redis: empty (nil: an embedded server), a URL as
// redis.ParseURL takes it, or host:port as REDIS_ADDR takes it.
func parseRedis(s string) (*redis.Options, string, error) {
	if s == "" {
		return nil, "", nil
	}
	if strings.Contains(s, "://") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, "", fmt.Errorf("-redis %q: %w", s, err)
		}
		u, _ := url.Parse(s)
		return o, u.Redacted(), nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, "", fmt.Errorf("-redis %q: want host:port or a redis:// URL: %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, "", fmt.Errorf("-redis %q: port %q is not a number from 1 to 65535", s, port)
	}
	return &redis.Options{Addr: s}, s, nil
}

// openEnv starts an embedded miniredis when server is empty, or connects to
// the server it names, and checks that it answers.
func openEnv(ctx context.Context, server string) (*env, error) {
	o, name, err := parseRedis(server)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	e := &env{prefix: "tcbench-" + hex.EncodeToString(rnd[:])}
	if o == nil {
		if e.mini, err = miniredis.Run(); err != nil {
			return nil, fmt.Errorf("bench: start the embedded server: %w", err)
		}
		e.embedded, e.opts, e.server = true, redis.Options{Addr: e.mini.Addr()}, "embedded miniredis"
	} else {
		e.opts, e.server = *o, "Redis at "+name
	}
	e.admin = redis.NewClient(&e.opts)
	if err := e.admin.Ping(ctx).Err(); err != nil {
		_ = e.close()
		return nil, fmt.Errorf("bench: %s does not answer PING: %w", e.server, err)
	}
	if v := e.version(ctx); v != "" && !e.embedded {
		e.server = "Redis " + v + " at " + name
	}
	return e, nil
}

// version returns the server's redis_version, or "".
func (e *env) version(ctx context.Context) string {
	info, _ := e.admin.Info(ctx, "server").Result()
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return ""
}

// ns returns the namespace called name in this run.
func (e *env) ns(name string) string { return e.prefix + "-" + name }

// track has closeAll call closer.
func (e *env) track(closer func() error) {
	e.mu.Lock()
	e.closers = append(e.closers, closer)
	e.mu.Unlock()
}

// client returns a new client of the server, edited by edit when it is not
// nil, closed by closeAll.
func (e *env) client(edit func(*redis.Options)) *redis.Client {
	o := e.opts
	if edit != nil {
		edit(&o)
	}
	c := redis.NewClient(&o)
	e.track(c.Close)
	return c
}

// newCache returns a cache of namespace ns on a Hub of its own (made with
// hopts) over a client of its own, as a separate process would have, once
// its subscription is confirmed. Its values live keyTTL in Redis.
func newCache[V any](ctx context.Context, e *env, ns string, hopts tiered.HubOptions, opts tiered.Options[V]) (*tiered.Cache[V], error) {
	return newCacheOn(ctx, e, e.client(nil), ns, hopts, opts)
}

// newCacheOn is newCache over client.
func newCacheOn[V any](ctx context.Context, e *env, client *redis.Client, ns string, hopts tiered.HubOptions, opts tiered.Options[V]) (*tiered.Cache[V], error) {
	hub, err := tiered.NewHub(client, hopts)
	if err != nil {
		return nil, err
	}
	e.track(hub.Close)
	opts.Namespace, opts.TTL = ns, keyTTL
	c, err := tiered.NewCache(hub, opts)
	if err != nil {
		return nil, err
	}
	e.track(c.Close)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		return nil, fmt.Errorf("bench: namespace %s: %w", ns, err)
	}
	return c, nil
}

// closeAll closes every cache, hub and client opened so far, newest first.
func (e *env) closeAll() error {
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// populate stores val(i) under ns:ks[i] with plain pipelined SETs, which
// publish nothing.
func (e *env) populate(ctx context.Context, ns string, ks []string, val func(int) string) error {
	for lo := 0; lo < len(ks); lo += 1000 {
		_, err := e.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < min(lo+1000, len(ks)); i++ {
				p.Set(ctx, ns+":"+ks[i], val(i), keyTTL)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: populate %s: %w", ns, err)
		}
	}
	return nil
}

// close closes everything and deletes every key of the run (SCAN MATCH
// prefix*, UNLINK), then stops the embedded server.
func (e *env) close() error {
	errs := []error{e.closeAll()}
	if e.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := e.admin.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
		var ks []string
		for iter.Next(ctx) {
			if ks = append(ks, iter.Val()); len(ks) == 1000 {
				errs = append(errs, e.admin.Unlink(ctx, ks...).Err())
				ks = ks[:0]
			}
		}
		if len(ks) > 0 {
			errs = append(errs, e.admin.Unlink(ctx, ks...).Err())
		}
		errs = append(errs, iter.Err(), e.admin.Close())
	}
	if e.mini != nil {
		e.mini.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: clean up %s: %w", e.prefix, err)
	}
	return nil
}

// keys returns prefix0 … prefix(n-1).
func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// value returns a 64-byte value for key i.
func value(i int) string {
	s := "value-" + strconv.Itoa(i) + "-"
	return s + strings.Repeat("x", 64-len(s))
}

// warm reads ks through c until one pass is answered by the local tier
// alone (at most 50 passes, 10ms apart): until then the local tier fills,
// or its Hub has not yet proven it fresh.
func warm[V any](ctx context.Context, c *tiered.Cache[V], ks []string) error {
	for range 50 {
		before := c.Stats().LocalHits
		for _, k := range ks {
			if _, err := c.Get(ctx, k); err != nil {
				return err
			}
		}
		if c.Stats().LocalHits-before == uint64(len(ks)) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("bench: namespace %s: the local tier does not answer", c.Namespace())
}
