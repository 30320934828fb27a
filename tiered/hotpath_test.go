package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// between is a go-redis hook that, once armed, slips commands into the
// next pipeline right after its first command: between a Get's GET and its
// PTTL.
type between struct{ cmds atomic.Pointer[[][]any] }

func (h *between) arm(cmds ...[]any) { h.cmds.Store(&cmds) }

func (h *between) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *between) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *between) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		armed := h.cmds.Swap(nil)
		if armed == nil {
			return next(ctx, cmds)
		}
		all := slices.Clone(cmds[:1])
		for _, args := range *armed {
			all = append(all, redis.NewCmd(ctx, args...))
		}
		return next(ctx, append(all, cmds[1:]...))
	}
}

// A key deleted between a Get's GET and its PTTL is not found, and the
// value the GET saw is not kept: a later Get reads Redis.
func TestGetKeyGoneBeforeItsTTL(t *testing.T) {
	s := redistest.New(t)
	b := newInstance(t, s, "b", tiered.Options[string]{})
	h := &between{}
	b.client.AddHook(h)
	rk := s.Namespace + ":k"
	if err := s.Client.Set(bg, rk, "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	h.arm([]any{"del", rk})
	if v, err := b.Get(bg, "k"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get of a key deleted before its PTTL = %q, %v; want ErrNotFound", v, err)
	}
	// Written by another program (no invalidation): only a Redis read sees it.
	if err := s.Client.Set(bg, rk, "other", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(bg, "k"); err != nil || v != "other" {
		t.Fatalf("then Get = %q, %v; want other, from Redis", v, err)
	}
}

// A write (with its invalidation) landing between a Get's GET and its PTTL
// gives that Get the old value, read before the write, and the local tier
// holds the new one once the invalidation has arrived, never the old.
func TestGetWriteBeforeItsTTL(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	h := &between{}
	b.client.AddHook(h)
	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	msg := invalidate.Message{Origin: invalidate.NewOrigin(), Keys: []string{"k"}}.Append(nil)
	h.arm(
		[]any{"set", s.Namespace + ":k", "v2", "px", 60_000},
		[]any{"publish", invalidate.Channel(s.Namespace), msg},
	)
	if v, err := b.Get(bg, "k"); err != nil || v != "v1" {
		t.Fatalf("Get with a write between GET and PTTL = %q, %v; want v1, read before it", v, err)
	}
	applied(t, 2, b)
	for range 3 {
		if v, err := b.Get(bg, "k"); err != nil || v != "v2" {
			t.Fatalf("after the invalidation, Get = %q, %v; want v2", v, err)
		}
	}
}

// GetMany looks each distinct key up once, whether the local tier holds a
// value, an absence or nothing, and reads each missing one once: the stats
// and the events count distinct keys.
func TestGetManyDuplicatesAreLookedUpOnce(t *testing.T) {
	s := redistest.New(t)
	rec := &recorder{}
	b := newInstanceWith(t, s, "b", tiered.Options[string]{NotFoundTTL: time.Minute},
		instanceConfig{hub: tiered.HubOptions{Observer: rec}})
	for _, k := range []string{"h1", "h2"} {
		if err := b.Set(bg, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Fetch(bg, "abs", func(context.Context) (string, error) { return "", tiered.ErrNotFound }); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.Client.Set(bg, s.Namespace+":m1", "v-m1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	trips := &redistest.RoundTrips{}
	b.client.AddHook(trips)
	before := b.Stats()
	rec.mu.Lock()
	rec.events = nil
	rec.mu.Unlock()

	got, err := b.GetMany(bg, []string{"h1", "m1", "h1", "abs", "none", "m1", "abs", "h2", "none", "h2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"h1": "v-h1", "h2": "v-h2", "m1": "v-m1"}
	if len(got) != len(want) || got["h1"] != want["h1"] || got["h2"] != want["h2"] || got["m1"] != want["m1"] {
		t.Fatalf("GetMany = %v, want %v", got, want)
	}
	st := b.Stats()
	if d := st.LocalHits - before.LocalHits; d != 3 { // h1, h2 and the absence of abs
		t.Errorf("%d local hits, want 3", d)
	}
	if d := st.RemoteHits - before.RemoteHits; d != 1 {
		t.Errorf("%d remote hits, want 1 (m1)", d)
	}
	if d := st.Misses - before.Misses; d != 1 {
		t.Errorf("%d misses, want 1 (none)", d)
	}
	if n := trips.Count(); n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
	if e := rec.of(tiered.EventBatch); len(e) != 1 || e[0].Keys != 5 {
		t.Errorf("batch events %+v, want one of 5 distinct keys", e)
	}
	if hits, misses := rec.keys(tiered.EventLocalHit, "GetMany"), rec.keys(tiered.EventLocalMiss, "GetMany"); hits != 3 || misses != 2 {
		t.Errorf("local hit and miss events count %d and %d keys, want 3 and 2", hits, misses)
	}
}

// Shared reads whose flights are reused (no one joined them) and shared
// reads that others joined, on keys written all the while: every Get gets
// a value of its own key, one that was written.
func TestSharedReadsUnderWrites(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{LocalSize: 2}) // most Gets read Redis
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	for _, k := range keys {
		if err := a.Set(bg, k, k+"/0"); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var writer, readers sync.WaitGroup
	writer.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := keys[i%len(keys)]
			if err := a.Set(bg, k, fmt.Sprintf("%s/%d", k, i)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for g := range 8 {
		readers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				k := keys[r.IntN(len(keys))]
				if v, err := b.Get(bg, k); err != nil || !strings.HasPrefix(v, k+"/") {
					t.Errorf("Get(%s) = %q, %v", k, v, err)
					return
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	writer.Wait()
	if st := b.Stats(); st.RemoteHits < 300 {
		t.Fatalf("%d of 2400 Gets read Redis: the test shares few reads", st.RemoteHits)
	}
}
