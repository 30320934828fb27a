package invalidate_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/invalidate"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiered"
)

// Everything tiered, remote and the Publisher send, they may send under the
// doc's ACL: writes, reads, leases, refreshes, the subscription.
func TestACLServesTheLibrary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := redistest.NewReal(t)
	setUser(t, s, docACL(t)...)
	l := newLibrary(t, s)
	for _, step := range l.steps(ctx) {
		if err := step.run(); err != nil {
			t.Fatalf("%s under the doc's ACL: %v", step.name, err)
		}
	}
	if n := l.broken.n.Load(); n != 0 || l.loads.Load() < 3 {
		t.Fatalf("under the doc's ACL: the subscription broke %d times, %d loads; want none, and 3 or more (a refresh)", n, l.loads.Load())
	}
}

// library is every part of the library, as user users-svc, in namespace
// "users".
type library struct {
	t           *testing.T
	hub         *tiered.Hub
	c, noLeases *tiered.Cache[string]
	slow        *tiered.Cache[string] // a LeaseTTL shorter than its loads: the lease is renewed
	st          *remote.Store
	p           *invalidate.Publisher
	loads       atomic.Int64 // calls of load
	broken      breaks
}

func newLibrary(t *testing.T, s *redistest.Server) *library {
	t.Helper()
	client := userClient(t, s, "users-svc", "secret")
	l := &library{t: t}
	var err error
	if l.hub, err = tiered.NewHub(client, tiered.HubOptions{Observer: &l.broken}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.hub.Close() })
	l.c = l.newCache(tiered.Options[string]{TTL: time.Minute, RefreshAhead: 0.999})
	l.noLeases = l.newCache(tiered.Options[string]{LeaseTTL: -1}) // stores loads with SET NX
	l.slow = l.newCache(tiered.Options[string]{LeaseTTL: slowLeaseTTL})
	if l.st, err = remote.New(client, remote.Options{Namespace: "users"}); err != nil {
		t.Fatal(err)
	}
	if l.p, err = invalidate.NewPublisher(client, "users"); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *library) newCache(opts tiered.Options[string]) *tiered.Cache[string] {
	opts.Namespace = "users"
	c, err := tiered.NewCache(l.hub, opts)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func (l *library) load(context.Context) (string, error) { l.loads.Add(1); return "loaded", nil }

// fetched Fetches key through c and checks that the load was stored: a
// failed store is only logged.
func (l *library) fetched(ctx context.Context, c *tiered.Cache[string], key string) error {
	if _, err := c.Fetch(ctx, key, l.load); err != nil {
		return err
	}
	v, err := l.st.Get(ctx, key)
	if err == nil && string(v) != "loaded" {
		err = fmt.Errorf("%q stored", v)
	}
	return err
}

// slowLeaseTTL is the LeaseTTL of library.slow. Its holder renews the
// lease every third of it, each renewal bounded by that third: a loaded
// machine must not make every renewal in one LeaseTTL late, so it is not
// a few milliseconds.
const slowLeaseTTL = 300 * time.Millisecond

// fetchedSlowly is fetched through the cache whose loads outlive its
// LeaseTTL (twice over): the lease must be renewed (PEXPIRE, in a script)
// for the load to be stored.
func (l *library) fetchedSlowly(ctx context.Context, key string) error {
	if _, err := l.slow.Fetch(ctx, key, func(ctx context.Context) (string, error) {
		time.Sleep(2*slowLeaseTTL + slowLeaseTTL/3)
		return l.load(ctx)
	}); err != nil {
		return err
	}
	v, err := l.st.Get(ctx, key)
	if err == nil && string(v) != "loaded" {
		err = fmt.Errorf("%q stored", v)
	}
	return err
}

// refreshed reads key through the cache until a refresh ahead has loaded
// it: a refresh lease, a load, a conditional write. It reads with Fetch:
// a Get that finds the local tier unproven (a loaded machine delays a
// proof now and then) reads Redis, and the entry it stores carries no
// loader, so no later hit would refresh it; a Fetch's carries its loader.
func (l *library) refreshed(ctx context.Context, key string) error {
	for l.loads.Load() < 2 && ctx.Err() == nil {
		if _, err := l.c.Fetch(ctx, key, l.load); err != nil {
			return err
		}
		if l.c.Stats().RefreshErrors != 0 {
			return errors.New("the refresh failed")
		}
		time.Sleep(time.Millisecond)
	}
	if ctx.Err() == nil && l.c.Stats().Refreshes == 0 {
		return errors.New("the second load was not a refresh")
	}
	return ctx.Err()
}

// reopen closes every cache of the Hub (its last UNSUBSCRIBE), opens
// another and writes through it.
func (l *library) reopen(ctx context.Context) error {
	l.c.Close()
	l.noLeases.Close()
	l.slow.Close()
	l.c = l.newCache(tiered.Options[string]{})
	l.t.Cleanup(func() { _ = l.c.Close() })
	if err := l.c.WaitReady(ctx); err != nil {
		return err
	}
	return l.c.Set(ctx, "a", "1")
}

type step struct {
	name string
	run  func() error
}

func (l *library) steps(ctx context.Context) []step {
	c, st, p := l.c, l.st, l.p
	return []step{
		{"WaitReady", func() error { return c.WaitReady(ctx) }},
		{"Set", func() error { return c.Set(ctx, "a", "1") }},
		{"Get", func() error { _, err := c.Get(ctx, "a"); return err }},
		{"SetMany", func() error { return c.SetMany(ctx, map[string]string{"b": "2", "c": "3"}) }},
		{"GetMany", func() error { _, err := c.GetMany(ctx, []string{"a", "b", "z"}); return err }},
		{"Fetch", func() error { return l.fetched(ctx, c, "f") }},
		{"refresh", func() error { return l.refreshed(ctx, "f") }},
		{"FetchMany", func() error {
			_, err := c.FetchMany(ctx, []string{"g", "h"}, func(context.Context, []string) (map[string]string, error) {
				return map[string]string{"g": "7"}, nil
			})
			if err == nil {
				_, err = st.Get(ctx, "g")
			}
			return err
		}},
		{"Fetch without leases", func() error { return l.fetched(ctx, l.noLeases, "n") }},
		{"Fetch slower than its lease (renewed)", func() error { return l.fetchedSlowly(ctx, "r") }},
		{"Delete", func() error { return c.Delete(ctx, "a", "g") }},
		{"Keys", func() error { _, err := c.Keys(ctx); return err }},
		{"Invalidate", func() error { return c.Invalidate(ctx, "b") }},
		{"InvalidateAll", func() error { return c.InvalidateAll(ctx) }},
		{"Store.Set", func() error { return st.Set(ctx, "s", []byte("v"), time.Minute) }},
		{"Store.SetMany", func() error { return st.SetMany(ctx, map[string][]byte{"t": []byte("v")}, 0) }},
		{"Store.Get", func() error { _, err := st.Get(ctx, "s"); return err }},
		{"Store.GetMany", func() error { _, err := st.GetMany(ctx, []string{"s", "t"}); return err }},
		{"Store.Keys", func() error { _, err := st.Keys(ctx); return err }},
		{"Store.Delete", func() error { return st.Delete(ctx, "s", "t") }},
		{"Publisher.Invalidate", func() error { return p.Invalidate(ctx, "b") }},
		{"Publisher.InvalidateAll", func() error { return p.InvalidateAll(ctx) }},
		{"the last cache closes (UNSUBSCRIBE), another opens", func() error { return l.reopen(ctx) }},
	}
}

// breaks counts the subscription's losses, as a Hub's Observer.
type breaks struct{ n atomic.Int64 }

func (b *breaks) Observe(e tiered.Event) {
	if e.Kind == tiered.EventSubscription && e.State != tiered.StateSubscribed && e.State != tiered.StateRepaired {
		b.n.Add(1)
	}
}
