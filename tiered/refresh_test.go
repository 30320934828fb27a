package tiered_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// Refresh ahead is about Redis TTLs running out in real time: the embedded
// server's TTLs follow the wall clock here (ClockTTL), as a real server's do,
// and the TTLs are short.

// realTTLs makes the embedded server's TTLs run down with the wall clock.
func realTTLs(s *redistest.Server) {
	if s.Mini != nil {
		s.Mini.ClockTTL(true)
	}
}

// refreshInstance is newInstance with an Observer (nil for none).
func refreshInstance(t *testing.T, s *redistest.Server, name string, opts tiered.Options[string], obs tiered.Observer) *instance[string] {
	t.Helper()
	return newInstanceWith(t, s, name, opts, instanceConfig{hub: tiered.HubOptions{Observer: obs}})
}

// refreshLeaseHeld reports whether key's refresh lease is held in Redis.
func refreshLeaseHeld(t testing.TB, s *redistest.Server, key string) bool {
	st := newStore(t, s.Client, s.Namespace)
	return s.Client.Exists(bg, st.RefreshKey(key)).Val() == 1
}

// versions is a loader of the values "v001", "v002", … that can be made to
// block (each call then signals entered and waits for release or its ctx),
// and that records how many of its calls ran at once.
type versions struct {
	calls     atomic.Int32
	running   atomic.Int32
	maxAtOnce atomic.Int32
	block     atomic.Bool
	entered   chan struct{} // one signal per blocked call
	release   chan struct{}
	delay     time.Duration
}

func newVersions() *versions {
	return &versions{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (l *versions) load(ctx context.Context) (string, error) {
	n := l.calls.Add(1)
	r := l.running.Add(1)
	defer l.running.Add(-1)
	for {
		m := l.maxAtOnce.Load()
		if r <= m || l.maxAtOnce.CompareAndSwap(m, r) {
			break
		}
	}
	if l.block.Load() {
		l.entered <- struct{}{}
		select {
		case <-l.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	time.Sleep(l.delay)
	return fmt.Sprintf("v%03d", n), nil
}

// A hot key with a loader is refreshed in the background as its TTL runs
// out: after the first Fetch, no call (Get, Fetch, GetMany, FetchMany) waits
// for a load or even reads Redis, not even while a refresh's loader is
// stuck; the values advance, about once per (1-RefreshAhead)×TTL, not once
// per hit.
func TestRefreshAheadKeepsAHotKeyWarm(t *testing.T) {
	for _, leases := range []bool{true, false} {
		t.Run(fmt.Sprintf("leases=%v", leases), func(t *testing.T) {
			s := redistest.New(t)
			realTTLs(s)
			// Each refresh (a lease, a read, the load, a write) must land
			// within its window, ttl/2, for no call to miss: long enough for
			// a loaded machine's late goroutines.
			const ttl = 2 * time.Second
			opts := tiered.Options[string]{TTL: ttl, RefreshAhead: 0.5}
			if !leases {
				opts.LeaseTTL = -1
			}
			a := refreshInstance(t, s, "a", opts, nil)
			l := newVersions()
			if v, err := a.Fetch(bg, "k", l.load); err != nil || v != "v001" {
				t.Fatalf("first Fetch = %q, %v", v, err)
			}
			stored := time.Now()

			// call makes one read of "k", by each API in turn, and fails
			// the test if it goes back in time or waits for a load: a call
			// that waited for the blocked loader would end only with its
			// ctx, slow after it began (a local hit takes microseconds; the
			// bound is for a loaded machine). A call that read Redis shows
			// in the stats.
			const slow = ttl / 4
			n, last := 0, "v001"
			call := func() string {
				t.Helper()
				start := time.Now()
				var v string
				ctx, cancel := context.WithTimeout(bg, slow)
				defer cancel()
				var err error
				switch n % 4 {
				case 0:
					v, err = a.Get(ctx, "k")
				case 1:
					v, err = a.Fetch(ctx, "k", l.load)
				case 2:
					var m map[string]string
					m, err = a.GetMany(ctx, []string{"k"})
					v = m["k"]
				case 3:
					var m map[string]string
					m, err = a.FetchMany(ctx, []string{"k"}, func(ctx context.Context, keys []string) (map[string]string, error) {
						v, err := l.load(ctx)
						return map[string]string{keys[0]: v}, err
					})
					v = m["k"]
				}
				n++
				if d := time.Since(start); d >= slow {
					t.Fatalf("call %d took %v", n, d)
				}
				if err != nil || v < last {
					t.Fatalf("call %d = %q, %v after %q", n, v, err, last)
				}
				last = v
				return v
			}

			// The window opens halfway through the TTL: the first hit in it
			// starts a refresh, whose loader blocks; calls go on.
			l.block.Store(true)
		window:
			for {
				call()
				select {
				case <-l.entered:
					break window
				default:
				}
				// Had the value expired first, a call would have read
				// Redis (the stats below) or failed: the test's own clock,
				// which a loaded machine may stop for a while, only bounds
				// the wait.
				if time.Since(stored) > 3*ttl {
					t.Fatalf("no refresh started in 3 TTLs: %+v", a.Stats())
				}
				time.Sleep(2 * time.Millisecond)
			}
			// A refresh started by the first hit, not the window's, would
			// begin at once; the margin is for the Hub's clock, which lags
			// real time on a loaded machine, and the test's own lateness.
			if since := time.Since(stored); since < ttl/4 {
				t.Fatalf("a refresh began %v after the value was stored, before its window", since)
			}
			for range 10 {
				if v := call(); v != "v001" {
					t.Fatalf("read %q while the refresh's loader is blocked", v)
				}
				time.Sleep(2 * time.Millisecond)
			}
			l.block.Store(false)
			close(l.release)

			// Free running, for three TTLs.
			began, calls0 := time.Now(), l.calls.Load()
			for time.Since(began) < 3*ttl {
				call()
				time.Sleep(time.Millisecond)
			}
			loads := l.calls.Load() - calls0
			maxLoads := int32(3*ttl/(ttl/2)) + 2
			if loads < 3 || loads > maxLoads {
				t.Fatalf("%d loads in 3 TTLs of %d calls; want 3 to %d", loads, n, maxLoads)
			}
			if last <= "v002" {
				t.Fatalf("the value did not advance: %q", last)
			}
			st := a.Stats()
			if st.Misses != 1 || st.RemoteHits != 0 || st.LocalHits != uint64(n) {
				t.Fatalf("stats %+v after %d calls: want every call a local hit", st, n)
			}
			if st.Refreshes != uint64(l.calls.Load()-1) || st.RefreshErrors != 0 {
				t.Fatalf("Refreshes = %d, RefreshErrors = %d after %d loader calls", st.Refreshes, st.RefreshErrors, l.calls.Load())
			}
		})
	}
}

// Four instances hitting one key in its window refresh it once per window
// between them: the refresh lease keeps the loader to one call at a time
// across the fleet.
func TestRefreshAheadOncePerWindowAcrossInstances(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	const ttl = time.Second
	insts := make([]*instance[string], 4)
	for i := range insts {
		insts[i] = refreshInstance(t, s, fmt.Sprint("i", i), tiered.Options[string]{TTL: ttl, RefreshAhead: 0.5}, nil)
	}
	l := newVersions()
	l.delay = 20 * time.Millisecond
	for _, in := range insts {
		if v, err := in.Fetch(bg, "k", l.load); err != nil || v != "v001" {
			t.Fatalf("%s: first Fetch = %q, %v", in.name, v, err)
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Go(func() {
			for time.Since(began) < 3*ttl {
				if _, err := in.Fetch(bg, "k", l.load); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	loads := l.calls.Load() - 1
	// A refresh about every ttl/2 + the load: one per window.
	if maxLoads := int32(3*ttl/(ttl/2)) + 1; loads < 2 || loads > maxLoads {
		t.Fatalf("%d refreshes in 3 TTLs across 4 instances; want 2 to %d", loads, maxLoads)
	}
	if m := l.maxAtOnce.Load(); m != 1 {
		t.Fatalf("%d loads ran at once across the instances, want 1", m)
	}
	var refreshes uint64
	for _, in := range insts {
		refreshes += in.Stats().Refreshes
	}
	if refreshes != uint64(loads) {
		t.Fatalf("Stats.Refreshes sum to %d for %d loads", refreshes, loads)
	}
}

// A value stored with windowTTL and windowAhead is in its refresh window
// after windowOpens and expires long after: a test that sleeps into the
// window still finds the value on a loaded machine, whose goroutines may
// wake hundreds of milliseconds late.
const (
	windowTTL   = 2 * time.Second
	windowAhead = 0.9
	windowOpens = windowTTL/10 + 20*time.Millisecond
)

// A Set made while a refresh's loader runs wins: the refresh writes only
// over the bytes it read, so it writes nothing, and no instance serves the
// refreshed value after the Set.
func TestRefreshNeverOverwritesANewerSet(t *testing.T) {
	for _, by := range []string{"same instance", "other instance"} {
		t.Run(by, func(t *testing.T) {
			s := redistest.New(t)
			realTTLs(s)
			opts := tiered.Options[string]{TTL: windowTTL, RefreshAhead: windowAhead}
			a := refreshInstance(t, s, "a", opts, nil)
			b := refreshInstance(t, s, "b", opts, nil)
			setter := a
			if by == "other instance" {
				setter = b
			}
			l := newVersions()
			if v, err := a.Fetch(bg, "k", l.load); err != nil || v != "v001" {
				t.Fatalf("first Fetch = %q, %v", v, err)
			}
			time.Sleep(windowOpens)
			l.block.Store(true)
			if v, err := a.Get(bg, "k"); err != nil || v != "v001" {
				t.Fatalf("Get in the window = %q, %v", v, err)
			}
			waitChan(t, l.entered, "the refresh's loader")
			if err := setter.Set(bg, "k", "set"); err != nil {
				t.Fatal(err)
			}
			if setter == b {
				applied(t, 1, a)
			}
			close(l.release)
			waitFor(t, 5*time.Second, "the refresh ends", func() bool { return !refreshLeaseHeld(t, s, "k") })
			if got := s.Client.Get(bg, s.Namespace+":k").Val(); got != "set" {
				t.Fatalf("Redis holds %q after the refresh, want the Set's value", got)
			}
			for _, in := range []*instance[string]{a, b} {
				if v, err := in.Get(bg, "k"); err != nil || v != "set" {
					t.Fatalf("%s: Get = %q, %v after the Set; want set", in.name, v, err)
				}
			}
			if st := a.Stats(); st.Refreshes != 1 || st.RefreshErrors != 0 {
				t.Fatalf("Refreshes = %d, RefreshErrors = %d; want 1, 0", st.Refreshes, st.RefreshErrors)
			}
		})
	}
}

// A Fetch that finds the key in Redis already inside its window answers at
// once with what Redis holds and starts a refresh.
func TestFetchOfAKeyInItsWindowRefreshes(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	opts := tiered.Options[string]{TTL: windowTTL, RefreshAhead: windowAhead}
	a := refreshInstance(t, s, "a", opts, nil)
	b := refreshInstance(t, s, "b", opts, nil)
	set := time.Now()
	if err := b.Set(bg, "k", "old"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(windowOpens)
	l := newVersions()
	if v, err := a.Fetch(bg, "k", l.load); err != nil || v != "old" {
		t.Fatalf("Fetch = %q, %v; want what Redis holds", v, err)
	}
	waitFor(t, 5*time.Second, "the refreshed value in Redis", func() bool {
		return s.Client.Get(bg, s.Namespace+":k").Val() == "v001"
	})
	waitFor(t, 5*time.Second, "the refresh ends", func() bool { return !refreshLeaseHeld(t, s, "k") })
	applied(t, 1, b)
	for _, in := range []*instance[string]{a, b} {
		if v, err := in.Get(bg, "k"); err != nil || v != "v001" {
			t.Fatalf("%s: Get = %q, %v; want the refreshed value", in.name, v, err)
		}
	}
	// The refresh wrote at least windowOpens after the Set, with a whole
	// TTL: its key outlives the Set's by that much, however late this
	// check runs.
	pttl := s.Client.PTTL(bg, s.Namespace+":k").Val()
	if life := pttl + time.Since(set); life < windowTTL+windowOpens/2 {
		t.Fatalf("the refreshed value's TTL = %v, %v after the Set; want it written anew with %v", pttl, time.Since(set), windowTTL)
	}
}

// The TTL of which RefreshAhead is a fraction is the one written: a loader's
// SetTTL is honoured, and a value with no expiry is never refreshed.
func TestRefreshAheadFollowsTheTTLWritten(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	a := refreshInstance(t, s, "a", tiered.Options[string]{RefreshAhead: 0.5}, nil) // TTL 0: no expiry
	l := newVersions()
	const written = time.Second
	short := func(ctx context.Context) (string, error) {
		if err := tiered.SetTTL(ctx, written); err != nil {
			return "", err
		}
		return l.load(ctx)
	}
	var forever atomic.Int32
	never := func(context.Context) (string, error) { forever.Add(1); return "forever", nil }
	began := time.Now()
	for time.Since(began) < 3*written {
		if _, err := a.Fetch(bg, "short", short); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Fetch(bg, "forever", never); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Judged by effect, not by the clock: a refresh that lands late on a
	// loaded machine lets the key expire and the next call miss, but only a
	// refresh ahead that knew the TTL written starts at all (Options.TTL is
	// 0: no expiry, no window).
	st := a.Stats()
	if st.Refreshes < 2 {
		t.Fatalf("stats %+v: %d refreshes of a key written for %v over %v; want it refreshed", st, st.Refreshes, written, 3*written)
	}
	if n := forever.Load(); n != 1 {
		t.Fatalf("%d loads of a key with no expiry, want 1", n)
	}
}

// panicEvents records the refresh loads an Observer sees.
type panicEvents struct {
	mu     sync.Mutex
	events []tiered.Event
}

func (p *panicEvents) Observe(e tiered.Event) {
	if e.Kind == tiered.EventLoad && e.Op == "RefreshAhead" {
		p.mu.Lock()
		p.events = append(p.events, e)
		p.mu.Unlock()
	}
}

func (p *panicEvents) all() []tiered.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tiered.Event(nil), p.events...)
}

// A loader that panics in a refresh (there is no caller to hand the panic
// to) is contained: the process lives, the failure is counted and observed,
// the lease is released, and the value stays served.
func TestRefreshLoaderPanicIsContained(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	obs := &panicEvents{}
	a := refreshInstance(t, s, "a", tiered.Options[string]{TTL: windowTTL, RefreshAhead: windowAhead}, obs)
	var calls atomic.Int32
	load := func(context.Context) (string, error) {
		if calls.Add(1) > 1 {
			panic("boom")
		}
		return "v1", nil
	}
	if v, err := a.Fetch(bg, "k", load); err != nil || v != "v1" {
		t.Fatalf("first Fetch = %q, %v", v, err)
	}
	time.Sleep(windowOpens)
	if v, err := a.Get(bg, "k"); err != nil || v != "v1" {
		t.Fatalf("Get in the window = %q, %v", v, err)
	}
	waitFor(t, 5*time.Second, "the failed refresh counted", func() bool { return a.Stats().RefreshErrors == 1 })
	for range 5 {
		if v, err := a.Fetch(bg, "k", load); err != nil || v != "v1" {
			t.Fatalf("Fetch after the panic = %q, %v; want the value still served", v, err)
		}
	}
	if st := a.Stats(); st.Refreshes != 1 || st.LoadErrors != 1 || st.Loads != 2 {
		t.Fatalf("stats %+v: want 1 refresh, 2 loads, 1 load error", st)
	}
	waitFor(t, 5*time.Second, "the lease released", func() bool { return !refreshLeaseHeld(t, s, "k") })
	ev := obs.all()
	if len(ev) != 1 || ev[0].Err == nil || !strings.Contains(ev[0].Err.Error(), "boom") || ev[0].Keys != 1 {
		t.Fatalf("refresh load events = %+v; want one, with the panic", ev)
	}
}

// Close cancels a running refresh and waits for it.
func TestCloseCancelsARunningRefresh(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	a := refreshInstance(t, s, "a", tiered.Options[string]{TTL: windowTTL, RefreshAhead: windowAhead}, nil)
	l := newVersions()
	if _, err := a.Fetch(bg, "k", l.load); err != nil {
		t.Fatal(err)
	}
	time.Sleep(windowOpens)
	l.block.Store(true)
	if _, err := a.Get(bg, "k"); err != nil {
		t.Fatal(err)
	}
	waitChan(t, l.entered, "the refresh's loader")
	closed := async(func() (struct{}, error) { return struct{}{}, a.Close() })
	select {
	case r := <-closed:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(2 * time.Second): // LoadTimeout is 10s
		t.Fatal("Close did not cancel the running refresh")
	}
	if n := l.running.Load(); n != 0 {
		t.Fatalf("%d loads still run after Close", n)
	}
}

// With RefreshAhead 0 (the default) nothing is refreshed: a key is loaded
// again only once it has expired.
func TestRefreshAheadOff(t *testing.T) {
	s := redistest.New(t)
	realTTLs(s)
	// Calls for half the TTL: the other half is the margin for a loaded
	// machine's late goroutines, before the value expires.
	const ttl = time.Second
	a := refreshInstance(t, s, "a", tiered.Options[string]{TTL: ttl}, nil)
	l := newVersions()
	began := time.Now()
	for time.Since(began) < ttl/2 {
		if v, err := a.Fetch(bg, "k", l.load); err != nil || v != "v001" {
			t.Fatalf("Fetch = %q, %v", v, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d loads before the value expired, want 1", n)
	}
	if st := a.Stats(); st.Refreshes != 0 {
		t.Fatalf("Refreshes = %d with RefreshAhead 0", st.Refreshes)
	}
}

func TestRefreshAheadValidation(t *testing.T) {
	s := redistest.New(t)
	for _, f := range []float64{-0.1, 1, 1.5, math.NaN(), math.Inf(1)} {
		c, err := tiered.New(s.Client, tiered.Options[string]{RefreshAhead: f})
		if err == nil {
			c.Close()
			t.Errorf("New with RefreshAhead %v succeeded", f)
			continue
		}
		if !strings.Contains(err.Error(), "tiered: RefreshAhead must be in [0, 1), got") {
			t.Errorf("New with RefreshAhead %v: error %q", f, err)
		}
	}
	for _, f := range []float64{0, 0.25, 0.999} {
		c, err := tiered.New(s.Client, tiered.Options[string]{RefreshAhead: f})
		if err != nil {
			t.Errorf("New with RefreshAhead %v: %v", f, err)
			continue
		}
		c.Close()
	}
}
