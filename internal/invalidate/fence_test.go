package invalidate

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// untilFresh calls Fresh until it reports true, at most for wait, and
// returns how long that took.
func untilFresh(t testing.TB, sub *Subscriber) time.Duration {
	t.Helper()
	began := time.Now()
	for !sub.Fresh() {
		if time.Since(began) > wait {
			t.Fatalf("Fresh() still false after %v of demand; Stats() = %+v, LastError() = %v",
				wait, sub.Stats(), sub.LastError())
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(began)
}

// Fresh is false until a proof arrives, a proof is sent only once a reader
// asks, and it comes within a round trip or so.
func TestFreshNeedsAProof(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = 50 * time.Millisecond
	// A health check's PING proves too: off, so that on a loaded machine
	// one landing before the first Fresh cannot make it true.
	opts.HealthCheck = -1
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ch)

	if st := sub.Stats(); st.FencePings != 0 {
		t.Fatalf("Stats() = %+v before any call of Fresh, want no fence PING", st)
	}
	if sub.Fresh() {
		t.Fatal("Fresh() = true before the first proof")
	}
	took := untilFresh(t, sub)
	pings := sub.Stats().FencePings
	if pings == 0 {
		t.Fatal("Fresh() turned true with no fence PING sent")
	}
	// The first call asks at once; another PING may follow each half of
	// MaxStaleness while the answer is awaited.
	if limit := 1 + uint64(took/(opts.MaxStaleness/2)) + 1; pings > limit {
		t.Errorf("%d fence PINGs in %v, want at most %d (one per MaxStaleness/2)", pings, took, limit)
	}
	t.Logf("fresh after %v, %d fence PING(s)", took, pings)
}

// Before any connection (and with no server at all) Fresh is false, and
// nothing can be sent.
func TestFreshFalseWithoutServer(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	opts := r.options("c")
	opts.MaxStaleness = time.Hour
	sub := start(t, client, opts)
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
		if sub.Fresh() {
			t.Fatal("Fresh() = true with no server")
		}
		time.Sleep(time.Millisecond)
	}
	if st := sub.Stats(); st.FencePings != 0 {
		t.Fatalf("Stats() = %+v: fence PINGs with no connection", st)
	}
}

// With no fence, Fresh always reports true, even with no server.
func TestFreshWithoutFence(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	for _, max := range []time.Duration{0, -time.Millisecond} {
		r := newRecorder()
		opts := r.options("c")
		opts.MaxStaleness = max
		sub := start(t, client, opts)
		for range 1000 {
			if !sub.Fresh() {
				t.Fatalf("MaxStaleness %v: Fresh() = false", max)
			}
		}
		if st := sub.Stats(); st.FencePings != 0 {
			t.Fatalf("MaxStaleness %v: Stats() = %+v, want no fence PING", max, st)
		}
	}
}

// No reader, no PING: nothing is sent while Fresh is not called; while it
// is, a proof every MaxStaleness/2; and the proofs stop idleAfter after the
// last call.
func TestFenceIdleWithoutReaders(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = 10 * time.Millisecond
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ch)

	time.Sleep(300 * time.Millisecond)
	if st := sub.Stats(); st.FencePings != 0 {
		t.Fatalf("Stats() = %+v after 300ms with no call of Fresh, want no fence PING", st)
	}

	// Readers for a while: at most 2/MaxStaleness PINGs a second.
	const reading = 300 * time.Millisecond
	began := time.Now()
	for time.Since(began) < reading {
		sub.Fresh()
		time.Sleep(50 * time.Microsecond)
	}
	busy := sub.Stats().FencePings
	if limit := uint64(time.Since(began)/(opts.MaxStaleness/2)) + 1; busy == 0 || busy > limit {
		t.Errorf("%d fence PINGs in %v of reads, want 1 to %d", busy, time.Since(began), limit)
	}

	// The readers stop: the proofs go on for idleAfter, then stop.
	time.Sleep(idleAfter + 200*time.Millisecond)
	idle := sub.Stats().FencePings
	if limit := busy + uint64((idleAfter+200*time.Millisecond)/(opts.MaxStaleness/2)) + 1; idle > limit {
		t.Errorf("%d fence PINGs in the %v after the last call of Fresh, want at most %d", idle-busy, idleAfter, limit-busy)
	}
	time.Sleep(300 * time.Millisecond)
	if after := sub.Stats().FencePings; after != idle {
		t.Fatalf("%d fence PINGs in the 300ms from idleAfter after the last call of Fresh, want none", after-idle)
	}
	t.Logf("%d fence PINGs in %v of reads (MaxStaleness %v)", busy, reading, opts.MaxStaleness)
}

// A reader at a low rate (one call of Fresh every 100ms, ten times
// MaxStaleness) finds proofs sent between its calls, not only the one its
// own call asked for: the proofs follow the traffic, not each call.
//
// Whether a read finds a proof younger than MaxStaleness depends on how
// late a loaded machine runs the Subscriber's goroutine, so the test judges
// the proofs' send times instead: a proof whose PING went out more than
// MaxStaleness after the previous read was asked for by no call. Proofs
// that followed each call only would give none; a loaded machine has the
// rest of the gap (90ms) to deliver one.
func TestFreshAtALowReadRate(t *testing.T) {
	s := redistest.NewReal(t) // the embedded server answers PINGs late under load
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = 10 * time.Millisecond
	opts.HealthCheck = -1 // its PINGs prove too, asked for by no reader
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ch)
	untilFresh(t, sub)
	const gap = 100 * time.Millisecond
	fresh, unasked, reads := 0, 0, 20
	prev := time.Now()
	for range reads {
		time.Sleep(gap)
		if sub.LastProof().Sub(prev) > opts.MaxStaleness {
			unasked++
		}
		prev = time.Now()
		if sub.Fresh() {
			fresh++
		}
	}
	if unasked < reads/2 {
		t.Errorf("%d of %d reads %v apart found a proof sent more than MaxStaleness after the read before; want most", unasked, reads, gap)
	}
	t.Logf("%d of %d reads found a proof sent since the read before, %d a proof younger than MaxStaleness; %+v", unasked, reads, fresh, sub.Stats())
}

// A frozen subscription connection (no FIN, no RST, nothing passes) makes
// Fresh false within MaxStaleness, long before the health check notices,
// at the cost of a few PINGs.
func TestFreshGoesFalseWhenFrozen(t *testing.T) {
	const maxStale = 100 * time.Millisecond
	s := redistest.New(t)
	ch := s.Namespace
	p, client := viaProxy(t, s)
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = maxStale
	opts.HealthCheck = 10 * time.Second // out of the way: only the fence may judge
	sub := start(t, client, opts)
	r.nextStateOn(t, Subscribed, ch)
	untilFresh(t, sub)

	p.FreezePubSub()
	frozen := time.Now()
	before := sub.Stats().FencePings
	for sub.Fresh() {
		if time.Since(frozen) > wait {
			t.Fatalf("Fresh() still true %v after the freeze", wait)
		}
		time.Sleep(100 * time.Microsecond)
	}
	stale := time.Since(frozen)
	// It went false at most MaxStaleness after the last proof, which was
	// sent before the freeze; the slack is for a busy machine.
	const slack = 50 * time.Millisecond
	if stale > maxStale+slack {
		t.Errorf("Fresh() turned false %v after the freeze, want at most MaxStaleness (%v) + %v", stale, maxStale, slack)
	}
	if sent := sub.Stats().FencePings - before; sent > uint64(stale/(maxStale/2))+2 {
		t.Errorf("%d fence PINGs in the %v the frozen connection was still trusted", sent, stale)
	}

	// It stays false, and the unanswered PINGs keep to their rate.
	before = sub.Stats().FencePings
	began := time.Now()
	for time.Since(began) < 3*maxStale {
		if sub.Fresh() {
			t.Fatal("Fresh() = true again on a frozen connection")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if sent := sub.Stats().FencePings - before; sent > uint64(time.Since(began)/(maxStale/2))+1 {
		t.Errorf("%d fence PINGs in %v on a frozen connection, want at most one per MaxStaleness/2", sent, time.Since(began))
	}
	r.noState(t, 0) // the health check has not judged yet
	t.Logf("false %v after the freeze", stale)
}

// A lost connection withdraws every proof at once (in OnState(Broken) too),
// before MaxStaleness has passed; proofs on the next connection restore it.
func TestFreshFalseOnBroken(t *testing.T) {
	s := redistest.NewOwn(t)
	ch := s.Namespace
	name := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = time.Hour // a proof would never age out in this test
	var subp atomic.Pointer[Subscriber]
	var freshOnBroken atomic.Int32 // 1: false, 2: true
	opts.OnState = func(st State, channel string, err error) {
		if st == Broken {
			if subp.Load().Fresh() {
				freshOnBroken.Store(2)
			} else {
				freshOnBroken.Store(1)
			}
		}
		r.onState(st, channel, err)
	}
	sub := start(t, s.NewClient(name), opts)
	subp.Store(sub)
	r.nextStateOn(t, Subscribed, ch)
	untilFresh(t, sub)

	s.KillPubSub(name)
	r.nextState(t, Broken, wait)
	if got := freshOnBroken.Load(); got != 1 {
		t.Fatalf("Fresh() in OnState(Broken): %v, want false", got == 2)
	}
	r.nextStateOn(t, Subscribed, ch)
	untilFresh(t, sub)
}

// The ordering guarantee: a message published more than MaxStaleness before
// a call of Fresh that reports true has been handled by then (OnMessage has
// returned), however slow OnMessage is. Each round publishes, asks for a
// proof at once (so that its PONG arrives while OnMessage is still busy),
// lets MaxStaleness pass, and checks the message once Fresh is true.
//
// The guarantee rests on Redis writing a connection's replies and messages
// in order. The embedded server does not: it hands each published message
// to a goroutine of its own that writes it to the subscriber's connection,
// so a PONG can overtake a message there. This test therefore always runs
// on a real redis-server (one it starts, when the suite is the embedded
// one).
func TestFreshAfterMessages(t *testing.T) {
	const maxStale = 2 * time.Millisecond
	s := redistest.NewReal(t)
	ch := s.Namespace
	r := newRecorder()
	var handled atomic.Int64 // the number in the last message OnMessage finished with
	opts := r.options(ch)
	opts.MaxStaleness = maxStale
	opts.OnMessage = func(_ string, m Message) {
		time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond)
		if len(m.Keys) == 1 {
			handled.Store(int64(len(m.Keys[0])))
		}
	}
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ch)

	const rounds = 100
	late := 0
	for i := 1; i <= rounds; i++ {
		key := string(make([]byte, i)) // its length is the round
		if err := s.Client.Publish(context.Background(), Channel(ch), Message{Keys: []string{key}}.Append(nil)).Err(); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		sub.Fresh() // demand a proof now, while the message is on its way
		for time.Since(acked) <= maxStale {
			time.Sleep(100 * time.Microsecond)
		}
		untilFresh(t, sub)
		if got := handled.Load(); got < int64(i) {
			t.Fatalf("round %d: Fresh() = true while the message published %v earlier was not handled (last handled: %d)",
				i, time.Since(acked), got)
		}
		if handled.Load() == int64(i) && time.Since(acked) > 10*time.Millisecond {
			late++
		}
	}
	t.Logf("%d rounds, %d fence PINGs, %d rounds where Fresh took over 10ms", rounds, sub.Stats().FencePings, late)
}

// Fresh runs on every local hit: it must not allocate, on either answer.
func TestFreshDoesNotAllocate(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = time.Hour
	sub := start(t, s.NewClient(""), opts)
	if n := testing.AllocsPerRun(1000, func() { sub.Fresh() }); n != 0 { // false, raising demand
		t.Errorf("Fresh (false) allocates %v times per call", n)
	}
	r.nextStateOn(t, Subscribed, ch)
	untilFresh(t, sub)
	if n := testing.AllocsPerRun(1000, func() {
		if !sub.Fresh() {
			panic("not fresh")
		}
	}); n != 0 {
		t.Errorf("Fresh (true) allocates %v times per call", n)
	}
}

// BenchmarkFresh measures the check a local hit pays, with a proof in force
// (MaxStaleness 1h: the answer is true and no demand is raised), beside the
// clock read it is built on.
func BenchmarkFresh(b *testing.B) {
	s := redistest.New(b)
	r := newRecorder()
	opts := r.options(s.Namespace)
	opts.MaxStaleness = time.Hour
	sub, err := Subscribe(s.NewClient(""), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	untilFresh(b, sub)
	base := time.Now()

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !sub.Fresh() {
				b.Fatal("not fresh")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !sub.Fresh() {
					panic("not fresh")
				}
			}
		})
	})
	b.Run("off", func(b *testing.B) { // MaxStaleness 0: no fence
		opts := r.options()
		off, err := Subscribe(s.NewClient(""), opts)
		if err != nil {
			b.Fatal(err)
		}
		defer off.Close()
		b.ReportAllocs()
		for b.Loop() {
			if !off.Fresh() {
				b.Fatal("not fresh")
			}
		}
	})
	b.Run("time.Since", func(b *testing.B) {
		b.ReportAllocs()
		var sink time.Duration
		for b.Loop() {
			sink += time.Since(base)
		}
		_ = sink
	})
}

// BenchmarkFreshDemand is Fresh with MaxStaleness short enough that readers
// keep raising demand: fence PINGs flow (their rate is reported), and the
// check still neither locks nor allocates.
func BenchmarkFreshDemand(b *testing.B) {
	s := redistest.New(b)
	r := newRecorder()
	opts := r.options(s.Namespace)
	opts.MaxStaleness = 5 * time.Millisecond
	sub, err := Subscribe(s.NewClient(""), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	untilFresh(b, sub)
	b.ReportAllocs()
	pings := sub.Stats().FencePings
	var fresh atomic.Int64
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		n := int64(0)
		for pb.Next() {
			if sub.Fresh() {
				n++
			}
		}
		fresh.Add(n)
	})
	elapsed := time.Since(began)
	b.ReportMetric(float64(sub.Stats().FencePings-pings)/elapsed.Seconds(), "pings/s")
	b.ReportMetric(100*float64(fresh.Load())/float64(b.N), "%fresh")
}

// The fence adds no goroutine: a connected Subscriber whose readers keep
// asking for proofs runs three, the reader and its watchdog's two (one keeps
// the time, one writes the PINGs).
func TestFenceAddsNoGoroutine(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxStaleness = 2 * time.Millisecond
	sub := start(t, s.NewClient(""), opts)
	r.nextStateOn(t, Subscribed, ch)
	for range 20 {
		untilFresh(t, sub)
		time.Sleep(time.Millisecond)
	}
	if got := ours(); len(got) != 3 {
		t.Fatalf("%d goroutines started by the package, want 3 (reader and watchdog):\n%s", len(got), strings.Join(got, "\n\n"))
	}
}

// ours returns the stacks of the goroutines that the package's own code
// (not its tests) started.
func ours() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		_, creator, ok := strings.Cut(g, "\ncreated by ")
		if ok && strings.HasPrefix(creator, "github.com/tiercache/tiercache/internal/invalidate.") &&
			!strings.HasPrefix(creator, "github.com/tiercache/tiercache/internal/invalidate.Test") {
			out = append(out, g)
		}
	}
	return out
}

// shortIdle sets idleAfter to d for the Subscribers a test starts after it,
// until the test ends.
func shortIdle(t *testing.T, d time.Duration) {
	old := idleAfter
	idleAfter = d
	t.Cleanup(func() { idleAfter = old })
}
