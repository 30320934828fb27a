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

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiered"
)

// marker is a value that begins with the library's marker prefix: an
// absence, as a cache writes it.
const marker = "\x00tiercache\x00absent"

// ErrNotFound is the very value tiered returns, so one errors.Is serves both.
func TestErrNotFoundIsTiereds(t *testing.T) {
	if remote.ErrNotFound != tiered.ErrNotFound {
		t.Fatal("remote.ErrNotFound is not tiered.ErrNotFound")
	}
}

// Put, get, delete: the value sits at "ns:key" as given, a missing key is
// ErrNotFound, and the error says the operation, key and namespace.
func TestSetGetDelete(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	raw := rawClient(s)

	if err := st.Set(ctx, "user:1", []byte("Ann"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get(ctx, "user:1"); err != nil || string(v) != "Ann" {
		t.Fatalf("Get = %q, %v; want Ann", v, err)
	}
	if v, err := raw.Get(ctx, s.Namespace+":user:1").Result(); err != nil || v != "Ann" {
		t.Fatalf("GET %s:user:1 = %q, %v; want Ann", s.Namespace, v, err)
	}
	if err := st.Delete(ctx, "user:1", "never-written"); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Exists(ctx, s.Namespace+":user:1").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after Delete = %d, %v; want 0", n, err)
	}
	_, err := st.Get(ctx, "user:1")
	if !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("Get after Delete: %v; want ErrNotFound", err)
	}
	want := fmt.Sprintf(`remote: get "user:1" in namespace %q: not found`, s.Namespace)
	if err.Error() != want {
		t.Fatalf("error = %q; want %q", err, want)
	}
	if err := st.Delete(ctx); err != nil {
		t.Fatalf("Delete of no keys: %v", err)
	}
}

// A TTL of 0 means no expiry, also over a key that had one; a positive TTL
// is the key's PTTL; a negative one, or one under a millisecond, is an
// error naming the key, and nothing is written.
func TestSetTTL(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	raw := rawClient(s)
	rk := s.Namespace + ":k"

	if err := st.Set(ctx, "k", []byte("v"), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if d, err := raw.PTTL(ctx, rk).Result(); err != nil || d <= 0 || d > 90*time.Second {
		t.Fatalf("PTTL after Set with 90s = %v, %v; want in (0, 90s]", d, err)
	}
	if err := st.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if d, err := raw.PTTL(ctx, rk).Result(); err != nil || d != -1 {
		t.Fatalf("PTTL after Set with 0 = %v, %v; want -1 (no expiry)", d, err)
	}
	for _, ttl := range []time.Duration{-time.Second, 500 * time.Microsecond} {
		err := st.Set(ctx, "bad", []byte("v"), ttl)
		if err == nil || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("Set with ttl %v: %v; want an error naming the key", ttl, err)
		}
		err = st.SetMany(ctx, map[string][]byte{"bad": []byte("v")}, ttl)
		if err == nil || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("SetMany with ttl %v: %v; want an error naming the key", ttl, err)
		}
	}
	if n, _ := raw.Exists(ctx, s.Namespace+":bad").Result(); n != 0 {
		t.Fatal("a refused TTL wrote the key")
	}
}

// GetMany returns the keys it found, SetMany writes every key with the TTL.
func TestGetManySetMany(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	raw := rawClient(s)

	items := map[string][]byte{"a": []byte("1"), "b:c": []byte("2"), "": []byte("empty key")}
	if err := st.SetMany(ctx, items, time.Minute); err != nil {
		t.Fatal(err)
	}
	for k, v := range items {
		got, err := raw.Get(ctx, s.Namespace+":"+k).Result()
		if err != nil || got != string(v) {
			t.Errorf("GET %s:%s = %q, %v; want %q", s.Namespace, k, got, err, v)
		}
		if d, _ := raw.PTTL(ctx, s.Namespace+":"+k).Result(); d <= 0 || d > time.Minute {
			t.Errorf("PTTL of %q = %v; want in (0, 1m]", k, d)
		}
	}
	got, err := st.GetMany(ctx, []string{"a", "missing", "b:c", "a", ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got["a"]) != "1" || string(got["b:c"]) != "2" || string(got[""]) != "empty key" {
		t.Fatalf("GetMany = %q; want a, b:c and the empty key", got)
	}
	if got, err := st.GetMany(ctx, nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v; want an empty map", got, err)
	}
	if err := st.SetMany(ctx, nil, 0); err != nil {
		t.Fatalf("SetMany(nil): %v", err)
	}
}

// A value that begins with the marker prefix is refused on write, naming
// the key, and nothing is written; a key that holds a marker (a cache's
// remembered absence, or its lease) reads as not found.
func TestMarkers(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	raw := rawClient(s)

	err := st.Set(ctx, "k", []byte(marker+"-ish"), 0)
	if err == nil || !strings.Contains(err.Error(), `set "k" in namespace`) {
		t.Fatalf("Set of a marker: %v; want an error naming the key", err)
	}
	err = st.SetMany(ctx, map[string][]byte{"ok": []byte("v"), "m": []byte(marker)}, 0)
	if err == nil || !strings.Contains(err.Error(), `"m"`) {
		t.Fatalf("SetMany with a marker: %v; want an error naming the key", err)
	}
	if n, _ := raw.Exists(ctx, s.Namespace+":k", s.Namespace+":ok", s.Namespace+":m").Result(); n != 0 {
		t.Fatalf("%d refused keys were written", n)
	}

	if err := raw.Set(ctx, s.Namespace+":absent", marker, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "absent"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("Get of a marker: %v; want ErrNotFound", err)
	}
	got, err := st.GetMany(ctx, []string{"absent"})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMany of a marker = %q, %v; want nothing", got, err)
	}
}

// Keys lists the namespace with SCAN, never KEYS, however many keys it
// holds: 10,000 here, with a key made of glob characters, which match
// themselves only, beside a neighbour namespace's keys.
func TestKeysScans(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	neighbour := newStore(t, s, s.Namespace+"x")

	items := make(map[string][]byte, 10_000)
	want := make([]string, 0, 10_001)
	for i := range 10_000 {
		k := fmt.Sprintf("k%05d", i)
		items[k] = []byte("v")
		want = append(want, k)
	}
	items[`*?[a]\`] = []byte("globs")
	want = append(want, `*?[a]\`)
	slices.Sort(want)
	if err := st.SetMany(ctx, items, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := neighbour.Set(ctx, "k00000", []byte("not ours"), time.Minute); err != nil {
		t.Fatal(err)
	}

	client := s.NewClient("")
	scans, keys := &redistest.RoundTrips{Only: "scan"}, &redistest.RoundTrips{Only: "keys"}
	client.AddHook(scans)
	client.AddHook(keys)
	counted, err := remote.New(client, remote.Options{Namespace: s.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	got, err := counted.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Keys: %d keys, want %d (first %q)", len(got), len(want), got[:min(len(got), 3)])
	}
	// The embedded server answers one SCAN with every match; a real one
	// takes an iteration.
	if keys.Count() != 0 || scans.Count() < 1 || (s.Real() && scans.Count() < 2) {
		t.Fatalf("Keys sent %d KEYS and %d SCAN; want none and SCANs", keys.Count(), scans.Count())
	}
	t.Logf("Keys over %d keys: %d SCAN calls", len(want), scans.Count())
}

// New refuses bad options, naming the field, and clients the caches could
// not serve; the default namespace is tiered's.
func TestNew(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	for _, ns := range []string{"a:b", "a*", "tiercache", strings.Repeat("n", 129)} {
		_, err := remote.New(client, remote.Options{Namespace: ns})
		if err == nil || !strings.HasPrefix(err.Error(), "remote: Namespace: ") {
			t.Errorf("New with Namespace %q: %v; want an error naming the field", ns, err)
		}
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = ring.Close() })
	var nilClient *redis.Client
	for name, c := range map[string]redis.UniversalClient{"nil": nil, "nil pointer": nilClient, "ring": ring} {
		if _, err := remote.New(c, remote.Options{}); err == nil || !strings.HasPrefix(err.Error(), "remote: ") {
			t.Errorf("New with a %s client: %v; want an error", name, err)
		}
	}
	st, err := remote.New(client, remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Namespace() != tiered.DefaultNamespace {
		t.Fatalf("default namespace %q; want tiered's, %q", st.Namespace(), tiered.DefaultNamespace)
	}
}

// Every call returns when its ctx ends, whatever the client's options.
func TestCallsEndWithCtx(t *testing.T) {
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range map[string]func() error{
		"Get":     func() error { _, err := st.Get(ctx, "k"); return err },
		"GetMany": func() error { _, err := st.GetMany(ctx, []string{"k"}); return err },
		"Keys":    func() error { _, err := st.Keys(ctx); return err },
		"Set":     func() error { return st.Set(ctx, "k", []byte("v"), 0) },
		"SetMany": func() error { return st.SetMany(ctx, map[string][]byte{"k": []byte("v")}, 0) },
		"Delete":  func() error { return st.Delete(ctx, "k") },
	} {
		if err := call(); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "remote: ") {
			t.Errorf("%s with a cancelled ctx: %v; want context.Canceled", name, err)
		}
	}
}
