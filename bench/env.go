package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// keyTTL is the Redis lifetime of every key the benchmark writes, so that a
// run killed before its cleanup leaves nothing behind for long.
const keyTTL = 10 * time.Minute

// Env is one run's Redis server and everything the run opened on it: the
// namespace, the Redis clients and the caches. Close undoes all of it.
type Env struct {
	// Namespace is "tiercache-bench-<random hex>", fresh for each Env.
	Namespace string
	// Embedded is true when the server is a miniredis started by the Env.
	Embedded bool
	// Server describes the server for the report.
	Server string

	mini  *miniredis.Miniredis // nil against a real server
	opts  redis.Options        // template for every client
	admin *redis.Client        // baselines, population and cleanup

	mu         sync.Mutex
	caches     []interface{ Close() error } // guarded by mu: caches, hubs, proxies; closed first, newest first
	clients    []*redis.Client              // guarded by mu; closed last
	namespaces []string                     // guarded by mu: namespaces besides Namespace that Close cleans up
	closed     bool                         // guarded by mu

	closeOnce sync.Once
	closeErr  error
}

// NewEnv starts an embedded miniredis when redisURL is empty, or connects to
// the server redisURL names (any URL redis.ParseURL accepts). It checks that
// the server answers and loads tiercache's scripts, so that every later call
// is one round trip.
func NewEnv(ctx context.Context, redisURL string) (*Env, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("bench: namespace: %w", err)
	}
	e := &Env{Namespace: "tiercache-bench-" + hex.EncodeToString(rnd[:])}
	if redisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("bench: start embedded Redis: %w", err)
		}
		e.mini = m
		e.Embedded = true
		e.opts = redis.Options{Addr: m.Addr()}
		e.Server = "embedded miniredis at " + m.Addr()
	} else {
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, fmt.Errorf("bench: -redis %q: %w", redisURL, err)
		}
		e.opts = *o
		e.Server = "Redis at " + redactURL(redisURL)
	}
	e.admin = e.NewClient(nil)
	if err := e.admin.Ping(ctx).Err(); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("bench: %s does not answer PING: %w", e.Server, err)
	}
	if !e.Embedded {
		if v := serverVersion(ctx, e.admin); v != "" {
			e.Server += " (redis_version " + v + ")"
		}
	}
	if err := e.loadScripts(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// NewClient returns a client of the server, closed by Close (after Close,
// one that is closed already). A non-nil counter counts its round trips.
func (e *Env) NewClient(c *Counter) *redis.Client { return e.NewClientWith(c, nil) }

// NewClientWith is NewClient with the run's client options changed by edit
// (a name, a dialer, another address) when edit is not nil.
func (e *Env) NewClientWith(c *Counter, edit func(*redis.Options)) *redis.Client {
	o := e.opts
	if edit != nil {
		edit(&o)
	}
	client := redis.NewClient(&o)
	if c != nil {
		client.AddHook(c)
	}
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.clients = append(e.clients, client)
	}
	e.mu.Unlock()
	if closed {
		_ = client.Close()
	}
	return client
}

// Key returns the Redis key that holds key in the run's namespace.
func (e *Env) Key(key string) string { return e.Namespace + ":" + key }

// SubNamespace returns the namespace "<Namespace>-<suffix>", whose keys
// Close deletes too.
func (e *Env) SubNamespace(suffix string) string {
	ns := e.Namespace + "-" + suffix
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.namespaces, ns) {
		e.namespaces = append(e.namespaces, ns)
	}
	return ns
}

var errClosed = errors.New("bench: environment is closed")

// Track has CloseCaches (and Close) close c, before the caches and hubs
// opened earlier. After Close it closes c at once and returns errClosed.
func (e *Env) Track(c interface{ Close() error }) error {
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.caches = append(e.caches, c)
	}
	e.mu.Unlock()
	if closed {
		_ = c.Close()
		return errClosed
	}
	return nil
}

// Instance is one tiered.Cache with a Redis client of its own, as a separate
// process would have, and a counter of that client's round trips.
type Instance[V any] struct {
	*tiered.Cache[V]
	Hub    *tiered.Hub // nil for a cache made by tiered.New (a hub of its own, defaults)
	Client *redis.Client
	Calls  *Counter
}

// NewInstance returns a cache made by tiered.New in the run's namespace
// (unless opts names one) whose values live keyTTL in Redis (unless opts
// sets a TTL), once its invalidation subscription is confirmed and its
// connection is open.
func NewInstance[V any](ctx context.Context, e *Env, opts tiered.Options[V]) (*Instance[V], error) {
	return newInstance(ctx, e, nil, nil, opts)
}

// NewHubInstance is NewInstance with a Hub of its own made with hopts
// (tiered.NewHub and tiered.NewCache), over a new client of the server, or
// of the address edit sets.
func NewHubInstance[V any](ctx context.Context, e *Env, hopts tiered.HubOptions, edit func(*redis.Options), opts tiered.Options[V]) (*Instance[V], error) {
	return newInstance(ctx, e, &hopts, edit, opts)
}

func newInstance[V any](ctx context.Context, e *Env, hopts *tiered.HubOptions, edit func(*redis.Options), opts tiered.Options[V]) (*Instance[V], error) {
	if opts.Namespace == "" {
		opts.Namespace = e.Namespace
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
	calls := &Counter{}
	client := e.NewClientWith(calls, edit)
	in := &Instance[V]{Client: client, Calls: calls}
	var err error
	if hopts == nil {
		in.Cache, err = tiered.New(client, opts)
	} else {
		if in.Hub, err = tiered.NewHub(client, *hopts); err != nil {
			return nil, err
		}
		if err := e.Track(in.Hub); err != nil {
			return nil, err
		}
		in.Cache, err = tiered.NewCache(in.Hub, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := e.Track(in.Cache); err != nil {
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

// Close closes the instance's cache and, if it has one of its own, its Hub
// (Env.Close would too); its client stays open until Env.Close.
func (in *Instance[V]) Close() error {
	err := in.Cache.Close()
	if in.Hub != nil {
		err = errors.Join(err, in.Hub.Close())
	}
	return err
}

// NewInstances returns n instances with the same options.
func NewInstances[V any](ctx context.Context, e *Env, n int, opts tiered.Options[V]) ([]*Instance[V], error) {
	return newInstances(ctx, e, n, nil, opts)
}

// NewHubInstances returns n instances, each with a Hub of its own made with
// hopts.
func NewHubInstances[V any](ctx context.Context, e *Env, n int, hopts tiered.HubOptions, opts tiered.Options[V]) ([]*Instance[V], error) {
	return newInstances(ctx, e, n, &hopts, opts)
}

func newInstances[V any](ctx context.Context, e *Env, n int, hopts *tiered.HubOptions, opts tiered.Options[V]) ([]*Instance[V], error) {
	out := make([]*Instance[V], n)
	for i := range out {
		in, err := newInstance(ctx, e, hopts, nil, opts)
		if err != nil {
			return nil, err
		}
		out[i] = in
	}
	return out, nil
}

// CloseCaches closes every cache, hub and proxy opened so far, newest first
// (clients stay open). A scenario calls it when done, so that the next one
// starts with no other subscriber on the channel.
func (e *Env) CloseCaches() error {
	e.mu.Lock()
	caches := e.caches
	e.caches = nil
	e.mu.Unlock()
	var errs []error
	for i := len(caches) - 1; i >= 0; i-- {
		errs = append(errs, caches[i].Close())
	}
	return errors.Join(errs...)
}

// Close closes every cache, deletes every key of the namespace (SCAN MATCH
// and UNLINK, nothing else), checks that none is left, closes every client
// and stops the embedded server. It is idempotent and does not depend on any
// caller's context, so it also works after an interrupt.
func (e *Env) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		errs := []error{e.CloseCaches()}
		if e.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := e.DeleteNamespace(ctx); err != nil {
				errs = append(errs, err)
			} else if left, err := e.CountKeys(ctx); err != nil {
				errs = append(errs, err)
			} else if left > 0 {
				errs = append(errs, fmt.Errorf("bench: %d keys of %s left after cleanup", left, e.Namespace))
			}
			cancel()
		}
		e.mu.Lock()
		clients := e.clients
		e.clients = nil
		e.mu.Unlock()
		for _, c := range clients {
			errs = append(errs, c.Close())
		}
		if e.mini != nil {
			e.mini.Close()
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// allNamespaces is Namespace and every SubNamespace handed out.
func (e *Env) allNamespaces() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string{e.Namespace}, e.namespaces...)
}

// pattern is the SCAN MATCH pattern of namespace ns's keys.
func pattern(ns string) string { return remote.EscapeGlob(ns+":") + "*" }

// DeleteNamespace unlinks every key of the run's namespaces (Namespace and
// its SubNamespaces), found with SCAN MATCH, in batches, and returns how
// many it unlinked.
func (e *Env) DeleteNamespace(ctx context.Context) (int, error) {
	n := 0
	for _, ns := range e.allNamespaces() {
		var cursor uint64
		for {
			keys, next, err := e.admin.Scan(ctx, cursor, pattern(ns), 1000).Result()
			if err != nil {
				return n, fmt.Errorf("bench: clean up %s: scan: %w", ns, err)
			}
			if len(keys) > 0 {
				if err := e.admin.Unlink(ctx, keys...).Err(); err != nil {
					return n, fmt.Errorf("bench: clean up %s: unlink: %w", ns, err)
				}
				n += len(keys)
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return n, nil
}

// CountKeys counts the keys of the run's namespaces with SCAN MATCH.
func (e *Env) CountKeys(ctx context.Context) (int, error) {
	n := 0
	for _, ns := range e.allNamespaces() {
		iter := e.admin.Scan(ctx, 0, pattern(ns), 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		if err := iter.Err(); err != nil {
			return 0, fmt.Errorf("bench: count keys of %s: %w", ns, err)
		}
	}
	return n, nil
}

// Populate stores value(i) under key(i) for i in [0, n) with plain pipelined
// SETs (they publish no invalidation), 1,000 per round trip.
func (e *Env) Populate(ctx context.Context, n int, key func(int) string, value func(int) string) error {
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		_, err := e.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				p.Set(ctx, e.Key(key(i)), value(i), keyTTL)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: populate: %w", err)
		}
	}
	return nil
}

// loadScripts runs each of tiercache's scripts once, through a cache on the
// admin client that never subscribes long enough to matter: the server then
// has them cached, and every EVALSHA later is one round trip.
func (e *Env) loadScripts(ctx context.Context) error {
	c, err := tiered.New(e.admin, tiered.Options[string]{Namespace: e.Namespace, TTL: keyTTL})
	if err != nil {
		return err
	}
	defer c.Close()
	const k, loaded, many = "\x00scripts", "\x00scripts-loaded", "\x00scripts-many"
	if err := c.Set(ctx, k, "x"); err != nil {
		return fmt.Errorf("bench: load scripts: %w", err)
	}
	if _, err := c.Get(ctx, k); err != nil {
		return fmt.Errorf("bench: load scripts: %w", err)
	}
	// A load takes a lease and writes under it; SetMany writes a batch.
	if _, err := c.FetchMany(ctx, []string{loaded}, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{loaded: "x"}, nil
	}); err != nil {
		return fmt.Errorf("bench: load scripts: %w", err)
	}
	if err := c.SetMany(ctx, map[string]string{many: "x"}); err != nil {
		return fmt.Errorf("bench: load scripts: %w", err)
	}
	if err := c.Delete(ctx, k, loaded, many); err != nil {
		return fmt.Errorf("bench: load scripts: %w", err)
	}
	return nil
}

// serverVersion returns redis_version from INFO server, or "".
func serverVersion(ctx context.Context, c *redis.Client) string {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return ""
}

// redactURL hides a password in a Redis URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// waitUntil polls cond every millisecond until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still false after %v", d)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Counter is a go-redis hook that counts a client's round trips: each
// ProcessHook or ProcessPipelineHook call is one. The commands go-redis
// sends to set up a new connection (HELLO, CLIENT SETINFO, AUTH, SELECT) are
// counted apart, as Setup.
type Counter struct {
	trips, setup atomic.Uint64

	mu    sync.Mutex
	names map[string]uint64 // guarded by mu: commands by name, setup excluded
}

// Calls is a snapshot of a Counter.
type Calls struct {
	Trips uint64            `json:"round_trips"`
	Setup uint64            `json:"setup_round_trips"`
	Names map[string]uint64 `json:"commands"`
}

// Snapshot returns the counts so far.
func (c *Counter) Snapshot() Calls {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make(map[string]uint64, len(c.names))
	for k, v := range c.names {
		names[k] = v
	}
	return Calls{Trips: c.trips.Load(), Setup: c.setup.Load(), Names: names}
}

// Sub returns the counts of c since prev.
func (c Calls) Sub(prev Calls) Calls {
	out := Calls{Trips: c.Trips - prev.Trips, Setup: c.Setup - prev.Setup, Names: map[string]uint64{}}
	for k, v := range c.Names {
		if d := v - prev.Names[k]; d > 0 {
			out.Names[k] = d
		}
	}
	return out
}

// Add returns the sum of c and d.
func (c Calls) Add(d Calls) Calls {
	out := Calls{Trips: c.Trips + d.Trips, Setup: c.Setup + d.Setup, Names: map[string]uint64{}}
	for k, v := range c.Names {
		out.Names[k] += v
	}
	for k, v := range d.Names {
		out.Names[k] += v
	}
	return out
}

// String lists the commands, e.g. "2 (evalsha×2)".
func (c Calls) String() string {
	var parts []string
	for _, k := range sortedKeys(c.Names) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c.Names[k]))
	}
	return fmt.Sprintf("%d (%s)", c.Trips, strings.Join(parts, " "))
}

func isSetup(name string) bool {
	switch name {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}

// count counts one round trip that carries cmd, or cmds when cmd is nil.
func (c *Counter) count(cmd redis.Cmder, cmds []redis.Cmder) {
	setup := true
	if cmd != nil {
		setup = isSetup(cmd.Name())
	}
	for _, cmd := range cmds {
		setup = setup && isSetup(cmd.Name())
	}
	if setup {
		c.setup.Add(1)
		return
	}
	c.trips.Add(1)
	c.mu.Lock()
	if c.names == nil {
		c.names = map[string]uint64{}
	}
	if cmd != nil {
		c.names[cmd.Name()]++
	}
	for _, cmd := range cmds {
		c.names[cmd.Name()]++
	}
	c.mu.Unlock()
}

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd, nil)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count(nil, cmds)
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*Counter)(nil)
