package faults

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// probe runs invalidation trials on one key: b holds the current value in
// its local tier, a Sets a new one, and a goroutine polls b until it
// returns it.
type probe struct {
	a, b   *node
	key    string
	writes uint64 // a's Sets of key so far
	inv0   uint64 // b's invalidations applied before the first
	pause  time.Duration
}

// trial is what one trial saw. Times are from when a's Set returned.
type trial struct {
	seen    bool
	latency time.Duration // until b's Get returned the new value
	// lastOld is when the last read on b that returned the old value
	// began; negative when none began after the Set returned.
	lastOld time.Duration
}

func newProbe(ctx context.Context, a, b *node, key string, pause time.Duration) (*probe, error) {
	p := &probe{a: a, b: b, key: key, inv0: b.invalidated.Load(), pause: pause}
	if err := a.Set(ctx, key, "0"); err != nil {
		return nil, err
	}
	p.writes = 1
	return p, nil
}

// run runs a trial: b's poller reads in a tight loop (or, with a pause,
// sleeps it in a raw nanosleep between reads) until it returns the new
// value, or limit after the Set. before, if not nil, runs once the poller
// has started, just before the Set.
func (p *probe) run(ctx context.Context, limit time.Duration, before func()) (trial, error) {
	for deadline := time.Now().Add(5 * time.Second); p.b.invalidated.Load()-p.inv0 < p.writes; {
		if time.Now().After(deadline) {
			return trial{}, fmt.Errorf("faults: b applied %d of a's %d invalidations", p.b.invalidated.Load()-p.inv0, p.writes)
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.b.holds(ctx, p.key); err != nil {
		return trial{}, err
	}
	want := strconv.FormatUint(p.writes, 10)
	base := time.Now()
	var (
		started atomic.Bool
		ackAt   atomic.Int64 // since base; 0 until the Set returned
		seenAt  int64
		oldAt   int64 = -1
		pollErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			began := int64(time.Since(base))
			v, err := p.b.Get(ctx, p.key)
			started.Store(true)
			switch {
			case err != nil:
				pollErr = err
				return
			case v == want:
				seenAt = int64(time.Since(base))
				return
			}
			oldAt = began
			if a := ackAt.Load(); a != 0 && int64(time.Since(base))-a > int64(limit) {
				return
			}
			if p.pause > 0 {
				nanosleep(p.pause)
			}
		}
	}()
	for !started.Load() {
		runtime.Gosched()
	}
	if before != nil {
		before()
	}
	err := p.a.Set(ctx, p.key, want)
	ack := max(int64(time.Since(base)), 1)
	ackAt.Store(ack)
	<-done
	if err == nil {
		err = pollErr
	}
	if err != nil {
		return trial{}, err
	}
	p.writes++
	tr := trial{seen: seenAt != 0, latency: time.Duration(seenAt - ack), lastOld: time.Duration(oldAt - ack)}
	if oldAt < 0 {
		tr.lastOld = -1
	}
	return tr, nil
}

// trials sums up trials: how many never saw the new value, the latest
// lastOld, and the median and worst latency of those that did.
func trials(ts []trial) (unseen int, lastOld, p50, worst time.Duration) {
	var lats []time.Duration
	for _, t := range ts {
		lastOld = max(lastOld, t.lastOld)
		if !t.seen {
			unseen++
			continue
		}
		lats = append(lats, t.latency)
	}
	slices.Sort(lats)
	if len(lats) > 0 {
		p50, worst = lats[len(lats)/2], lats[len(lats)-1]
	}
	return unseen, lastOld, p50, worst
}
