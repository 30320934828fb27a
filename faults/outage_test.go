package faults

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The outage's timeline and traffic.
const (
	outageBefore  = time.Second            // traffic before the stop
	outageFor     = 2 * time.Second        // the server stays stopped
	outageAfter   = 500 * time.Millisecond // traffic once every reader reconverged
	outageStale   = time.Second            // StaleIfError of the side with it: shorter than the outage, so both its bounds show
	outageHC      = 200 * time.Millisecond // HubOptions.HealthCheck
	outageBackoff = 100 * time.Millisecond // HubOptions.MaxBackoff
	outageRead    = 500 * time.Microsecond // each reader's pace
	outageWrite   = 20 * time.Millisecond  // the writer's pace
	outageReaders = 3
	// goRedisProbe: a go-redis pool whose dials failed PoolSize times in a
	// row fails every call until its next probe of the server, once a
	// second.
	goRedisProbe = time.Second
	// reconvergeLimit, from when the server answers again: the writer's
	// and the readers' pools probe it within goRedisProbe, the writer Sets
	// within its pace, the subscriptions come back within MaxBackoff, and a
	// health check period covers a slow handshake.
	reconvergeLimit = goRedisProbe + outageWrite + outageBackoff + outageHC
)

// side is one run of the outage, every instance with one StaleIfError.
type side struct {
	stale        time.Duration
	readers      []*reader
	nodes        []*node // the readers' and the writer's
	writesFailed int     // the writer's Sets that failed in the outage
	wake         time.Duration
	start, up    int64 // the server started again; it answered
}

// TestOutage stops a redis-server of its own for 2s under traffic, and
// starts it again: three readers (a call every 500µs: Gets, GetManys,
// Fetches whose loader fails) read 200 keys they hold and 20 that a writer
// Sets every 20ms. With StaleIfError 1s: no held key fails while what the
// reader held is younger than StaleIfError, no value is served stale once
// older, every stale value is the newest its reader had returned, and none
// is served by a call that Redis answered. Without: no stale value. Both:
// every reader reads the newest write within reconvergeLimit of the
// server's answer.
// It logs a table for the README.
func TestOutage(t *testing.T) {
	needRealServer(t)
	// go-redis logs each failed dial: thousands while the server is down.
	redis.SetLogger(dialLog{quiet: true})
	defer redis.SetLogger(dialLog{})
	var sides []*side
	for _, stale := range []time.Duration{outageStale, 0} {
		t.Run(fmt.Sprintf("StaleIfError=%v", stale), func(t *testing.T) {
			sd := runOutage(t, stale)
			sd.check(t)
			sides = append(sides, sd)
		})
	}
	if len(sides) == 2 {
		t.Logf("for the README:\n%s", outageTable(sides[0], sides[1]))
	}
}

// dialLog prints what go-redis logs as its default logger does, but for
// failed dials when quiet.
type dialLog struct{ quiet bool }

var goRedisLog = log.New(os.Stderr, "redis: ", log.LstdFlags|log.Lshortfile)

func (l dialLog) Printf(_ context.Context, format string, v ...any) {
	if !l.quiet || !strings.Contains(format, "failed to dial") {
		_ = goRedisLog.Output(4, fmt.Sprintf(format, v...))
	}
}

// runOutage runs one side on a server of its own.
func runOutage(t *testing.T, stale time.Duration) *side {
	ctx := context.Background()
	s := redistest.NewReal(t)
	clock, sd := &outageClock{}, &side{stale: stale}
	if err := restore(ctx, s, clock, false); err != nil {
		t.Fatal(err)
	}
	copts := &redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: 10 * time.Millisecond} // fail fast: one dial, no retry
	hopts := tiered.HubOptions{HealthCheck: outageHC, MaxBackoff: outageBackoff}
	opts := tiered.Options[string]{StaleIfError: stale}
	w := newNode(t, copts, s.Namespace, hopts, opts)
	all := make([]string, 0, outageHeld+outageHot)
	for i := range outageHeld {
		all = append(all, heldKey(i))
	}
	for i := range outageHot {
		all = append(all, hotKey(i))
	}
	for i := range outageReaders {
		n := newNode(t, copts, s.Namespace, hopts, opts)
		for _, k := range all {
			if err := n.holds(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		sd.readers = append(sd.readers, &reader{n: n, clock: clock, rng: rand.New(rand.NewPCG(uint64(i), 7)), maxSeen: map[string]int64{}})
		sd.nodes = append(sd.nodes, n)
	}
	sd.nodes = append(sd.nodes, w)
	stop, wait := sd.traffic(ctx, w, clock)
	time.Sleep(outageBefore)
	s.Stop()
	clock.stop.Store(sinceEpoch())
	time.Sleep(outageFor)
	sd.start = sinceEpoch()
	s.Start()
	sd.up = sinceEpoch()
	clock.up.Store(sd.up)
	if err := restore(ctx, s, clock, true); err != nil {
		t.Error(err)
	}
	for deadline := time.Now().Add(2 * reconvergeLimit); time.Now().Before(deadline) && !sd.converged(); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(outageAfter)
	stop.Store(true)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	return sd
}

// restore writes every key (its newest acknowledged version) on the
// server, which comes back empty from a restart: SET NX, so that a Set of
// the writer's made since wins.
func restore(ctx context.Context, s *redistest.Server, clock *outageClock, nx bool) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range outageHeld + outageHot {
			k, v := heldKey(i), int64(0)
			if i >= outageHeld {
				k, v = hotKey(i-outageHeld), clock.lastVersions[i-outageHeld].Load()
			}
			if nx {
				p.SetNX(ctx, s.Namespace+":"+k, versioned(k, v), 0)
			} else {
				p.Set(ctx, s.Namespace+":"+k, versioned(k, v), 0)
			}
		}
		return nil
	})
	return err
}

// traffic starts the writer, the readers and a goroutine that keeps the
// longest wake-up delay of a 1ms sleep; set stop to end them, then call
// wait.
func (sd *side) traffic(ctx context.Context, w *node, clock *outageClock) (*atomic.Bool, func() error) {
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		errs = make([]error, len(sd.readers))
	)
	pace := func(every time.Duration, f func() error) error {
		for next := time.Now(); !stop.Load(); next = next.Add(every) {
			time.Sleep(time.Until(next))
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	wg.Go(func() {
		var v int64
		_ = pace(outageWrite, func() error {
			v++
			k := hotKey(int(v % outageHot))
			if err := w.Set(ctx, k, versioned(k, v)); err != nil {
				if clock.phase(sinceEpoch()) == phaseOutage {
					sd.writesFailed++
				}
				return nil
			}
			clock.lastVersions[v%outageHot].Store(v)
			clock.newest.Store(&written{key: k, ver: v, at: sinceEpoch()})
			return nil
		})
	})
	for i, rd := range sd.readers {
		wg.Go(func() { errs[i] = pace(outageRead, func() error { return rd.call(ctx) }) })
	}
	wg.Go(func() {
		for !stop.Load() {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			sd.wake = max(sd.wake, time.Since(t0)-time.Millisecond)
		}
	})
	return &stop, func() error { wg.Wait(); return errors.Join(errs...) }
}

// converged reports whether every reader has read the writer's newest Set
// since the start.
func (sd *side) converged() bool {
	return !slices.ContainsFunc(sd.readers, func(rd *reader) bool { return rd.converged.Load() == 0 })
}

// total adds up the readers' counts of phase ph.
func (sd *side) total(ph int) counts {
	var c counts
	for _, rd := range sd.readers {
		x := rd.phases[ph]
		c.calls, c.keys, c.values, c.stale = c.calls+x.calls, c.keys+x.keys, c.values+x.values, c.stale+x.stale
		c.notFound, c.errs, c.heldKeys, c.heldErrs = c.notFound+x.notFound, c.errs+x.errs, c.heldKeys+x.heldKeys, c.heldErrs+x.heldErrs
		c.lats = append(c.lats, x.lats...)
	}
	slices.Sort(c.lats)
	return c
}

// since returns how long after the server started again the latest of
// times came; -1 if one came before.
func (sd *side) since(times []int64) time.Duration {
	var worst time.Duration
	for _, x := range times {
		if x < sd.start {
			return -1
		}
		worst = max(worst, time.Duration(x-sd.start))
	}
	return worst
}

func (sd *side) reconverged() time.Duration {
	var ts []int64
	for _, rd := range sd.readers {
		ts = append(ts, rd.converged.Load())
	}
	return sd.since(ts)
}

func (sd *side) resubscribed() time.Duration {
	var ts []int64
	for _, n := range sd.nodes {
		ts = append(ts, n.subscribed.Load())
	}
	return sd.since(ts)
}
