package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

// 200 Fetches of one cold key spread over 4 instances call the loader once
// in total, and every caller gets the same value.
func TestOneLoadAcrossInstances(t *testing.T) {
	s := redistest.New(t)
	insts := newInstances(t, s, 4, tiered.Options[string]{})
	var loads atomic.Int32
	load := func(context.Context) (string, error) {
		n := loads.Add(1)
		time.Sleep(100 * time.Millisecond)
		return fmt.Sprint("value-", n), nil
	}
	var wg sync.WaitGroup
	results := make([]string, 200)
	errs := make([]error, 200)
	start := make(chan struct{})
	for i := range 200 {
		wg.Go(func() {
			<-start
			results[i], errs[i] = insts[i%4].Fetch(bg, "cold", load)
		})
	}
	close(start)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loader calls across 4 instances, want 1", n)
	}
	for i := range results {
		if errs[i] != nil || results[i] != "value-1" {
			t.Fatalf("caller %d got %q, %v; want value-1", i, results[i], errs[i])
		}
	}
	waits := uint64(0)
	for _, in := range insts {
		waits += in.Stats().LeaseWaits
	}
	if waits == 0 {
		t.Fatal("no instance waited on a lease")
	}
}

// The instances waiting on a lease are woken by the invalidation message of
// the write that stores the value, not by polling Redis: while a load of
// 300ms runs elsewhere, a waiter makes a bounded number of round trips.
func TestLeaseWaitersAreWokenNotPolling(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	trips := &redistest.RoundTrips{}
	b.client.AddHook(trips)
	inLoad := make(chan struct{})
	held := async(func() (string, error) {
		return a.Fetch(bg, "k", func(context.Context) (string, error) {
			close(inLoad)
			time.Sleep(300 * time.Millisecond)
			return "a-loaded", nil
		})
	})
	waitChan(t, inLoad, "a's loader starts")
	began := time.Now()
	v, err := b.Fetch(bg, "k", func(context.Context) (string, error) { return "b-loaded", nil })
	if err != nil || v != "a-loaded" {
		t.Fatalf("b.Fetch = %q, %v; want a's value", v, err)
	}
	if _, err := await(t, held); err != nil {
		t.Fatal(err)
	}
	// A read, a failed acquire and the read after the wake-up; a spare one
	// for a spurious wake.
	if n := trips.Count(); n > 4 {
		t.Fatalf("the waiter made %d round trips in %v: it polled", n, time.Since(began))
	}
	if st := b.Stats(); st.LeaseWaits == 0 || st.Loads != 0 {
		t.Fatalf("b's stats: %+v; want a lease wait and no load", st)
	}
}

// A lease holder that dies mid-load: its lease expires after LeaseTTL, and
// a waiter takes over.
func TestLeaseHolderDiesAWaiterTakesOver(t *testing.T) {
	s := redistest.New(t)
	const leaseTTL = 200 * time.Millisecond
	b := newInstance(t, s, "b", tiered.Options[string]{LeaseTTL: leaseTTL})
	// The dead holder: it took the lease and will never write.
	dead := newStore(t, s.Client, s.Namespace)
	claims, err := dead.Acquire(bg, []string{"k"}, remote.NewLeaseToken(), leaseTTL)
	if err != nil || !claims[0].Acquired {
		t.Fatalf("Acquire = %+v, %v", claims, err)
	}
	if !s.Real() { // miniredis's clock moves only when told
		time.AfterFunc(leaseTTL, func() { s.Mini.FastForward(leaseTTL) })
	}
	began := time.Now()
	var loads atomic.Int32
	v, err := b.Fetch(bg, "k", func(context.Context) (string, error) { loads.Add(1); return "b-loaded", nil })
	took := time.Since(began)
	if err != nil || v != "b-loaded" || loads.Load() != 1 {
		t.Fatalf("Fetch = %q, %v after %d loads", v, err, loads.Load())
	}
	if took < leaseTTL-20*time.Millisecond {
		t.Fatalf("the waiter loaded after %v, before the dead holder's lease (%v) expired", took, leaseTTL)
	}
	if got := s.Client.Get(bg, s.Namespace+":k").Val(); got != "b-loaded" {
		t.Fatalf("Redis holds %q, want b-loaded", got)
	}
}

// A holder whose lease expired never overwrites a value written after it:
// neither a Set nor the value of the instance that took over.
func TestExpiredHolderNeverOverwritesANewerWrite(t *testing.T) {
	s := redistest.New(t)
	const leaseTTL = 100 * time.Millisecond
	a := newInstance(t, s, "a", tiered.Options[string]{LeaseTTL: leaseTTL})
	b := newInstance(t, s, "b", tiered.Options[string]{LeaseTTL: leaseTTL})
	for _, newer := range []string{"set", "takeover"} {
		t.Run(newer, func(t *testing.T) {
			key := "k-" + newer
			inLoad, release := make(chan struct{}), make(chan struct{})
			slow := async(func() (string, error) {
				return a.Fetch(bg, key, func(context.Context) (string, error) {
					close(inLoad)
					<-release
					return "stale", nil
				})
			})
			waitChan(t, inLoad, "a's loader starts")
			time.Sleep(leaseTTL + 20*time.Millisecond)
			if !s.Real() {
				s.Mini.FastForward(leaseTTL + 20*time.Millisecond)
			}
			want := "newer"
			if newer == "set" {
				if err := b.Set(bg, key, want); err != nil {
					t.Fatal(err)
				}
			} else {
				v, err := b.Fetch(bg, key, func(context.Context) (string, error) { return want, nil })
				if err != nil || v != want {
					t.Fatalf("b's takeover Fetch = %q, %v", v, err)
				}
			}
			close(release)
			if v, err := await(t, slow); err != nil || v != "stale" {
				t.Fatalf("a's Fetch = %q, %v; its callers get what it loaded", v, err)
			}
			if got := s.Client.Get(bg, s.Namespace+":"+key).Val(); got != want {
				t.Fatalf("Redis holds %q after the expired holder's store, want %q", got, want)
			}
			waitFor(t, 10*time.Second, "a reads the newer value", func() bool {
				v, err := a.Get(bg, key)
				return err == nil && v == want
			})
		})
	}
}

// The instances waiting on a lease share its load's outcome when it stored
// no value, as the callers in one process share a flight: a failed load
// fails them at once (not one more load per instance, one after another),
// and the next Fetch loads again.
func TestWaitersShareAFailedLoad(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{LeaseTTL: time.Hour})
	b := newInstance(t, s, "b", tiered.Options[string]{LeaseTTL: time.Hour})
	inLoad, release := make(chan struct{}), make(chan struct{})
	failing := async(func() (string, error) {
		return a.Fetch(bg, "k", func(context.Context) (string, error) {
			close(inLoad)
			<-release
			return "", errors.New("database down")
		})
	})
	waitChan(t, inLoad, "a's loader starts")
	var bLoads atomic.Int32
	waiter := async(func() (string, error) {
		return b.Fetch(bg, "k", func(context.Context) (string, error) { bLoads.Add(1); return "b-loaded", nil })
	})
	waitFor(t, 10*time.Second, "b waits on a's lease", func() bool { return b.Stats().LeaseWaits > 0 })
	close(release)
	if _, err := await(t, failing); err == nil {
		t.Fatal("a's failed load returned no error")
	}
	if v, err := await(t, waiter); err == nil || bLoads.Load() != 0 {
		t.Fatalf("b.Fetch = %q, %v after %d loads of its own; want a's failure shared", v, err, bLoads.Load())
	}
	if v, err := b.Fetch(bg, "k", func(context.Context) (string, error) { bLoads.Add(1); return "b-loaded", nil }); err != nil || v != "b-loaded" {
		t.Fatalf("the next Fetch = %q, %v; want a load of its own", v, err)
	}
}

// A stampede on a key the source does not have, with absence not
// remembered (the default): one load across the fleet, every caller gets
// ErrNotFound, and the next Fetch asks the loader again.
func TestWaitersShareAnAbsence(t *testing.T) {
	s := redistest.New(t)
	insts := newInstances(t, s, 4, tiered.Options[string]{})
	var loads atomic.Int32
	load := func(context.Context) (string, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond)
		return "", tiered.ErrNotFound
	}
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() { _, errs[i] = insts[i%4].Fetch(bg, "ghost", load) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, tiered.ErrNotFound) {
			t.Fatalf("caller %d: %v, want ErrNotFound", i, err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads across 4 instances, want 1", n)
	}
	if _, err := insts[2].Fetch(bg, "ghost", load); !errors.Is(err, tiered.ErrNotFound) || loads.Load() != 2 {
		t.Fatalf("the next Fetch: %v after %d loads; want ErrNotFound from a new load", err, loads.Load())
	}
}

// With the default LeaseTTL (= LoadTimeout), a waiter still takes over from
// a dead holder: its own load gets a LoadTimeout of its own.
func TestDeadHolderTakenOverWithDefaultLeaseTTL(t *testing.T) {
	s := redistest.New(t)
	const loadTimeout = 300 * time.Millisecond
	b := newInstance(t, s, "b", tiered.Options[string]{LoadTimeout: loadTimeout})
	dead := newStore(t, s.Client, s.Namespace)
	if claims, err := dead.Acquire(bg, []string{"k"}, remote.NewLeaseToken(), loadTimeout); err != nil || !claims[0].Acquired {
		t.Fatalf("Acquire = %+v, %v", claims, err)
	}
	if !s.Real() {
		// The embedded server's clock moves only when told: the lease
		// expires there a third of the way through b's wait, not at the
		// moment b looks again (a race a loaded machine decides either way).
		time.AfterFunc(loadTimeout/3, func() { s.Mini.FastForward(loadTimeout) })
	}
	v, err := b.Fetch(bg, "k", func(context.Context) (string, error) { return "b-loaded", nil })
	if err != nil || v != "b-loaded" {
		t.Fatalf("Fetch = %q, %v; want a takeover once the dead holder's lease expired", v, err)
	}
}

// With leases off, each instance loads on its own.
func TestLeasesOff(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{LeaseTTL: -1})
	b := newInstance(t, s, "b", tiered.Options[string]{LeaseTTL: -1})
	inLoad, release := make(chan struct{}), make(chan struct{})
	var loads atomic.Int32
	first := async(func() (string, error) {
		return a.Fetch(bg, "k", func(context.Context) (string, error) {
			loads.Add(1)
			close(inLoad)
			<-release
			return "a", nil
		})
	})
	waitChan(t, inLoad, "a's loader starts")
	if v, err := b.Fetch(bg, "k", func(context.Context) (string, error) { loads.Add(1); return "b", nil }); err != nil || v != "b" {
		t.Fatalf("b.Fetch = %q, %v; want its own load", v, err)
	}
	close(release)
	if v, err := await(t, first); err != nil || v != "a" {
		t.Fatalf("a.Fetch = %q, %v", v, err)
	}
	if loads.Load() != 2 {
		t.Fatalf("%d loads, want 2", loads.Load())
	}
	if got := s.Client.Get(bg, s.Namespace+":k").Val(); got != "b" {
		t.Fatalf("Redis holds %q, want b (SET NX: the first store wins)", got)
	}
}

// newInstances starts n instances with opts, named i0, i1, …
func newInstances[V any](t *testing.T, s *redistest.Server, n int, opts tiered.Options[V]) []*instance[V] {
	t.Helper()
	insts := make([]*instance[V], n)
	for i := range insts {
		insts[i] = newInstance(t, s, fmt.Sprint("i", i), opts)
	}
	return insts
}

// A loader slower than LeaseTTL keeps its lease while it runs (the holder
// renews it), so its value is stored once and the other callers wait for
// it: one loader call per key, on one instance or across three, and the key
// holds the value afterwards.
func TestSlowLoaderKeepsItsLease(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			s := redistest.New(t)
			// The holder renews every third of LeaseTTL: 300ms leaves a
			// renewal 200ms late on a loaded machine.
			const lease = 300 * time.Millisecond
			insts := newInstances(t, s, n, tiered.Options[string]{LeaseTTL: lease})
			var loads atomic.Int32
			load := func(context.Context) (string, error) {
				loads.Add(1)
				time.Sleep(lease * 3 / 2)
				return "v", nil
			}
			var wg sync.WaitGroup
			for i := range 10 * n {
				wg.Go(func() {
					if v, err := insts[i%n].Fetch(bg, "slow", load); err != nil || v != "v" {
						t.Errorf("Fetch = %q, %v", v, err)
					}
				})
			}
			wg.Wait()
			if got := loads.Load(); got != 1 {
				t.Errorf("%d loader calls for one key, want 1", got)
			}
			if got, err := s.Client.Get(bg, s.Namespace+":slow").Result(); err != nil || got != "v" {
				t.Errorf("Redis holds %q, %v; want the loaded value", got, err)
			}
			for _, in := range insts {
				if d := in.Stats().LoadsDiscarded; d != 0 {
					t.Errorf("%s discarded %d loaded values", in.name, d)
				}
			}
		})
	}
}

// A loaded value whose store is refused (the key was written during the
// load) is counted.
func TestRefusedStoreIsCounted(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	_, err := a.Fetch(bg, "k", func(ctx context.Context) (string, error) {
		if err := a.Set(ctx, "k", "written"); err != nil {
			return "", err
		}
		return "loaded", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Stats().LoadsDiscarded; d != 1 {
		t.Errorf("LoadsDiscarded = %d, want 1", d)
	}
	if got, _ := a.Get(bg, "k"); got != "written" {
		t.Errorf("Get = %q; want the write, not the load", got)
	}
}
