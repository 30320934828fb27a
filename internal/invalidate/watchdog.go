package invalidate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// watchdog runs beside the reader of a connection, on two goroutines of its
// own: one keeps the time (the health check, and the proofs of freshness,
// see fence) and never writes to the connection; the other writes the PINGs
// it asks for. So a write stuck on a peer that reads nothing (a full send
// buffer) delays no judgement: the health check ends the connection
// HealthCheck after its PING was due, whether or not the PING went out.
//
// The health check: a PING every interval, whatever else the connection
// carries (so that its PONG proves freshness at least that often, see
// Subscriber.LastProof), and the connection closed (ending the read) if
// nothing at all arrives within an interval of a PING; time the reader
// spends in callbacks is not held against the connection. With the health
// check off (every <= 0) only an error writing a PING ends the connection.
type watchdog struct {
	ps      *redis.PubSub
	kill    func() // closes the connection's socket, ending a stuck write
	every   time.Duration
	f       *fence
	busy    atomic.Bool   // the reader is handling a reply, not reading
	traffic chan struct{} // capacity 1: the reader received a reply

	send                  chan struct{} // capacity 1: wakes the writer
	wantProof, wantHealth atomic.Bool   // what the writer's next PING is for

	quit chan struct{}  // closed by stop
	wg   sync.WaitGroup // both goroutines

	mu  sync.Mutex
	err error // guarded by mu: why the watchdog closed ps
}

func startWatchdog(ctx context.Context, ps *redis.PubSub, kill func(), every time.Duration, f *fence) *watchdog {
	w := &watchdog{
		ps:      ps,
		kill:    kill,
		every:   every,
		f:       f,
		traffic: make(chan struct{}, 1),
		send:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	w.wg.Add(2)
	go w.run(ctx)
	go w.write(ctx)
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

// stop ends the watchdog and waits for it. The connection is over when it
// is called: its socket is closed first, so that a PING stuck in a write
// cannot hold stop.
func (w *watchdog) stop() {
	close(w.quit)
	w.kill()
	w.wg.Wait()
}

// run keeps the time: the health check's, and the proofs' (a PING every
// half of MaxStaleness while readers call Fresh, see fence).
func (w *watchdog) run(ctx context.Context) {
	defer w.wg.Done()
	var (
		health  <-chan time.Time // the health check's timer; nil when off
		pinged  bool             // a health PING was asked for, and nothing received since
		p       = prover{f: w.f, w: w, asked: never}
		healthT *time.Timer
	)
	if w.every > 0 {
		healthT = time.NewTimer(w.every)
		defer healthT.Stop()
		health = healthT.C
	}
	p.start()
	defer p.stop()
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.traffic:
			pinged = false
		case <-p.wake:
			p.woken()
		case <-p.due:
			p.fired()
		case <-health:
			healthT.Reset(w.every)
			select {
			case <-w.traffic: // a reply came as the timer fired
				pinged = false
			default:
			}
			switch {
			case w.busy.Load(): // the reader is in a callback: not the connection's time
				pinged = false
				continue
			case pinged:
				w.fail(fmt.Errorf("invalidate: health check: nothing received within %v of a PING", w.every))
				return
			}
			w.ask(&w.wantHealth)
			pinged = true
		}
	}
}

// ask has the writer send a PING for want (a proof or the health check).
// A PING already waiting to be written serves both.
func (w *watchdog) ask(want *atomic.Bool) {
	want.Store(true)
	select {
	case w.send <- struct{}{}:
	default:
	}
}

// write sends the PINGs run asks for, each carrying its send time (taken
// just before the write) so that its PONG proves freshness (see fence).
func (w *watchdog) write(ctx context.Context) {
	defer w.wg.Done()
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.send:
		}
		proof, health := w.wantProof.Swap(false), w.wantHealth.Swap(false)
		switch {
		case proof:
			w.f.pings.Add(1)
		case health:
			w.f.healthPings.Add(1)
		default:
			continue
		}
		if err := w.ps.Ping(ctx, payload(w.f.now())); err != nil {
			w.fail(fmt.Errorf("invalidate: PING: %w", err))
			return
		}
	}
}

// fail records err, once, and closes the connection, which ends the
// reader's Receive with an error: its socket first, then the PubSub (whose
// Close would otherwise wait behind a stuck write).
func (w *watchdog) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.kill()
	_ = w.ps.Close()
}

// prover schedules a connection's proofs of freshness on the watchdog's
// timekeeping goroutine: a PING every half of MaxStaleness while readers
// call Fresh (and for idleAfter after the last call), none otherwise; a
// reader who finds no young proof wakes it at once. With no fence it never
// fires.
type prover struct {
	f     *fence
	w     *watchdog
	asked int64 // when the last proof was asked for, or never
	timer *time.Timer
	due   <-chan time.Time // timer.C while proving; nil while idle
	wake  <-chan struct{}  // f.wake while idle; nil while proving (the timer looks at demand)
}

// start begins on a new connection: at once if readers are reading (the
// connection has no proof yet), else idle until one wakes it.
func (p *prover) start() {
	if p.f.max <= 0 {
		return
	}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	p.wake = p.f.wake
	if p.f.reading(p.f.now()) {
		p.prove()
	}
}

func (p *prover) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// woken serves a reader who found no young proof.
func (p *prover) woken() {
	if wait := p.asked + p.f.half - p.f.now(); wait > 0 {
		p.schedule(time.Duration(wait)) // a proof is on its way
		return
	}
	p.prove()
}

// fired asks for the next proof while readers read, else goes idle.
func (p *prover) fired() {
	p.due = nil
	if p.f.reading(p.f.now()) {
		p.prove()
		return
	}
	p.wake = p.f.wake
}

// prove asks the writer for a proof now, and schedules the next.
func (p *prover) prove() {
	p.f.demand.Store(false)
	p.asked = p.f.now()
	p.w.ask(&p.w.wantProof)
	p.schedule(time.Duration(p.f.half))
}

func (p *prover) schedule(d time.Duration) {
	p.timer.Reset(d)
	p.due = p.timer.C
	p.wake = nil
}
