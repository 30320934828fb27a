package faults

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The helpers of the consistency tests (hunt, nanosleep, frozen, outage):
// each instance is a node, a cache on a Hub of its own over a client of its
// own, as a separate process would have.

// epoch is the origin of the times the consistency tests keep, in ns.
var epoch = time.Now()

func sinceEpoch() int64 { return max(int64(time.Since(epoch)), 1) }

// needRealServer skips t outside the real-server suite, as TestFaults does.
func needRealServer(t *testing.T) {
	t.Helper()
	if os.Getenv(redistest.EnvAddr) == "" {
		t.Skipf("faults: needs a real Redis server (set %s)", redistest.EnvAddr)
	}
}

// node is one instance, and what it reports of itself: to its Observer,
// and through a hook on its client.
type node struct {
	*tiered.Cache[string]
	hub    *tiered.Hub
	client *redis.Client

	hits        atomic.Uint64 // keys answered by the local tier (EventLocalHit)
	invalidated atomic.Uint64 // invalidation messages applied
	staleKeys   atomic.Int64  // values served stale (EventStale)
	subscribed  atomic.Int64  // since epoch: the last EventSubscription Subscribed
	failed      atomic.Int64  // round trips of the client in which a command failed, and calls failed with ErrRedisDown
}

// Observe implements tiered.Observer.
func (n *node) Observe(ev tiered.Event) {
	switch ev.Kind {
	case tiered.EventLocalHit:
		n.hits.Add(uint64(ev.Keys))
	case tiered.EventInvalidation:
		n.invalidated.Add(1)
	case tiered.EventStale:
		n.staleKeys.Add(int64(ev.Keys))
	case tiered.EventRedis:
		if errors.Is(ev.Err, tiered.ErrRedisDown) {
			n.failed.Add(1) // failed without a round trip: the Hub knows Redis is down
		}
	case tiered.EventSubscription:
		if ev.State == tiered.StateSubscribed {
			n.subscribed.Store(sinceEpoch())
		}
	}
}

func failedCmd(err error) bool { return err != nil && !errors.Is(err, redis.Nil) }

// DialHook, ProcessHook and ProcessPipelineHook make node a redis.Hook
// that counts failed round trips.
func (n *node) DialHook(next redis.DialHook) redis.DialHook { return next }

func (n *node) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failedCmd(err) || failedCmd(cmd.Err()) {
			n.failed.Add(1)
		}
		return err
	}
}

func (n *node) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		bad := failedCmd(err)
		for _, c := range cmds {
			bad = bad || failedCmd(c.Err())
		}
		if bad {
			n.failed.Add(1)
		}
		return err
	}
}

// newNode makes a node in namespace ns over a client with copts, waits
// until its subscription is confirmed, and closes it when t ends.
func newNode(t *testing.T, copts *redis.Options, ns string, hopts tiered.HubOptions, opts tiered.Options[string]) *node {
	t.Helper()
	n := &node{client: redis.NewClient(copts)}
	n.client.AddHook(n)
	t.Cleanup(n.close)
	hopts.Observer = n
	var err error
	if n.hub, err = tiered.NewHub(n.client, hopts); err != nil {
		t.Fatal(err)
	}
	opts.Namespace = ns
	if n.Cache, err = tiered.NewCache(n.hub, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// close closes the cache, the Hub and the client; it is idempotent.
func (n *node) close() {
	if n.Cache != nil {
		_ = n.Cache.Close()
	}
	if n.hub != nil {
		_ = n.hub.Close()
	}
	_ = n.client.Close()
}

// holds waits until n answers key from its local tier (two reads in a row,
// the second a local hit), for at most 2s.
func (n *node) holds(ctx context.Context, key string) error {
	for deadline := time.Now().Add(2 * time.Second); ; {
		if _, err := n.Get(ctx, key); err != nil {
			return err
		}
		h := n.hits.Load()
		if _, err := n.Get(ctx, key); err != nil {
			return err
		}
		if n.hits.Load() > h {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("faults: the local tier does not answer " + strconv.Quote(key))
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// version parses a value written as a version number; -1 if it is not one.
func version(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// ms prints a duration for the tests' logs and tables: in µs below a
// millisecond, else in ms.
func ms(d time.Duration) string {
	if d > -time.Millisecond && d < time.Millisecond {
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	}
	return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms"
}
