package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/tiered"
)

var bg = context.Background()

// Guarantee 1: read your writes.
func TestReadYourWrites(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	for i := range 20 {
		v := "v" + strconv.Itoa(i)
		if err := a.Set(bg, "k", v); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Get(bg, "k"); err != nil || got != v {
			t.Fatalf("after Set(%q): Get = %q, %v", v, got, err)
		}
	}
	// The writer answers from its local tier: no Redis read was needed.
	if st := a.Stats(); st.RemoteHits != 0 || st.LocalHits < 20 {
		t.Fatalf("writer stats %+v: want 20 local hits and no Redis read", st)
	}
}

// Guarantee 2: every Set and Delete invalidates every other instance; an
// instance ignores its own messages and keeps its fresh value.
func TestInvalidationReachesOtherInstances(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	c := newInstance(t, s, "c", tiered.Options[string]{})

	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	// The message of that Set could otherwise land after b's and c's reads
	// below and (rightly) drop what they read.
	applied(t, 1, b, c)
	for _, in := range []*instance[string]{b, c} {
		if got, err := in.Get(bg, "k"); err != nil || got != "v1" {
			t.Fatalf("%s: Get = %q, %v", in.name, got, err)
		}
		if got, _ := in.Get(bg, "k"); got != "v1" || in.Stats().LocalHits != 1 {
			t.Fatalf("%s did not cache v1 locally: %+v", in.name, in.Stats())
		}
	}
	if err := a.Set(bg, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance[string]{b, c} {
		waitFor(t, 10*time.Second, in.name+" sees v2", func() bool {
			got, err := in.Get(bg, "k")
			return err == nil && got == "v2"
		})
	}
	if err := b.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance[string]{a, c} {
		waitFor(t, 10*time.Second, in.name+" sees the delete", func() bool {
			_, err := in.Get(bg, "k")
			return errors.Is(err, tiered.ErrNotFound)
		})
	}
}

func TestOwnMessagesAreIgnored(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "k", "mine"); err != nil {
		t.Fatal(err)
	}
	// Messages reach a in publish order: once b's later message is applied,
	// a has processed its own.
	if err := b.Invalidate(bg, "unrelated"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a applies b's message", func() bool { return a.Stats().Invalidations == 1 })
	before := a.Stats()
	if got, err := a.Get(bg, "k"); err != nil || got != "mine" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if after := a.Stats(); after.LocalHits != before.LocalHits+1 || after.RemoteHits != before.RemoteHits {
		t.Fatalf("the writer dropped its own value on its own message: %+v -> %+v", before, after)
	}
}

// Guarantee 3: the Redis write and its invalidation go together, in one round
// trip; Delete of several keys sends one message.
func TestWritesAreOneRoundTripWithTheirMessage(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	trips := &redistest.RoundTrips{}
	a.client.AddHook(trips)

	sub := s.Client.Subscribe(bg, invalidate.Channel(s.Namespace))
	defer sub.Close()
	if _, err := sub.Receive(bg); err != nil {
		t.Fatal(err)
	}
	next := func() invalidate.Message {
		t.Helper()
		m, err := sub.ReceiveMessage(bg)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := invalidate.Decode([]byte(m.Payload))
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	for _, k := range []string{"k1", "k2", "k3"} {
		trips.Reset()
		if err := a.Set(bg, k, "v"); err != nil {
			t.Fatal(err)
		}
		if n := trips.Count(); n != 1 {
			t.Fatalf("Set took %d round trips, want 1", n)
		}
		if msg := next(); len(msg.Keys) != 1 || msg.Keys[0] != k {
			t.Fatalf("Set(%s) published %+v", k, msg)
		}
	}
	trips.Reset()
	if err := a.Delete(bg, "k1", "k2", "k3"); err != nil {
		t.Fatal(err)
	}
	if n := trips.Count(); n != 1 {
		t.Fatalf("Delete took %d round trips, want 1", n)
	}
	if msg := next(); strings.Join(msg.Keys, ",") != "k1,k2,k3" {
		t.Fatalf("Delete published %+v, want one message for k1,k2,k3", msg)
	}
	if n := s.Client.Exists(bg, s.Namespace+":k1", s.Namespace+":k2", s.Namespace+":k3").Val(); n != 0 {
		t.Fatalf("%d keys survived Delete", n)
	}
}

// Guarantee 4: a value read from Redis before another instance's
// invalidation arrived is not stored after it.
func TestNoStaleFillAcrossInstances(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := a.Set(bg, "k", "old"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	g := newGate(t, false, true)
	fill := async(func() (string, error) { return b.Get(g.ctx(bg), "k") })
	g.waitAfter(t) // b has read "old" from Redis and not yet stored it

	if err := a.Set(bg, "k", "new"); err != nil {
		t.Fatal(err)
	}
	applied(t, 2, b)
	g.releaseAfter()
	if got, err := await(t, fill); err != nil || got != "old" {
		t.Fatalf("the gated Get = %q, %v; want old (read before the write)", got, err)
	}
	if got, err := b.Get(bg, "k"); err != nil || got != "new" {
		t.Fatalf("after the invalidation b returns %q, %v; want new", got, err)
	}
}

// Guarantee 4 on one instance: whatever order Redis applies two racing Sets
// in, and whatever order they complete in, the writer's local tier ends
// holding what Redis holds, or nothing.
func TestRacingWritesOfOneInstance(t *testing.T) {
	type step func(t *testing.T, a *instance[string]) (redisWins string)
	set := func(a *instance[string], g *gate, v string) <-chan asyncResult[struct{}] {
		return async(func() (struct{}, error) { return struct{}{}, a.Set(g.ctx(bg), "k", v) })
	}
	done := func(t *testing.T, ch <-chan asyncResult[struct{}]) {
		t.Helper()
		if _, err := await(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]step{
		"redis 1,2 / complete 1,2": func(t *testing.T, a *instance[string]) string {
			g2 := newGate(t, true, false)
			s2 := set(a, g2, "v2")
			g2.waitBefore(t) // s2 took its token
			done(t, set(a, newGate(t, false, false), "v1"))
			g2.releaseBefore()
			done(t, s2)
			return "v2"
		},
		"redis 1,2 / complete 2,1": func(t *testing.T, a *instance[string]) string {
			g1 := newGate(t, false, true)
			s1 := set(a, g1, "v1")
			g1.waitAfter(t) // v1 applied, s1 not settled
			done(t, set(a, newGate(t, false, false), "v2"))
			g1.releaseAfter()
			done(t, s1)
			return "v2"
		},
		"redis 2,1 / complete 2,1": func(t *testing.T, a *instance[string]) string {
			g1 := newGate(t, true, false)
			s1 := set(a, g1, "v1")
			g1.waitBefore(t)
			done(t, set(a, newGate(t, false, false), "v2"))
			g1.releaseBefore()
			done(t, s1)
			return "v1"
		},
		"redis 2,1 / complete 1,2": func(t *testing.T, a *instance[string]) string {
			g1 := newGate(t, true, false)
			g2 := newGate(t, false, true)
			s1 := set(a, g1, "v1")
			g1.waitBefore(t)
			s2 := set(a, g2, "v2")
			g2.waitAfter(t) // v2 applied first
			g1.releaseBefore()
			done(t, s1) // v1 applied second, s1 settles first
			g2.releaseAfter()
			done(t, s2)
			return "v1"
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			s := redistest.New(t)
			a := newInstance(t, s, "a", tiered.Options[string]{})
			want := run(t, a)
			inRedis, err := s.Client.Get(bg, s.Namespace+":k").Result()
			if err != nil || inRedis != want {
				t.Fatalf("Redis holds %q, %v; the scenario expects %q", inRedis, err, want)
			}
			if got, err := a.Get(bg, "k"); err != nil || got != inRedis {
				t.Fatalf("writer's Get = %q, %v; Redis holds %q", got, err, inRedis)
			}
		})
	}
}

// A fill racing with a write of the same instance must not leave the
// pre-write value behind.
func TestFillRacingOwnWrite(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := s.Client.Set(bg, s.Namespace+":k", "old", 0).Err(); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, false, true)
	fill := async(func() (string, error) { return a.Get(g.ctx(bg), "k") })
	g.waitAfter(t)
	if err := a.Set(bg, "k", "new"); err != nil {
		t.Fatal(err)
	}
	g.releaseAfter()
	if _, err := await(t, fill); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get(bg, "k"); got != "new" {
		t.Fatalf("Get = %q after Set(new) returned, want new", got)
	}
}

// Guarantee 5: a lost subscription purges and bypasses the local tier until
// it is confirmed again; an instance never goes back to an older value.
func TestLostSubscriptionNeverServesOldValues(t *testing.T) {
	s := redistest.NewOwn(t)
	a := newInstance(t, s, "a", tiered.Options[int]{})
	b := newInstance(t, s, "b", tiered.Options[int]{HealthCheck: 100 * time.Millisecond})
	if err := a.Set(bg, "n", 0); err != nil {
		t.Fatal(err)
	}

	var (
		stop    atomic.Bool
		written atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Value
	)
	wg.Add(2)
	go func() { // the writer
		defer wg.Done()
		for i := 1; !stop.Load(); i++ {
			if err := a.Set(bg, "n", i); err != nil {
				if s.Real() {
					failure.Store(fmt.Sprintf("writer: %v", err))
					return
				}
				i-- // the embedded server is restarting: try again
				time.Sleep(time.Millisecond)
				continue
			}
			written.Store(int64(i))
		}
	}()
	go func() { // the reader: values it sees never go back
		defer wg.Done()
		last := -1
		for !stop.Load() {
			v, err := b.Get(bg, "n")
			if err != nil {
				if s.Real() {
					failure.Store(fmt.Sprintf("reader: %v", err))
					return
				}
				continue
			}
			if v < last {
				failure.Store(fmt.Sprintf("b returned %d after %d", v, last))
				return
			}
			last = v
		}
	}()

	for round := range 3 {
		waitFor(t, 10*time.Second, "b subscribed", b.Subscribed)
		time.Sleep(50 * time.Millisecond) // let b serve from its local tier
		breaks := b.Stats().Breaks
		s.KillPubSub(b.name)
		waitFor(t, 10*time.Second, fmt.Sprintf("round %d: b notices the lost subscription", round),
			func() bool { return b.Stats().Breaks > breaks })
		time.Sleep(20 * time.Millisecond) // writes go on while b is down or resubscribing
	}
	waitFor(t, 10*time.Second, "b subscribed again", b.Subscribed)
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	final := int(written.Load())
	waitFor(t, 10*time.Second, "b sees the last write", func() bool {
		v, err := b.Get(bg, "n")
		return err == nil && v == final
	})
	if st := b.Stats(); st.Breaks < 3 || st.LocalHits == 0 {
		t.Fatalf("b's stats %+v: want >= 3 breaks and local hits", st)
	}
}

// Guarantee 5, deterministically: while an instance's subscription is down it
// can still reach Redis, but hears no invalidation. It must then bypass its
// local tier (every read goes to Redis), and a read that began while the
// subscription was down must not fill the local tier after it is back.
func TestBypassWhileSubscriptionIsDown(t *testing.T) {
	s := redistest.New(t)
	p := redistest.NewProxy(t, s.Addr)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstanceAt(t, s, p.Addr(), "b", tiered.Options[string]{HealthCheck: 100 * time.Millisecond})

	if err := a.Set(bg, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, b)
	for range 2 {
		if got, err := b.Get(bg, "k"); err != nil || got != "v1" {
			t.Fatalf("b Get = %q, %v", got, err)
		}
	}
	if b.Stats().LocalHits != 1 {
		t.Fatalf("b did not cache v1: %+v", b.Stats())
	}

	p.CutPubSub(true)
	waitFor(t, 10*time.Second, "b notices the lost subscription", func() bool { return b.Stats().Breaks == 1 })
	if b.Subscribed() {
		t.Fatal("b reports Subscribed with its subscription cut")
	}
	for i := 2; i <= 4; i++ {
		v := "v" + strconv.Itoa(i)
		if err := a.Set(bg, "k", v); err != nil { // b never hears of it
			t.Fatal(err)
		}
		if got, err := b.Get(bg, "k"); err != nil || got != v {
			t.Fatalf("b Get = %q, %v while its subscription is down; Redis holds %s", got, err, v)
		}
	}

	g := newGate(t, false, true)
	fill := async(func() (string, error) { return b.Get(g.ctx(bg), "k") })
	g.waitAfter(t) // b read v4 while unsubscribed
	if err := a.Set(bg, "k", "v5"); err != nil {
		t.Fatal(err)
	}
	p.CutPubSub(false)
	waitFor(t, 10*time.Second, "b subscribed again", b.Subscribed)
	g.releaseAfter()
	if got, err := await(t, fill); err != nil || got != "v4" {
		t.Fatalf("gated Get = %q, %v; want v4", got, err)
	}
	if got, err := b.Get(bg, "k"); err != nil || got != "v5" {
		t.Fatalf("after resubscribing b returns %q, %v; Redis holds v5", got, err)
	}
	if st := b.Stats(); st.Bypassed < 4 {
		t.Fatalf("b's stats %+v: want its reads while down counted as Bypassed", st)
	}
}

// Guarantee 8: bytes in Redis that do not decode are an error naming the key,
// and Fetch reloads and overwrites them.
func TestUndecodableValues(t *testing.T) {
	type user struct{ Name string }
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[user]{})
	if err := s.Client.Set(bg, s.Namespace+":u1", "{not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := a.Get(bg, "u1")
	if err == nil || errors.Is(err, tiered.ErrNotFound) || !strings.Contains(err.Error(), `"u1"`) {
		t.Fatalf("Get of undecodable bytes: err = %v; want a decode error naming u1", err)
	}
	loads := 0
	got, err := a.Fetch(bg, "u1", func(context.Context) (user, error) { loads++; return user{"ann"}, nil })
	if err != nil || got.Name != "ann" || loads != 1 {
		t.Fatalf("Fetch = %+v, %v after %d loads; want ann after 1", got, err, loads)
	}
	if raw := s.Client.Get(bg, s.Namespace+":u1").Val(); raw != `{"Name":"ann"}` {
		t.Fatalf("Fetch did not overwrite the bad bytes: Redis holds %q", raw)
	}
	if st := a.Stats(); st.DecodeErrors != 2 {
		t.Fatalf("DecodeErrors = %d, want 2", st.DecodeErrors)
	}
}

func TestInvalidateAndInvalidateAll(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	for _, k := range []string{"x", "y"} {
		if err := a.Set(bg, k, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	applied(t, 2, b)
	for _, k := range []string{"x", "y"} {
		if _, err := b.Get(bg, k); err != nil {
			t.Fatal(err)
		}
	}
	// Another program rewrites Redis behind the caches' backs: no message.
	for _, k := range []string{"x", "y"} {
		s.Client.Set(bg, s.Namespace+":"+k, "v2", 0)
	}
	if got, _ := b.Get(bg, "x"); got != "v1" {
		t.Fatalf("b Get(x) = %q; the local copy should still be served", got)
	}
	if err := a.Invalidate(bg, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b drops x", func() bool { got, _ := b.Get(bg, "x"); return got == "v2" })
	if got, _ := a.Get(bg, "x"); got != "v2" {
		t.Fatalf("a Get(x) = %q after its own Invalidate, want v2", got)
	}
	if err := a.InvalidateAll(bg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b drops y", func() bool { got, _ := b.Get(bg, "y"); return got == "v2" })
}

func TestKeys(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	for _, k := range []string{"b", "a:1", "c"} {
		if err := a.Set(bg, k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := a.Keys(bg)
	if err != nil || strings.Join(keys, ",") != "a:1,b,c" {
		t.Fatalf("Keys = %q, %v", keys, err)
	}
}

func TestDefaultCodecs(t *testing.T) {
	s := redistest.New(t)
	str := newInstance(t, s, "s", tiered.Options[string]{Namespace: s.Namespace + "-s"})
	byt := newInstance(t, s, "b", tiered.Options[[]byte]{Namespace: s.Namespace + "-b"})
	js := newInstance(t, s, "j", tiered.Options[map[string]int]{Namespace: s.Namespace + "-j"})
	if err := str.Set(bg, "k", "raw text"); err != nil {
		t.Fatal(err)
	}
	if err := byt.Set(bg, "k", []byte{0, 1, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := js.Set(bg, "k", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		s.Namespace + "-s:k": "raw text", s.Namespace + "-b:k": "\x00\x01\xff", s.Namespace + "-j:k": `{"a":1}`,
	} {
		if got := s.Client.Get(bg, key).Val(); got != want {
			t.Errorf("Redis %s = %q, want %q", key, got, want)
		}
	}
}

func TestSetWithTTL(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{TTL: time.Hour})
	if err := a.Set(bg, "default", "v"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetWithTTL(bg, "short", "v", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.SetWithTTL(bg, "forever", "v", 0); err != nil {
		t.Fatal(err)
	}
	pttl := func(k string) time.Duration { return s.Client.PTTL(bg, s.Namespace+":"+k).Val() }
	if d := pttl("default"); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("Set used TTL %v, want ~1h", d)
	}
	if d := pttl("short"); d <= time.Second || d > 2*time.Second {
		t.Errorf("SetWithTTL(2s) gave %v", d)
	}
	if d := pttl("forever"); d >= 0 {
		t.Errorf("SetWithTTL(0) set an expiry: %v", d)
	}
	if err := a.SetWithTTL(bg, "bad", "v", -time.Second); err == nil {
		t.Error("SetWithTTL with a negative TTL succeeded")
	}
}

func TestOptionsValidation(t *testing.T) {
	s := redistest.New(t)
	if _, err := tiered.New[string](nil, tiered.Options[string]{}); err == nil || !strings.Contains(err.Error(), "client") {
		t.Errorf("New(nil client) err = %v, want one naming the client", err)
	}
	for field, opts := range map[string]tiered.Options[string]{
		"TTL":          {TTL: -1},
		"LocalTTL":     {LocalTTL: -time.Second},
		"LoadTimeout":  {LoadTimeout: -1},
		"HealthCheck":  {HealthCheck: time.Microsecond},
		"LocalShards":  {LocalShards: 3},
		"StaleIfError": {StaleIfError: time.Microsecond},
		"RefreshAhead": {RefreshAhead: 1},
		"TTLJitter":    {TTLJitter: -0.1},
		"LeaseTTL":     {LeaseTTL: time.Nanosecond},
		"NotFoundTTL":  {NotFoundTTL: -1},
		"Namespace":    {Namespace: "a b"},
	} {
		c, err := tiered.New(s.Client, opts)
		if err == nil {
			c.Close()
			t.Errorf("New with a bad %s succeeded", field)
			continue
		}
		if !strings.Contains(err.Error(), field) {
			t.Errorf("New with a bad %s: error %q does not name it", field, err)
		}
	}
	// The local tier's size bounds the shards: the rule is the local
	// tier's, and the error leads with tiered's field.
	if _, err := tiered.New(s.Client, tiered.Options[string]{LocalSize: 4, LocalShards: 8}); err == nil ||
		!strings.HasPrefix(err.Error(), "tiered: LocalShards: ") {
		t.Errorf("New with more shards than LocalSize: %v", err)
	}
	// What needs the local tier is refused without it, naming both fields.
	for field, opts := range map[string]tiered.Options[string]{
		"LocalShards":  {LocalSize: -1, LocalShards: 4},
		"LocalTTL":     {LocalSize: -1, LocalTTL: time.Second},
		"StaleIfError": {LocalSize: -1, StaleIfError: time.Second},
		"RefreshAhead": {LocalSize: -1, RefreshAhead: 0.5},
	} {
		c, err := tiered.New(s.Client, opts)
		if err == nil {
			c.Close()
			t.Errorf("New with %s and no local tier succeeded", field)
			continue
		}
		if !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), "LocalSize") {
			t.Errorf("New with %s and no local tier: error %q does not name both fields", field, err)
		}
	}
	// Two invalid fields are both reported.
	_, err := tiered.New(s.Client, tiered.Options[string]{TTL: -1, LoadTimeout: -1})
	if err == nil || !strings.Contains(err.Error(), "TTL") || !strings.Contains(err.Error(), "LoadTimeout") {
		t.Errorf("New with two bad fields: %v", err)
	}
}

// Every bad field is reported, each in an error of its own that names it:
// the namespace, the local tier's and the subscription's fields too, with
// New and with NewCache (whose HealthCheck is the Hub's).
func TestOptionsValidationReportsEveryField(t *testing.T) {
	s := redistest.New(t)
	bad := tiered.Options[string]{Namespace: "a b", LocalShards: 3, LocalMaxBytes: -1, TTL: -1,
		LoadTimeout: -1, HealthCheck: time.Microsecond, TTLJitter: 2}
	fields := []string{"Namespace", "LocalShards", "LocalMaxBytes", "TTL", "LoadTimeout", "HealthCheck", "TTLJitter"}
	check := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s with %d bad fields: no error", name, len(fields))
		}
		j, ok := err.(interface{ Unwrap() []error })
		if !ok {
			t.Fatalf("%s: %q is one error, want one per field", name, err)
		}
		errs := j.Unwrap()
		for _, f := range fields {
			n := 0
			for _, e := range errs {
				if strings.HasPrefix(e.Error(), "tiered: "+f+" ") || strings.HasPrefix(e.Error(), "tiered: "+f+":") ||
					strings.Contains(e.Error(), ": "+f+" must") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d errors name %s, want 1: %q", name, n, f, err)
			}
		}
		if len(errs) != len(fields) {
			t.Errorf("%s: %d errors, want %d: %q", name, len(errs), len(fields), err)
		}
	}
	c, err := tiered.New(s.Client, bad)
	if err == nil {
		c.Close()
	}
	check("New", err)
	h, _ := newHub(t, s.Addr, s.Namespace+"-h", tiered.HubOptions{})
	c, err = tiered.NewCache(h, bad)
	if err == nil {
		c.Close()
	}
	check("NewCache", err)

	_, err = tiered.NewHub(s.Client, tiered.HubOptions{HealthCheck: time.Microsecond, MaxBackoff: -1,
		MaxStaleness: time.Microsecond, LogLength: -1})
	for _, f := range []string{"HealthCheck", "MaxBackoff", "MaxStaleness", "LogLength"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("NewHub with four bad fields: %v; want one naming %s", err, f)
		}
	}
}

// A negative LocalSize turns the local tier off: every read goes to Redis,
// so a write of another instance shows at once, without its invalidation;
// nothing is counted as bypassed, and WaitReady does not wait.
func TestLocalTierOff(t *testing.T) {
	s := redistest.New(t)
	w := newInstance(t, s, "w", tiered.Options[string]{})
	client := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer client.Close()
	// The Hub's subscription is cut, so no invalidation could reach r: a
	// local tier would serve the old value.
	p := redistest.NewProxy(t, s.Addr)
	pc := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer pc.Close()
	p.CutPubSub(true)
	r, err := tiered.New(pc, tiered.Options[string]{Namespace: s.Namespace, LocalSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady with no local tier: %v", err)
	}
	for i := range 20 {
		v := strconv.Itoa(i)
		if err := w.Set(bg, "k", v); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if got, err := r.Get(bg, "k"); err != nil || got != v {
				t.Fatalf("round %d: Get = %q, %v; want %q", i, got, err, v)
			}
		}
	}
	if err := r.Set(bg, "k", "mine"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "w applies r's invalidation", func() bool {
		got, err := w.Get(bg, "k")
		return err == nil && got == "mine"
	})
	st := r.Stats()
	if st.LocalHits != 0 || st.Bypassed != 0 || st.Unproven != 0 || st.LocalEntries != 0 || r.Subscribed() {
		t.Errorf("with no local tier: %+v, Subscribed %v", st, r.Subscribed())
	}
	if st.RemoteHits != 60 {
		t.Errorf("RemoteHits = %d, want 60 (every Get)", st.RemoteHits)
	}
}

// New must not block on or fail because of a Redis that is down: the cache
// bypasses its local tier and reports Redis's errors on each call.
func TestRedisDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	start := time.Now()
	c, err := tiered.New(client, tiered.Options[string]{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second { // it waits for no dial; a margin for a loaded machine
		t.Fatalf("New took %v with Redis down", d)
	}
	ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "k"); err == nil || errors.Is(err, tiered.ErrNotFound) {
		t.Fatalf("Get with Redis down: err = %v, want a connection error", err)
	}
	if err := c.Set(ctx, "k", "v"); err == nil {
		t.Fatal("Set with Redis down succeeded")
	}
	if c.Subscribed() {
		t.Fatal("Subscribed with Redis down")
	}
	start = time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with Redis down", d)
	}
}

// Guarantee 9: Close is idempotent, safe beside other calls, and every call
// after it returns ErrClosed.
func TestClose(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "k", "v"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = a.Get(bg, "k")
				_ = a.Set(bg, "k2", "v")
				_, _ = a.Fetch(bg, "k3", func(context.Context) (string, error) { return "x", nil })
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	var closers sync.WaitGroup
	for range 3 {
		closers.Add(1)
		go func() { defer closers.Done(); _ = a.Close() }()
	}
	closers.Wait()
	close(stop)
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{
		"Get": func() error { _, err := a.Get(bg, "k"); return err }(),
		"Fetch": func() error {
			_, err := a.Fetch(bg, "k", func(context.Context) (string, error) { return "", nil })
			return err
		}(),
		"Set":    a.Set(bg, "k", "v"),
		"Delete": a.Delete(bg, "k"),
		"Keys":   func() error { _, err := a.Keys(bg); return err }(),
	}
	for op, err := range checks {
		if !errors.Is(err, tiered.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", op, err)
		}
	}
}

// Close cancels a running load's context and waits for it.
func TestCloseCancelsRunningLoads(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	started := make(chan struct{})
	var sawCancel atomic.Bool
	res := async(func() (string, error) {
		return a.Fetch(bg, "slow", func(ctx context.Context) (string, error) {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
			return "", ctx.Err()
		})
	})
	waitChan(t, started, "the load to start")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !sawCancel.Load() {
		t.Fatal("Close returned before the running load ended")
	}
	if _, err := await(t, res); err == nil {
		t.Fatal("a Fetch whose load was cancelled succeeded")
	}
}

func TestLocalHitAllocatesNothing(t *testing.T) {
	s := redistest.New(t)
	a := newInstance(t, s, "a", tiered.Options[string]{})
	if err := a.Set(bg, "k", "v"); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if v, err := a.Get(bg, "k"); err != nil || v != "v" {
			panic("not a hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("a local hit allocates %v times", allocs)
	}
}

var _ = remote.NoExpiry
