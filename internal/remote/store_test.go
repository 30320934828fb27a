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

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newStore(t *testing.T) (*remote.Store, *redistest.Server) {
	t.Helper()
	s := redistest.New(t)
	return mustNew(t, s.Client, remote.Options{Namespace: s.Namespace}), s
}

func mustNew(t testing.TB, client redis.UniversalClient, opts remote.Options) *remote.Store {
	t.Helper()
	st, err := remote.New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newError returns the error of New with opts, over a client that is never
// used.
func newError(t *testing.T, opts remote.Options) error {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	_, err := remote.New(client, opts)
	return err
}

// put writes value at key for ttl (0: no expiry), publishing nothing: a
// test's setup, through WriteMany of a Silent store.
func put(t testing.TB, st *remote.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	res, err := st.Silent().WriteMany(context.Background(), []remote.Write{{Key: key, Value: value, TTL: ttl}}, nil)
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

// get returns the value at key: GetWithTTL without the TTL.
func get(ctx context.Context, st *remote.Store, key string) ([]byte, error) {
	v, _, err := st.GetWithTTL(ctx, key)
	return v, err
}

// The seed's first test: put, get, delete; a missing key is ErrNotFound.
func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	if err := st.SetAndPublish(ctx, "key", []byte("value"), 0, nil); err != nil {
		t.Fatal(err)
	}
	got, err := get(ctx, st, "key")
	if err != nil || string(got) != "value" {
		t.Fatalf("GetWithTTL = %q, %v; want value", got, err)
	}
	if err := st.DeleteAndPublish(ctx, nil, "key"); err != nil {
		t.Fatal(err)
	}
	_, err = get(ctx, st, "key")
	if !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("GetWithTTL after DeleteAndPublish: err = %v, want ErrNotFound", err)
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
		put(t, st, k, []byte("v"), 0)
	}
	// A neighbour whose namespace starts with ours must not be listed.
	other := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace + "x"})
	put(t, other, "key3", []byte("v"), 0)
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
	put(t, st, "key", []byte("value"), 100*time.Millisecond)
	s.Advance(50 * time.Millisecond)
	if got, err := get(ctx, st, "key"); err != nil || string(got) != "value" {
		t.Fatalf("at 50ms: Get = %q, %v; want value", got, err)
	}
	s.Advance(100 * time.Millisecond)
	if _, err := get(ctx, st, "key"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("at 150ms: err = %v, want ErrNotFound", err)
	}
}

func TestDefaultNamespaceAndLayout(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	if got := mustNew(t, s.Client, remote.Options{}).Namespace(); got != "cache" {
		t.Fatalf("default namespace = %q, want cache", got)
	}
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace})
	raw := []byte{0, 1, 2, 0xff, 'x'}
	put(t, st, "a:b:c", raw, 0)
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
		st := mustNew(t, s.Client, remote.Options{Namespace: base + n})
		stores[n] = st
		put(t, st, "k-"+n, []byte("v"), 0)
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
		if err := newError(t, remote.Options{Namespace: base + n}); err == nil {
			t.Errorf("namespace %q accepted", base+n)
		}
	}
}

func TestKeysAcrossManyScanPages(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace, ScanCount: 10})
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

// The package doc's TTL rules, on SetAndPublish (WriteMany's are in
// TestWriteManyConds and TestWriteManyRejectsInvalidWrites): 0 is no
// expiry, a positive TTL is sent in whole milliseconds, and a negative one
// or one under a millisecond is refused and writes nothing.
func TestTTLs(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	set := func(key string, ttl time.Duration) error {
		return st.SetAndPublish(ctx, key, []byte("v"), ttl, nil)
	}
	if err := set("forever", 0); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("forever")).Val(); ttl >= 0 {
		t.Fatalf("TTL 0 set an expiry: PTTL = %v", ttl)
	}
	if err := set("short", 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("short")).Val(); ttl <= time.Second || ttl > 1500*time.Millisecond {
		t.Fatalf("TTL 1.5s gave PTTL %v", ttl)
	}
	for _, bad := range []time.Duration{-time.Millisecond, 500 * time.Microsecond} {
		if err := set("bad", bad); err == nil || !strings.Contains(err.Error(), "ttl") {
			t.Errorf("SetAndPublish with ttl %v: err = %v, want a ttl error", bad, err)
		}
	}
	if n := s.Client.Exists(ctx, st.RedisKey("bad")).Val(); n != 0 {
		t.Fatal("a rejected SetAndPublish wrote its key")
	}
}

func TestGetWithTTL(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	put(t, st, "k", []byte("v"), 10*time.Second)
	put(t, st, "forever", []byte("w"), 0)
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
	ch := invalidate.Channel(s.Namespace)
	sub := listen(t, s.Client, ch)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	for i, ttl := range []time.Duration{0, 5 * time.Second} {
		calls.Reset()
		payload := fmt.Sprintf("msg-%d", i)
		if err := st.SetAndPublish(ctx, "k", []byte(payload), ttl, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if i > 0 && calls.Count() != 1 { // the first call may load the script
			t.Fatalf("SetAndPublish took %d round trips, want 1", calls.Count())
		}
		msg := receive(t, sub)
		if msg.Payload != payload {
			t.Fatalf("published %q, want %q", msg.Payload, payload)
		}
		if got, _ := get(ctx, st, "k"); string(got) != payload {
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
	if err := st.SetAndPublish(cctx, "other", []byte("x"), 0, []byte("x")); !errors.Is(err, context.Canceled) {
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
	ch := invalidate.Channel(s.Namespace)
	sub := listen(t, s.Client, ch)
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if err := s.Client.Set(ctx, st.RedisKey(keys[i]), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	join := func(ks []string) []byte { return []byte(strings.Join(ks, ",")) }
	if err := st.DeleteAndPublish(ctx, join, "k1", "k2", "absent"); err != nil {
		t.Fatal(err)
	}
	if msg := receive(t, sub); msg.Payload != "k1,k2,absent" {
		t.Fatalf("one message for all keys: got %q", msg.Payload)
	}
	if err := st.DeleteAndPublish(ctx, join, keys...); err != nil {
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
	if err := st.DeleteAndPublish(ctx, join); err != nil {
		t.Fatalf("DeleteAndPublish with no keys: %v", err)
	}
	if m, err := sub.ReceiveTimeout(ctx, 50*time.Millisecond); err == nil {
		t.Fatalf("DeleteAndPublish with no keys published %v", m)
	}
}

// A call whose ctx has ended sends nothing and returns ctx's error.
func TestCancelledContext(t *testing.T) {
	st, s := newStore(t)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noop := func([]string) []byte { return nil }
	checks := map[string]error{
		"GetWithTTL":       func() error { _, _, err := st.GetWithTTL(ctx, "k"); return err }(),
		"SetAndPublish":    st.SetAndPublish(ctx, "k", []byte("v"), 0, nil),
		"DeleteAndPublish": st.DeleteAndPublish(ctx, noop, "k"),
		"Keys":             func() error { _, err := st.Keys(ctx); return err }(),
		"GetMany":          func() error { _, err := st.GetMany(ctx, []string{"k"}); return err }(),
		"WriteMany": func() error {
			_, err := st.WriteMany(ctx, []remote.Write{{Key: "k", Value: []byte("v")}}, noop)
			return err
		}(),
		"Acquire":        func() error { _, err := st.Acquire(ctx, []string{"k"}, "token", time.Second); return err }(),
		"AcquireRefresh": func() error { _, err := st.AcquireRefresh(ctx, "k", "token", time.Second); return err }(),
		"ReleaseRefresh": func() error { _, err := st.ReleaseRefresh(ctx, "k", "token"); return err }(),
	}
	for op, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op, err)
		}
	}
	if n := calls.Count(); n != 0 {
		t.Errorf("calls with a cancelled context made %d round trips, want 0", n)
	}
}

func TestUnreachableRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // nothing listens there
	defer client.Close()
	st := mustNew(t, client, remote.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := st.GetWithTTL(ctx, "k")
	if err == nil || errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("GetWithTTL on an unreachable server: err = %v, want a connection error", err)
	}
	if !strings.Contains(err.Error(), `remote: get "k"`) {
		t.Fatalf("error %q does not name the operation and key", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("GetWithTTL took %v on an unreachable server with a 300ms deadline", d)
	}
}

// New fails, and does not panic, for a nil client or an invalid option,
// naming what is wrong.
func TestNewRejectsBadArguments(t *testing.T) {
	offline := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never used: New sends nothing
	t.Cleanup(func() { _ = offline.Close() })
	var nilClient *redis.Client
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		opts   remote.Options
		want   string
	}{
		{"nil client", nil, remote.Options{}, "client is nil"},
		{"typed nil client", nilClient, remote.Options{}, "client is a nil *redis.Client"},
		{"bad Namespace", offline, remote.Options{Namespace: "a:b"}, "Namespace"},
		{"negative ScanCount", offline, remote.Options{ScanCount: -1}, "ScanCount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				st  *remote.Store
				err error
			)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("New panicked: %v", r)
					}
				}()
				st, err = remote.New(tc.client, tc.opts)
			}()
			if err == nil || st != nil {
				t.Fatalf("New = %v, %v; want nil and an error", st, err)
			}
			if !strings.HasPrefix(err.Error(), "remote: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %q, want one prefixed remote: that names %q", err, tc.want)
			}
		})
	}
	if _, err := remote.New(offline, remote.Options{}); err != nil {
		t.Fatalf("New with the zero Options: %v", err)
	}
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

// listen subscribes a connection of client to ch, closed when the test
// ends, and returns once the server has confirmed it.
func listen(t *testing.T, client redis.UniversalClient, ch string) *redis.PubSub {
	t.Helper()
	sub := client.Subscribe(context.Background(), ch)
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(context.Background()); err != nil { // the confirmation
		t.Fatal(err)
	}
	return sub
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
