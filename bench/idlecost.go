package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/tiered"
)

// What idle caches cost the process: pub/sub connections, goroutines and
// CPU, for the hub scenario.

// idleCost is what a set of idle caches costs the process.
type idleCost struct {
	How         string        `json:"how"`
	ClientName  string        `json:"client_name"`
	Caches      int           `json:"caches"`
	PubSub      int           `json:"pubsub_connections"`        // CLIENT LIST TYPE pubsub with the client's name; -1 when not asked (embedded)
	PubSubSeen  int           `json:"pubsub_connections_client"` // open connections on which the client sent SUBSCRIBE
	Goroutines  int           `json:"goroutines_added"`
	Started     []string      `json:"goroutines_started"` // the new goroutines' functions, with counts
	Ready       time.Duration `json:"ready_ns"`           // from the first constructor call until every cache was ready
	IdleFor     time.Duration `json:"idle_ns"`
	IdleCPU     float64       `json:"idle_cpu_share"` // user+sys CPU of the process / wall time, while idle
	IdleCPUNote string        `json:"idle_cpu_error,omitempty"`
}

// hubValue types: the 30 caches cycle through these value types, so that the
// Hub carries caches of several types at once.
type (
	hubUser  struct{ ID, Name string }
	hubOrder struct {
		ID    int
		Lines []string
	}
)

// newCacheOn makes a cache of value type V on h (or, with h nil, with
// tiered.New on client), in namespace ns, returning it as a closer with its
// WaitReady.
func newCacheOn[V any](h *tiered.Hub, client redis.UniversalClient, ns string) (interface{ Close() error }, func(context.Context) error, error) {
	opts := tiered.Options[V]{Namespace: ns, TTL: keyTTL}
	var c *tiered.Cache[V]
	var err error
	if h != nil {
		c, err = tiered.NewCache(h, opts)
	} else {
		c, err = tiered.New(client, opts)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, c.WaitReady, nil
}

// hubCacheKinds are the constructors the 30 caches cycle through.
var hubCacheKinds = []func(*tiered.Hub, redis.UniversalClient, string) (interface{ Close() error }, func(context.Context) error, error){
	newCacheOn[string], newCacheOn[[]byte], newCacheOn[int], newCacheOn[float64],
	newCacheOn[hubUser], newCacheOn[hubOrder], newCacheOn[map[string]int], newCacheOn[[]string],
}

// subscribeCounter counts a client's open connections on which it has sent
// SUBSCRIBE: the pub/sub connections, seen from the client.
type subscribeCounter struct{ open atomic.Int64 }

// dialer wraps the dialer go-redis would use for o.
func (s *subscribeCounter) dialer(o *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	base := o.Dialer
	if base == nil {
		base = redis.NewDialer(o)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: c, s: s}, nil
	}
}

type countedConn struct {
	net.Conn
	s         *subscribeCounter
	sub       atomic.Bool
	closeOnce sync.Once
}

func (c *countedConn) Write(b []byte) (int, error) {
	if !c.sub.Load() && sentSubscribe(b) {
		if !c.sub.Swap(true) {
			c.s.open.Add(1)
		}
	}
	return c.Conn.Write(b)
}

func (c *countedConn) Close() error {
	c.closeOnce.Do(func() {
		if c.sub.Load() {
			c.s.open.Add(-1)
		}
	})
	return c.Conn.Close()
}

// goroutine is one goroutine of the process, from runtime.Stack.
type goroutine struct {
	id     string
	entry  string // the function it started in
	server bool   // the embedded server's
}

// goroutines lists the process's goroutines.
func goroutines() []goroutine {
	var out []goroutine
	for _, block := range leakcheck.Stacks() {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		head := strings.Fields(lines[0]) // goroutine 12 [select]:
		if len(head) < 2 || head[0] != "goroutine" {
			continue
		}
		g := goroutine{id: head[1], server: strings.Contains(block, "alicebob/miniredis")}
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") {
				continue
			}
			if strings.HasPrefix(l, "created by ") {
				break
			}
			g.entry = l
		}
		if i := strings.LastIndex(g.entry, "("); i > 0 && strings.HasSuffix(g.entry, ")") {
			g.entry = g.entry[:i]
		}
		g.entry = strings.TrimPrefix(g.entry, "github.com/tiercache/tiercache/")
		out = append(out, g)
	}
	return out
}

// goroutineDelta counts the goroutines of after not in before, leaving out
// the embedded server's, and lists the functions they started in. (Those of
// before that ended meanwhile, an earlier scenario's on their way out, say,
// do not count against them.)
func goroutineDelta(before, after []goroutine) (int, []string) {
	had := map[string]bool{}
	for _, g := range before {
		had[g.id] = true
	}
	n := 0
	started := map[string]int{}
	for _, g := range after {
		if g.server || had[g.id] {
			continue
		}
		n++
		started[g.entry]++
	}
	var list []string
	for _, f := range sortedKeys(started) {
		list = append(list, fmt.Sprintf("%s ×%d", f, started[f]))
	}
	return n, list
}

// settledGoroutines returns the goroutines once their number has stayed the
// same for 50ms (at most 1s), so that goroutines on their way out (a dial's
// helper, a closed connection's reader) are not counted.
func settledGoroutines() []goroutine {
	deadline := time.Now().Add(time.Second)
	prev := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == prev {
			break
		}
		prev = n
	}
	return goroutines()
}

// idleCPU returns the CPU the process used while its goroutine slept d, as
// a share of one core.
func idleCPU(ctx context.Context, d time.Duration) (float64, error) {
	c0, err := cpuTime()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return 0, ctx.Err()
	}
	c1, err := cpuTime()
	if err != nil {
		return 0, err
	}
	return float64(c1-c0) / float64(time.Since(t0)), nil
}

// countPubSub counts the server's pub/sub connections named name (CLIENT
// LIST TYPE pubsub).
func (e *env) countPubSub(ctx context.Context, name string) (int, error) {
	list, err := e.admin.Do(ctx, "client", "list", "type", "pubsub").Text()
	if err != nil {
		return 0, fmt.Errorf("bench: CLIENT LIST TYPE pubsub: %w", err)
	}
	n := 0
	for line := range strings.Lines(list) {
		if slices.Contains(strings.Fields(line), "name="+name) {
			n++
		}
	}
	return n, nil
}

// hubCost makes cfg.hubCaches idle caches, one per namespace, over one
// client named name: on one Hub when hub is true (NewHub, NewCache), else
// each with tiered.New; and measures what they cost while idle. It closes
// them before returning.
func hubCost(ctx context.Context, e *env, cfg config, name string, hub bool) (idleCost, error) {
	r := idleCost{ClientName: name, Caches: cfg.hubCaches, IdleFor: cfg.idleFor, PubSub: -1}
	if hub {
		r.How = "one Hub (NewHub, NewCache)"
	} else {
		r.How = "tiered.New each"
	}
	var subs subscribeCounter
	client := e.newClientWith(nil, func(o *redis.Options) {
		o.ClientName = name
		o.Dialer = subs.dialer(o)
	})
	if err := client.Ping(ctx).Err(); err != nil {
		return r, err
	}
	var closers []interface{ Close() error }
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
	}()
	before := settledGoroutines()
	t0 := time.Now()
	var h *tiered.Hub
	if hub {
		var err error
		if h, err = tiered.NewHub(client, tiered.HubOptions{}); err != nil {
			return r, err
		}
		closers = append(closers, h)
		if err := e.track(h.Close); err != nil {
			return r, err
		}
	}
	var waits []func(context.Context) error
	for i := range cfg.hubCaches {
		c, wait, err := hubCacheKinds[i%len(hubCacheKinds)](h, client, e.subNamespace(fmt.Sprintf("hub-%02d", i)))
		if err != nil {
			return r, err
		}
		closers = append(closers, c)
		if err := e.track(c.Close); err != nil {
			return r, err
		}
		waits = append(waits, wait)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if h != nil {
		if err := h.WaitReady(wctx); err != nil {
			return r, err
		}
	}
	for _, wait := range waits {
		if err := wait(wctx); err != nil {
			return r, err
		}
	}
	r.Ready = time.Since(t0)
	r.Goroutines, r.Started = goroutineDelta(before, settledGoroutines())
	r.PubSubSeen = int(subs.open.Load())
	if !e.embedded {
		n, err := e.countPubSub(ctx, name)
		if err != nil {
			return r, err
		}
		r.PubSub = n
	}
	return r, r.idle(ctx, cfg)
}

// idle measures the process's CPU while it idles cfg.idleFor: -1 and why in
// IdleCPUNote where it cannot be measured.
func (c *idleCost) idle(ctx context.Context, cfg config) error {
	cfg.progress.update("hub: %s, the process idle for %v", c.How, cfg.idleFor)
	cpu, err := idleCPU(ctx, cfg.idleFor)
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		c.IdleCPU, c.IdleCPUNote = -1, err.Error()
	default:
		c.IdleCPU = cpu
	}
	return nil
}

// pubsubFigure is the pub/sub connection count to show: the server's, or on
// the embedded server the client's.
func (c idleCost) pubsubFigure() int {
	if c.PubSub >= 0 {
		return c.PubSub
	}
	return c.PubSubSeen
}

func cpuFigure(c idleCost) string {
	if c.IdleCPU < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*c.IdleCPU)
}
