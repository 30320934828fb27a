package invalidate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	wire "github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/invalidate"
	"github.com/tiercache/tiercache/tiered"
)

func newPublisher(t *testing.T, client redis.UniversalClient, ns string) *invalidate.Publisher {
	t.Helper()
	p, err := invalidate.NewPublisher(client, ns)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A writer that holds no cache changes keys with plain commands: the cache
// keeps serving its local copies until the Publisher tells it, and then
// returns the new values.
func TestPublisherInvalidates(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	c := newCache(t, s.NewClient(""), s.Namespace)
	writer := s.NewClient("")
	p := newPublisher(t, writer, s.Namespace)

	holdLocally(t, c, "k", "old")
	if err := writer.Set(ctx, s.Namespace+":k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k"); v != "old" || err != nil {
		t.Fatalf("before any message, Get = %q, %v; want the local copy", v, err)
	}
	if err := p.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	eventuallyGets(t, time.Now(), c, "k", "new")

	holdLocally(t, c, "a", "old")
	holdLocally(t, c, "b", "old")
	for _, k := range []string{"a", "b"} {
		if err := writer.Set(ctx, s.Namespace+":"+k, "new "+k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventuallyGets(t, start, c, "a", "new a")
	eventuallyGets(t, start, c, "b", "new b")
}

// What a Publisher sends is what the doc says: version 3, its own origin
// every time, the send time, the keys, the position in the log; and nothing
// for no keys.
func TestPublisherFollowsTheDoc(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	ps := s.NewClient("").Subscribe(ctx, "tiercache:invalidate:"+s.Namespace)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	next := func() docMessage {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return parseAsDoc(t, []byte(m.Payload))
	}
	p, other := newPublisher(t, s.Client, s.Namespace), newPublisher(t, s.Client, s.Namespace)

	before := uint64(time.Now().Add(-time.Second).UnixNano())
	if err := p.Invalidate(ctx); err != nil { // no keys: nothing sent
		t.Fatal(err)
	}
	if err := p.Invalidate(ctx, "user:1", "", "a:b"); err != nil {
		t.Fatal(err)
	}
	m := next()
	after := uint64(time.Now().Add(time.Second).UnixNano())
	if m.version != 3 || m.position == 0 || m.flags != 0 || !slices.Equal(m.keys, []string{"user:1", "", "a:b"}) || m.sent < before || m.sent > after {
		t.Fatalf("Invalidate sent %+v", m)
	}
	if err := p.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	all := next()
	if all.version != 3 || all.position != m.position+1 || all.flags != 1 || len(all.keys) != 0 || !bytes.Equal(all.origin, m.origin) {
		t.Fatalf("InvalidateAll sent %+v; want all, with the origin %x", all, m.origin)
	}
	if err := other.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if o := next().origin; bytes.Equal(o, m.origin) || bytes.Equal(o, make([]byte, 16)) {
		t.Fatalf("two Publishers sent the origin %x", o)
	}
}

// A writer in another language, following the doc: a transaction, the
// scripts by EVAL, or a message published alone, of either version.
func TestAnotherLanguage(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	c := newCache(t, s.NewClient(""), s.Namespace)
	w := s.NewClient("")
	channel := "tiercache:invalidate:" + s.Namespace
	rk := s.Namespace + ":k"
	now := func() uint64 { return uint64(time.Now().UnixNano()) }
	// What the write script is handed: version 3, to which it appends the
	// position it gives the write. (A version 2 message would take a
	// position all the same, and the caches, learning of it from the log at
	// the next message, would drop its keys a second time.)
	message := func(keys ...string) []byte { return buildAsDoc(3, now(), keys...) }

	steps := []struct {
		name    string
		value   string // what the cache returns after; "" for not found
		expires bool   // the key has a TTL after
		write   func() error
	}{
		{"MULTI SET PUBLISH EXEC", "tx", true, func() error {
			_, err := w.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, rk, "tx", time.Minute)
				p.Publish(ctx, channel, buildAsDoc(2, now(), "k"))
				return nil
			})
			return err
		}},
		{"EVAL WriteScript", "script", true, func() error {
			return w.Eval(ctx, invalidate.WriteScript(), []string{rk}, s.Namespace, message("k"), "", "c", 10000,
				"S", "script", 60000, "").Err()
		}},
		{"EVAL WriteScript without expiry", "no expiry", false, func() error {
			return w.Eval(ctx, invalidate.WriteScript(), []string{rk}, s.Namespace, message("k"), "", "c", 10000,
				"S", "no expiry", 0, "").Err()
		}},
		{"SET, then PUBLISH version 1", "v1", false, func() error {
			if err := w.Set(ctx, rk, "v1", 0).Err(); err != nil {
				return err
			}
			return w.Publish(ctx, channel, buildAsDoc(1, 0, "k")).Err()
		}},
		{"EVAL WriteScript, a delete", "", false, func() error {
			return w.Eval(ctx, invalidate.WriteScript(), []string{rk}, s.Namespace, message("k"), "", "c", 10000,
				"D", "", 0, "").Err()
		}},
	}
	for _, st := range steps {
		holdLocally(t, c, "k", "old")
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		start := time.Now()
		if st.value != "" {
			eventuallyGets(t, start, c, "k", st.value)
			if d := w.PTTL(ctx, rk).Val(); (st.expires && d <= 0) || (!st.expires && d != -1) {
				t.Fatalf("%s: PTTL %v", st.name, d)
			}
			continue
		}
		for {
			_, err := c.Get(ctx, "k")
			if errors.Is(err, tiered.ErrNotFound) {
				break
			}
			if time.Since(start) > invalidationBound {
				t.Fatalf("%s: Get = %v, not ErrNotFound within %v", st.name, err, invalidationBound)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := w.Exists(ctx, rk).Val(); n != 0 {
		t.Fatal("the script's delete left the key")
	}
}

// buildAsDoc builds a message of the version by the doc, as a writer in
// another language would, with an origin of its own and no position; sent
// is left out of version 1.
func buildAsDoc(version byte, sent uint64, keys ...string) []byte {
	b := []byte{version, 0}
	b = append(b, bytes.Repeat([]byte{0xab}, 16)...)
	if version > 1 {
		b = binaryAppend(b, sent)
	}
	b = binaryAppend(b, uint64(len(keys)))
	for _, k := range keys {
		b = append(binaryAppend(b, uint64(len(k))), k...)
	}
	return b
}

// binaryAppend appends v as a varint.
func binaryAppend(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// NewPublisher refuses a bad namespace, naming it, and a client the caches
// cannot be reached through; the default namespace is "cache".
func TestNewPublisher(t *testing.T) {
	s := redistest.New(t)
	for _, ns := range []string{"a:b", "tiercache", "a b"} {
		_, err := invalidate.NewPublisher(s.Client, ns)
		if err == nil || !strings.HasPrefix(err.Error(), "invalidate: namespace: ") || !strings.Contains(err.Error(), fmt.Sprintf("%q", ns)) {
			t.Errorf("NewPublisher(%q): %v; want an error naming the namespace", ns, err)
		}
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": s.Addr}})
	t.Cleanup(func() { _ = ring.Close() })
	var nilClient *redis.Client
	for name, c := range map[string]redis.UniversalClient{"nil": nil, "nil pointer": nilClient, "ring": ring} {
		if _, err := invalidate.NewPublisher(c, "ns"); err == nil || !strings.HasPrefix(err.Error(), "invalidate: ") {
			t.Errorf("NewPublisher with a %s client: %v; want an error", name, err)
		}
	}

	ctx := context.Background()
	ps := s.NewClient("").Subscribe(ctx, wire.Channel("cache"))
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newPublisher(t, s.Client, "").Invalidate(ctx, s.Namespace); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for { // other tests' publishers may share the default channel
		m, err := ps.ReceiveMessage(rctx)
		if err != nil {
			t.Fatalf("nothing on the default namespace's channel: %v", err)
		}
		if dm := parseAsDoc(t, []byte(m.Payload)); slices.Equal(dm.keys, []string{s.Namespace}) {
			break
		}
	}
}

// A call returns when its ctx ends, with an error naming the call.
func TestPublisherCtx(t *testing.T) {
	s := redistest.New(t)
	p := newPublisher(t, s.Client, s.Namespace)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Invalidate(ctx, "k")
	want := fmt.Sprintf(`invalidate: invalidate "k" in namespace %q: context canceled`, s.Namespace)
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Fatalf("Invalidate with a cancelled ctx: %v; want %s", err, want)
	}
	if err := p.InvalidateAll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("InvalidateAll with a cancelled ctx: %v", err)
	}
}
