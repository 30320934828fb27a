package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// keyTTL is the Redis lifetime of every key the benchmark writes, so that a
// run killed before its cleanup leaves nothing behind for long.
const keyTTL = 10 * time.Minute

// env is one run's Redis server and everything the run opened on it: the
// namespace, the Redis clients and the caches. close undoes all of it.
type env struct {
	namespace string // "tiercache-bench-<random hex>", fresh for each env
	embedded  bool   // the server is a miniredis started by the env
	server    string // describes the server for the report

	mini  *miniredis.Miniredis // nil against a real server
	opts  redis.Options        // template for every client
	admin *redis.Client        // baselines, population and cleanup

	mu         sync.Mutex
	caches     []func() error  // guarded by mu: Close of caches, hubs, proxies; called first, newest first
	clients    []*redis.Client // guarded by mu; closed last
	namespaces []string        // guarded by mu: namespaces besides namespace that close cleans up
	closed     bool            // guarded by mu

	closeOnce sync.Once
	closeErr  error
}

// parseRedis parses the -redis flag: empty (nil options: an embedded
// server), a URL as redis.ParseURL takes it (redis://, rediss://, unix://),
// or host:port as REDIS_ADDR takes it. It returns the client options and
// how the report names the server.
func parseRedis(s string) (*redis.Options, string, error) {
	if s == "" {
		return nil, "", nil
	}
	if strings.Contains(s, "://") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, "", fmt.Errorf("-redis %q: %w", s, err)
		}
		return o, "Redis at " + redactURL(s), nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, "", fmt.Errorf("-redis %q: want host:port or a redis:// URL: %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, "", fmt.Errorf("-redis %q: port %q is not a number from 1 to 65535", s, port)
	}
	return &redis.Options{Addr: s}, "Redis at " + s, nil
}

// openEnv starts an embedded miniredis when server is empty, or connects to
// the server it names (see parseRedis). It checks that the server answers
// and loads tiercache's scripts, so that every later call is one round
// trip.
func openEnv(ctx context.Context, server string) (*env, error) {
	o, name, err := parseRedis(server)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("bench: namespace: %w", err)
	}
	e := &env{namespace: "tiercache-bench-" + hex.EncodeToString(rnd[:])}
	if o == nil {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("bench: start embedded Redis: %w", err)
		}
		e.mini = m
		e.embedded = true
		e.opts = redis.Options{Addr: m.Addr()}
		e.server = "embedded miniredis at " + m.Addr()
	} else {
		e.opts, e.server = *o, name
	}
	e.admin = e.newClient(nil)
	if err := e.admin.Ping(ctx).Err(); err != nil {
		_ = e.close()
		return nil, fmt.Errorf("bench: %s does not answer PING: %w", e.server, err)
	}
	if !e.embedded {
		if v := serverVersion(ctx, e.admin); v != "" {
			e.server += " (redis_version " + v + ")"
		}
	}
	if err := e.loadScripts(ctx); err != nil {
		_ = e.close()
		return nil, err
	}
	return e, nil
}

// newClient returns a client of the server, closed by close (after close,
// one that is closed already). A non-nil counter counts its round trips.
func (e *env) newClient(c *counter) *redis.Client { return e.newClientWith(c, nil) }

// newClientWith is newClient with the run's client options changed by edit
// (a name, a dialer, another address) when edit is not nil.
func (e *env) newClientWith(c *counter, edit func(*redis.Options)) *redis.Client {
	o := e.opts
	if edit != nil {
		edit(&o)
	}
	client := redis.NewClient(&o)
	if c != nil {
		client.AddHook(tripHook(c.count))
	}
	if !keep(e, &e.clients, client) {
		_ = client.Close()
	}
	return client
}

// keep appends x to *list, one of e's lists of what close closes, and
// reports true; after close it leaves the list alone and reports false.
func keep[T any](e *env, list *[]T, x T) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	*list = append(*list, x)
	return true
}

// key returns the Redis key that holds key in the run's namespace.
func (e *env) key(key string) string { return e.namespace + ":" + key }

// subNamespace returns the namespace "<namespace>-<suffix>", whose keys
// close deletes too.
func (e *env) subNamespace(suffix string) string {
	ns := e.namespace + "-" + suffix
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.namespaces, ns) {
		e.namespaces = append(e.namespaces, ns)
	}
	return ns
}

var errClosed = errors.New("bench: environment is closed")

// track has closeCaches (and close) call close, the Close of a cache, hub or
// proxy, before those of the ones opened earlier. After close it calls it at
// once and returns errClosed.
func (e *env) track(close func() error) error {
	if !keep(e, &e.caches, close) {
		_ = close()
		return errClosed
	}
	return nil
}

// closeCaches closes every cache, hub and proxy opened so far, newest first
// (clients stay open). A scenario calls it when done, so that the next one
// starts with no other subscriber on the channel.
func (e *env) closeCaches() error {
	e.mu.Lock()
	caches := e.caches
	e.caches = nil
	e.mu.Unlock()
	var errs []error
	for i := len(caches) - 1; i >= 0; i-- {
		errs = append(errs, caches[i]())
	}
	return errors.Join(errs...)
}

// close closes every cache, deletes every key of the namespace (SCAN MATCH
// and UNLINK, nothing else), checks that none is left, closes every client
// and stops the embedded server. It is idempotent and does not depend on any
// caller's context, so it also works after an interrupt.
func (e *env) close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		errs := []error{e.closeCaches()}
		if e.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := e.deleteNamespace(ctx); err != nil {
				errs = append(errs, err)
			} else if left, err := e.countKeys(ctx); err != nil {
				errs = append(errs, err)
			} else if left > 0 {
				errs = append(errs, fmt.Errorf("bench: %d keys of %s left after cleanup", left, e.namespace))
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

// allNamespaces is namespace and every subNamespace handed out.
func (e *env) allNamespaces() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string{e.namespace}, e.namespaces...)
}

// pattern is the SCAN MATCH pattern of namespace ns's keys.
func pattern(ns string) string { return remote.EscapeGlob(ns+":") + "*" }

// deleteNamespace unlinks every key of the run's namespaces (namespace and
// its subNamespaces), found with SCAN MATCH, in batches, and returns how
// many it unlinked.
func (e *env) deleteNamespace(ctx context.Context) (int, error) {
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

// countKeys counts the keys of the run's namespaces with SCAN MATCH.
func (e *env) countKeys(ctx context.Context) (int, error) {
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

// populate stores val(i) under ks[i] with plain pipelined SETs (they
// publish no invalidation), 1,000 per round trip.
func (e *env) populate(ctx context.Context, ks []string, val func(int) string) error {
	const batch = 1000
	for lo := 0; lo < len(ks); lo += batch {
		hi := min(lo+batch, len(ks))
		_, err := e.admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				p.Set(ctx, e.key(ks[i]), val(i), keyTTL)
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
func (e *env) loadScripts(ctx context.Context) error {
	c, err := tiered.New(e.admin, tiered.Options[string]{Namespace: e.namespace, TTL: keyTTL})
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
