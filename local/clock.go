package local

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Tick is the resolution of a Cache's clock: how often it advances.
const Tick = time.Millisecond

// ended is the reading of a closed clock: later than every deadline, so an
// entry with a TTL never outlives a clock that no longer advances.
const ended = math.MaxInt64

// clock is a coarse monotonic clock: nanoseconds since base, advanced every
// Tick by one goroutine, so that reading it is one atomic load instead of a
// call to time.Now. It lags real time by up to one Tick (more only if its
// goroutine is not scheduled in time).
//
// The goroutine references the clock and nothing else, so a Cache that is
// dropped without Close can still be collected, and its cleanup stops the
// goroutine.
type clock struct {
	now  atomic.Int64 // nanoseconds since base as of the last tick; ended once closed
	base time.Time    // set at creation, never changed; carries the monotonic reading

	stopOnce sync.Once
	stop     chan struct{} // closed to ask the goroutine to exit
	done     chan struct{} // closed by the goroutine as it exits
}

// Clock is a coarse monotonic clock that Caches share (Options.Clock): one
// goroutine advances it every Tick, so that a Cache's reads compare
// deadlines against one atomic load instead of calling time.Now. It lags real
// time by up to a Tick, and by more if its goroutine is not scheduled in
// time (see the package doc). Close stops it.
type Clock struct{ k *clock }

// NewClock starts a Clock.
func NewClock() *Clock { return &Clock{k: startClock()} }

// Close stops the Clock's goroutine and waits for it to exit; from then on
// it reads later than every deadline, so no entry of a Cache on it outlives
// its source because time stopped. It is idempotent and safe to call
// concurrently.
func (c *Clock) Close() { c.k.close() }

// startClock returns a clock at 0 whose goroutine advances it every Tick
// until stopped.
func startClock() *clock {
	k := &clock{base: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k
}

// manualClock returns a clock at 0 with no goroutine: it moves only by
// advance. For tests.
func manualClock() *clock {
	k := &clock{base: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	close(k.done)
	return k
}

func (k *clock) run() {
	defer close(k.done)
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			// time.Since uses the monotonic reading in base, so the clock
			// never steps when the wall clock does.
			k.now.Store(int64(time.Since(k.base)))
		}
	}
}

// read returns the clock's time in nanoseconds since it started.
func (k *clock) read() int64 { return k.now.Load() }

// advance moves a manual clock forward by d.
func (k *clock) advance(d time.Duration) { k.now.Add(int64(d)) }

// halt asks the goroutine to exit without waiting for it. It is the Cache's
// cleanup, so it must not block.
func (k *clock) halt() { k.stopOnce.Do(func() { close(k.stop) }) }

// close stops the goroutine, waits for it to exit, then sets the clock to
// its end. It is idempotent and safe to call concurrently.
func (k *clock) close() {
	k.halt()
	<-k.done
	k.now.Store(ended)
}
