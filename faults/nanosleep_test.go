package faults

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// TestNanosleepPoller: with GOMAXPROCS 1, B is polled by a goroutine that
// sleeps 75µs in a raw nanosleep between reads, and a second goroutine
// polls a third instance the same way, so that the only P is held by a
// sleeper most of the time and the goroutine that applies B's
// invalidations waits for the runtime's monitor to hand it on. With
// MaxStaleness on, no read on B that began more than MaxStaleness after
// A's Set returned returns the old value (exact, as in TestStaleHunt: B
// has one reading goroutine, so every read is a local hit or a Redis read
// of its own). The same trials with MaxStaleness off are logged beside.
func TestNanosleepPoller(t *testing.T) {
	needRealServer(t)
	const (
		maxStaleness = 5 * time.Millisecond
		pause        = 75 * time.Microsecond
		n            = 200
		limit        = time.Second // a trial that never sees the new value ends here
	)
	ctx := context.Background()
	s := redistest.New(t)
	copts := &redis.Options{Addr: s.Addr}
	var probes [2]*probe
	var other *node
	for i, m := range []time.Duration{maxStaleness, -1} {
		hopts := tiered.HubOptions{MaxStaleness: m}
		a := newNode(t, copts, s.Namespace, hopts, tiered.Options[string]{})
		b := newNode(t, copts, s.Namespace, hopts, tiered.Options[string]{})
		other = newNode(t, copts, s.Namespace, hopts, tiered.Options[string]{})
		p, err := newProbe(ctx, a, b, "sleepy-"+m.String(), pause)
		if err != nil {
			t.Fatal(err)
		}
		probes[i] = p
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for !stop.Load() {
			_, _ = other.Get(ctx, "elsewhere")
			nanosleep(pause)
		}
	})
	var on, off []trial
	for range n {
		for i, into := range []*[]trial{&on, &off} {
			tr, err := probes[i].run(ctx, limit, nil)
			if err != nil {
				stop.Store(true)
				wg.Wait()
				t.Fatal(err)
			}
			*into = append(*into, tr)
		}
	}
	stop.Store(true)
	wg.Wait()
	for _, c := range []struct {
		name string
		ts   []trial
	}{{"MaxStaleness " + maxStaleness.String(), on}, {"MaxStaleness off", off}} {
		unseen, lastOld, p50, worst := trials(c.ts)
		t.Logf("%s: Set returned → B returned the new value: median %s, worst %s; last old value read "+
			"begun %s after; unseen within %v: %d of %d", c.name, ms(p50), ms(worst), ms(lastOld), limit, unseen, len(c.ts))
	}
	for i, tr := range on {
		if tr.lastOld > maxStaleness {
			t.Errorf("trial %d: a Get on B that began %s after A's Set returned returned the old value (MaxStaleness %v)",
				i, ms(tr.lastOld), maxStaleness)
		}
		if !tr.seen {
			t.Errorf("trial %d: B did not return the new value within %v", i, limit)
		}
	}
}
