package invalidate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
)

// channels returns n channels unique to the test.
func channels(s *redistest.Server, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%c", s.Namespace, 'a'+i)
	}
	return out
}

// expectDelivery fails the test unless the next message delivered is on
// channel and names key alone.
func (r *recorder) expectDelivery(t *testing.T, channel, key string) {
	t.Helper()
	got := r.nextDelivery(t)
	if got.channel != channel || !slices.Equal(got.msg.Keys, []string{key}) {
		t.Fatalf("delivered %q on %q, want [%s] on %q", got.msg.Keys, got.channel, key, channel)
	}
}

func publishKey(t *testing.T, c *redis.Client, channel, key string) {
	t.Helper()
	publish(t, c, channel, Message{Keys: []string{key}}.Append(nil))
}

// waitNumSub waits until the server counts n subscribers on the classic
// channel of namespace, so that a test knows an UNSUBSCRIBE (or SUBSCRIBE)
// has reached it.
func waitNumSub(t *testing.T, c *redis.Client, namespace string, n int64) {
	t.Helper()
	channel := Channel(namespace)
	deadline := time.Now().Add(wait)
	for {
		got, err := c.PubSubNumSub(context.Background(), channel).Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		if got[channel] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers on %q after %v, want %d", got[channel], channel, wait, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// One Subscriber serves several channels, changed at run time: a channel
// added is confirmed and delivered, messages of a channel removed stop, and
// the set survives a new connection.
func TestSubscriberAddRemove(t *testing.T) {
	s := redistest.New(t)
	chans := channels(s, 3)
	a, b, c := chans[0], chans[1], chans[2]
	p, client := viaProxy(t, s)
	r := newRecorder()
	opts := r.options(a, b)
	opts.MaxBackoff = 5 * time.Millisecond
	sub := start(t, client, opts)
	r.subscribed(t, a, b)
	ctx := context.Background()

	if err := sub.Add(ctx, c); err != nil {
		t.Fatalf("Add(%q): %v", c, err)
	}
	r.nextStateOn(t, Subscribed, c)
	for _, ch := range chans {
		publishKey(t, s.Client, ch, "on "+ch)
		r.expectDelivery(t, ch, "on "+ch)
	}

	// Removing b stops its messages at once: the one published on b
	// before the one on a (and delivered in order if at all) is not.
	if err := sub.Remove(ctx, b); err != nil {
		t.Fatalf("Remove(%q): %v", b, err)
	}
	publishKey(t, s.Client, b, "removed")
	publishKey(t, s.Client, a, "kept")
	r.expectDelivery(t, a, "kept")
	waitNumSub(t, s.Client, b, 0) // UNSUBSCRIBE went out; its confirmation is no loss
	r.noState(t, 50*time.Millisecond)

	// Adding or removing twice changes nothing.
	if err := sub.Add(ctx, a); err != nil {
		t.Fatalf("Add(%q) again: %v", a, err)
	}
	if err := sub.Remove(ctx, b); err != nil {
		t.Fatalf("Remove(%q) again: %v", b, err)
	}
	waitNumSub(t, s.Client, a, 1)
	r.noState(t, 50*time.Millisecond)

	// A new connection subscribes to the set as it is now: a and c.
	p.CutPubSub(true)
	r.nextState(t, Broken, wait)
	if sub.Ready() {
		t.Error("Ready() = true after Broken, before the next connection is confirmed")
	}
	p.CutPubSub(false)
	r.subscribed(t, a, c)
	if !sub.Ready() {
		t.Error("Ready() = false after the channels were confirmed again")
	}
	for _, ch := range chans {
		publishKey(t, s.Client, ch, "again on "+ch)
	}
	r.expectDelivery(t, a, "again on "+a)
	r.expectDelivery(t, c, "again on "+c)

	// b comes back.
	if err := sub.Add(ctx, b); err != nil {
		t.Fatalf("Add(%q) after Remove: %v", b, err)
	}
	r.nextStateOn(t, Subscribed, b)
	publishKey(t, s.Client, b, "back")
	r.expectDelivery(t, b, "back")
	r.noMessage(t, 50*time.Millisecond)
	r.noState(t, 0)
}

// Add and Remove in quick succession, on the same channel, while messages
// flow: every confirmation and UNSUBSCRIBE reply that a later call undoes is
// expected, so none is taken for a loss, and the channel ends as the last
// call left it.
//
// Add and Remove return once their command is sent, so the server may still
// be working through them when the calls are done: b's subscriber count
// goes 1, 0, 1, … meanwhile, and a message published in a 0 is lost, as
// pub/sub loses it. A channel added once, after them, is the barrier: the
// server answers a connection's commands in order, so its confirmation
// comes after every reply about b.
func TestSubscriberAddRemoveRapidly(t *testing.T) {
	s := redistest.New(t)
	chans := channels(s, 4)
	a, b, barrier1, barrier2 := chans[0], chans[1], chans[2], chans[3]
	r := newRecorder()
	sub := start(t, s.NewClient(""), r.options(a))
	r.nextStateOn(t, Subscribed, a)
	ctx := context.Background()

	// toggle adds and removes b 50 times, adds it once more if addLast,
	// then adds barrier and waits for its confirmation. Only Subscribed on
	// b may come meanwhile (how many depends on how the replies interleave
	// with the calls), never a loss.
	toggle := func(addLast bool, barrier string) {
		t.Helper()
		for range 50 {
			if err := sub.Add(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := sub.Remove(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if addLast {
			if err := sub.Add(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := sub.Add(ctx, barrier); err != nil {
			t.Fatal(err)
		}
		for {
			ev := r.nextState(t, Subscribed, wait)
			if ev.channel == barrier {
				break
			}
			if ev.channel != b {
				t.Fatalf("Subscribed on %q while adding and removing %q", ev.channel, b)
			}
		}
	}
	numSub := func(namespace string) int64 {
		t.Helper()
		channel := Channel(namespace)
		got, err := s.Client.PubSubNumSub(ctx, channel).Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		return got[channel]
	}

	// Ending with Add: b is subscribed, and its messages flow.
	toggle(true, barrier1)
	if n := numSub(b); n != 1 {
		t.Fatalf("%d subscribers on %q after the last Add, want 1", n, b)
	}
	publishKey(t, s.Client, b, "final")
	r.expectDelivery(t, b, "final")

	// Ending with Remove (the first Add is a no-op): b is not subscribed.
	toggle(false, barrier2)
	if n := numSub(b); n != 0 {
		t.Fatalf("%d subscribers on %q after the last Remove, want 0", n, b)
	}
	publishKey(t, s.Client, b, "removed")
	publishKey(t, s.Client, a, "kept")
	r.expectDelivery(t, a, "kept")

	r.noState(t, 50*time.Millisecond)
	if err := sub.LastError(); err != nil {
		t.Fatalf("LastError() = %v", err)
	}
}

// Subscribed is reported per channel, Broken once for the whole connection
// (channel ""), and a Gap on the channel of the message.
func TestSubscriberStatesPerChannel(t *testing.T) {
	s := redistest.NewOwn(t)
	chans := channels(s, 3)
	name := s.Namespace
	r := newRecorder()
	sub := start(t, s.NewClient(name), r.options(chans...))
	r.subscribed(t, chans...)

	publish(t, s.Client, chans[1], nextVersion())
	r.nextStateOn(t, Gap, chans[1])

	s.KillPubSub(name)
	r.nextState(t, Broken, wait)
	r.subscribed(t, chans...)
	r.noState(t, 50*time.Millisecond)
	if !sub.Ready() {
		t.Fatal("Ready() = false after resubscribing")
	}
}

// With no channel, the Subscriber still connects: Ready says when, no
// Subscribed is reported, and the loss of that connection is Broken.
func TestSubscriberReadyWithoutChannels(t *testing.T) {
	s := redistest.NewOwn(t)
	r := newRecorder()
	opts := r.options()
	opts.MaxBackoff = 5 * time.Millisecond
	sub := start(t, s.NewClient(""), opts)
	waitReady(t, sub)
	r.noState(t, 50*time.Millisecond)

	s.Restart() // a connection that never subscribed is no pub/sub one to kill
	r.nextState(t, Broken, wait)
	waitReady(t, sub)

	ch := channels(s, 1)[0]
	if err := sub.Add(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	r.nextStateOn(t, Subscribed, ch)
	publishKey(t, s.Client, ch, "k")
	r.expectDelivery(t, ch, "k")
}

func waitReady(t *testing.T, sub *Subscriber) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !sub.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("not Ready within %v; LastError() = %v", wait, sub.LastError())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSubscriberAddRemoveAfterClose(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	r := newRecorder()
	sub, err := Subscribe(client, r.options("a"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sub.Add(ctx, ""); err == nil || err.Error() != "invalidate: Add: namespace must not be empty" {
		t.Errorf("Add(\"\") = %v", err)
	}
	// Without a connection, the set changes all the same.
	if err := sub.Add(ctx, "b"); err != nil {
		t.Errorf("Add while disconnected: %v", err)
	}
	if err := sub.Remove(ctx, "a"); err != nil {
		t.Errorf("Remove while disconnected: %v", err)
	}
	_ = sub.Close()
	if err := sub.Add(ctx, "c"); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
	if err := sub.Remove(ctx, "b"); !errors.Is(err, ErrClosed) {
		t.Errorf("Remove after Close = %v, want ErrClosed", err)
	}
}

// Add and Remove may be called from the callbacks: here OnState adds b
// once a is confirmed, and removes a once b is.
func TestSubscriberAddFromCallback(t *testing.T) {
	s := redistest.New(t)
	chans := channels(s, 2)
	a, b := chans[0], chans[1]
	r := newRecorder()
	opts := r.options(a)
	var subp atomic.Pointer[Subscriber]
	stored := make(chan struct{}) // closed once subp is set
	errs := make(chan error, 2)
	opts.OnState = func(st State, channel string, err error) {
		<-stored
		if st == Subscribed {
			switch channel {
			case a:
				errs <- subp.Load().Add(context.Background(), b)
			case b:
				errs <- subp.Load().Remove(context.Background(), a)
			}
		}
		r.onState(st, channel, err)
	}
	sub, err := Subscribe(s.NewClient(""), opts)
	if err != nil {
		t.Fatal(err)
	}
	subp.Store(sub)
	close(stored)
	t.Cleanup(func() { _ = sub.Close() })
	r.nextStateOn(t, Subscribed, a)
	r.nextStateOn(t, Subscribed, b)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitNumSub(t, s.Client, a, 0)
	publishKey(t, s.Client, a, "gone")
	publishKey(t, s.Client, b, "here")
	r.expectDelivery(t, b, "here")
	r.noState(t, 50*time.Millisecond)
}
