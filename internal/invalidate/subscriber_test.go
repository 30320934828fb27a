package invalidate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
)

// wait bounds every wait for an event that should come.
const wait = 5 * time.Second

type stateEvent struct {
	state   State
	channel string
	err     error
}

// delivery is one call of OnMessage.
type delivery struct {
	channel string
	msg     Message
}

// recorder collects a Subscriber's callbacks. It never blocks them.
type recorder struct {
	states   chan stateEvent
	msgs     chan delivery
	overflow atomic.Int32
	closed   atomic.Bool  // set when Close has returned
	late     atomic.Int32 // callbacks that ran after closed was set
}

func newRecorder() *recorder {
	return &recorder{states: make(chan stateEvent, 1024), msgs: make(chan delivery, 4096)}
}

// options returns Options that record into r, with channels as the initial
// set.
func (r *recorder) options(channels ...string) Options {
	return Options{Namespaces: channels, OnMessage: r.onMessage, OnState: r.onState}
}

func (r *recorder) onMessage(channel string, m Message) {
	if r.closed.Load() {
		r.late.Add(1)
	}
	select {
	case r.msgs <- delivery{channel, m}:
	default:
		r.overflow.Add(1)
	}
}

func (r *recorder) onState(st State, channel string, err error) {
	if r.closed.Load() {
		r.late.Add(1)
	}
	select {
	case r.states <- stateEvent{st, channel, err}:
	default:
		r.overflow.Add(1)
	}
}

// nextState fails the test unless the next state reported is want, with an
// error exactly when want is Broken or Gap, and a channel exactly when it is
// not Broken.
func (r *recorder) nextState(t *testing.T, want State, within time.Duration) stateEvent {
	t.Helper()
	select {
	case ev := <-r.states:
		if ev.state != want {
			t.Fatalf("state %v on %q (%v), want %v", ev.state, ev.channel, ev.err, want)
		}
		if (ev.err != nil) != (want == Broken || want == Gap) {
			t.Fatalf("state %v came with error %v", ev.state, ev.err)
		}
		if (ev.channel == "") != (want == Broken) {
			t.Fatalf("state %v came with channel %q", ev.state, ev.channel)
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no %v within %v", want, within)
	}
	return stateEvent{}
}

// nextStateOn is nextState that also wants the event on channel.
func (r *recorder) nextStateOn(t *testing.T, want State, channel string) stateEvent {
	t.Helper()
	ev := r.nextState(t, want, wait)
	if ev.channel != channel {
		t.Fatalf("%v on %q, want it on %q", ev.state, ev.channel, channel)
	}
	return ev
}

// subscribed fails the test unless the next states reported are Subscribed
// for each of channels, in any order.
func (r *recorder) subscribed(t *testing.T, channels ...string) {
	t.Helper()
	want := make(map[string]bool, len(channels))
	for _, ch := range channels {
		want[ch] = true
	}
	for range channels {
		ev := r.nextState(t, Subscribed, wait)
		if !want[ev.channel] {
			t.Fatalf("Subscribed on %q, want one on each of %q, once", ev.channel, channels)
		}
		delete(want, ev.channel)
	}
}

// noState fails the test if a state is reported within d.
func (r *recorder) noState(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-r.states:
		t.Fatalf("unexpected state %v on %q (%v)", ev.state, ev.channel, ev.err)
	case <-time.After(d):
	}
}

// nextDelivery returns the next call of OnMessage.
func (r *recorder) nextDelivery(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.msgs:
		return d
	case <-time.After(wait):
		t.Fatalf("no message within %v", wait)
	}
	return delivery{}
}

// nextMessage returns the next message delivered.
func (r *recorder) nextMessage(t *testing.T) Message {
	t.Helper()
	return r.nextDelivery(t).msg
}

// noMessage fails the test if a message is delivered within d.
func (r *recorder) noMessage(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-r.msgs:
		t.Fatalf("unexpected message on %q: %+v", got.channel, got.msg)
	case <-time.After(d):
	}
}

// start subscribes and closes the Subscriber when the test ends.
func start(t *testing.T, client redis.UniversalClient, opts Options) *Subscriber {
	t.Helper()
	sub, err := Subscribe(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// publish publishes payload on the classic channel of namespace.
func publish(t *testing.T, c *redis.Client, namespace string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Publish(ctx, Channel(namespace), payload).Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
}

func TestSubscriberDelivers(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	sub := start(t, s.NewClient(""), r.options(ch))
	r.nextStateOn(t, Subscribed, ch)
	if !sub.Ready() {
		t.Fatal("Ready() = false after Subscribed")
	}

	want := Message{Origin: NewOrigin(), Keys: []string{"user:1", "a:b:c", "", "\x00\xff"}}
	publish(t, s.Client, ch, want.Append(nil))
	if got := r.nextDelivery(t); got.channel != ch || !equal(got.msg, want) {
		t.Fatalf("delivered %+v on %q, want %+v on %q", got.msg, got.channel, want, ch)
	}
	publish(t, s.Client, ch, Message{Origin: want.Origin, All: true}.Append(nil))
	if got := r.nextMessage(t); !got.All || got.Origin != want.Origin {
		t.Fatalf("delivered %+v, want All from %x", got, want.Origin)
	}

	const n = 200
	for i := range n {
		publish(t, s.Client, ch, Message{Keys: []string{fmt.Sprint(i)}}.Append(nil))
	}
	for i := range n {
		if got := r.nextMessage(t); len(got.Keys) != 1 || got.Keys[0] != fmt.Sprint(i) {
			t.Fatalf("message %d: got keys %q, out of order", i, got.Keys)
		}
	}
	got := sub.Stats()
	got.HealthPings = 0 // the connection's first proof, and perhaps a health check
	if want := (SubscriberStats{Messages: n + 2, Connections: 1}); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	r.noState(t, 50*time.Millisecond)
}

func TestSubscriberResubscribesAfterKill(t *testing.T) {
	s := redistest.NewOwn(t)
	ch := s.Namespace
	name := s.Namespace // unique, so a shared real server kills only ours
	r := newRecorder()
	sub := start(t, s.NewClient(name), r.options(ch))
	r.nextState(t, Subscribed, wait)

	s.KillPubSub(name)
	ev := r.nextState(t, Broken, wait)
	if !strings.Contains(ev.err.Error(), "lost") {
		t.Errorf("Broken error %q does not say the subscription was lost", ev.err)
	}
	r.nextStateOn(t, Subscribed, ch)
	if st := sub.Stats(); st.Reconnects == 0 {
		t.Fatalf("Stats() = %+v after a resubscription, want Reconnects > 0", st)
	}

	want := Message{Keys: []string{"after"}}
	publish(t, s.Client, ch, want.Append(nil))
	if got := r.nextMessage(t); !equal(got, want) {
		t.Fatalf("delivered %+v after resubscribing, want %+v", got, want)
	}
	r.noState(t, 50*time.Millisecond)
}

// viaProxy returns a proxy to s and a client that reaches s through it,
// closed when the test ends.
func viaProxy(t *testing.T, s *redistest.Server) (*redistest.Proxy, *redis.Client) {
	t.Helper()
	p := redistest.NewProxy(t, s.Addr)
	client := redis.NewClient(&redis.Options{Addr: p.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	return p, client
}

// subscribeViaProxy starts a Subscriber with health check hc whose client
// reaches the server through a proxy, and waits for Subscribed.
func subscribeViaProxy(t *testing.T, hc time.Duration) (*redistest.Server, string, *redistest.Proxy, *recorder) {
	t.Helper()
	s := redistest.New(t)
	ch := s.Namespace
	p, client := viaProxy(t, s)
	r := newRecorder()
	opts := r.options(ch)
	opts.HealthCheck = hc
	start(t, client, opts)
	r.nextState(t, Subscribed, wait)
	return s, ch, p, r
}

func TestSubscriberHealthCheck(t *testing.T) {
	// A healthy connection's PONG must come back within hc, which a loaded
	// machine delays by tens of milliseconds: hc is well above that.
	const hc = 250 * time.Millisecond
	s, ch, p, r := subscribeViaProxy(t, hc)

	// Idle but healthy: the PINGs are answered, nothing breaks.
	r.noState(t, 4*hc)

	p.Freeze()
	frozen := time.Now()
	ev := r.nextState(t, Broken, 8*hc)
	if !strings.Contains(ev.err.Error(), "health check") {
		t.Errorf("Broken error %q does not mention the health check", ev.err)
	}
	if d := time.Since(frozen); d < hc {
		t.Errorf("Broken %v after the freeze, before one health check interval", d)
	}

	// The proxy passes new connections: the Subscriber comes back.
	r.nextState(t, Subscribed, wait)
	want := Message{Keys: []string{"after"}}
	publish(t, s.Client, ch, want.Append(nil))
	if got := r.nextMessage(t); !equal(got, want) {
		t.Fatalf("delivered %+v, want %+v", got, want)
	}
}

func TestSubscriberRedisDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	r := newRecorder()
	began := time.Now()
	sub, err := Subscribe(client, r.options("down"))
	if err != nil {
		t.Fatalf("Subscribe with Redis down: %v", err)
	}
	if d := time.Since(began); d > time.Second { // a dial's backoff is longer; a margin for a loaded machine
		t.Errorf("Subscribe took %v with Redis down, want it to return at once", d)
	}
	// Long enough for the backoff (1s at most by default) to grow past 300ms.
	r.noState(t, 700*time.Millisecond)
	if st := sub.Stats(); st.Reconnects < 3 {
		t.Errorf("Stats() = %+v, want at least 3 reconnect attempts in 700ms", st)
	}

	began = time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	// A pause of the backoff is interrupted, not waited out.
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	r.closed.Store(true)
	_ = client.Close()
	if left := leakcheck.Wait(2 * time.Second); len(left) > 0 {
		t.Fatalf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
	}
	if n := r.late.Load(); n > 0 {
		t.Fatalf("%d callback(s) after Close", n)
	}
}

func TestSubscriberCloseIsIdempotentAndConcurrent(t *testing.T) {
	s := redistest.New(t)
	r := newRecorder()
	sub := start(t, s.NewClient(""), r.options(s.Namespace))
	r.nextState(t, Subscribed, wait)

	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- sub.Close() }()
	}
	timeout := time.After(2 * time.Second)
	for range cap(errs) {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-timeout:
			t.Fatal("concurrent Close calls did not all return within 2s")
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if len(r.states) > 0 {
		t.Fatalf("state %v reported by Close", <-r.states)
	}
}

func TestSubscriberCloseRacesStart(t *testing.T) {
	s := redistest.New(t)
	client := s.NewClient("")
	for range 50 {
		r := newRecorder()
		sub, err := Subscribe(client, r.options(s.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		r.closed.Store(true)
		time.Sleep(time.Millisecond)
		if n := r.late.Load(); n > 0 {
			t.Fatalf("%d callback(s) after Close", n)
		}
	}
}

func TestSubscriberNoCallbackAfterClose(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	sub := start(t, s.NewClient(""), r.options(ch))
	r.nextState(t, Subscribed, wait)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		payload := Message{Keys: []string{"k"}}.Append(nil)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.Client.Publish(context.Background(), Channel(ch), payload).Err()
		}
	})
	defer func() { close(stop); wg.Wait() }()

	r.nextMessage(t) // messages are flowing
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	r.closed.Store(true)
	time.Sleep(100 * time.Millisecond) // publishing goes on
	if n := r.late.Load(); n > 0 {
		t.Fatalf("%d callback(s) after Close returned", n)
	}
	if len(r.states) > 0 {
		t.Fatalf("state %v reported by Close", <-r.states)
	}
}

func TestSubscribeValidatesOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	r := newRecorder()
	for _, tc := range []struct {
		field  string // the field the error must name, as it starts the error
		mutate func(*Options)
	}{
		{"Namespaces[1]", func(o *Options) { o.Namespaces = []string{"a", ""} }},
		{"Namespaces[2]", func(o *Options) { o.Namespaces = []string{"a", "b", "a"} }},
		{"OnMessage", func(o *Options) { o.OnMessage = nil }},
		{"OnState", func(o *Options) { o.OnState = nil }},
		{"MaxBackoff", func(o *Options) { o.MaxBackoff = -1 }},
		{"MaxStaleness", func(o *Options) { o.MaxStaleness = time.Millisecond - 1 }},
	} {
		opts := r.options("c")
		tc.mutate(&opts)
		sub, err := Subscribe(client, opts)
		if err == nil {
			_ = sub.Close()
			t.Errorf("Subscribe accepted a bad %s", tc.field)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "invalidate: "+tc.field+" ") {
			t.Errorf("bad %s: error %q does not name the field", tc.field, msg)
		}
	}
	if _, err := Subscribe(nil, r.options("c")); err == nil || !strings.Contains(err.Error(), "client") {
		t.Errorf("Subscribe(nil client) = %v, want an error naming the client", err)
	}
	if _, err := Subscribe(client, Options{}); err == nil || err.Error() != "invalidate: OnMessage must not be nil" {
		t.Errorf("Subscribe(zero Options) = %v", err)
	}
	if _, err := Subscribe(client, Options{Namespaces: []string{"a", "a"}, OnMessage: r.onMessage, OnState: r.onState}); err == nil ||
		err.Error() != `invalidate: Namespaces[1] repeats "a"` {
		t.Errorf("repeated channel: %v", err)
	}
	if _, err := Subscribe(client, Options{MaxStaleness: time.Microsecond, OnMessage: r.onMessage, OnState: r.onState}); err == nil ||
		err.Error() != "invalidate: MaxStaleness must be <= 0 (no fence) or at least 1ms, got 1µs" {
		t.Errorf("MaxStaleness of 1µs: %v", err)
	}
	// No channel at all, no fence, a fence of exactly the minimum, and no
	// health check are valid.
	for _, opts := range []Options{
		{OnMessage: r.onMessage, OnState: r.onState},
		{OnMessage: r.onMessage, OnState: r.onState, HealthCheck: -1},
		{OnMessage: r.onMessage, OnState: r.onState, MaxStaleness: -time.Second},
		{OnMessage: r.onMessage, OnState: r.onState, MaxStaleness: MinMaxStaleness},
	} {
		sub, err := Subscribe(client, opts)
		if err != nil {
			t.Errorf("Subscribe(%+v): %v", opts, err)
			continue
		}
		_ = sub.Close()
	}

	sub, err := Subscribe(client, r.options("c")) // zero durations take the defaults
	if err != nil {
		t.Fatalf("valid Options: %v", err)
	}
	if sub.opts.HealthCheck != DefaultHealthCheck || sub.opts.MaxBackoff != DefaultMaxBackoff {
		t.Errorf("defaults not applied: HealthCheck %v, MaxBackoff %v", sub.opts.HealthCheck, sub.opts.MaxBackoff)
	}
	_ = sub.Close()
}

// A reply that arrives in two parts, with a pause longer than the health
// check between them, must be delivered whole or reported as Broken: never
// lost in silence. (A reader that gives up on a read deadline in the middle
// of a reply has consumed its first part, and reads the rest as a reply of
// its own; "+b\r\n" would pass for a PONG.)
func TestSubscriberReplySplitAcrossHealthCheck(t *testing.T) {
	const hc = 50 * time.Millisecond
	s, ch, p, r := subscribeViaProxy(t, hc)

	for i := range 5 {
		want := Message{Keys: []string{fmt.Sprintf("split%d-a+b", i)}}
		p.Split([]byte("+b"), hc+hc/10)
		publish(t, s.Client, ch, want.Append(nil))
		select {
		case got := <-r.msgs:
			if !equal(got.msg, want) {
				t.Fatalf("delivered %+v, want %+v", got.msg, want)
			}
		case ev := <-r.states:
			if ev.state != Broken {
				t.Fatalf("state %v (%v), want the message or Broken", ev.state, ev.err)
			}
			t.Logf("round %d: %v", i, ev.err)
			r.nextState(t, Subscribed, wait)
		case <-time.After(time.Second):
			t.Fatalf("round %d: the split message was neither delivered nor reported lost", i)
		}
	}
}

// Time spent in OnMessage is the owner's, not a dead connection: a callback
// slower than two health check intervals does not break the subscription.
func TestSubscriberSlowCallbackIsNotALoss(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	opts := r.options(ch)
	// The PONGs of the idle connection must still come back within hc on
	// a loaded machine (20ms was not enough under stress -c 4).
	const hc = 100 * time.Millisecond
	opts.HealthCheck = hc
	opts.OnMessage = func(channel string, m Message) {
		time.Sleep(5 * hc)
		r.onMessage(channel, m)
	}
	start(t, s.NewClient(""), opts)
	r.nextState(t, Subscribed, wait)

	for i := range 3 {
		publish(t, s.Client, ch, Message{Keys: []string{fmt.Sprint(i)}}.Append(nil))
	}
	for i := range 3 {
		if got := r.nextMessage(t); len(got.Keys) != 1 || got.Keys[0] != fmt.Sprint(i) {
			t.Fatalf("message %d: keys %q", i, got.Keys)
		}
	}
	r.noState(t, 5*hc) // and idle again: the PINGs are answered
}

// waitFor polls cond until it holds, at most for wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(time.Millisecond)
	}
}
