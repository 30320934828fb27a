package tiered_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The bound on a Redis Cluster: a local hit never returns a value
// overwritten by a Set acknowledged more than MaxStaleness before the read
// began, whichever master the key lives on, however slow the cluster bus,
// whatever it loses, and across a failover. These tests start cluster
// processes of their own, so they run in the real-server suite only.

// busDelay is how late the delayed bus carries every message.
const busDelay = 50 * time.Millisecond

// needClusterProcesses skips a test outside the real-server suite.
func needClusterProcesses(t *testing.T) {
	t.Helper()
	if os.Getenv(redistest.EnvAddr) == "" {
		t.Skipf("needs real Redis Cluster processes, which the real-server suite starts (set %s)", redistest.EnvAddr)
	}
}

// clusterPeer is a cache with its own cluster client and Hub (default
// MaxStaleness), as another process would have. Its client's connections
// are named Namespace-name, for PubSubNodes.
type clusterPeer struct {
	*tiered.Cache[string]
	client *redis.ClusterClient
	name   string
}

func openClusterPeer(t *testing.T, cl *redistest.Cluster, name string) *clusterPeer {
	t.Helper()
	p := &clusterPeer{name: cl.Namespace + "-" + name}
	p.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, ClientName: p.name})
	t.Cleanup(func() { _ = p.client.Close() })
	hub, err := tiered.NewHub(p.client, tiered.HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	if p.Cache, err = tiered.NewCache(hub, tiered.Options[string]{Namespace: cl.Namespace}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// clusterKey is a cache key and the master that served it when chosen.
type clusterKey struct{ key, master string }

// keysOnEveryMaster returns n keys served by each master.
func keysOnEveryMaster(cl *redistest.Cluster, n int) []clusterKey {
	var keys []clusterKey
	for _, m := range cl.Masters() {
		for _, k := range cl.KeysOn(m, cl.Namespace+":", n) {
			keys = append(keys, clusterKey{k, m})
		}
	}
	return keys
}

// writeAndHold has a write every key as old, waits until b has applied those
// n messages (so that none arrives late), and has b read them all until it
// holds every one in its local tier.
func writeAndHold(t *testing.T, a, b *clusterPeer, keys []clusterKey, old string) {
	t.Helper()
	before := b.Stats().Invalidations
	for _, k := range keys {
		if err := a.Set(bg, k.key, old); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "b applies a's writes", func() bool {
		return b.Stats().Invalidations >= before+uint64(len(keys))
	})
	waitFor(t, 10*time.Second, "b holds every key", func() bool {
		for _, k := range keys {
			if v, err := b.Get(bg, k.key); err != nil || v != old {
				t.Fatalf("b Get(%s) = %q, %v; want %q", k.key, v, err, old)
			}
		}
		return b.Stats().LocalEntries >= len(keys)
	})
}

// lateRead sums up b's reads of a key that returned the old value although
// they began more than MaxStaleness after a's Set was acknowledged.
type lateRead struct {
	clusterKey
	reads        int
	first, worst time.Duration // how long after the ack such reads began
}

func (l lateRead) String() string {
	return fmt.Sprintf("%s (master %s): %d read(s) begun %v to %v after the ack returned the old value",
		l.key, l.master, l.reads, l.first.Round(100*time.Microsecond), l.worst.Round(100*time.Microsecond))
}

// readAfter has b read k repeatedly from just after ack (when a's Set
// returned) until it has returned want and settle has passed since ack, or
// until deadline has. A read that returns old counts against the bound if
// it began more than MaxStaleness after ack: ack is taken after the Set
// returned and a read's start before it is sent, so the measured lateness
// is never more than the real one. (A read may return want from Redis, the
// local tier being unproven, and a later one old from the local tier: so
// the reads go on for settle, the time the invalidation takes to arrive.)
func readAfter(b *clusterPeer, k clusterKey, old, want string, ack time.Time, settle, deadline time.Duration) (late *lateRead, seen bool, errs []error) {
	for {
		begin := time.Now()
		ctx, cancel := context.WithTimeout(bg, deadline)
		v, err := b.Get(ctx, k.key)
		cancel()
		switch {
		case err != nil:
			errs = append(errs, err)
		case v == want:
			seen = true
		case v == old && begin.Sub(ack) > tiered.DefaultMaxStaleness:
			if late == nil {
				late = &lateRead{clusterKey: k, first: begin.Sub(ack)}
			}
			late.reads++
			late.worst = begin.Sub(ack)
		}
		if since := time.Since(ack); since > deadline || (seen && since > settle) {
			return late, seen, errs
		}
	}
}

// overwriteAndRead has a overwrite each key from old to want and b read it
// at once (see readAfter), and fails the test for every late read of the
// old value and for every key b does not return as want within deadline
// of the ack.
func overwriteAndRead(t *testing.T, a, b *clusterPeer, keys []clusterKey, old, want string, settle, deadline time.Duration) {
	t.Helper()
	var late []string
	masters := make(map[string]bool)
	for _, k := range keys {
		if err := a.Set(bg, k.key, want); err != nil {
			t.Fatal(err)
		}
		ack := time.Now()
		l, seen, errs := readAfter(b, k, old, want, ack, settle, deadline)
		if l != nil {
			late = append(late, l.String())
			masters[k.master] = true
		}
		if !seen {
			t.Errorf("b did not return %q for %s (master %s) within %v of the ack; errors: %v", want, k.key, k.master, deadline, errs)
		}
	}
	if len(late) > 0 {
		t.Errorf("b served the old value after the bound (MaxStaleness %v) for %d of %d keys, on %d of %d masters:\n%s",
			tiered.DefaultMaxStaleness, len(late), len(keys), len(masters), len(mastersOf(keys)), strings.Join(late, "\n"))
	}
}

// mastersOf returns the distinct masters of keys.
func mastersOf(keys []clusterKey) []string {
	var ms []string
	for _, k := range keys {
		if !slices.Contains(ms, k.master) {
			ms = append(ms, k.master)
		}
	}
	return ms
}

// TestBoundOnClusterWithSlowBus: with the cluster bus 50ms slow, a write on
// one master reaches a subscription on another 50ms late, while that
// subscription's own PING is answered at once. b must still not serve an
// overwritten value more than MaxStaleness after the write's ack, for keys
// on every master.
func TestBoundOnClusterWithSlowBus(t *testing.T) {
	needClusterProcesses(t)
	cl := redistest.NewRealCluster(t, redistest.ClusterOptions{BusProxies: true})
	a, b := openClusterPeer(t, cl, "a"), openClusterPeer(t, cl, "b")
	keys := keysOnEveryMaster(cl, 5)
	writeAndHold(t, a, b, keys, "v1")

	cl.SetBusDelay(busDelay)
	m := cl.Masters()
	if lag := cl.PublishLag(m[0], m[1]); lag < busDelay {
		t.Fatalf("the bus carried a message in %v, under its delay of %v", lag, busDelay)
	}
	t.Logf("b listens on %v", cl.PubSubNodes(b.name))
	overwriteAndRead(t, a, b, keys, "v1", "v2", 3*busDelay, 2*time.Second)
}

// TestNoKeyOldAfterBusLinksDrop: a node drops a bus link whose send buffer
// passes cluster-link-sendbuf-limit, with every message it held, and tells
// no one. While a overwrites 200 keys spread over every master, the bus is
// flooded (and stalled, so that no link drains) until links drop; a second
// after the flood, b must serve none of the old values.
func TestNoKeyOldAfterBusLinksDrop(t *testing.T) {
	needClusterProcesses(t)
	// The bus stays stalled from the flood's start until a's writes are
	// done, which a loaded machine stretches past Redis's own node timeout
	// (15s): nodes then flag each other failing and refuse commands
	// (CLUSTERDOWN). The test is about dropped links, not failed nodes.
	cl := redistest.NewRealCluster(t, redistest.ClusterOptions{BusProxies: true, NodeTimeout: 2 * time.Minute})
	a, b := openClusterPeer(t, cl, "a"), openClusterPeer(t, cl, "b")
	keys := make([]clusterKey, 200)
	for i := range keys {
		keys[i].key = fmt.Sprintf("k%d", i)
		keys[i].master = cl.MasterOf(cl.Namespace + ":" + keys[i].key)
	}
	if n := len(mastersOf(keys)); n != 3 {
		t.Fatalf("the keys live on %d masters, want 3", n)
	}
	writeAndHold(t, a, b, keys, "v1")
	before := b.Stats()

	flood := cl.FloodBus(redistest.FloodOptions{Stall: true, Publishers: 1})
	waitFor(t, 10*time.Second, "a bus link dropped", func() bool { return flood.Dropped() > 0 })
	for _, k := range keys {
		if err := a.Set(bg, k.key, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	rep := flood.Stop() // returns once the cluster is ok again
	time.Sleep(time.Second)

	// Every key, read again and again for 200ms (a read that finds the
	// local tier unproven goes to Redis; the next one may be a hit).
	stale := make(map[string]int)
	seen := make(map[string]bool)
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		for _, k := range keys {
			v, err := b.Get(bg, k.key)
			if err != nil {
				t.Fatalf("b Get(%s): %v", k.key, err)
			}
			if v == "v1" && !seen[k.key] {
				seen[k.key] = true
				stale[k.master]++
			}
		}
	}
	after := b.Stats()
	t.Logf("flood for %v: %d links dropped %v; b listens on %v, applied %d of a's %d messages, Breaks %d",
		rep.Duration.Round(time.Millisecond), rep.TotalDropped(), rep.Dropped, cl.PubSubNodes(b.name),
		after.Invalidations-before.Invalidations, len(keys), after.Breaks-before.Breaks)
	if len(stale) > 0 {
		n := 0
		for _, c := range stale {
			n += c
		}
		t.Errorf("%d of %d keys still served old by b a second after the flood (by master: %v)", n, len(keys), stale)
	}
}

// failoverDeadline is how long after a's ack b may take to return the new
// value after a failover: MaxStaleness, plus 1s for go-redis to follow the
// new topology (a MOVED from the demoted master is followed at once; a
// pooled connection that broke is retried after a backoff of 8ms to 512ms,
// at most three times), plus 1s for a read starved of CPU on this loaded
// 2-core machine, where other packages' tests run beside this one. It only
// bounds the wait: which reads were late is judged by when they began (see
// readAfter), with no margin.
const failoverDeadline = tiered.DefaultMaxStaleness + 2*time.Second

// TestBoundAcrossFailover: b holds a key on every master; the master that
// holds b's subscription (or, if a replica holds it, that replica's master)
// fails over, gracefully or by a crash. Once b is subscribed again, a
// overwrites every key, and b must return each new value within
// MaxStaleness.
func TestBoundAcrossFailover(t *testing.T) {
	needClusterProcesses(t)
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "graceful", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			cl := redistest.NewRealCluster(t, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
			a, b := openClusterPeer(t, cl, "a"), openClusterPeer(t, cl, "b")
			keys := keysOnEveryMaster(cl, 1)
			writeAndHold(t, a, b, keys, "v1")
			listens := cl.PubSubNodes(b.name)
			if len(listens) == 0 {
				t.Fatal("b has no pub/sub connection")
			}
			target := masterNear(cl, listens[0])
			key := keys[slices.IndexFunc(keys, func(k clusterKey) bool { return k.master == target })]
			breaks := b.Stats().Breaks

			start := time.Now()
			var old, promoted string
			if crash {
				old, promoted = cl.CrashFailover(cl.Namespace + ":" + key.key)
			} else {
				old, promoted = cl.Failover(cl.Namespace + ":" + key.key)
			}
			t.Logf("%s failover %s -> %s settled in %v; b listened on %v", name, old, promoted,
				time.Since(start).Round(time.Millisecond), listens)
			if crash {
				waitRouted(t, cl.Namespace+":"+key.key, a, b)
			}
			if crash && slices.Contains(listens, old) {
				waitFor(t, 10*time.Second, "b notices its connection died", func() bool { return b.Stats().Breaks > breaks })
			}
			ctx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			if err := b.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			overwriteAndRead(t, a, b, keys, "v1", "v2", 10*tiered.DefaultMaxStaleness, failoverDeadline)
			t.Logf("b: Breaks %d, listens on %v", b.Stats().Breaks-breaks, cl.PubSubNodes(b.name))
		})
	}
}

// waitRouted waits until the clients of peers reach the master of the Redis
// key. After a crash, go-redis sends a dead master's slots to it until its
// slot map is reloaded: every 10s, or on a MOVED, which a dead node cannot
// answer, or when asked (ReloadState, which asks the nodes in random order,
// the dead one too). That is the client's lag, not the bound's: the test
// waits it out before it writes.
func waitRouted(t *testing.T, key string, peers ...*clusterPeer) {
	t.Helper()
	start := time.Now()
	waitFor(t, 30*time.Second, "the clients reach the new master", func() bool {
		for _, p := range peers {
			ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
			err := p.client.Exists(ctx, key).Err()
			cancel()
			if err != nil {
				p.client.ReloadState(bg)
				time.Sleep(50 * time.Millisecond)
				return false
			}
		}
		return true
	})
	t.Logf("the clients reached the new master %v after the failover settled", time.Since(start).Round(time.Millisecond))
}

// masterNear returns addr if it is a master, else the master addr
// replicates.
func masterNear(cl *redistest.Cluster, addr string) string {
	for _, m := range cl.Masters() {
		if m == addr || cl.ReplicaOf(m) == addr {
			return m
		}
	}
	return addr
}
