package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// outageKeys are the outage scenario's keys: held keys are read and never
// written after the warm-up, so every reader holds them when the server
// stops; hot keys are what the writer changes.
type outageKeys struct {
	held, hot, all []string
	hotIndex       map[string]int
}

func newOutageKeys() outageKeys {
	k := outageKeys{held: keys("outage:held:", outageHeldKeys), hot: keys("outage:hot:", outageHotKeys)}
	k.all = append(append([]string{}, k.held...), k.hot...)
	k.hotIndex = make(map[string]int, len(k.hot))
	for i, h := range k.hot {
		k.hotIndex[h] = i
	}
	return k
}

func (k outageKeys) isHeld(key string) bool { return strings.HasPrefix(key, "outage:held:") }

// ack is the writer's newest acknowledged write.
type ack struct {
	key string
	ver int
	at  int64 // since the clock's base
}

// outageSide runs one side of the outage scenario, every instance with
// StaleIfError stale, on a server of its own that it stops and starts
// again; see outage.
func outageSide(ctx context.Context, e *env, cfg config, stale time.Duration, r *outageResult) (sideResult, error) {
	side := sideResult{StaleIfError: stale, Readers: max(cfg.instances, 2), Reconverge: -1}
	label := side.label()
	cfg.progress.update("outage, %s: starting a server of its own", label)
	srv, err := newOwnServer(ctx, e)
	if err != nil {
		return side, err
	}
	defer srv.close()
	r.Server, r.KeepsData = srv.describe(), srv.keepsData()
	ks := newOutageKeys()
	admin := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer admin.Close()
	// lastAck holds each hot key's newest acknowledged version, for the
	// rewrite of a server that comes back empty.
	lastAck := make([]atomic.Int64, len(ks.hot))
	populate := func(ctx context.Context, nx bool) error {
		_, err := admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range ks.all {
				v := 0
				if i, ok := ks.hotIndex[k]; ok {
					v = int(lastAck[i].Load())
				}
				if nx {
					p.SetNX(ctx, e.key(k), versioned(k, v), keyTTL)
				} else {
					p.Set(ctx, e.key(k), versioned(k, v), keyTTL)
				}
			}
			return nil
		})
		return err
	}
	if err := populate(ctx, false); err != nil {
		return side, fmt.Errorf("outage: populate: %w", err)
	}

	clock := &outageClock{base: time.Now()}
	var ins []*ownInstance
	defer func() {
		for _, in := range ins {
			_ = in.close()
		}
	}()
	for range side.Readers + 1 {
		in, err := newOwnInstance(ctx, srv.addr(), e.namespace, cfg, stale, clock)
		if err != nil {
			return side, fmt.Errorf("outage: %w", err)
		}
		ins = append(ins, in)
	}
	var newest atomic.Pointer[ack]
	writer, readers := ins[0], make([]*reader, len(ins)-1)
	for i, in := range ins[1:] {
		if err := warmLocal(ctx, in.Cache, ks.all); err != nil {
			return side, fmt.Errorf("outage: warm-up: %w", err)
		}
		readers[i] = newReader(i, in, ks, clock, &newest)
	}

	// The writer Sets the hot keys in turn, one every cfg.outageWriteEvery,
	// and counts its Sets by phase; each reader makes its calls.
	var (
		c       crew
		writerW [2][phases]int // [ok, failed] by phase
	)
	c.run(func() error {
		return c.paced(time.Now(), cfg.outageWriteEvery, func(i int) error {
			k, ver := ks.hot[i%len(ks.hot)], i+1
			ph := clock.phase(clock.now(), 0) // before, outage or after
			if err := writer.Set(ctx, k, versioned(k, ver)); err != nil {
				if errors.Is(err, tiered.ErrClosed) || ctx.Err() != nil {
					return err
				}
				writerW[1][ph]++
				return nil
			}
			writerW[0][ph]++
			lastAck[i%len(ks.hot)].Store(int64(ver))
			newest.Store(&ack{key: k, ver: ver, at: clock.now()})
			return nil
		})
	})
	for _, rd := range readers {
		c.run(func() error { return rd.run(ctx, &c, cfg.outageReadEvery) })
	}
	finish := func() error {
		if err := c.finish(); err != nil {
			return err
		}
		return ctx.Err()
	}

	// The timeline: traffic, the stop, the outage, the start, reconvergence.
	cfg.progress.update("outage, %s: traffic for %v, then the server stops for %v", label, cfg.outageBefore, cfg.outageFor)
	if !c.sleep(ctx, cfg.outageBefore) {
		return side, finish()
	}
	stopAt := time.Now()
	if err := srv.stop(); err != nil {
		_ = finish()
		return side, err
	}
	// The outage begins once the server is gone (a redis-server may answer
	// for a while after SIGTERM).
	side.Stopping = time.Since(stopAt)
	clock.stop.Store(clock.now())
	cfg.progress.update("outage, %s: server stopped for %v", label, cfg.outageFor)
	if !c.sleep(ctx, time.Until(stopAt.Add(side.Stopping+cfg.outageFor))) {
		return side, finish()
	}
	startAt := clock.now()
	clock.restart.Store(startAt)
	if err := srv.start(ctx); err != nil {
		_ = finish()
		return side, err
	}
	side.ServerUp = time.Duration(clock.now() - startAt)
	side.Stopped = time.Since(stopAt) - side.Stopping
	if !srv.keepsData() {
		// A redis-server without persistence comes back empty: write the
		// keys again as they were (a hot key's newest acknowledged
		// version; SET NX, so that a write of the writer's since wins).
		if err := populate(ctx, true); err != nil {
			_ = finish()
			return side, fmt.Errorf("outage: rewrite the data lost in the restart: %w", err)
		}
		side.Restored = time.Duration(clock.now() - startAt)
	}
	cfg.progress.update("outage, %s: server started again; waiting for every instance to reconverge", label)
	converged := func() bool {
		for _, rd := range readers {
			if rd.converged.Load() == 0 {
				return false
			}
		}
		return true
	}
	_ = waitUntil(ctx, cfg.outageCap, func() bool { return converged() || c.done() })
	if converged() {
		var worst int64
		for _, rd := range readers {
			worst = max(worst, rd.converged.Load()-startAt)
		}
		side.Reconverge = time.Duration(worst)
	}
	c.sleep(ctx, cfg.outageAfter)
	if err := finish(); err != nil {
		return side, err
	}
	side.WritesOK, side.WritesFailed = writerW[0], writerW[1]
	side.gather(ins, readers, startAt)
	return side, nil
}

// gather adds up what the instances and the readers saw, the times since
// startAt.
func (side *sideResult) gather(ins []*ownInstance, readers []*reader, startAt int64) {
	for _, in := range ins {
		if s := in.obs.subscribed.Load(); s != 0 {
			side.Resubscribed = max(side.Resubscribed, time.Duration(s-startAt))
		} else {
			side.Resubscribed = -1
		}
		if lf := in.hook.lastFail.Load(); lf != 0 {
			side.LastFail = max(side.LastFail, time.Duration(lf-startAt))
		}
	}
	for _, rd := range readers {
		for p := range side.Phases {
			side.Phases[p].add(rd.counts[p])
		}
		side.Wrong += rd.nwrong
		side.Answered += rd.answered
		side.Misreported += rd.misreported
		side.HeldErrorExamples = append(side.HeldErrorExamples, rd.heldErrs...)
		if side.MisreportedOp == "" {
			side.MisreportedOp = rd.misreportedOp
		}
		side.WrongExamples = append(side.WrongExamples, rd.wrong...)
		side.LoaderCalls += rd.loads
		for p := range side.Errors {
			if len(side.Errors[p]) < 3 {
				side.Errors[p] = append(side.Errors[p], rd.errs[p]...)
			}
		}
		side.StaleEvents += int(rd.in.obs.staleKeys.Load())
		if c := rd.converged.Load(); c != 0 {
			side.PerInstance = append(side.PerInstance, time.Duration(c-startAt))
		} else {
			side.PerInstance = append(side.PerInstance, -1)
		}
	}
	if len(side.WrongExamples) > 3 {
		side.WrongExamples = side.WrongExamples[:3]
	}
}
