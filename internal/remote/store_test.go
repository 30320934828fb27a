package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newStore(t *testing.T) (*remote.Store, *redistest.Server) {
	t.Helper()
	s := redistest.New(t)
	return remote.New(s.Client, remote.Options{Namespace: s.Namespace}), s
}

// The seed's first test: put, get, delete; a missing key is ErrNotFound.
func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	if err := st.Set(ctx, "key", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "key")
	if err != nil || string(got) != "value" {
		t.Fatalf("Get = %q, %v; want value", got, err)
	}
	if err := st.Delete(ctx, "key"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(ctx, "key")
	if !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if errors.Is(err, redis.Nil) {
		t.Fatal("redis.Nil leaked to the caller")
	}
	if !strings.Contains(err.Error(), `"key"`) {
		t.Fatalf("error %q does not name the key", err)
	}
}

// The seed's second test: listing key1, key2 gives exactly those two.
func TestKeysListsExactlyTheNamespace(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	for _, k := range []string{"key1", "key2"} {
		if err := st.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// A neighbour whose namespace starts with ours must not be listed.
	other := remote.New(s.Client, remote.Options{Namespace: s.Namespace + "x"})
	if err := other.Set(ctx, "key3", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	keys, err := st.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"key1", "key2"}) {
		t.Fatalf("Keys = %q, want [key1 key2]", keys)
	}
}

// The seed's third test: a 100 ms TTL is readable at 50 ms and gone after 150 ms.
func TestAutoPurge(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := st.Set(ctx, "key", []byte("value"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.Advance(50 * time.Millisecond)
	if got, err := st.Get(ctx, "key"); err != nil || string(got) != "value" {
		t.Fatalf("at 50ms: Get = %q, %v; want value", got, err)
	}
	s.Advance(100 * time.Millisecond)
	if _, err := st.Get(ctx, "key"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("at 150ms: err = %v, want ErrNotFound", err)
	}
}

func TestDefaultNamespaceAndLayout(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	if got := remote.New(s.Client, remote.Options{}).Namespace(); got != "cache" {
		t.Fatalf("default namespace = %q, want cache", got)
	}
	st := remote.New(s.Client, remote.Options{Namespace: s.Namespace})
	raw := []byte{0, 1, 2, 0xff, 'x'}
	if err := st.Set(ctx, "a:b:c", raw, 0); err != nil {
		t.Fatal(err)
	}
	// Another program reading ns:key sees the raw bytes.
	got, err := s.Client.Get(ctx, s.Namespace+":a:b:c").Bytes()
	if err != nil || string(got) != string(raw) {
		t.Fatalf("raw GET %s:a:b:c = %v, %v; want %v", s.Namespace, got, err, raw)
	}
	if st.RedisKey("a:b:c") != s.Namespace+":a:b:c" {
		t.Fatalf("RedisKey = %q", st.RedisKey("a:b:c"))
	}
	keys, err := st.Keys(ctx)
	if err != nil || !slices.Equal(keys, []string{"a:b:c"}) {
		t.Fatalf("Keys = %q, %v; want [a:b:c]", keys, err)
	}
}

// Namespaces that start alike, or differ only by the punctuation a
// namespace may hold, list only their own keys. Glob characters cannot be
// in a namespace at all (see TestCheckNamespace).
func TestNeighbourNamespaces(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	base := s.Namespace + "-"
	names := []string{"a", "ab", "a.b", "a-b", "a_b", "a.", "a..", "A"}
	stores := map[string]*remote.Store{}
	for _, n := range names {
		st := remote.New(s.Client, remote.Options{Namespace: base + n})
		stores[n] = st
		if err := st.Set(ctx, "k-"+n, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		keys, err := stores[n].Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys, []string{"k-" + n}) {
			t.Errorf("namespace %q lists %q, want only its own key", n, keys)
		}
	}
	for _, n := range []string{"a*", "a?", "a[b]", `a\`, "a:b"} {
		if err := (remote.Options{Namespace: base + n}).Validate(); err == nil {
			t.Errorf("namespace %q accepted", base+n)
		}
	}
}

func TestKeysAcrossManyScanPages(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := remote.New(s.Client, remote.Options{Namespace: s.Namespace, ScanCount: 10})
	const n = 2500
	pipe := s.Client.Pipeline()
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("k:%05d", i)
		pipe.Set(ctx, st.RedisKey(want[i]), "v", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	scans := &redistest.RoundTrips{Only: "scan"}
	s.Client.AddHook(scans)
	keys, err := st.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("Keys returned %d keys, want %d (first %q)", len(keys), n, keys[:min(3, len(keys))])
	}
	if s.Real() && scans.Count() < 2 {
		t.Fatalf("Keys made %d SCAN calls over %d keys with COUNT 10; paging was not exercised", scans.Count(), n)
	}
}

func TestTTLs(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := st.Set(ctx, "forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("forever")).Val(); ttl >= 0 {
		t.Fatalf("TTL 0 set an expiry: PTTL = %v", ttl)
	}
	if err := st.Set(ctx, "short", []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("short")).Val(); ttl <= time.Second || ttl > 1500*time.Millisecond {
		t.Fatalf("TTL 1.5s gave PTTL %v", ttl)
	}
	for _, bad := range []time.Duration{-time.Millisecond, 500 * time.Microsecond} {
		if err := st.Set(ctx, "bad", []byte("v"), bad); err == nil || !strings.Contains(err.Error(), "ttl") {
			t.Errorf("Set with ttl %v: err = %v, want a ttl error", bad, err)
		}
		if err := st.SetAndPublish(ctx, "bad", []byte("v"), bad, "ch", nil); err == nil {
			t.Errorf("SetAndPublish with ttl %v: no error", bad)
		}
	}
	if n := s.Client.Exists(ctx, st.RedisKey("bad")).Val(); n != 0 {
		t.Fatal("a rejected Set wrote its key")
	}
}

func TestGetWithTTL(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := st.Set(ctx, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "forever", []byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	if _, _, err := st.GetWithTTL(ctx, "k"); err != nil { // loads the script on first use
		t.Fatal(err)
	}
	calls.Reset()
	v, ttl, err := st.GetWithTTL(ctx, "k")
	if err != nil || string(v) != "v" || ttl <= 9*time.Second || ttl > 10*time.Second {
		t.Fatalf("GetWithTTL = %q, %v, %v; want v, ~10s", v, ttl, err)
	}
	if calls.Count() != 1 {
		t.Fatalf("GetWithTTL took %d round trips, want 1", calls.Count())
	}
	v, ttl, err = st.GetWithTTL(ctx, "forever")
	if err != nil || string(v) != "w" || ttl != remote.NoExpiry {
		t.Fatalf("GetWithTTL(forever) = %q, %v, %v; want w, NoExpiry", v, ttl, err)
	}
	if _, _, err := st.GetWithTTL(ctx, "missing"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("GetWithTTL(missing) err = %v, want ErrNotFound", err)
	}
}

func TestSetAndPublish(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	ch := "ch:" + s.Namespace
	sub := s.Client.Subscribe(ctx, ch)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	for i, ttl := range []time.Duration{0, 5 * time.Second} {
		calls.Reset()
		payload := fmt.Sprintf("msg-%d", i)
		if err := st.SetAndPublish(ctx, "k", []byte(payload), ttl, ch, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if i > 0 && calls.Count() != 1 { // the first call may load the script
			t.Fatalf("SetAndPublish took %d round trips, want 1", calls.Count())
		}
		msg := receive(t, sub)
		if msg.Payload != payload {
			t.Fatalf("published %q, want %q", msg.Payload, payload)
		}
		if got, _ := st.Get(ctx, "k"); string(got) != payload {
			t.Fatalf("value = %q, want %q", got, payload)
		}
		pttl := s.Client.PTTL(ctx, st.RedisKey("k")).Val()
		if (ttl == 0) != (pttl < 0) || pttl > ttl {
			t.Fatalf("ttl %v gave PTTL %v", ttl, pttl)
		}
	}

	// A cancelled call does neither.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.SetAndPublish(cctx, "other", []byte("x"), 0, ch, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SetAndPublish err = %v, want context.Canceled", err)
	}
	if n := s.Client.Exists(ctx, st.RedisKey("other")).Val(); n != 0 {
		t.Fatal("a cancelled SetAndPublish wrote its key")
	}
	if m, err := sub.ReceiveTimeout(ctx, 100*time.Millisecond); err == nil {
		t.Fatalf("a cancelled SetAndPublish published %v", m)
	}
}

func TestDeleteAndPublish(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	ch := "ch:" + s.Namespace
	sub := s.Client.Subscribe(ctx, ch)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if err := s.Client.Set(ctx, st.RedisKey(keys[i]), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	join := func(ks []string) []byte { return []byte(strings.Join(ks, ",")) }
	if err := st.DeleteAndPublish(ctx, ch, join, "k1", "k2", "absent"); err != nil {
		t.Fatal(err)
	}
	if msg := receive(t, sub); msg.Payload != "k1,k2,absent" {
		t.Fatalf("one message for all keys: got %q", msg.Payload)
	}
	if err := st.DeleteAndPublish(ctx, ch, join, keys...); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 { // 2500 keys go in groups of at most 1000
		got = append(got, strings.Split(receive(t, sub).Payload, ",")...)
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("messages named %d keys, want %d", len(got), len(keys))
	}
	if left, err := st.Keys(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after DeleteAndPublish, Keys = %d keys, %v", len(left), err)
	}
	if err := st.DeleteAndPublish(ctx, ch, join); err != nil {
		t.Fatalf("DeleteAndPublish with no keys: %v", err)
	}
	if m, err := sub.ReceiveTimeout(ctx, 50*time.Millisecond); err == nil {
		t.Fatalf("DeleteAndPublish with no keys published %v", m)
	}
}

func TestDeleteMany(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	for _, k := range []string{"a", "b", "c"} {
		if err := st.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, "a", "c", "missing"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := st.Keys(ctx); !slices.Equal(keys, []string{"b"}) {
		t.Fatalf("Keys = %q, want [b]", keys)
	}
	if err := st.Delete(ctx); err != nil {
		t.Fatalf("Delete with no keys: %v", err)
	}
}

func TestSetIfAbsent(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := s.Client.Ping(ctx).Err(); err != nil { // open the connection first
		t.Fatal(err)
	}
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	stored, err := st.SetIfAbsent(ctx, "k", []byte("loaded"), 5*time.Second)
	if err != nil || !stored {
		t.Fatalf("SetIfAbsent on an absent key = %v, %v; want true, nil", stored, err)
	}
	if calls.Count() != 1 {
		t.Fatalf("SetIfAbsent took %d round trips, want 1", calls.Count())
	}
	if got, _ := st.Get(ctx, "k"); string(got) != "loaded" {
		t.Fatalf("value = %q, want loaded", got)
	}
	if pttl := s.Client.PTTL(ctx, st.RedisKey("k")).Val(); pttl <= 4*time.Second || pttl > 5*time.Second {
		t.Fatalf("ttl 5s gave PTTL %v", pttl)
	}

	// A newer write is there: the loaded value does not replace it, nor its TTL.
	if err := st.Set(ctx, "k", []byte("newer"), 0); err != nil {
		t.Fatal(err)
	}
	stored, err = st.SetIfAbsent(ctx, "k", []byte("stale"), time.Second)
	if err != nil || stored {
		t.Fatalf("SetIfAbsent on a present key = %v, %v; want false, nil", stored, err)
	}
	if got, _ := st.Get(ctx, "k"); string(got) != "newer" {
		t.Fatalf("SetIfAbsent overwrote the value: %q", got)
	}
	if pttl := s.Client.PTTL(ctx, st.RedisKey("k")).Val(); pttl >= 0 {
		t.Fatalf("SetIfAbsent changed the TTL: PTTL %v", pttl)
	}

	// TTL 0: no expiry. Nothing is published.
	sub := s.Client.Subscribe(ctx, "ch:"+s.Namespace)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if stored, err := st.SetIfAbsent(ctx, "forever", []byte("v"), 0); err != nil || !stored {
		t.Fatalf("SetIfAbsent(ttl 0) = %v, %v", stored, err)
	}
	if pttl := s.Client.PTTL(ctx, st.RedisKey("forever")).Val(); pttl >= 0 {
		t.Fatalf("ttl 0 set an expiry: PTTL %v", pttl)
	}
	for _, bad := range []time.Duration{-time.Millisecond, 500 * time.Microsecond} {
		if stored, err := st.SetIfAbsent(ctx, "bad", []byte("v"), bad); err == nil || stored || !strings.Contains(err.Error(), "ttl") {
			t.Errorf("SetIfAbsent with ttl %v = %v, %v; want a ttl error", bad, stored, err)
		}
	}
	if n := s.Client.Exists(ctx, st.RedisKey("bad")).Val(); n != 0 {
		t.Fatal("a rejected SetIfAbsent wrote its key")
	}
}

func TestCancelledContext(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checks := map[string]error{
		"Get":    func() error { _, err := st.Get(ctx, "k"); return err }(),
		"Set":    st.Set(ctx, "k", []byte("v"), 0),
		"Delete": st.Delete(ctx, "k"),
		"Keys":   func() error { _, err := st.Keys(ctx); return err }(),

		"GetWithTTL":       func() error { _, _, err := st.GetWithTTL(ctx, "k"); return err }(),
		"SetIfAbsent":      func() error { _, err := st.SetIfAbsent(ctx, "k", []byte("v"), 0); return err }(),
		"SetAndPublish":    st.SetAndPublish(ctx, "k", []byte("v"), 0, "ch", nil),
		"DeleteAndPublish": st.DeleteAndPublish(ctx, "ch", func([]string) []byte { return nil }, "k"),
	}
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op, err)
		}
	}
}

func TestUnreachableRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer client.Close()
	st := remote.New(client, remote.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := st.Get(ctx, "k")
	if err == nil || errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("Get on an unreachable server: err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), `remote: get "k"`) {
		t.Fatalf("error %q does not name the operation and key", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get took %v on an unreachable server with a 300ms deadline", d)
	}
}

func TestOptions(t *testing.T) {
	if err := (remote.Options{ScanCount: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "ScanCount") {
		t.Fatalf("Validate(ScanCount: -1) = %v, want an error naming ScanCount", err)
	}
	if err := (remote.Options{}).Validate(); err != nil {
		t.Fatalf("zero Options invalid: %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "nil client") {
			t.Fatalf("New(nil) recovered %v, want a panic naming the nil client", r)
		}
	}()
	remote.New(nil, remote.Options{})
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "a*": `a\*`, "a?b": `a\?b`, "[x]": `\[x\]`, `back\`: `back\\`,
	} {
		if got := remote.EscapeGlob(in); got != want {
			t.Errorf("EscapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func receive(t *testing.T, sub *redis.PubSub) *redis.Message {
	t.Helper()
	m, err := sub.ReceiveTimeout(context.Background(), 2*time.Second)
	if err != nil {
		t.Fatalf("no message: %v", err)
	}
	msg, ok := m.(*redis.Message)
	if !ok {
		t.Fatalf("received %T, want a message", m)
	}
	return msg
}
