package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The tests in this file each reproduce a hole that an attack on the cache
// found (issue "Every guarantee holds under attack"); each failed before its
// fix.

// Item 1: a Get that begins after an invalidation of its key was applied
// never joins a read that began before it.
func TestGetNeverJoinsAReadOvertakenByAnInvalidation(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)

	g := newGate(t, false, true) // b's first read has v1 and is held there
	first := async(func() (string, error) { return b.Get(g.ctx(bg), "k") })
	g.waitAfter(t)
	if err := a.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	applied(t, 2, b) // b has dropped k: a Get that begins now must see v2

	second := async(func() (string, error) { return b.Get(bg, "k") })
	time.AfterFunc(200*time.Millisecond, g.releaseAfter) // a joined Get would wait for this
	if got, err := await(t, second); err != nil || got != "v2" {
		t.Fatalf("Get begun after the invalidation = %q, %v; want v2", got, err)
	}
	if got, err := await(t, first); err != nil || got != "v1" {
		t.Fatalf("the held Get = %q, %v; want v1 (it began before the write)", got, err)
	}
	if got, err := b.Get(bg, "k"); err != nil || got != "v2" {
		t.Fatalf("b then holds %q, %v; want v2", got, err)
	}
}

// Item 1, on the writer: its own Set did not leave the value in its local
// tier (evicted at once from a one-entry tier), and a read of the old value
// was in progress; a Get after Set returned must not join that read.
func TestGetAfterOwnSetNeverJoinsAnOlderRead(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{LocalSize: 1})
	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	evict := func() {
		if err := a.Set(bg, "other", "x"); err != nil {
			t.Fatal(err)
		}
	}
	evict()
	g := newGate(t, false, true)
	first := async(func() (string, error) { return a.Get(g.ctx(bg), "k") })
	g.waitAfter(t) // the read of v1 is held
	if err := a.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	evict()
	second := async(func() (string, error) { return a.Get(bg, "k") })
	time.AfterFunc(200*time.Millisecond, g.releaseAfter)
	if got, err := await(t, second); err != nil || got != "v2" {
		t.Fatalf("Get after Set(v2) returned nil = %q, %v; want v2", got, err)
	}
	if _, err := await(t, first); err != nil {
		t.Fatal(err)
	}
}

// Item 1, for Fetch: a Fetch begun after an invalidation does not join a
// read-and-load begun before it.
func TestFetchNeverJoinsAFlightOvertakenByAnInvalidation(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	started, release := make(chan struct{}), make(chan struct{})
	slow := func(context.Context) (string, error) { close(started); <-release; return "loaded-old", nil }
	first := async(func() (string, error) { return b.Fetch(bg, "k", slow) })
	waitChan(t, started, "the slow load")
	if err := a.Set(bg, "k", "new"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	got, err := b.Fetch(bg, "k", func(context.Context) (string, error) { return "loaded-new", nil })
	if err != nil || got != "new" {
		t.Fatalf("Fetch begun after the invalidation = %q, %v; want new (from Redis)", got, err)
	}
	if _, err := await(t, first); err != nil {
		t.Fatal(err)
	}
}

// Item 2: a value a Fetch loaded never overwrites a Set that landed while the
// load ran.
func TestFetchLoadNeverOverwritesANewerSet(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	started, release := make(chan struct{}), make(chan struct{})
	load := func(context.Context) (string, error) { close(started); <-release; return "loaded", nil }
	fetch := async(func() (string, error) { return a.Fetch(bg, "k", load) })
	waitChan(t, started, "the load")
	if err := b.Set(bg, "k", "newer"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if got, err := await(t, fetch); err != nil || got != "loaded" {
		t.Fatalf("Fetch = %q, %v; want the loaded value", got, err)
	}
	if raw := s.Client.Get(bg, s.Namespace+":k").Val(); raw != "newer" {
		t.Fatalf("Redis holds %q after the load; want the newer Set's value", raw)
	}
	applied(t, 1, a)
	if got, err := a.Get(bg, "k"); err != nil || got != "newer" {
		t.Fatalf("a Get = %q, %v; want newer", got, err)
	}
	// Nor does a load overtaken by a Delete store what it loaded.
	started, release = make(chan struct{}), make(chan struct{})
	fetch = async(func() (string, error) { return a.Fetch(bg, "d", load) })
	waitChan(t, started, "the second load")
	if err := a.Delete(bg, "d"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := await(t, fetch); err != nil {
		t.Fatal(err)
	}
	if n := s.Client.Exists(bg, s.Namespace+":d").Val(); n != 0 {
		t.Fatal("a load overtaken by a Delete of this instance was stored")
	}
}

// Item 3: namespaces that could alias another's keys are refused, naming the
// field.
func TestNamespacesCannotAlias(t *testing.T) {
	s := redistest.New(t)
	for _, ns := range []string{"a:b", "with space", "ctl\x01", "glob*", "tiercache"} {
		_, err := tiered.New(s.Client, tiered.Options[string]{Namespace: ns})
		if err == nil || !strings.Contains(err.Error(), "tiered: Namespace") {
			t.Errorf("Namespace %q: err = %v; want an error naming tiered's Namespace", ns, err)
		}
	}
}

// Item 4: a message that does not decode (a newer wire version, garbage) may
// have carried invalidations: the instance drops everything it holds.
func TestUndecodableMessagesPurge(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	if got, _ := b.Get(bg, "k"); got != "v1" {
		t.Fatalf("b Get = %q", got)
	}
	for i, junk := range []string{"\x02 a message of wire version 2", "garbage"} {
		// Another program (or a newer release) changed k and said so in a
		// message b cannot read.
		v := fmt.Sprintf("changed-%d", i)
		if err := s.Client.Set(bg, s.Namespace+":k", v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.Client.Publish(bg, invalidate.Channel(s.Namespace), junk).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "b counts the malformed message", func() bool { return b.Stats().Malformed == uint64(i+1) })
		if got, err := b.Get(bg, "k"); err != nil || got != v {
			t.Fatalf("after an undecodable message b returns %q, %v; want %s", got, err, v)
		}
		if got, _ := b.Get(bg, "k"); got != v || !b.Subscribed() {
			t.Fatalf("b stopped using its local tier after a gap: %q, subscribed %v", got, b.Subscribed())
		}
	}
	// Good messages are still applied.
	if err := a.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b applies good messages", func() bool {
		got, _ := b.Get(bg, "k")
		return got == "v2"
	})
}

// recovered runs f and returns what it panicked with, or nil.
func recovered(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// Item 5: a panicking loader reaches the caller that started the load as a
// panic it can recover, the other waiters as an error, and the key stays
// usable.
func TestPanickingLoaderIsContained(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	started, release := make(chan struct{}), make(chan struct{})
	boom := func(context.Context) (string, error) {
		close(started)
		<-release
		panic("loader exploded")
	}
	leader := make(chan any, 1)
	go func() { leader <- recovered(func() { _, _ = a.Fetch(bg, "k", boom) }) }()
	waitChan(t, started, "the load")
	waiter := async(func() (string, error) {
		return a.Fetch(bg, "k", func(context.Context) (string, error) { return "never", nil })
	})
	time.Sleep(20 * time.Millisecond) // let the waiter join the flight
	close(release)
	select {
	case p := <-leader:
		if p == nil || !strings.Contains(fmt.Sprint(p), "loader exploded") {
			t.Fatalf("the leader recovered %v; want the loader's panic", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never returned")
	}
	if _, err := await(t, waiter); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("the waiter got err = %v; want an error saying the load panicked", err)
	}
	got, err := a.Fetch(bg, "k", func(context.Context) (string, error) { return "ok", nil })
	if err != nil || got != "ok" {
		t.Fatalf("Fetch after the panic = %q, %v", got, err)
	}
}

// panicky is a codec whose Unmarshal panics on the bytes "boom".
type panicky struct{}

func (panicky) Marshal(v string) ([]byte, error) { return []byte(v), nil }
func (panicky) Unmarshal(b []byte) (string, error) {
	if string(b) == "boom" {
		panic("codec exploded")
	}
	return string(b), nil
}

// Items 5 and 6: a codec that panics in a shared read (Get's or Fetch's)
// reaches its caller as a panic, the waiters as an error, and never wedges
// the key.
func TestPanickingCodecIsContained(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{Codec: panicky{}})
	if err := s.Client.Set(bg, s.Namespace+":k", "boom", 0).Err(); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, false, true)
	leader := make(chan any, 1)
	go func() { leader <- recovered(func() { _, _ = a.Get(g.ctx(bg), "k") }) }()
	g.waitAfter(t)
	waiter := async(func() (string, error) { return a.Get(bg, "k") })
	time.Sleep(20 * time.Millisecond)
	g.releaseAfter()
	if p := <-leader; p == nil || !strings.Contains(fmt.Sprint(p), "codec exploded") {
		t.Fatalf("the Get leader recovered %v; want the codec's panic", p)
	}
	if _, err := await(t, waiter); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("the waiter got %v; want an error saying the decode panicked", err)
	}
	// The key is not wedged: the next Get runs (and panics) at once.
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	if p := recovered(func() { _, _ = a.Get(ctx, "k") }); p == nil {
		t.Fatal("the next Get did not read again")
	}
	// Fetch's shared read panics on its own goroutine: the caller recovers
	// it, and the process lives.
	if p := recovered(func() { _, _ = a.Fetch(ctx, "k", func(context.Context) (string, error) { return "x", nil }) }); p == nil ||
		!strings.Contains(fmt.Sprint(p), "codec exploded") {
		t.Fatalf("Fetch's caller recovered %v; want the codec's panic", p)
	}
	if err := a.Set(bg, "k", "fine"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, "k"); err != nil || got != "fine" {
		t.Fatalf("Get after the panics = %q, %v", got, err)
	}
}

// Item 7: every call returns within its ctx deadline, with a client that
// does not enforce deadlines itself (go-redis's default), while Redis does
// not answer.
func TestCallsReturnWithinTheirDeadline(t *testing.T) {
	s := redistest.New(t)
	const deadline = 200 * time.Millisecond
	calls := map[string]func(context.Context, *instance[string]) error{
		"Get":    func(ctx context.Context, a *instance[string]) error { _, err := a.Get(ctx, "cold"); return err },
		"Set":    func(ctx context.Context, a *instance[string]) error { return a.Set(ctx, "k", "v2") },
		"Delete": func(ctx context.Context, a *instance[string]) error { return a.Delete(ctx, "k") },
		"Fetch": func(ctx context.Context, a *instance[string]) error {
			_, err := a.Fetch(ctx, "cold", func(context.Context) (string, error) { return "x", nil })
			return err
		},
		"Keys":       func(ctx context.Context, a *instance[string]) error { _, err := a.Keys(ctx); return err },
		"Invalidate": func(ctx context.Context, a *instance[string]) error { return a.Invalidate(ctx, "k") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			p := redistest.NewProxy(t, s.Addr)
			a := newInstanceAt(t, s, p.Addr(), "a", tiered.Options[string]{})
			if err := a.Set(bg, "k", "v"); err != nil {
				t.Fatal(err)
			}
			p.Freeze() // Redis stops answering on every open connection
			ctx, cancel := context.WithTimeout(bg, deadline)
			defer cancel()
			start := time.Now()
			err := call(ctx, a)
			// A call that waited for Redis would take go-redis's
			// ReadTimeout (3s) or forever; a second is a loaded machine's
			// margin.
			if took := time.Since(start); took > deadline+time.Second {
				t.Errorf("%s took %v with a %v deadline", name, took, deadline)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: err = %v; want DeadlineExceeded", name, err)
			}
		})
	}
}

// Item 9: with Redis unreachable, Fetch still answers from its loader (one
// load per key for concurrent callers), stores nothing, and counts it; Get
// fails within its deadline.
func TestFetchFallsBackToTheLoaderWhenRedisIsDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})
	defer client.Close()
	c, err := tiered.New(client, tiered.Options[string]{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (string, error) { loads.Add(1); <-release; return "from-source", nil }
	var wg, started sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			ctx, cancel := context.WithTimeout(bg, 5*time.Second)
			defer cancel()
			v, err := c.Fetch(ctx, "k", load)
			if err == nil && v != "from-source" {
				err = errors.New("Fetch returned " + v)
			}
			errs <- err
		}()
	}
	waitFor(t, 10*time.Second, "the fallback load", func() bool { return loads.Load() == 1 })
	started.Wait()
	time.Sleep(200 * time.Millisecond) // the last callers join the load
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads for 10 concurrent Fetches; want 1", n)
	}
	if st := c.Stats(); st.Fallbacks != 1 || st.LocalEntries != 0 {
		t.Fatalf("stats %+v: want 1 fallback and nothing stored locally", st)
	}
	// A Get that waited for the client's own timeouts (5s to dial) would
	// end long after the deadline; a second is a loaded machine's margin.
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Get(ctx, "k"); err == nil || time.Since(start) > 200*time.Millisecond+time.Second {
		t.Fatalf("Get with Redis down: %v after %v", err, time.Since(start))
	}
}

// Item 10: clients and value types that cannot work are refused by New,
// naming the client's type or the value type.
func TestNewRefusesWhatCannotWork(t *testing.T) {
	s := redistest.New(t)
	var typedNil *redis.Client
	if _, err := tiered.New[string](typedNil, tiered.Options[string]{}); err == nil ||
		!strings.Contains(err.Error(), "*redis.Client") {
		t.Errorf("typed-nil client: err = %v", err)
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": s.Addr, "b": s.Addr}})
	defer ring.Close()
	if _, err := tiered.New[string](ring, tiered.Options[string]{}); err == nil ||
		!strings.Contains(err.Error(), "*redis.Ring") {
		t.Errorf("Ring client: err = %v", err)
	}
	type wrapped struct{ *redis.Client }
	if _, err := tiered.New[string](wrapped{s.Client}, tiered.Options[string]{}); err == nil ||
		!strings.Contains(err.Error(), "wrapped") {
		t.Errorf("wrapped client: err = %v", err)
	}
	type withFunc struct {
		Name string
		F    func()
	}
	if _, err := tiered.New(s.Client, tiered.Options[withFunc]{}); err == nil ||
		!strings.Contains(err.Error(), "withFunc") || !strings.Contains(err.Error(), "Codec") {
		t.Errorf("a value type JSON cannot encode: err = %v", err)
	}
	if _, err := tiered.New(s.Client, tiered.Options[chan int]{}); err == nil {
		t.Error("a chan value type was accepted")
	}
}

// Item 11: a wrong address shows in the errors of calls, not only as
// "context deadline exceeded".
func TestWrongAddressIsReported(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t)})
	defer client.Close()
	c, err := tiered.New(client, tiered.Options[string]{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // the subscriber's first attempts fail
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	_, err = c.Get(ctx, "k")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Get against a closed port: err = %v; want it to name the connection error", err)
	}
}

// Item 12: errors have one prefix and name the namespace and the key;
// errors.Is still matches.
func TestErrorsNameNamespaceAndKey(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	_, err := a.Get(bg, "1")
	if !errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("err = %v; want ErrNotFound", err)
	}
	msg := err.Error()
	want := fmt.Sprintf(`tiered: get "1" in namespace %q: not found`, s.Namespace)
	if msg != want {
		t.Fatalf("error %q; want %q", msg, want)
	}
}
