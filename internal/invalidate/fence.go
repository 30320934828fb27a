package invalidate

import (
	"context"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// fencePrefix starts the payload of a fence PING; its send time follows, in
// decimal (see fence).
const fencePrefix = "tiercache-fence:"

// never is the proof time before the first proof and after a loss: older
// than any time it is compared with, and far enough from the bounds of
// int64 that a subtraction cannot overflow.
const never = math.MinInt64 / 2

// fence is the Subscriber's freshness fence. A fence PING sent at time t on
// the subscription connection is answered after every message that reached
// the connection before it (Redis writes a connection's replies in order),
// so when the Subscriber's goroutine handles its PONG, every message
// published before t has been handled: t is proven. Times are nanoseconds
// since base on the monotonic clock, int64(time.Since(base)).
type fence struct {
	_    [64]byte      // keeps the fields readers load off cache lines that are written often
	max  int64         // MaxStaleness in nanoseconds; <= 0: no fence
	half int64         // max/2: the age at which Fresh asks for a proof, and the least time between two fence PINGs
	base time.Time     // the fence's epoch, with a monotonic reading
	wake chan struct{} // capacity 1: a reader raised demand; nil with no fence

	proven atomic.Int64 // the latest proven time, or never; written by the Subscriber's goroutine alone
	demand atomic.Bool  // a reader found the proof older than half since the last fence PING
	_      [64]byte

	pings atomic.Uint64 // fence PINGs sent

	last atomic.Int64 // the latest proven time ever, kept across losses, or never
}

func (f *fence) init(maxStaleness time.Duration) {
	f.base = time.Now()
	f.proven.Store(never)
	f.last.Store(never)
	if maxStaleness > 0 {
		f.max = int64(maxStaleness)
		f.half = f.max / 2
		f.wake = make(chan struct{}, 1)
	}
}

// now returns the fence time: monotonic nanoseconds since base.
func (f *fence) now() int64 { return int64(time.Since(f.base)) }

// Fresh reports whether every message published on the channels more than
// MaxStaleness before this call (PUBLISH executed by the server) has been
// passed to OnMessage, and OnMessage has returned, or reported as a Gap:
// whether a reader may trust state kept from the messages. It is false
// before the first proof, and from the moment the Subscriber finds a
// connection lost (before OnState reports Broken) until a proof arrives on
// the next one; a connection that dies unnoticed stops proving, so Fresh
// turns false within MaxStaleness of the last proof's PING. It says
// nothing of a channel before its Subscribed: messages published before
// the server confirmed a channel are not delivered, and the channel's
// owner must drop what it cached before then (on Subscribed, as on Broken).
//
// A call that finds the last proof older than MaxStaleness/2 asks for a
// new one; a fence PING is sent at most once per MaxStaleness/2 on a
// connection while calls keep asking (a new connection may send one at
// once), and none while nobody calls. With MaxStaleness 0 or negative there
// is no fence and Fresh reports true.
//
// Fresh is meant for every read of such state: it reads the monotonic clock
// and one or two atomic values, takes no lock and does not allocate. It is
// safe to call concurrently, from OnMessage and OnState too.
func (s *Subscriber) Fresh() bool {
	f := &s.fence
	if f.max <= 0 {
		return true
	}
	age := f.now() - f.proven.Load()
	if age > f.half && !f.demand.Load() {
		f.demand.Store(true)
		select {
		case f.wake <- struct{}{}:
		default: // a wake is pending already
		}
	}
	return age <= f.max
}

// prove handles the PONG of a fence PING whose payload ended in sent, the
// PING's send time; proofs of a time before floor, the last loss, do not
// count. Called by the Subscriber's goroutine alone.
func (f *fence) prove(sent string, floor int64) {
	t, err := strconv.ParseInt(sent, 10, 64)
	if err != nil || t <= floor || t <= f.proven.Load() {
		return
	}
	f.proven.Store(t)
	f.last.Store(t)
}

// LastProof returns the send time of the fence PING of the latest proof of
// freshness (see Fresh), on the monotonic clock; unlike Fresh's proof it is
// kept when a connection is lost, so that an owner can tell how long ago
// what it kept from the messages was last known current. It is the zero
// Time before the first proof, and always with no fence (MaxStaleness 0
// or negative).
func (s *Subscriber) LastProof() time.Time {
	t := s.fence.last.Load()
	if t == never {
		return time.Time{}
	}
	return s.fence.base.Add(time.Duration(t))
}

// withdraw forgets every proof, when a connection is lost, and returns the
// time, below which later proofs do not count. Called by the Subscriber's
// goroutine alone.
func (f *fence) withdraw() int64 {
	f.proven.Store(never)
	return f.now()
}

// pacer sends a watchdog's fence PINGs: one when demand is raised, then at
// most one per half while demand keeps being raised; idle otherwise. A new
// connection has no proof, so its pacer may send one at once.
type pacer struct {
	f        *fence
	ps       *redis.PubSub
	lastSent int64 // time of the last fence PING on ps, or never
	timer    *time.Timer
	due      <-chan time.Time // timer.C while waiting for half to pass since the last PING; nil while idle
	wake     <-chan struct{}  // f.wake while idle; nil while waiting (the timer will look at demand)
}

// newPacer returns the pacer of a watchdog on ps; with no fence it never
// fires.
func newPacer(f *fence, ps *redis.PubSub) *pacer {
	p := &pacer{f: f, ps: ps, lastSent: never, wake: f.wake}
	if f.max > 0 {
		p.timer = time.NewTimer(time.Duration(f.half))
		p.timer.Stop()
	}
	return p
}

// stop releases the timer.
func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// woken serves demand when idle (on a wake, and when a connection starts,
// for demand raised while there was none): a PING at once if half has
// passed since the last, else a wait for it.
func (p *pacer) woken(ctx context.Context) error {
	if p.f.max <= 0 || !p.f.demand.Load() {
		return nil
	}
	if wait := p.lastSent + p.f.half - p.f.now(); wait > 0 {
		p.wait(time.Duration(wait))
		return nil
	}
	return p.send(ctx)
}

// fired handles the end of a wait: a PING if demand was raised since the
// last, else idle until the next wake.
func (p *pacer) fired(ctx context.Context) error {
	p.due = nil
	if p.f.demand.Load() {
		return p.send(ctx)
	}
	p.wake = p.f.wake
	return nil
}

// send clears demand and sends a fence PING carrying its send time, taken
// before sending, then waits half before the next.
func (p *pacer) send(ctx context.Context) error {
	f := p.f
	f.demand.Store(false)
	t := f.now()
	p.lastSent = t
	f.pings.Add(1)
	p.wait(time.Duration(f.half))
	return p.ps.Ping(ctx, fencePrefix+strconv.FormatInt(t, 10))
}

func (p *pacer) wait(d time.Duration) {
	p.timer.Reset(d)
	p.due = p.timer.C
	p.wake = nil
}
