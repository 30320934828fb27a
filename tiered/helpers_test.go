package tiered_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// instance is one cache with its own Redis client, as a separate process
// would have.
type instance[V any] struct {
	*tiered.Cache[V]
	client *redis.Client
	name   string
}

// newInstance starts a cache named name (its client's connections carry that
// name, for KillPubSub) in the server's namespace unless opts names one, and
// waits until its subscription is confirmed.
func newInstance[V any](t *testing.T, s *redistest.Server, name string, opts tiered.Options[V]) *instance[V] {
	t.Helper()
	return newInstanceAt(t, s, s.Addr, name, opts)
}

// newInstanceAt is newInstance with the cache's client dialing addr (a
// redistest.Proxy in front of the server, say).
func newInstanceAt[V any](t *testing.T, s *redistest.Server, addr, name string, opts tiered.Options[V]) *instance[V] {
	t.Helper()
	return newInstanceWith(t, s, name, opts, instanceConfig{addr: addr, hub: tiered.HubOptions{HealthCheck: opts.HealthCheck}})
}

// instanceConfig is what newInstanceWith adds to newInstance.
type instanceConfig struct {
	addr   string               // what the client dials; default: the server
	hub    tiered.HubOptions    // the Hub's options; MaxStaleness -1 (off) unless set
	client func(*redis.Options) // adjusts the client's options, if not nil
}

// newInstanceWith is newInstance with a Hub and a client configured by cfg.
func newInstanceWith[V any](t *testing.T, s *redistest.Server, name string, opts tiered.Options[V], cfg instanceConfig) *instance[V] {
	t.Helper()
	if cfg.addr == "" {
		cfg.addr = s.Addr
	}
	copts := &redis.Options{Addr: cfg.addr, ClientName: s.Namespace + "-" + name}
	if cfg.client != nil {
		cfg.client(copts)
	}
	client := redis.NewClient(copts)
	t.Cleanup(func() { _ = client.Close() })
	client.AddHook(gateHook{})
	if opts.Namespace == "" {
		opts.Namespace = s.Namespace
	}
	// The tests here are about the local tier and its invalidations, so
	// the freshness proof is off unless asked for: a read right after a
	// pause would otherwise (rightly) go to Redis. hub_test.go tests the
	// proof.
	if cfg.hub.MaxStaleness == 0 {
		cfg.hub.MaxStaleness = -1
	}
	opts.HealthCheck = 0
	h, err := tiered.NewHub(client, cfg.hub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for deadline := time.Now().Add(10 * time.Second); !c.Subscribed(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not subscribed after 10s: %+v", name, c.Stats())
		}
	}
	warmScripts(t, client)
	return &instance[V]{Cache: c, client: client, name: s.Namespace + "-" + name}
}

// applied waits until each instance has applied n invalidation messages
// from other instances in all. Tests count the messages they cause, so that a
// read is not raced by the (late) message of an earlier write.
func applied[V any](t *testing.T, n uint64, insts ...*instance[V]) {
	t.Helper()
	for _, in := range insts {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s applies %d messages", in.name, n), func() bool {
			return in.Stats().Invalidations >= n
		})
	}
}

// warmScripts loads the store's Lua scripts into the server, so that every
// later call is one round trip (the first call of a script on a server adds
// one to load it) and a gate holds the command that does the work. It goes
// through a bare remote.Store, so the caches count nothing.
func warmScripts(t *testing.T, client *redis.Client) {
	t.Helper()
	ctx := context.Background()
	st := newStore(t, client, "tiercache-warm-up")
	noop := func([]string) []byte { return nil }
	if err := st.DeleteAndPublish(ctx, noop, "none"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAndPublish(ctx, "k", []byte("v"), time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	_, _, _ = st.GetWithTTL(ctx, "k")
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gate holds one Redis command of a call whose context carries it: before it
// is sent (hold Before) or after its reply came back (hold After). Each
// channel pair is used once.
type gate struct {
	once, relB, relA      sync.Once
	atBefore, goBefore    chan struct{}
	atAfter, goAfter      chan struct{}
	holdBefore, holdAfter bool
}

// newGate returns a gate; it is released when the test ends, so that a test
// that fails while holding it does not leave a flight (and Close) waiting.
func newGate(t *testing.T, before, after bool) *gate {
	g := &gate{
		atBefore: make(chan struct{}), goBefore: make(chan struct{}),
		atAfter: make(chan struct{}), goAfter: make(chan struct{}),
		holdBefore: before, holdAfter: after,
	}
	t.Cleanup(func() { g.releaseBefore(); g.releaseAfter() })
	return g
}

type gateKey struct{}

func (g *gate) ctx(parent context.Context) context.Context {
	return context.WithValue(parent, gateKey{}, g)
}

// waitBefore and waitAfter block until the held command reaches that point.
func (g *gate) waitBefore(t *testing.T) {
	t.Helper()
	waitChan(t, g.atBefore, "command held before sending")
}
func (g *gate) waitAfter(t *testing.T) {
	t.Helper()
	waitChan(t, g.atAfter, "command held after its reply")
}
func (g *gate) releaseBefore() { g.relB.Do(func() { close(g.goBefore) }) }
func (g *gate) releaseAfter()  { g.relA.Do(func() { close(g.goAfter) }) }

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type gateHook struct{}

func (gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook gates a pipeline (the read of a value with its TTL is
// one MULTI/EXEC) as one command.
func (gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return gated(ctx, func() error { return next(ctx, cmds) })
	}
}

func (gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return gated(ctx, func() error { return next(ctx, cmd) })
	}
}

// gated runs send, holding it as the gate in ctx says if it is the gate's
// first command.
func gated(ctx context.Context, send func() error) error {
	g, _ := ctx.Value(gateKey{}).(*gate)
	first := false
	if g != nil {
		g.once.Do(func() { first = true })
	}
	if !first {
		return send()
	}
	if g.holdBefore {
		close(g.atBefore)
		select { // a held command gives up with its ctx, as go-redis does
		case <-g.goBefore:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := send()
	if g.holdAfter {
		close(g.atAfter)
		<-g.goAfter
	}
	return err
}

// result runs f in a goroutine and returns a channel with its result.
func async[T any](f func() (T, error)) <-chan asyncResult[T] {
	ch := make(chan asyncResult[T], 1)
	go func() { v, err := f(); ch <- asyncResult[T]{v, err} }()
	return ch
}

type asyncResult[T any] struct {
	v   T
	err error
}

func await[T any](t *testing.T, ch <-chan asyncResult[T]) (T, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("call did not return")
		panic("unreachable")
	}
}

// newStore returns a bare remote.Store on client, for tests that act as
// another instance (or a dead one) below the Cache.
func newStore(t testing.TB, client redis.UniversalClient, namespace string) *remote.Store {
	t.Helper()
	st, err := remote.New(client, remote.Options{Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
