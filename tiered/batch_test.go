package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

func keysN(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return ks
}

// GetMany answers what either tier holds, leaves absent keys out, reads the
// cold ones in one round trip, and fills the local tier.
func TestGetMany(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	keys := keysN("k", 100)
	items := make(map[string]string)
	for _, k := range keys[:60] {
		items[k] = "v-" + k
	}
	if err := a.SetMany(bg, items); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	trips := &redistest.RoundTrips{}
	b.client.AddHook(trips)

	got, err := b.GetMany(bg, append(keys, keys[0], keys[99])) // duplicates are read once
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 {
		t.Fatalf("GetMany found %d keys, want 60", len(got))
	}
	for k, v := range items {
		if got[k] != v {
			t.Fatalf("GetMany[%s] = %q, want %q", k, got[k], v)
		}
	}
	if n := trips.Count(); n != 1 {
		t.Fatalf("GetMany of 100 cold keys took %d round trips, want 1", n)
	}
	trips.Reset()
	before := b.Stats().LocalHits
	again, err := b.GetMany(bg, keys[:60])
	if err != nil || len(again) != 60 {
		t.Fatalf("second GetMany = %d keys, %v", len(again), err)
	}
	if n := trips.Count(); n != 0 {
		t.Fatalf("GetMany of 60 locally held keys took %d round trips, want 0", n)
	}
	if hits := b.Stats().LocalHits - before; hits != 60 {
		t.Fatalf("second GetMany: %d local hits, want 60", hits)
	}
	if empty, err := b.GetMany(bg, nil); err != nil || len(empty) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", empty, err)
	}
}

// A value GetMany read before an invalidation of its key arrived is not
// stored in the local tier after it (the single-key "no stale fill").
func TestGetManyNoStaleFill(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.SetMany(bg, map[string]string{"x": "x1", "y": "y1"}); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	g := newGate(t, false, true) // b's read has x1 and y1 and is held there
	held := async(func() (map[string]string, error) { return b.GetMany(g.ctx(bg), []string{"x", "y"}) })
	g.waitAfter(t)
	if err := a.Set(bg, "x", "x2"); err != nil {
		t.Fatal(err)
	}
	applied(t, 2, b)
	g.releaseAfter()
	if got, err := await(t, held); err != nil || got["x"] != "x1" {
		t.Fatalf("held GetMany = %v, %v; want x1 (read before the write)", got, err)
	}
	if got, err := b.Get(bg, "x"); err != nil || got != "x2" {
		t.Fatalf("b then holds x = %q, %v; want x2", got, err)
	}
}

// A local entry filled by GetMany never outlives its Redis key.
func TestGetManyLocalLifeBoundedByRedisTTL(t *testing.T) {
	s := redistest.New(t)
	// A second: b's first GetMany, on a loaded machine, falls within it.
	const ttl = time.Second
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: ttl})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.SetMany(bg, map[string]string{"x": "1", "y": "2"}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetMany(bg, []string{"x", "y"}); err != nil || len(got) != 2 {
		t.Fatalf("GetMany = %v, %v", got, err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if !s.Real() {
		s.Mini.FastForward(ttl + 50*time.Millisecond)
	}
	got, err := b.GetMany(bg, []string{"x", "y"})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany after the Redis TTL = %v, %v; want nothing", got, err)
	}
}

// While the subscription is not confirmed, GetMany reads Redis and serves
// nothing from the local tier (what it fills is kept for when the
// subscription is back, and repaired then).
func TestGetManyBypassesWhileTheChannelIsDown(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	p := redistest.NewProxy(t, s.Addr)
	b := newInstanceAt(t, s, p.Addr(), "b", tiered.Options[string]{})
	if err := a.Set(bg, "x", "1"); err != nil {
		t.Fatal(err)
	}
	p.CutPubSub(true)
	waitFor(t, 10*time.Second, "b loses its subscription", func() bool { return !b.Subscribed() })
	if got, err := b.GetMany(bg, []string{"x"}); err != nil || got["x"] != "1" {
		t.Fatalf("GetMany = %v, %v", got, err)
	}
	if err := a.Set(bg, "x", "2"); err != nil { // b cannot hear this
		t.Fatal(err)
	}
	if got, err := b.GetMany(bg, []string{"x"}); err != nil || got["x"] != "2" {
		t.Fatalf("GetMany while unsubscribed = %v, %v; want 2 (from Redis)", got, err)
	}
	if st := b.Stats(); st.Bypassed < 2 || st.LocalHits != 0 {
		t.Fatalf("stats while unsubscribed: %+v", st)
	}
}

// FetchMany: 100 keys, 50 in Redis and 50 loaded: at most 3 round trips and
// one loader call with exactly the 50 missing keys.
func TestFetchMany(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: time.Minute})
	b := newInstance(t, s, "b", tiered.Options[string]{TTL: time.Minute})
	keys := keysN("k", 100)
	items := make(map[string]string)
	for _, k := range keys[:50] {
		items[k] = "stored-" + k
	}
	if err := a.SetMany(bg, items); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b) // else its message would (rightly) stop b's fills
	trips := &redistest.RoundTrips{}
	b.client.AddHook(trips)
	var calls atomic.Int32
	var asked []string
	load := func(ctx context.Context, missing []string) (map[string]string, error) {
		calls.Add(1)
		asked = slices.Clone(missing)
		out := make(map[string]string)
		for _, k := range missing {
			out[k] = "loaded-" + k
		}
		return out, nil
	}
	got, err := b.FetchMany(bg, keys, load)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || calls.Load() != 1 {
		t.Fatalf("FetchMany: %d keys, %d loader calls; want 100, 1", len(got), calls.Load())
	}
	if !slices.Equal(asked, keys[50:]) {
		t.Fatalf("loader asked for %v, want %v", asked, keys[50:])
	}
	for i, k := range keys {
		want := "stored-" + k
		if i >= 50 {
			want = "loaded-" + k
		}
		if got[k] != want {
			t.Fatalf("FetchMany[%s] = %q, want %q", k, got[k], want)
		}
	}
	if n := trips.Count(); n > 3 {
		t.Fatalf("FetchMany took %d round trips, want at most 3", n)
	}
	if v, _ := s.Client.Get(bg, s.Namespace+":"+keys[99]).Result(); v != "loaded-"+keys[99] {
		t.Fatalf("Redis holds %q for a loaded key", v)
	}
	if ttl := s.Client.PTTL(bg, s.Namespace+":"+keys[99]).Val(); ttl <= 50*time.Second || ttl > time.Minute {
		t.Fatalf("loaded key's TTL = %v, want about 1m", ttl)
	}
	// Everything is now local (or in Redis for a): no load, no round trip.
	trips.Reset()
	if again, err := b.FetchMany(bg, keys, load); err != nil || len(again) != 100 {
		t.Fatalf("second FetchMany = %d keys, %v", len(again), err)
	}
	if calls.Load() != 1 || trips.Count() != 0 {
		t.Fatalf("second FetchMany: %d loader calls, %d round trips; want 1, 0", calls.Load(), trips.Count())
	}
	if got, err := a.FetchMany(bg, keys[40:60], load); err != nil || len(got) != 20 || calls.Load() != 1 {
		t.Fatalf("a's FetchMany = %d keys, %v, %d loader calls", len(got), err, calls.Load())
	}
}

// Concurrent Fetch and FetchMany in one process share work per key: a key
// another call is loading is waited for, not loaded again.
func TestFetchManySharesWorkWithFetch(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	release := make(chan struct{})
	started := make(chan struct{})
	single := async(func() (string, error) {
		return a.Fetch(bg, "shared", func(context.Context) (string, error) {
			close(started)
			<-release
			return "from-fetch", nil
		})
	})
	waitChan(t, started, "Fetch's loader starts")
	var asked [][]string
	var mu sync.Mutex
	many := async(func() (map[string]string, error) {
		return a.FetchMany(bg, []string{"shared", "own"}, func(_ context.Context, missing []string) (map[string]string, error) {
			mu.Lock()
			asked = append(asked, slices.Clone(missing))
			mu.Unlock()
			return map[string]string{"own": "from-many", "shared": "loaded-twice"}, nil
		})
	})
	waitFor(t, 10*time.Second, "FetchMany loads its own key", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) == 1
	})
	close(release)
	got, err := await(t, many)
	if err != nil || got["shared"] != "from-fetch" || got["own"] != "from-many" {
		t.Fatalf("FetchMany = %v, %v", got, err)
	}
	if v, err := await(t, single); err != nil || v != "from-fetch" {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if !slices.Equal(asked[0], []string{"own"}) {
		t.Fatalf("FetchMany loaded %v, want only [own]", asked[0])
	}
}

// What FetchMany loaded never overwrites a write made while it loaded.
func TestFetchManyNeverOverwritesANewerSet(t *testing.T) {
	for _, lease := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("LeaseTTL=%v", lease), func(t *testing.T) {
			s := redistest.New(t)
			a := newInstance(t, s, "a", tiered.Options[string]{LeaseTTL: lease})
			b := newInstance(t, s, "b", tiered.Options[string]{})
			inLoad, release := make(chan struct{}), make(chan struct{})
			res := async(func() (map[string]string, error) {
				return a.FetchMany(bg, []string{"x", "y"}, func(context.Context, []string) (map[string]string, error) {
					close(inLoad)
					<-release
					return map[string]string{"x": "loaded", "y": "loaded"}, nil
				})
			})
			waitChan(t, inLoad, "the loader starts")
			if err := b.Set(bg, "x", "newer"); err != nil {
				t.Fatal(err)
			}
			applied(t, 1, a)
			close(release)
			if got, err := await(t, res); err != nil || got["x"] != "loaded" {
				t.Fatalf("FetchMany = %v, %v; its callers get what was loaded", got, err)
			}
			if v := s.Client.Get(bg, s.Namespace+":x").Val(); v != "newer" {
				t.Fatalf("Redis holds %q for x, want newer", v)
			}
			if v := s.Client.Get(bg, s.Namespace+":y").Val(); v != "loaded" {
				t.Fatalf("Redis holds %q for y, want loaded", v)
			}
			if v, err := a.Get(bg, "x"); err != nil || v != "newer" {
				t.Fatalf("a then reads x = %q, %v; want newer", v, err)
			}
		})
	}
}

// A load error fails the loaded keys only; the others are returned, with a
// *BatchError naming the failed keys.
func TestFetchManyPartialFailure(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "here", "1"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database down")
	got, err := a.FetchMany(bg, []string{"here", "gone1", "gone2"}, func(context.Context, []string) (map[string]string, error) {
		return nil, boom
	})
	var be *tiered.BatchError
	if !errors.As(err, &be) || !errors.Is(err, boom) {
		t.Fatalf("FetchMany error = %v, want a *BatchError wrapping the load error", err)
	}
	if len(be.Keys) != 2 || be.Keys["gone1"] == nil || be.Keys["gone2"] == nil || be.Op != "fetch-many" || be.Namespace != s.Namespace {
		t.Fatalf("BatchError = %+v", be)
	}
	if got["here"] != "1" || len(got) != 1 {
		t.Fatalf("FetchMany returned %v, want the found key", got)
	}
	for _, want := range []string{"fetch-many", s.Namespace, `"gone1"`, "database down"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

// SetMany: one round trip and one message on a single node; every other
// instance drops the keys; the writer reads its writes.
func TestSetMany(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: time.Minute})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	sub := s.Client.Subscribe(bg, invalidate.Channel(s.Namespace))
	defer sub.Close()
	if _, err := sub.Receive(bg); err != nil {
		t.Fatal(err)
	}
	old := map[string]string{"x": "1", "y": "1", "z": "1"}
	if err := a.SetMany(bg, old); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.ReceiveMessage(bg); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	if got, err := b.GetMany(bg, []string{"x", "y", "z"}); err != nil || len(got) != 3 {
		t.Fatalf("b.GetMany = %v, %v", got, err)
	}
	trips := &redistest.RoundTrips{}
	a.client.AddHook(trips)
	if err := a.SetMany(bg, map[string]string{"x": "2", "y": "2", "z": "2"}); err != nil {
		t.Fatal(err)
	}
	if n := trips.Count(); n != 1 {
		t.Fatalf("SetMany took %d round trips, want 1", n)
	}
	m, err := sub.ReceiveMessage(bg)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := invalidate.Decode([]byte(m.Payload))
	if err != nil || strings.Join(msg.Keys, ",") != "x,y,z" {
		t.Fatalf("SetMany published %+v, %v; want one message for x,y,z", msg, err)
	}
	applied(t, 2, b)
	if got, err := b.GetMany(bg, []string{"x", "y", "z"}); err != nil || got["x"] != "2" || got["z"] != "2" {
		t.Fatalf("b after SetMany = %v, %v", got, err)
	}
	before := a.Stats().LocalHits
	if v, err := a.Get(bg, "y"); err != nil || v != "2" || a.Stats().LocalHits != before+1 {
		t.Fatalf("a.Get(y) = %q, %v; want 2 from its local tier", v, err)
	}
	if ttl := s.Client.PTTL(bg, s.Namespace+":z").Val(); ttl <= 50*time.Second {
		t.Fatalf("SetMany's TTL = %v, want about 1m", ttl)
	}
}

// The batch calls work on a Cluster, with keys spread over hash slots.
func TestBatchesOnCluster(t *testing.T) {
	cl := redistest.NewCluster(t)
	newCache := func() *tiered.Cache[string] {
		client := cl.NewClient()
		t.Cleanup(func() { _ = client.Close() })
		c, err := tiered.New(client, tiered.Options[string]{Namespace: cl.Namespace, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.WaitReady(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := newCache(), newCache()
	keys := keysN("c", 60)
	items := make(map[string]string)
	for _, k := range keys[:30] {
		items[k] = "set-" + k
	}
	if err := a.SetMany(bg, items); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	got, err := b.FetchMany(bg, keys, func(_ context.Context, missing []string) (map[string]string, error) {
		calls.Add(1)
		out := make(map[string]string)
		for _, k := range missing {
			out[k] = "loaded-" + k
		}
		return out, nil
	})
	if err != nil || len(got) != 60 || calls.Load() != 1 {
		t.Fatalf("FetchMany on a cluster = %d keys, %v, %d loads", len(got), err, calls.Load())
	}
	for i, k := range keys {
		want := "set-" + k
		if i >= 30 {
			want = "loaded-" + k
		}
		if got[k] != want {
			t.Fatalf("FetchMany[%s] = %q, want %q", k, got[k], want)
		}
	}
	if err := b.SetMany(bg, map[string]string{keys[0]: "new0", keys[45]: "new45"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a sees b's SetMany", func() bool {
		got, err := a.GetMany(bg, []string{keys[0], keys[45]})
		return err == nil && got[keys[0]] == "new0" && got[keys[45]] == "new45"
	})
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(bg, d)
	t.Cleanup(cancel)
	return ctx
}
