package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// hubCaches is how many idle caches the hub scenario puts on one Hub.
const hubCaches = 30

// wire watches a client's connections: how many are open that sent
// SUBSCRIBE (its pub/sub connections), and the PINGs sent on those.
type wire struct{ subs, pings atomic.Int64 }

var (
	subscribeCmd = []byte("subscribe")
	pingCmd      = []byte("$4\r\nping\r\n") // go-redis writes commands in lower case
)

// dialer wraps the dialer go-redis would use for o.
func (w *wire) dialer(o *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	base := redis.NewDialer(o)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &watchedConn{Conn: c, w: w}, nil
	}
}

type watchedConn struct {
	net.Conn
	w    *wire
	sub  atomic.Bool
	once sync.Once
}

func (c *watchedConn) Write(b []byte) (int, error) {
	if !c.sub.Load() && bytes.Contains(b, subscribeCmd) && !c.sub.Swap(true) {
		c.w.subs.Add(1)
	}
	if c.sub.Load() {
		c.w.pings.Add(int64(bytes.Count(b, pingCmd)))
	}
	return c.Conn.Write(b)
}

func (c *watchedConn) Close() error {
	c.once.Do(func() {
		if c.sub.Load() {
			c.w.subs.Add(-1)
		}
	})
	return c.Conn.Close()
}

// goroutines counts the goroutines tiercache started, once the process's
// number has held for 50ms (at most 1s): not the embedded server's, nor
// go-redis's (a client of RESP3 starts one of its own, whoever made it).
func goroutines() int {
	for prev, end := -1, time.Now().Add(time.Second); time.Now().Before(end); {
		n := runtime.NumGoroutine()
		if n == prev {
			break
		}
		prev = n
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	for runtime.Stack(buf, true) == len(buf) {
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, "created by github.com/tiercache/") {
			n++
		}
	}
	return n
}

// idle returns the share of a core the process used, and the PINGs w saw
// per second, while the calling goroutine slept d.
func idle(w *wire, d time.Duration) (cpu, pings float64) {
	c0, p0, t0 := cpuTime(), w.pings.Load(), time.Now()
	time.Sleep(d)
	el := time.Since(t0)
	return float64(cpuTime()-c0) / float64(el), float64(w.pings.Load()-p0) / el.Seconds()
}

// hub measures hubCaches idle caches on one Hub against a plain go-redis
// client: pub/sub connections, goroutines, CPU and PINGs while idle, then
// the PINGs while one goroutine reads local hits (freshness proofs).
func hub(ctx context.Context, e *env, cfg config) ([]row, error) {
	g0 := goroutines()
	var plainWire wire
	plain := e.client(func(o *redis.Options) { o.Dialer = plainWire.dialer(o) })
	if err := plain.Ping(ctx).Err(); err != nil {
		return nil, err
	}
	g1 := goroutines()
	plainCPU, _ := idle(&plainWire, cfg.idle)

	var w wire
	client := e.client(func(o *redis.Options) { o.Dialer = w.dialer(o) })
	h, err := tiered.NewHub(client, tiered.HubOptions{})
	if err != nil {
		return nil, err
	}
	e.track(h.Close)
	var first *tiered.Cache[string]
	for i := range hubCaches {
		c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: e.ns(fmt.Sprintf("hub-%02d", i)), TTL: keyTTL})
		if err != nil {
			return nil, err
		}
		if err := c.WaitReady(ctx); err != nil {
			return nil, err
		}
		if first == nil {
			first = c
		}
	}
	g2 := goroutines()
	hubCPU, idlePings := idle(&w, cfg.idle)

	ks := keys("h", 20)
	for i, k := range ks {
		if err := first.Set(ctx, k, value(i)); err != nil {
			return nil, err
		}
	}
	if err := warm(ctx, first, ks); err != nil {
		return nil, err
	}
	p0 := w.pings.Load()
	s, err := runJob(ctx, job{batch: 1000, op: cycle(ks, getter(ctx, first))}, cfg.idle)
	if err != nil {
		return nil, err
	}
	hitPings := float64(w.pings.Load()-p0) / s.elapsed.Seconds()
	healthCheck, maxStaleness := time.Second, tiered.DefaultMaxStaleness // HubOptions{}'s, as documented
	return []row{
		judge(row{Measure: fmt.Sprintf("Hub, %d caches: pub/sub conns", hubCaches), Tiered: fmt.Sprint(w.subs.Load()),
			Baseline: fmt.Sprintf("plain client %d", plainWire.subs.Load()), Target: "1"}, w.subs.Load() == 1),
		judge(row{Measure: fmt.Sprintf("Hub, %d caches: goroutines", hubCaches), Tiered: fmt.Sprint(g2 - g1),
			Baseline: fmt.Sprintf("plain client %d", g1-g0), Target: "≤ 4"}, g2-g1 <= 4),
		judge(row{Measure: "Hub idle: CPU", Tiered: fmt.Sprintf("%.2f %%", 100*hubCPU),
			Baseline: fmt.Sprintf("plain client %.2f %%", 100*plainCPU), Target: "≤ 0.5 %"}, hubCPU <= 0.005),
		judge(row{Measure: "Hub idle: PINGs/s", Tiered: fmt.Sprintf("%.1f", idlePings), Baseline: "plain client 0",
			Target: "≤ 1/HealthCheck"}, idlePings <= 1/healthCheck.Seconds()+1/cfg.idle.Seconds()),
		judge(row{Measure: "Hub serving hits: PINGs/s", Tiered: fmt.Sprintf("%.0f", hitPings), Baseline: "plain client 0",
			Target: "≤ 2/MaxStaleness"}, hitPings <= 2/maxStaleness.Seconds()+1/cfg.idle.Seconds()),
	}, nil
}
