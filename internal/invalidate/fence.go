package invalidate

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// fencePrefix starts the payload of every PING the Subscriber sends on a
// connection (proofs and health checks alike); its send time follows, in
// decimal (see fence).
const fencePrefix = "tiercache-fence:"

// never is the proof time before the first proof and after a loss: older
// than any time it is compared with, and far enough from the bounds of
// int64 that a subtraction cannot overflow.
const never = math.MinInt64 / 2

// idleAfter is how long after the last call of Fresh the proofs stop (see
// fence). A Subscriber reads it once, in Subscribe; tests may shorten it.
var idleAfter = 2 * time.Second

// readGrain is how stale fence.lastRead may get before Fresh writes it
// again: a call of Fresh writes shared memory at most this often.
const readGrain = 50 * time.Millisecond

// fence is the Subscriber's freshness fence. A PING sent at time t on the
// subscription connection is answered after every message that reached the
// connection before it (Redis writes a connection's replies in order), so
// when the Subscriber's goroutine handles its PONG, every message published
// before t has been handled: t is proven. Times are nanoseconds since base
// on the monotonic clock, int64(time.Since(base)).
//
// Proofs follow the traffic: from the first call of Fresh, a proof is sent
// every MaxStaleness/2, so that a read finds a proof younger than
// MaxStaleness at any read rate; idleAfter after the last call they stop.
type fence struct {
	_    [64]byte      // keeps the fields readers load off cache lines that are written often
	max  int64         // MaxStaleness in nanoseconds; <= 0: no fence
	half int64         // max/2: the period of the proofs
	idle int64         // idleAfter when the fence was made
	base time.Time     // the fence's epoch, with a monotonic reading
	wake chan struct{} // capacity 1: a reader found no young proof; nil with no fence

	proven   atomic.Int64 // the latest proven time, or never; written by the Subscriber's goroutine alone
	demand   atomic.Bool  // a reader found the proof older than half since the last wake
	lastRead atomic.Int64 // the time of a recent call of Fresh, within readGrain
	_        [64]byte

	pings, healthPings atomic.Uint64 // PINGs sent to prove freshness, and for the health check

	last atomic.Int64 // the latest proven time ever, kept across losses, or never
}

func (f *fence) init(maxStaleness time.Duration, base time.Time) {
	f.base = base
	f.idle = int64(idleAfter)
	f.proven.Store(never)
	f.last.Store(never)
	f.lastRead.Store(never)
	if maxStaleness > 0 {
		f.max = int64(maxStaleness)
		f.half = f.max / 2
		f.wake = make(chan struct{}, 1)
	}
}

// now returns the fence time: monotonic nanoseconds since base.
func (f *fence) now() int64 { return int64(time.Since(f.base)) }

// Fresh reports whether every message published more than MaxStaleness
// before this call (PUBLISH executed by the server) has been passed to
// OnMessage, and OnMessage has returned, or reported as a Gap: whether a
// reader may trust state kept from the messages. Each connection proves
// its own stream (see fence), and Fresh holds only while every connection
// has a young enough proof: on a Cluster, whichever node a write ran on,
// the connection to that node has delivered its message. It is false
// before the first proofs, and from the moment the Subscriber finds a
// connection lost until a proof arrives on the next; a connection that
// dies unnoticed stops proving, so Fresh turns false within MaxStaleness
// of its last proof's PING. It says nothing of a namespace before its
// Subscribed: messages published before then are not delivered, and the
// owner drops what it cached before then (on Subscribed, as on Broken).
//
// Calls of Fresh keep the proofs coming: one every MaxStaleness/2 on each
// connection from the first call until idleAfter (2s) after the last, so
// that a reader at any rate finds a young proof; a call that finds none
// asks for one at once. With MaxStaleness 0 or negative there is no fence
// and Fresh reports true.
//
// Fresh is meant for every read of such state: it reads the monotonic clock
// and a few atomic values per connection, writes shared memory at most once
// per readGrain, takes no lock and does not allocate. It is safe to call
// concurrently, from OnMessage and OnState too.
func (s *Subscriber) Fresh() bool {
	if s.opts.MaxStaleness <= 0 {
		return true
	}
	links := s.current()
	now := int64(time.Since(s.base))
	fresh := len(links) > 0
	for _, l := range links {
		if !l.fence.fresh(now) {
			fresh = false // and go on: every connection is asked for a proof
		}
	}
	return fresh
}

// fresh is Fresh for one connection's fence, at now.
func (f *fence) fresh(now int64) bool {
	if now-f.lastRead.Load() > int64(readGrain) {
		f.lastRead.Store(now)
	}
	age := now - f.proven.Load()
	if age > f.half && !f.demand.Load() {
		f.demand.Store(true)
		select {
		case f.wake <- struct{}{}:
		default: // a wake is pending already
		}
	}
	return age <= f.max
}

// reading reports whether a reader called Fresh less than idleAfter ago, or
// asks for a proof: the proofs go on.
func (f *fence) reading(now int64) bool {
	return f.demand.Load() || now-f.lastRead.Load() < f.idle
}

// prove handles the PONG of a PING whose payload ended in sent, the PING's
// send time; proofs of a time before floor, the last loss, do not count.
// Called by the Subscriber's goroutine alone.
func (f *fence) prove(sent string, floor int64) {
	t, err := strconv.ParseInt(sent, 10, 64)
	if err != nil || t <= floor || t <= f.proven.Load() {
		return
	}
	f.proven.Store(t)
	f.last.Store(t)
}

// LastProof returns the send time of the PING of the latest proof of
// freshness of every connection (the oldest of their latest proofs), on the
// monotonic clock: every message published before it had been handled
// when the proofs' PONGs arrived. Unlike Fresh's proofs it is kept when a
// connection is lost, so that an owner can tell how long ago what it kept
// from the messages was last known current. Every PING the Subscriber
// sends proves (the health check's too, with or without a fence). It is
// the zero Time before every connection has a first proof.
func (s *Subscriber) LastProof() time.Time {
	links := s.current()
	oldest := int64(never)
	for i, l := range links {
		t := l.fence.last.Load()
		if t == never {
			return time.Time{}
		}
		if i == 0 || t < oldest {
			oldest = t
		}
	}
	if len(links) == 0 {
		return time.Time{}
	}
	return s.base.Add(time.Duration(oldest))
}

// withdraw forgets every proof, when a connection is lost, and returns the
// time, below which later proofs do not count. Called by the Subscriber's
// goroutine alone.
func (f *fence) withdraw() int64 {
	f.proven.Store(never)
	return f.now()
}

// payload is the payload of a PING sent at t.
func payload(t int64) string { return fencePrefix + strconv.FormatInt(t, 10) }
