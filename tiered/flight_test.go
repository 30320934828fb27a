package tiered_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// Guarantee 7: concurrent Fetches of one missing key in one instance make one
// Redis read and one load; the others wait for it.
func TestFetchStampede(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (string, error) {
		loads.Add(1)
		<-release
		return "loaded", nil
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := a.Fetch(bg, "cold", load)
			if err == nil && v != "loaded" {
				err = errors.New("wrong value " + v)
			}
			errs <- err
		}()
	}
	waitFor(t, 10*time.Second, "the load to start", func() bool { return loads.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // let the others pile up on the flight
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := a.Stats()
	if loads.Load() != 1 || st.Loads != 1 {
		t.Fatalf("%d loads (stats %d), want 1", loads.Load(), st.Loads)
	}
	if reads := st.RemoteHits + st.Misses; reads != 1 {
		t.Fatalf("%d Redis reads, want 1 (stats %+v)", reads, st)
	}
	if got := s.Client.Get(bg, s.Namespace+":cold").Val(); got != "loaded" {
		t.Fatalf("the loaded value was not stored in Redis: %q", got)
	}
}

func TestGetStampede(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "hot", "v"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)             // a late message of that Set would (rightly) overtake b's read
	g := newGate(t, false, true) // hold the first read until everyone waits on it
	first := async(func() (string, error) { return b.Get(g.ctx(bg), "hot") })
	g.waitAfter(t)
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := b.Get(bg, "hot"); err != nil || v != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	g.releaseAfter()
	wg.Wait()
	if _, err := await(t, first); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.RemoteHits != 1 {
		t.Fatalf("%d Redis reads for 31 concurrent Gets, want 1 (stats %+v)", st.RemoteHits, st)
	}
}

// A waiter gives up when its own ctx ends; the shared load goes on for the
// others, detached from that caller's cancellation.
func TestWaiterCancellationDoesNotCancelTheLoad(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	release := make(chan struct{})
	var loadErr atomic.Value
	load := func(ctx context.Context) (string, error) {
		<-release
		if err := ctx.Err(); err != nil {
			loadErr.Store(err)
		}
		return "done", nil
	}
	ctx, cancel := context.WithCancel(bg)
	starter := async(func() (string, error) { return a.Fetch(ctx, "k", load) })
	other := async(func() (string, error) { return a.Fetch(bg, "k", load) })
	time.Sleep(20 * time.Millisecond)
	cancel()
	if _, err := await(t, starter); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v, want context.Canceled", err)
	}
	close(release)
	if v, err := await(t, other); err != nil || v != "done" {
		t.Fatalf("the other caller got %q, %v; want done", v, err)
	}
	if err := loadErr.Load(); err != nil {
		t.Fatalf("the shared load saw its context end: %v", err)
	}
}

// The first reader runs the shared Redis read with its own ctx; when it gives
// up, the readers waiting on it read again instead of failing with it.
func TestLeaderCancellationDoesNotFailWaiters(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "k", "v"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	g := newGate(t, true, false)
	ctx, cancel := context.WithCancel(bg)
	leader := async(func() (string, error) { return b.Get(g.ctx(ctx), "k") })
	g.waitBefore(t) // the leader's read is held before it is sent
	waiter := async(func() (string, error) { return b.Get(bg, "k") })
	time.Sleep(20 * time.Millisecond) // the waiter joins the leader's read
	cancel()
	if _, err := await(t, leader); !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v, want context.Canceled", err)
	}
	if v, err := await(t, waiter); err != nil || v != "v" {
		t.Fatalf("waiter = %q, %v; want v", v, err)
	}
	if st := b.Stats(); st.RemoteHits != 1 {
		t.Fatalf("RemoteHits = %d, want 1 (the waiter's own read)", st.RemoteHits)
	}
}

func TestLoadTimeoutBoundsTheSharedLoad(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{LoadTimeout: 50 * time.Millisecond})
	_, err := a.Fetch(bg, "k", func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch err = %v, want the load's deadline", err)
	}
}

func TestLoadErrorsAreReturnedNotCached(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	boom := errors.New("database down")
	calls := 0
	_, err := a.Fetch(bg, "k", func(context.Context) (string, error) { calls++; return "", boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Fetch err = %v, want the load's error", err)
	}
	v, err := a.Fetch(bg, "k", func(context.Context) (string, error) { calls++; return "ok", nil })
	if err != nil || v != "ok" || calls != 2 {
		t.Fatalf("second Fetch = %q, %v after %d loads; the error must not be cached", v, err, calls)
	}
	// A load that says "absent" makes Fetch report ErrNotFound and store nothing.
	_, err = a.Fetch(bg, "absent", func(context.Context) (string, error) { return "", tiered.ErrNotFound })
	if !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Fetch with an absent load: err = %v, want ErrNotFound", err)
	}
	if v, err := s.Client.Get(bg, s.Namespace+":absent").Bytes(); err == nil {
		if _, _, done := remote.ParseDoneMarker(v); !done { // only the lease's outcome, for its waiters
			t.Fatalf("an absent load stored %q", v)
		}
	}
	if st := a.Stats(); st.LoadErrors != 1 || st.Loads != 3 {
		t.Fatalf("stats %+v: want 3 loads, 1 load error", st)
	}
}

// A Fetch that joins a Get's read-only flight still loads on a miss.
func TestFetchJoiningAGetStillLoads(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	g := newGate(t, false, true)
	get := async(func() (string, error) { return a.Get(g.ctx(bg), "k") })
	g.waitAfter(t) // the Get's flight has found nothing
	fetch := async(func() (string, error) {
		return a.Fetch(bg, "k", func(context.Context) (string, error) { return "loaded", nil })
	})
	time.Sleep(20 * time.Millisecond)
	g.releaseAfter()
	if _, err := await(t, get); !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get err = %v, want ErrNotFound", err)
	}
	if v, err := await(t, fetch); err != nil || v != "loaded" {
		t.Fatalf("Fetch = %q, %v; want loaded", v, err)
	}
}
