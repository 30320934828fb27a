package invalidate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// watchdog is the one goroutine beside the reader of a connection. It runs
// the health check: while the reader waits, it sends PING after every
// interval with nothing received, and closes the connection (ending the
// read) if nothing arrives within an interval after a PING; time the reader
// spends in callbacks is not held against the connection. It also sends the
// fence PINGs that readers ask for (see pacer); their answers are traffic
// like any other. With the health check off (every <= 0) it sends only
// the fence PINGs, and never judges the connection: only an error sending
// one ends it.
type watchdog struct {
	ps      *redis.PubSub
	every   time.Duration // the health check's interval; <= 0: off
	pacer   *pacer
	busy    atomic.Bool   // the reader is handling a reply, not reading
	traffic chan struct{} // capacity 1: the reader received a reply
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when run returns

	mu  sync.Mutex
	err error // guarded by mu: why the watchdog closed ps
}

func startWatchdog(ctx context.Context, ps *redis.PubSub, every time.Duration, f *fence) *watchdog {
	w := &watchdog{
		ps:      ps,
		every:   every,
		pacer:   newPacer(f, ps),
		traffic: make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.run(ctx)
	return w
}

// received tells the watchdog the reader got a reply and is handling it.
func (w *watchdog) received() {
	w.busy.Store(true) // before the signal: a timer that fires in between must not judge
	select {
	case w.traffic <- struct{}{}:
	default:
	}
}

// reading tells the watchdog the reader is waiting for the next reply.
func (w *watchdog) reading() { w.busy.Store(false) }

// failure returns why the watchdog closed the connection, or nil.
func (w *watchdog) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// stop ends the watchdog and waits for it.
func (w *watchdog) stop() {
	close(w.quit)
	<-w.done
}

func (w *watchdog) run(ctx context.Context) {
	defer close(w.done)
	defer w.pacer.stop()
	var (
		t      *time.Timer
		health <-chan time.Time // t.C; nil with the health check off
	)
	if w.every > 0 {
		t = time.NewTimer(w.every)
		defer t.Stop()
		health = t.C
	}
	pinged := false // a health check PING is outstanding: nothing received since it was sent
	// Demand raised while there was no connection is served now.
	if err := w.pacer.woken(ctx); err != nil {
		w.fail(fmt.Errorf("invalidate: fence PING: %w", err))
		return
	}
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.traffic:
			pinged = false
			if t != nil {
				t.Reset(w.every)
			}
		case <-w.pacer.wake:
			if err := w.pacer.woken(ctx); err != nil {
				w.fail(fmt.Errorf("invalidate: fence PING: %w", err))
				return
			}
		case <-w.pacer.due:
			if err := w.pacer.fired(ctx); err != nil {
				w.fail(fmt.Errorf("invalidate: fence PING: %w", err))
				return
			}
		case <-health:
			select {
			case <-w.traffic: // a reply came as the timer fired
				pinged = false
				t.Reset(w.every)
				continue
			default:
			}
			if w.busy.Load() {
				t.Reset(w.every)
				continue
			}
			if pinged {
				w.fail(fmt.Errorf("invalidate: health check: no reply to PING within %v", w.every))
				return
			}
			if err := w.ps.Ping(ctx); err != nil {
				w.fail(fmt.Errorf("invalidate: health check: PING: %w", err))
				return
			}
			pinged = true
			t.Reset(w.every)
		}
	}
}

// fail records err and closes the connection, which ends the reader's
// Receive with an error.
func (w *watchdog) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	_ = w.ps.Close()
}
