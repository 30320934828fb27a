package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// dropRefreshLeases deletes the refresh leases of keys when the test ends:
// they live outside the test's namespace, which the cleanup of a real
// server does not reach.
func dropRefreshLeases(t *testing.T, c redis.UniversalClient, st *remote.Store, keys ...string) {
	t.Cleanup(func() {
		for _, k := range keys {
			_ = c.Del(context.Background(), st.RefreshKey(k)).Err()
		}
	})
}

// One holder at a time: the lease is a key of its own, outside the
// namespace, holding the holder's token for ttl; only its holder releases
// it.
func TestRefreshLease(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	dropRefreshLeases(t, s.Client, st, "k")
	if got, want := st.RefreshKey("k"), "tiercache:refresh:"+s.Namespace+":k"; got != want {
		t.Fatalf("RefreshKey = %q, want %q", got, want)
	}
	a, b := remote.NewLeaseToken(), remote.NewLeaseToken()
	if ok, err := st.AcquireRefresh(ctx, "k", a, time.Minute); err != nil || !ok {
		t.Fatalf("AcquireRefresh of a free lease = %v, %v; want true", ok, err)
	}
	got, err := s.Client.Get(ctx, st.RefreshKey("k")).Result()
	if err != nil || got != a {
		t.Fatalf("the lease key holds %q, %v; want the holder's token", got, err)
	}
	if ttl := s.Client.PTTL(ctx, st.RefreshKey("k")).Val(); ttl <= 59*time.Second || ttl > time.Minute {
		t.Fatalf("the lease's TTL = %v, want about 1m", ttl)
	}
	if ok, err := st.AcquireRefresh(ctx, "k", b, time.Minute); err != nil || ok {
		t.Fatalf("AcquireRefresh of a held lease = %v, %v; want false", ok, err)
	}
	if n := s.Client.Exists(ctx, st.RedisKey("k")).Val(); n != 0 {
		t.Fatal("the lease wrote the user's key")
	}
	if keys, err := st.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("Keys = %q, %v; the lease is not a key of the namespace", keys, err)
	}
	if ok, err := st.ReleaseRefresh(ctx, "k", b); err != nil || ok {
		t.Fatalf("ReleaseRefresh by another token = %v, %v; want false", ok, err)
	}
	if got := s.Client.Get(ctx, st.RefreshKey("k")).Val(); got != a {
		t.Fatalf("another token's release removed the lease: the key holds %q", got)
	}
	if ok, err := st.ReleaseRefresh(ctx, "k", a); err != nil || !ok {
		t.Fatalf("ReleaseRefresh by its holder = %v, %v; want true", ok, err)
	}
	if ok, err := st.ReleaseRefresh(ctx, "k", a); err != nil || ok {
		t.Fatalf("ReleaseRefresh of a free lease = %v, %v; want false", ok, err)
	}
	if ok, err := st.AcquireRefresh(ctx, "k", b, time.Minute); err != nil || !ok {
		t.Fatalf("AcquireRefresh of a released lease = %v, %v; want true", ok, err)
	}
}

func TestRefreshLeaseExpires(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	dropRefreshLeases(t, s.Client, st, "k")
	if ok, err := st.AcquireRefresh(ctx, "k", remote.NewLeaseToken(), 100*time.Millisecond); err != nil || !ok {
		t.Fatalf("AcquireRefresh = %v, %v", ok, err)
	}
	s.Advance(150 * time.Millisecond)
	if ok, err := st.AcquireRefresh(ctx, "k", remote.NewLeaseToken(), time.Second); err != nil || !ok {
		t.Fatalf("AcquireRefresh once the lease expired = %v, %v; want true", ok, err)
	}
}

// The refresh lease of a key never collides with a key of any namespace,
// nor with the refresh lease of another namespace's key.
func TestRefreshKeysNeverCollide(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	a := mustNew(t, client, remote.Options{Namespace: "a"})
	ab := mustNew(t, client, remote.Options{Namespace: "a.b"})
	if err := remote.CheckNamespace("tiercache"); err == nil {
		t.Fatal(`namespace "tiercache" is allowed: its keys could be refresh leases`)
	}
	for _, k := range []string{"k", "b:k", "tiercache:refresh:a:k", ""} {
		for _, st := range []*remote.Store{a, ab} {
			rk := st.RefreshKey(k)
			if !strings.HasPrefix(rk, "tiercache:") {
				t.Fatalf("RefreshKey(%q) = %q, outside the reserved prefix", k, rk)
			}
			for _, other := range []*remote.Store{a, ab} {
				for _, k2 := range []string{"k", "b:k", "tiercache:refresh:a:k", ""} {
					if other.RedisKey(k2) == rk {
						t.Fatalf("RefreshKey(%q) of %q is the key %q of %q", k, st.Namespace(), k2, other.Namespace())
					}
					if (other != st || k2 != k) && other.RefreshKey(k2) == rk {
						t.Fatalf("the refresh keys of %q in %q and %q in %q collide", k, st.Namespace(), k2, other.Namespace())
					}
				}
			}
		}
	}
}

// Of instances that race for one refresh lease, exactly one takes it.
func TestRefreshLeaseRace(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	const racers = 8
	won := make([]bool, racers)
	stores := make([]*remote.Store, racers)
	for r := range stores {
		stores[r] = mustNew(t, s.NewClient(""), remote.Options{Namespace: s.Namespace})
	}
	dropRefreshLeases(t, s.Client, stores[0], "k")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for r := range racers {
		wg.Go(func() {
			<-start
			ok, err := stores[r].AcquireRefresh(ctx, "k", remote.NewLeaseToken(), time.Minute)
			if err != nil {
				t.Error(err)
			}
			won[r] = ok
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for _, w := range won {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d racers took the lease, want 1", n)
	}
}

func TestRefreshLeaseErrors(t *testing.T) {
	st, s := newStore(t)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	for _, ttl := range []time.Duration{0, -time.Millisecond, 500 * time.Microsecond} {
		ok, err := st.AcquireRefresh(context.Background(), "k", "tok", ttl)
		var re *remote.Error
		if ok || !errors.As(err, &re) || re.Op != "acquire-refresh" || !strings.Contains(err.Error(), `"k"`) || !strings.Contains(err.Error(), "ttl") {
			t.Fatalf("AcquireRefresh with ttl %v = %v, %v; want a ttl error naming the key", ttl, ok, err)
		}
	}
	if calls.Count() != 0 {
		t.Fatalf("AcquireRefresh with a bad ttl sent %d round trips", calls.Count())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for op, err := range map[string]error{
		"acquire-refresh": func() error { _, err := st.AcquireRefresh(ctx, "k", "tok", time.Second); return err }(),
		"release-refresh": func() error { _, err := st.ReleaseRefresh(ctx, "k", "tok"); return err }(),
	} {
		var re *remote.Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &re) || re.Op != op || !strings.Contains(err.Error(), `"k"`) {
			t.Errorf("%s with a cancelled context: err = %v, want a *remote.Error of op %s wrapping context.Canceled", op, err, op)
		}
	}
}

func TestRefreshLeaseOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace})
	tok := remote.NewLeaseToken()
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("k:%02d", i))
	}
	dropRefreshLeases(t, client, st, keys...)
	for _, k := range keys {
		if ok, err := st.AcquireRefresh(ctx, k, tok, time.Minute); err != nil || !ok {
			t.Fatalf("AcquireRefresh(%s) = %v, %v", k, ok, err)
		}
		if ok, err := st.AcquireRefresh(ctx, k, remote.NewLeaseToken(), time.Minute); err != nil || ok {
			t.Fatalf("AcquireRefresh(%s) of a held lease = %v, %v", k, ok, err)
		}
		if ok, err := st.ReleaseRefresh(ctx, k, tok); err != nil || !ok {
			t.Fatalf("ReleaseRefresh(%s) = %v, %v", k, ok, err)
		}
	}
}
