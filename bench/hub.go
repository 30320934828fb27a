package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// HubCost is what a set of idle caches costs the process.
type HubCost struct {
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

// HubResult is the hub scenario: what many idle caches cost on one Hub and
// with a Hub each, and a local hit on a Hub's cache with MaxStaleness on
// and off.
type HubResult struct {
	Embedded bool    `json:"embedded"`
	Hub      HubCost `json:"one_hub"`
	Own      HubCost `json:"tiered_new_each"`
	// Alone is the process with the clients but no cache, idle as long.
	Alone HubCost `json:"no_cache"`

	Keys          int      `json:"keys"`
	DefaultMaxSt  string   `json:"default_max_staleness"`
	OnNs          float64  `json:"fence_on_ns_per_op"`
	OffNs         float64  `json:"fence_off_ns_per_op"`
	BareNs        float64  `json:"bare_ns_per_op"`
	OnRatio       float64  `json:"fence_on_ratio"`
	OffRatio      float64  `json:"fence_off_ratio"`
	OnAllocs      float64  `json:"fence_on_allocs_per_op"`
	OffAllocs     float64  `json:"fence_off_allocs_per_op"`
	BareAllocs    float64  `json:"bare_allocs_per_op"`
	OnReads       uint64   `json:"fence_on_reads"`
	OnUnproven    uint64   `json:"fence_on_unproven"`
	Series        []Series `json:"series"`
	HubGoroutines int      `json:"target_goroutines"`
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
	if !c.sub.Load() && (bytes.Contains(b, subscribeLower) || bytes.Contains(b, subscribeUpper)) {
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
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, block := range strings.Split(string(buf), "\n\n") {
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
func (e *Env) countPubSub(ctx context.Context, name string) (int, error) {
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

// hubCost makes cfg.HubCaches idle caches, one per namespace, over one
// client named name: on one Hub when hub is true (NewHub, NewCache), else
// each with tiered.New; and measures what they cost while idle. It closes
// them before returning.
func hubCost(ctx context.Context, e *Env, cfg Config, name string, hub bool) (HubCost, error) {
	r := HubCost{ClientName: name, Caches: cfg.HubCaches, IdleFor: cfg.IdleFor, PubSub: -1}
	if hub {
		r.How = "one Hub (NewHub, NewCache)"
	} else {
		r.How = "tiered.New each"
	}
	var subs subscribeCounter
	client := e.NewClientWith(nil, func(o *redis.Options) {
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
		if err := e.Track(h); err != nil {
			return r, err
		}
	}
	var waits []func(context.Context) error
	for i := range cfg.HubCaches {
		c, wait, err := hubCacheKinds[i%len(hubCacheKinds)](h, client, e.SubNamespace(fmt.Sprintf("hub-%02d", i)))
		if err != nil {
			return r, err
		}
		closers = append(closers, c)
		if err := e.Track(c); err != nil {
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
	if !e.Embedded {
		n, err := e.countPubSub(ctx, name)
		if err != nil {
			return r, err
		}
		r.PubSub = n
	}
	cfg.Progress.Update("hub: %d caches, %s, idle for %v", cfg.HubCaches, r.How, cfg.IdleFor)
	cpu, err := idleCPU(ctx, cfg.IdleFor)
	if err != nil {
		if ctx.Err() != nil {
			return r, err
		}
		r.IdleCPU, r.IdleCPUNote = -1, err.Error()
	} else {
		r.IdleCPU = cpu
	}
	return r, nil
}

// Hub measures cfg.HubCaches idle caches on one Hub over one client, and the
// same made with tiered.New (a Hub each), then times a local hit on a Hub's
// cache with MaxStaleness at its default and off against a bare simplelru
// under a mutex.
func Hub(ctx context.Context, e *Env, cfg Config) (*HubResult, error) {
	r := &HubResult{Embedded: e.Embedded, Keys: cfg.WarmKeys, DefaultMaxSt: tiered.DefaultMaxStaleness.String(), HubGoroutines: 3}
	cfg.Progress.Update("hub: the process idle with no cache, %v", cfg.IdleFor)
	var err error
	r.Alone = HubCost{How: "no cache", IdleFor: cfg.IdleFor, PubSub: -1}
	if cpu, err := idleCPU(ctx, cfg.IdleFor); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.Alone.IdleCPU, r.Alone.IdleCPUNote = -1, err.Error()
	} else {
		r.Alone.IdleCPU = cpu
	}
	if r.Hub, err = hubCost(ctx, e, cfg, e.Namespace+"-hub", true); err != nil {
		return nil, fmt.Errorf("bench: hub: %w", err)
	}
	if r.Own, err = hubCost(ctx, e, cfg, e.Namespace+"-new", false); err != nil {
		return nil, fmt.Errorf("bench: hub: control: %w", err)
	}

	// A local hit on a Hub's cache, MaxStaleness at its default and off.
	ks := keys("hot:", max(cfg.WarmKeys, 1))
	ns := e.SubNamespace("hub-hit")
	client := e.NewClient(nil)
	var caches [2]*tiered.Cache[string]
	for i, ms := range []time.Duration{0, -1} {
		h, err := tiered.NewHub(client, tiered.HubOptions{MaxStaleness: ms})
		if err != nil {
			return nil, err
		}
		if err := e.Track(h); err != nil {
			return nil, err
		}
		c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: ns, TTL: keyTTL, LocalSize: max(tiered.DefaultLocalSize, len(ks))})
		if err != nil {
			return nil, err
		}
		if err := e.Track(c); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.WaitReady(wctx)
		cancel()
		if err != nil {
			return nil, err
		}
		caches[i] = c
	}
	on, off := caches[0], caches[1]
	for i, k := range ks {
		if err := on.Set(ctx, k, value(i)); err != nil {
			return nil, err
		}
	}
	for _, c := range caches {
		if err := warmLocal(ctx, c, ks); err != nil {
			return nil, err
		}
	}
	bare := NewMutexLRU(ks)
	hit := func(c *tiered.Cache[string]) func(string) error {
		return func(k string) error { _, err := c.Get(ctx, k); return err }
	}
	bget := func(k string) error {
		if _, ok := bare.Get(k); !ok {
			return fmt.Errorf("bare LRU lost %q", k)
		}
		return nil
	}
	s0 := on.Stats()
	series, err := Compare(ctx, cfg.Duration, cfg.Rounds, cfg.Progress, "hub",
		Job{Name: "hub cache, MaxStaleness default", Workers: 1, Batch: 1000, New: cycle(ks, hit(on))},
		Job{Name: "hub cache, MaxStaleness off", Workers: 1, Batch: 1000, New: cycle(ks, hit(off))},
		Job{Name: "simplelru+mutex", Workers: 1, Batch: 1000, New: cycle(ks, bget)},
	)
	if err != nil {
		return nil, err
	}
	s1 := on.Stats()
	r.Series = series
	r.OnNs, r.OffNs, r.BareNs = series[0].MedianNsPerOp(), series[1].MedianNsPerOp(), series[2].MedianNsPerOp()
	r.OnRatio, r.OffRatio = r.OnNs/r.BareNs, r.OffNs/r.BareNs
	r.OnAllocs, r.OffAllocs, r.BareAllocs = series[0].AllocsPerOp(), series[1].AllocsPerOp(), series[2].AllocsPerOp()
	r.OnUnproven = s1.Unproven - s0.Unproven
	r.OnReads = s1.LocalHits - s0.LocalHits + s1.RemoteHits - s0.RemoteHits
	return r, nil
}

func (r *HubResult) Name() string { return "hub" }
func (r *HubResult) Title() string {
	return fmt.Sprintf("hub: %d idle caches (%d namespaces, %d value types) on one Hub and one client, "+
		"vs %d × tiered.New; idle %v each", r.Hub.Caches, r.Hub.Caches, min(r.Hub.Caches, len(hubCacheKinds)),
		r.Own.Caches, r.Hub.IdleFor)
}

// pubsubFigure is the pub/sub connection count to show: the server's, or on
// the embedded server the client's.
func (c HubCost) pubsubFigure() int {
	if c.PubSub >= 0 {
		return c.PubSub
	}
	return c.PubSubSeen
}

func cpuFigure(c HubCost) string {
	if c.IdleCPU < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*c.IdleCPU)
}

func (r *HubResult) Rows() []Row {
	conns := "pub/sub connections (CLIENT LIST)"
	if r.Embedded {
		conns = "pub/sub connections (embedded: the client's count)"
	}
	cpuOK := r.Hub.IdleCPU >= 0 && r.Hub.IdleCPU <= 0.005
	return []Row{
		{Measure: conns, Tiered: strconv.Itoa(r.Hub.pubsubFigure()), Target: "1", OK: r.Hub.pubsubFigure() == 1, RedisBound: r.Embedded},
		{Measure: "goroutines added", Tiered: strconv.Itoa(r.Hub.Goroutines),
			Target: "<= " + strconv.Itoa(r.HubGoroutines), OK: r.Hub.Goroutines <= r.HubGoroutines},
		{Measure: "idle CPU, share of one core", Tiered: cpuFigure(r.Hub), Target: "<= 0.5%", OK: cpuOK},
		{Measure: "time until every cache was ready", Tiered: dur(r.Hub.Ready)},
		{Measure: fmt.Sprintf("  control, %d × New: pub/sub connections", r.Own.Caches), Tiered: strconv.Itoa(r.Own.pubsubFigure())},
		{Measure: fmt.Sprintf("  control, %d × New: goroutines added", r.Own.Caches), Tiered: strconv.Itoa(r.Own.Goroutines)},
		{Measure: fmt.Sprintf("  control, %d × New: idle CPU", r.Own.Caches), Tiered: cpuFigure(r.Own)},
		{Measure: "  control, no cache: idle CPU", Tiered: cpuFigure(r.Alone)},
		{Measure: "local hit ns/op, MaxStaleness " + r.DefaultMaxSt + " (default)", Tiered: ns(r.OnNs), Baseline: ns(r.BareNs),
			Ratio: ratio(r.OnRatio), Target: "<= 2.0x bare", OK: r.OnRatio <= 2},
		{Measure: "local hit ns/op, MaxStaleness off", Tiered: ns(r.OffNs), Baseline: ns(r.BareNs),
			Ratio: ratio(r.OffRatio), Target: "<= 2.0x bare", OK: r.OffRatio <= 2},
		{Measure: "local hit allocs/op, MaxStaleness " + r.DefaultMaxSt, Tiered: allocs(r.OnAllocs), Baseline: allocs(r.BareAllocs),
			Target: "0", OK: r.OnAllocs < 0.01},
		{Measure: "local hit allocs/op, MaxStaleness off", Tiered: allocs(r.OffAllocs), Baseline: allocs(r.BareAllocs),
			Target: "0", OK: r.OffAllocs < 0.01},
		{Measure: "reads sent to Redis unproven, MaxStaleness " + r.DefaultMaxSt,
			Tiered: fmt.Sprintf("%d of %d", r.OnUnproven, r.OnReads)},
	}
}

func (r *HubResult) Notes() []string {
	notes := []string{
		"goroutines added: counted from before the Hub until every cache was ready, beyond the " +
			"client's own and the embedded server's; started: " + strings.Join(r.Hub.Started, ", "),
		fmt.Sprintf("control, %d × New, started: %s", r.Own.Caches, strings.Join(r.Own.Started, ", ")),
		"idle CPU: user+sys time of the whole process (getrusage) over wall time while nothing " +
			"reads or writes; baseline of the local hit: golang-lru simplelru.LRU Get under a sync.Mutex, " +
			fmt.Sprintf("%d keys in turn, 1 goroutine, medians of %d rounds", r.Keys, len(r.Series[0].Samples)),
	}
	if r.Embedded {
		notes = append(notes, "embedded: the server runs in this process; its goroutines are left out of "+
			"the count, its CPU (answering health-check PINGs) is in the idle figure")
	}
	for _, c := range []HubCost{r.Alone, r.Hub, r.Own} {
		if c.IdleCPUNote != "" {
			notes = append(notes, c.How+": idle CPU not measured: "+c.IdleCPUNote)
		}
	}
	return notes
}
