package tiered_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// With NotFoundTTL, an absence a loader reported is remembered in both tiers
// and by every instance: no instance loads it again until a Set replaces it
// or the TTL passes.
func TestNotFoundTTL(t *testing.T) {
	s := redistest.New(t)
	// A second: the calls below, on a loaded machine, all fall within it.
	const notFound = time.Second
	opts := tiered.Options[string]{NotFoundTTL: notFound}
	a := newInstance(t, s, "a", opts)
	b := newInstance(t, s, "b", tiered.Options[string]{}) // honours the marker without the option
	var loads atomic.Int32
	missing := func(context.Context) (string, error) { loads.Add(1); return "", tiered.ErrNotFound }

	for i := range 3 {
		if _, err := a.Fetch(bg, "ghost", missing); !errors.Is(err, tiered.ErrNotFound) {
			t.Fatalf("Fetch %d = %v, want ErrNotFound", i, err)
		}
	}
	if _, err := b.Fetch(bg, "ghost", missing); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("b.Fetch = %v, want ErrNotFound", err)
	}
	if _, err := b.Get(bg, "ghost"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("b.Get = %v, want ErrNotFound", err)
	}
	if got, err := b.GetMany(bg, []string{"ghost"}); err != nil || len(got) != 0 {
		t.Fatalf("b.GetMany = %v, %v; want nothing", got, err)
	}
	if got, err := b.FetchMany(bg, []string{"ghost"}, func(context.Context, []string) (map[string]string, error) {
		loads.Add(1)
		return nil, nil
	}); err != nil || len(got) != 0 {
		t.Fatalf("b.FetchMany = %v, %v; want nothing", got, err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads of a remembered absence, want 1", n)
	}
	if ttl := s.Client.PTTL(bg, s.Namespace+":ghost").Val(); ttl <= 0 || ttl > notFound {
		t.Fatalf("the absence marker's TTL = %v, want <= %v", ttl, notFound)
	}
	if st := a.Stats(); st.LocalHits == 0 {
		t.Fatalf("a answered the absence from Redis every time: %+v", st)
	}

	// A Set replaces the absence everywhere.
	if err := b.Set(bg, "ghost", "here"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, a)
	if v, err := a.Fetch(bg, "ghost", missing); err != nil || v != "here" {
		t.Fatalf("Fetch after Set = %q, %v", v, err)
	}

	// After the TTL, the loader is asked again.
	if err := a.Delete(bg, "ghost"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Fetch(bg, "ghost2", missing); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatal(err)
	}
	time.Sleep(notFound + 50*time.Millisecond)
	if !s.Real() {
		s.Mini.FastForward(notFound + 50*time.Millisecond)
	}
	before := loads.Load()
	if _, err := a.Fetch(bg, "ghost2", missing); !errors.Is(err, tiered.ErrNotFound) || loads.Load() != before+1 {
		t.Fatalf("Fetch after NotFoundTTL: %v, %d new loads; want ErrNotFound and 1", err, loads.Load()-before)
	}
}

// Without NotFoundTTL, absence is not remembered (the default).
func TestAbsenceNotRememberedByDefault(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	var loads atomic.Int32
	for range 3 {
		if _, err := a.Fetch(bg, "ghost", func(context.Context) (string, error) {
			loads.Add(1)
			return "", tiered.ErrNotFound
		}); !errors.Is(err, tiered.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if loads.Load() != 3 {
		t.Fatalf("%d loads, want 3", loads.Load())
	}
	if v, err := s.Client.Get(bg, s.Namespace+":ghost").Bytes(); err == nil {
		if _, failed, done := remote.ParseDoneMarker(v); !done || failed {
			t.Fatalf("Redis holds %q for a missing key, want nothing or the lease's outcome", v)
		}
	}
}

// A loader chooses the TTL of what it returns with SetTTL: load-wide, per
// key in a batch, and for an absence.
func TestLoaderChoosesTTL(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: time.Hour})
	pttl := func(k string) time.Duration { return s.Client.PTTL(bg, s.Namespace+":"+k).Val() }

	if _, err := a.Fetch(bg, "short", func(ctx context.Context) (string, error) {
		return "v", tiered.SetTTL(ctx, 5*time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	if d := pttl("short"); d <= 4*time.Second || d > 5*time.Second {
		t.Fatalf("PTTL of a value the loader gave 5s = %v", d)
	}
	if _, err := a.FetchMany(bg, []string{"m1", "m2", "absent"}, func(ctx context.Context, _ []string) (map[string]string, error) {
		if err := tiered.SetTTL(ctx, 10*time.Second); err != nil {
			return nil, err
		}
		if err := tiered.SetTTL(ctx, 20*time.Second, "m2", "absent"); err != nil {
			return nil, err
		}
		return map[string]string{"m1": "1", "m2": "2"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := pttl("m1"); d <= 9*time.Second || d > 10*time.Second {
		t.Fatalf("PTTL m1 = %v, want the load-wide 10s", d)
	}
	if d := pttl("m2"); d <= 19*time.Second || d > 20*time.Second {
		t.Fatalf("PTTL m2 = %v, want its own 20s", d)
	}
	if d := pttl("absent"); d <= 19*time.Second || d > 20*time.Second {
		t.Fatalf("PTTL of the absence = %v, want 20s (the loader asked, though NotFoundTTL is 0)", d)
	}
	if v := s.Client.Get(bg, s.Namespace+":absent").Val(); v != string(remote.AbsentMarker()) {
		t.Fatalf("Redis holds %q for the absent key, want the absence marker", v)
	}
	if err := tiered.SetTTL(bg, time.Second); err == nil {
		t.Fatal("SetTTL outside a loader succeeded")
	}
	if _, err := a.Fetch(bg, "bad", func(ctx context.Context) (string, error) {
		if err := tiered.SetTTL(ctx, -time.Second); err == nil {
			t.Error("SetTTL(-1s) succeeded")
		}
		return "v", nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TTLJitter spreads the TTLs of keys written together, within ± the
// fraction, and the local tier follows the TTL written.
func TestTTLJitter(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: 100 * time.Second, TTLJitter: 0.2})
	keys := keysN("j", 200)
	items := make(map[string]string)
	for _, k := range keys {
		items[k] = "v"
	}
	if err := a.SetMany(bg, items); err != nil {
		t.Fatal(err)
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, k := range keys {
		d := s.Client.PTTL(bg, s.Namespace+":"+k).Val()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 79*time.Second || hi > 120*time.Second {
		t.Fatalf("jittered TTLs span [%v, %v], want within [80s, 120s]", lo, hi)
	}
	if hi-lo < 20*time.Second {
		t.Fatalf("jittered TTLs span only [%v, %v]: not spread", lo, hi)
	}
	if err := a.Set(bg, "one", "v"); err != nil {
		t.Fatal(err)
	}
	if d := s.Client.PTTL(bg, s.Namespace+":one").Val(); d < 79*time.Second || d > 120*time.Second {
		t.Fatalf("Set's jittered TTL = %v", d)
	}

	// The local tier lives by the jittered TTL, never past it.
	b := newInstance(t, s, "b", tiered.Options[string]{TTL: 200 * time.Millisecond, TTLJitter: 0.5})
	if err := b.Set(bg, "short", "v"); err != nil {
		t.Fatal(err)
	}
	ttl := s.Client.PTTL(bg, s.Namespace+":short").Val()
	time.Sleep(ttl + 20*time.Millisecond)
	if !s.Real() {
		s.Mini.FastForward(time.Second)
	}
	if _, err := b.Get(bg, "short"); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get after the jittered TTL (%v) = %v, want ErrNotFound", ttl, err)
	}
}

// A value whose encoding begins with tiercache's marker prefix would read
// back as a marker: Set refuses it.
func TestSetRefusesMarkerBytes(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "k", remote.MarkerPrefix+"absent"); err == nil {
		t.Fatal("Set of marker bytes succeeded")
	}
	if err := a.SetMany(bg, map[string]string{"k": remote.MarkerPrefix + "x"}); err == nil {
		t.Fatal("SetMany of marker bytes succeeded")
	}
	if n := s.Client.Exists(bg, s.Namespace+":k").Val(); n != 0 {
		t.Fatal("the refused value reached Redis")
	}
}
