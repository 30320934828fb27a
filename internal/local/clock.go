package local

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Tick is the resolution of a Cache's clock: how often it advances.
const Tick = time.Millisecond

// ended is the reading of a closed clock: not before any deadline, so no
// entry outlives a clock that no longer advances.
const ended = math.MaxInt64

// clock is a coarse monotonic clock: nanoseconds since base, advanced every
// Tick by one goroutine, so that reading it is one atomic load instead of a
// call to time.Now. It lags real time by up to one Tick (more only if its
// goroutine is not scheduled in time).
//
// An idle clock costs nothing: after idleTicks ticks with no read, the
// goroutine stops ticking and says so (asleep); a read that finds it asleep
// reads the real clock instead and wakes it. A read checks asleep after it
// loads now, so a reading it returns was stored while the goroutine still
// ticked.
//
// The goroutine references the clock and nothing else, so a Cache that is
// dropped without Close can still be collected, and its cleanup stops the
// goroutine.
type clock struct {
	now    atomic.Int64 // nanoseconds since base as of the last tick; ended once closed
	asleep atomic.Bool  // the goroutine has stopped ticking: read the real clock
	base   time.Time    // set at creation, never changed; carries the monotonic reading
	_      [32]byte
	used   atomic.Bool // read since the goroutine last looked; written by readers, on a line of its own
	_      [63]byte

	wake     chan struct{} // capacity 1: a reader found the clock asleep
	stopOnce sync.Once
	stop     chan struct{} // closed to ask the goroutine to exit
	done     chan struct{} // closed by the goroutine as it exits
}

// Clock is a coarse monotonic clock that Caches share (Options.Clock): one
// goroutine advances it every Tick while it is read, so that a Cache's reads
// compare deadlines against one atomic load instead of calling time.Now. It
// lags real time by up to a Tick, and by more if its goroutine is not
// scheduled in time (see the package doc). After 100 ms without a read it
// stops ticking, and the next read wakes it. Close stops it.
type Clock struct{ k *clock }

// NewClock starts a Clock.
func NewClock() *Clock { return &Clock{k: startClock()} }

// Close stops the Clock's goroutine and waits for it to exit; from then on
// it reads later than every deadline, so no entry of a Cache on it outlives
// its source because time stopped. It is idempotent and safe to call
// concurrently.
func (c *Clock) Close() { c.k.close() }

// Now returns the Clock's time: nanoseconds since it started, the time base
// of the deadlines of the Caches on it. It is one atomic load while the
// Clock ticks, lags real time as the Clock does, and reads math.MaxInt64
// (later than every deadline) once the Clock is closed.
func (c *Clock) Now() int64 { return c.k.read() }

// idleTicks is how many ticks without a read put the goroutine to sleep.
const idleTicks = 100

// startClock returns a clock at 0 whose goroutine advances it every Tick
// until stopped.
func startClock() *clock {
	k := newClock()
	go k.run()
	return k
}

func newClock() *clock {
	return &clock{base: time.Now(), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// manualClock returns a clock at 0 with no goroutine: it moves only by
// advance. For tests.
func manualClock() *clock {
	k := newClock()
	close(k.done)
	return k
}

func (k *clock) run() {
	defer close(k.done)
	t := time.NewTicker(Tick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			// time.Since uses the monotonic reading in base, so the clock
			// never steps when the wall clock does.
			k.now.Store(int64(time.Since(k.base)))
			if k.used.Swap(false) {
				idle = 0
				continue
			}
			if idle++; idle < idleTicks {
				continue
			}
			k.asleep.Store(true)
			t.Stop()
			select {
			case <-k.stop:
				return
			case <-k.wake:
			}
			k.now.Store(int64(time.Since(k.base)))
			k.asleep.Store(false)
			idle = 0
			t.Reset(Tick)
		}
	}
}

// read returns the clock's time in nanoseconds since it started.
func (k *clock) read() int64 {
	n := k.now.Load()
	if !k.used.Load() {
		k.used.Store(true)
	}
	if k.asleep.Load() {
		select {
		case k.wake <- struct{}{}:
		default:
		}
		return int64(time.Since(k.base))
	}
	return n
}

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
	k.asleep.Store(false)
	k.now.Store(ended)
}
