package redistest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FloodOptions configures FloodBus. The zero value of every field is its
// default.
type FloodOptions struct {
	// Nodes are the nodes flooded: each gets Limit and publishers of its
	// own. Default: every master.
	Nodes []string

	// Limit is cluster-link-sendbuf-limit on the flooded nodes while the
	// flood runs, in bytes: a node drops a bus link whose send buffer holds
	// more (its cluster cron checks every 100ms), with all the buffer held,
	// and dials the peer again. Default: 1 MiB. Must be >= 0.
	Limit int

	// Size is the payload of each message, in bytes. Default: 1 MiB. Must
	// be >= 0.
	Size int

	// Publishers is the number of connections publishing on each flooded
	// node, each with two messages in flight. Default: 2. Must be >= 0.
	Publishers int

	// Stall stalls the bus (StallBus) while the flood runs, so that no link
	// drains: every link of a flooded node fills past Limit and is dropped
	// with what it held, cron after cron. It needs
	// ClusterOptions.BusProxies. Default: false.
	Stall bool
}

func (o *FloodOptions) defaults() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"Limit", &o.Limit, 1 << 20}, {"Size", &o.Size, 1 << 20}, {"Publishers", &o.Publishers, 2}} {
		if *f.v < 0 {
			errs = append(errs, fmt.Errorf("redistest: FloodOptions.%s must be >= 0, got %d", f.name, *f.v))
		} else if *f.v == 0 {
			*f.v = f.def
		}
	}
	return errors.Join(errs...)
}

// Flood is a flood of the cluster bus that FloodBus started; Stop ends it.
type Flood struct {
	c         *Cluster
	opts      FloodOptions
	start     time.Time
	before    map[string]int
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	published atomic.Int64
	clients   []*redis.Client

	once   sync.Once
	report FloodReport
}

// FloodReport is what a flood did.
type FloodReport struct {
	Duration  time.Duration
	Published int // messages published
	// Dropped counts, for each flooded node, the bus links it dropped for
	// exceeding the limit (total_cluster_links_buffer_limit_exceeded of
	// CLUSTER INFO, since the flood began).
	Dropped map[string]int
	// Relinked counts, for each flooded node, its bus links (CLUSTER LINKS,
	// either direction) created since the flood began: links dropped by
	// either end and dialled again.
	Relinked map[string]int
}

// TotalDropped is the sum of Dropped.
func (r FloodReport) TotalDropped() int {
	n := 0
	for _, d := range r.Dropped {
		n += d
	}
	return n
}

// FloodBus makes bus links drop, as a burst of large messages does on a node
// with Redis 7's cluster-link-sendbuf-limit: it sets the limit on the
// flooded nodes and starts publishers that send large classic PUBLISHes
// there (on a channel of the test's namespace that nobody hears), which
// every node forwards to every other over the bus. Messages that a dropped
// link held are lost, whatever they were, and no one is told. It runs until
// Stop (or the end of the test). It fails the test on the embedded cluster.
func (c *Cluster) FloodBus(opts FloodOptions) *Flood {
	c.t.Helper()
	if !c.Real {
		c.t.Fatal("redistest: FloodBus needs a real cluster (set REDIS_ADDR)")
		return nil
	}
	if err := opts.defaults(); err != nil {
		c.t.Fatal(err)
		return nil
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = c.Masters()
	}
	if opts.Stall && c.busProxies("FloodBus with Stall") == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flood{c: c, opts: opts, before: c.LinksDropped(), cancel: cancel, start: time.Now()}
	c.t.Cleanup(func() { f.Stop() })
	for _, addr := range opts.Nodes {
		if !c.must(addr, "CONFIG", "SET", "cluster-link-sendbuf-limit", opts.Limit) {
			return nil
		}
	}
	if opts.Stall {
		c.StallBus(true)
	}
	payload := strings.Repeat("x", opts.Size)
	for _, addr := range opts.Nodes {
		for range opts.Publishers {
			cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
			f.clients = append(f.clients, cl)
			f.wg.Add(1)
			go f.publish(ctx, cl, payload)
		}
	}
	return f
}

// publish sends two messages at a time on cl until ctx ends.
func (f *Flood) publish(ctx context.Context, cl *redis.Client, payload string) {
	defer f.wg.Done()
	channel := f.c.Namespace + "-flood"
	for ctx.Err() == nil {
		p := cl.Pipeline()
		p.Publish(ctx, channel, payload)
		p.Publish(ctx, channel, payload)
		if _, err := p.Exec(ctx); err != nil {
			if ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond) // a node busy or gone: try again
			}
			continue
		}
		f.published.Add(2)
	}
}

// Dropped returns how many bus links the flooded nodes have dropped for
// exceeding the limit since the flood began.
func (f *Flood) Dropped() int {
	now := f.c.LinksDropped()
	n := 0
	for _, addr := range f.opts.Nodes {
		n += now[addr] - f.before[addr]
	}
	return n
}

// Stop ends the flood: the publishers stop, the bus drains again (with
// Stall), the limit goes back to none, and the report says what happened.
// With Stall it returns once every node reports cluster_state:ok again: a
// stall longer than cluster-node-timeout (a loaded machine delays the first
// dropped link) flags nodes failing, and the cluster refuses commands until
// the flags clear. Later calls return the same report.
func (f *Flood) Stop() FloodReport {
	f.c.t.Helper()
	f.once.Do(func() {
		f.cancel()
		f.wg.Wait()
		for _, cl := range f.clients {
			_ = cl.Close()
		}
		f.report.Duration = time.Since(f.start)
		if f.opts.Stall {
			f.c.StallBus(false)
		}
		for _, addr := range f.opts.Nodes {
			f.c.must(addr, "CONFIG", "SET", "cluster-link-sendbuf-limit", 0)
		}
		if f.opts.Stall {
			f.c.waitTopology("recovery from a bus stall", time.Now().Add(f.c.recoveryTimeout()), func(view) error { return nil })
		}
		f.report.Published = int(f.published.Load())
		f.report.Dropped = make(map[string]int)
		f.report.Relinked = make(map[string]int)
		now := f.c.LinksDropped()
		for _, addr := range f.opts.Nodes {
			f.report.Dropped[addr] = now[addr] - f.before[addr]
			f.report.Relinked[addr] = f.c.linksSince(addr, f.start)
		}
	})
	return f.report
}

// LinksDropped returns, for each live node, how many bus links it has
// dropped for exceeding cluster-link-sendbuf-limit since it started
// (total_cluster_links_buffer_limit_exceeded of CLUSTER INFO).
func (c *Cluster) LinksDropped() map[string]int {
	c.t.Helper()
	out := make(map[string]int)
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		info, err := c.admin(n.addr).ClusterInfo(context.Background()).Result()
		if err != nil {
			c.t.Fatalf("redistest: CLUSTER INFO on %s: %v", n.addr, err)
			return out
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_cluster_links_buffer_limit_exceeded:"); ok {
				out[n.addr], _ = strconv.Atoi(v)
			}
		}
	}
	return out
}

// linksSince counts the bus links of the node at addr created after t.
func (c *Cluster) linksSince(addr string, t time.Time) int {
	c.t.Helper()
	links, err := c.admin(addr).ClusterLinks(context.Background()).Result()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER LINKS on %s: %v", addr, err)
		return 0
	}
	n := 0
	for _, l := range links {
		if l.CreateTime >= t.UnixMilli() {
			n++
		}
	}
	return n
}

// recoveryTimeout bounds how long the cluster may take to report ok again
// after its nodes flagged each other failing: Redis clears a FAIL flag on a
// master that kept its slots two node timeouts after setting it; the rest
// is for a loaded machine.
func (c *Cluster) recoveryTimeout() time.Duration {
	nt := c.opts.NodeTimeout
	if nt == 0 {
		nt = 15 * time.Second
	}
	return 2*nt + 10*time.Second
}
