package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// subscribe returns a subscription to ch, confirmed.
func subscribe(t *testing.T, c redis.UniversalClient, ch string) *redis.PubSub {
	t.Helper()
	sub := c.Subscribe(context.Background(), ch)
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sub
}

// noMessage fails the test if sub receives a message within 100ms.
func noMessage(t *testing.T, sub *redis.PubSub, why string) {
	t.Helper()
	if m, err := sub.ReceiveTimeout(context.Background(), 100*time.Millisecond); err == nil {
		t.Fatalf("%s: published %v", why, m)
	}
}

// payloads records the calls of a WriteMany payload function, and returns
// the keys joined by ','.
type payloads struct {
	mu    sync.Mutex
	calls [][]string
}

func (p *payloads) fn(keys []string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, keys)
	return []byte(strings.Join(keys, ","))
}

func TestWriteManyConds(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	lease := remote.LeaseMarker(remote.NewLeaseToken())
	for k, v := range map[string][]byte{
		"held": []byte("held"), "eq": []byte("old"), "neq": []byte("other"),
		"leased": lease, "leased-by-other": remote.LeaseMarker("other"), "gone": []byte("x"),
	} {
		put(t, st, k, v, time.Minute)
	}
	writes := []remote.Write{
		{Key: "a", Value: []byte("A"), TTL: 5 * time.Second},
		{Key: "forever", Value: []byte("F")},
		{Key: "new", Value: []byte("N"), TTL: 5 * time.Second, Cond: remote.IfAbsent},
		{Key: "held", Value: []byte("stale"), TTL: time.Second, Cond: remote.IfAbsent},
		{Key: "eq", Value: []byte("E"), TTL: 5 * time.Second, Cond: remote.IfEqual, Expect: []byte("old")},
		{Key: "neq", Value: []byte("stale"), Cond: remote.IfEqual, Expect: []byte("old")},
		{Key: "missing", Value: []byte("stale"), Cond: remote.IfEqual, Expect: []byte{}},
		{Key: "leased", Delete: true, Cond: remote.IfEqual, Expect: lease},
		{Key: "leased-by-other", Delete: true, Cond: remote.IfEqual, Expect: lease},
		{Key: "gone", Delete: true},
		{Key: "nothing", Delete: true, Cond: remote.IfAbsent},
	}
	want := []bool{true, true, true, false, true, false, false, true, false, true, true}
	if _, err := st.WriteMany(ctx, []remote.Write{{Key: "warm-up", Cond: remote.IfAbsent}}, nil); err != nil {
		t.Fatal(err) // loads the script, opens the connections
	}
	ch := invalidate.Channel(s.Namespace)
	sub := subscribe(t, s.Client, ch)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	var p payloads
	res, err := st.WriteMany(ctx, writes, p.fn)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Count() != 1 {
		t.Fatalf("WriteMany took %d round trips, want 1", calls.Count())
	}
	for i, w := range writes {
		if res[i].Err != nil || res[i].Applied != want[i] {
			t.Errorf("write %d (%s) = %+v, want applied %v", i, w.Key, res[i], want[i])
		}
	}
	for k, v := range map[string]string{
		"a": "A", "forever": "F", "new": "N", "held": "held", "eq": "E", "neq": "other",
		"leased-by-other": string(remote.LeaseMarker("other")),
	} {
		if got, err := get(ctx, st, k); err != nil || string(got) != v {
			t.Errorf("%s holds %q, %v; want %q", k, got, err, v)
		}
	}
	for _, k := range []string{"missing", "leased", "gone", "nothing"} {
		if _, err := get(ctx, st, k); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", k, err)
		}
	}
	for k, ttl := range map[string]time.Duration{"a": 5 * time.Second, "new": 5 * time.Second, "eq": 5 * time.Second} {
		if pttl := s.Client.PTTL(ctx, st.RedisKey(k)).Val(); pttl <= ttl-time.Second || pttl > ttl {
			t.Errorf("%s: PTTL %v, want ~%v", k, pttl, ttl)
		}
	}
	if pttl := s.Client.PTTL(ctx, st.RedisKey("forever")).Val(); pttl >= 0 {
		t.Errorf("ttl 0 set an expiry: PTTL %v", pttl)
	}
	keys := make([]string, len(writes))
	for i, w := range writes {
		keys[i] = w.Key
	}
	if len(p.calls) != 1 || !slices.Equal(p.calls[0], keys) {
		t.Fatalf("payload called with %q, want once with every key", p.calls)
	}
	if m := receive(t, sub); m.Payload != strings.Join(keys, ",") {
		t.Fatalf("published %q", m.Payload)
	}
	noMessage(t, sub, "one group")

	// Nothing applied: nothing published.
	res, err = st.WriteMany(ctx, []remote.Write{
		{Key: "held", Value: []byte("x"), Cond: remote.IfAbsent},
		{Key: "neq", Delete: true, Cond: remote.IfEqual, Expect: []byte("old")},
	}, p.fn)
	if err != nil || res[0].Applied || res[1].Applied || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("WriteMany of writes whose Cond fails = %+v, %v", res, err)
	}
	noMessage(t, sub, "a group that applied nothing")

	// A Silent store: nothing published, payload not called.
	p.calls = nil
	silent := st.Silent()
	if _, err := silent.WriteMany(ctx, []remote.Write{{Key: "a", Value: []byte("B")}}, p.fn); err != nil {
		t.Fatal(err)
	}
	if _, err := silent.WriteMany(ctx, []remote.Write{{Key: "c", Value: []byte("C"), Cond: remote.IfAbsent}}, p.fn); err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != 0 {
		t.Fatalf("payload called %d times by a Silent store", len(p.calls))
	}
	noMessage(t, sub, "a Silent store")
	if res, err := st.WriteMany(ctx, nil, p.fn); err != nil || len(res) != 0 {
		t.Fatalf("WriteMany(nil) = %v, %v", res, err)
	}
}

// A batch of Always writes on a single node is one script per group of
// 1000, with its message, all in one round trip; a Silent store sends the
// same batch as plain SETs and DELs, still in one round trip, publishing
// nothing.
func TestWriteManyGroupsAndSilent(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if _, err := st.GetMany(ctx, []string{"warm-up"}); err != nil {
		t.Fatal(err)
	}
	ch := invalidate.Channel(s.Namespace)
	sub := subscribe(t, s.Client, ch)
	writes := make([]remote.Write, 2500)
	for i := range writes {
		writes[i] = remote.Write{Key: fmt.Sprintf("k%04d", i), Value: []byte("v"), TTL: time.Duration(i+1) * time.Second}
	}
	writes[7] = remote.Write{Key: writes[7].Key, Delete: true}
	put(t, st, writes[7].Key, []byte("deleted"), 0)
	if _, err := st.WriteMany(ctx, []remote.Write{{Key: "warm-up", Cond: remote.IfAbsent}}, nil); err != nil {
		t.Fatal(err) // loads the script
	}
	receive(t, sub)
	for _, silent := range []bool{false, true} {
		w := st
		if silent {
			w = st.Silent()
		}
		calls := &redistest.RoundTrips{}
		s.Client.AddHook(calls)
		var p payloads
		res, err := w.WriteMany(ctx, writes, p.fn)
		if err != nil {
			t.Fatal(err)
		}
		if calls.Count() != 1 {
			t.Fatalf("silent %v: WriteMany took %d round trips, want 1", silent, calls.Count())
		}
		for i := range res {
			if !res[i].Applied || res[i].Err != nil {
				t.Fatalf("silent %v: write %d: %+v", silent, i, res[i])
			}
		}
		if silent {
			if len(p.calls) != 0 {
				t.Fatalf("a Silent store called payload %d times", len(p.calls))
			}
			noMessage(t, sub, "a Silent store")
			break
		}
		if len(p.calls) != 3 || len(p.calls[0]) != 1000 || len(p.calls[2]) != 500 {
			t.Fatalf("payload called %d times, want 3 (1000, 1000, 500 keys)", len(p.calls))
		}
		var named []string
		for range 3 {
			named = append(named, strings.Split(receive(t, sub).Payload, ",")...)
		}
		noMessage(t, sub, "three groups")
		if len(named) != len(writes) || named[0] != "k0000" || named[2499] != "k2499" {
			t.Fatalf("the messages named %d keys, want the 2500 in order", len(named))
		}
		if _, err := get(ctx, st, writes[7].Key); !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("the Delete: err = %v", err)
		}
		if v, ttl, err := st.GetWithTTL(ctx, "k2000"); err != nil || string(v) != "v" || ttl <= 2000*time.Second || ttl > 2001*time.Second {
			t.Fatalf("k2000 = %q, %v, %v", v, ttl, err)
		}
	}
}

// Groups of conditional writes publish only when they applied something.
func TestWriteManyPublishesPerAppliedGroup(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	writes := make([]remote.Write, 2500)
	pipe := s.Client.Pipeline()
	for i := range writes {
		writes[i] = remote.Write{Key: fmt.Sprintf("k%04d", i), Value: []byte("new"), Cond: remote.IfAbsent}
		if i < 1000 || i >= 2000 || i == 1500 {
			pipe.Set(ctx, st.RedisKey(writes[i].Key), "old", 0)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ch := invalidate.Channel(s.Namespace)
	sub := subscribe(t, s.Client, ch)
	var p payloads
	res, err := st.WriteMany(ctx, writes, p.fn)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := i >= 1000 && i < 2000 && i != 1500; r.Applied != want || r.Err != nil {
			t.Fatalf("write %d = %+v, want applied %v", i, r, want)
		}
	}
	if len(p.calls) != 3 {
		t.Fatalf("payload called %d times, want once per group", len(p.calls))
	}
	if m := receive(t, sub); !strings.HasPrefix(m.Payload, "k1000,k1001,") || strings.Count(m.Payload, ",") != 999 {
		t.Fatalf("published %.40q…, want the second group's 1000 keys", m.Payload)
	}
	noMessage(t, sub, "groups that applied nothing")
}

// The first script call of a Store is sent by EVAL, the next by EVALSHA; a
// script flushed from the server since (a restart, SCRIPT FLUSH) is sent
// again by EVAL when EVALSHA fails.
func TestWriteManyAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewOwn(t)
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace})
	evals := pipelineCommands{name: "eval", args: make(chan []any, 10)}
	evalshas := pipelineCommands{name: "evalsha", args: make(chan []any, 10)}
	s.Client.AddHook(evals)
	s.Client.AddHook(evalshas)
	sent := func(wantEval, wantEvalsha int) {
		t.Helper()
		if len(evals.args) != wantEval || len(evalshas.args) != wantEvalsha {
			t.Fatalf("sent %d EVAL and %d EVALSHA, want %d and %d", len(evals.args), len(evalshas.args), wantEval, wantEvalsha)
		}
		for len(evals.args) > 0 {
			<-evals.args
		}
		for len(evalshas.args) > 0 {
			<-evalshas.args
		}
	}
	write := func(k string) {
		t.Helper()
		res, err := st.WriteMany(ctx, []remote.Write{{Key: k, Value: []byte("v"), Cond: remote.IfAbsent}}, nil)
		if err != nil || !res[0].Applied || res[0].Err != nil {
			t.Fatalf("WriteMany(%s) = %+v, %v", k, res, err)
		}
	}
	write("first")
	sent(1, 0)
	write("second")
	sent(0, 1)
	if err := s.Client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	write("after-flush")
	sent(1, 1)
	write("again")
	sent(0, 1)
	if n := s.Client.Exists(ctx, st.RedisKey("first"), st.RedisKey("second"), st.RedisKey("after-flush"), st.RedisKey("again")).Val(); n != 4 {
		t.Fatalf("%d of the 4 keys written", n)
	}
}

func TestWriteManyRejectsInvalidWrites(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	for _, bad := range []remote.Write{
		{Key: "bad", Value: []byte("v"), TTL: -time.Millisecond},
		{Key: "bad", Value: []byte("v"), TTL: 500 * time.Microsecond},
		{Key: "bad", Value: []byte("v"), Cond: 7},
	} {
		var p payloads
		res, err := st.WriteMany(ctx, []remote.Write{{Key: "good", Value: []byte("v")}, bad}, p.fn)
		var re *remote.Error
		if res != nil || !errors.As(err, &re) || re.Op != "write-many" || !slices.Equal(re.Keys, []string{"bad"}) {
			t.Fatalf("WriteMany with %+v = %v, %#v; want an *Error naming the key", bad, res, err)
		}
		if !strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), s.Namespace) {
			t.Fatalf("error %q does not name the key and the namespace", err)
		}
		if len(p.calls) != 0 {
			t.Fatal("payload called for an invalid batch")
		}
	}
	if calls.Count() != 0 {
		t.Fatalf("invalid batches sent %d round trips", calls.Count())
	}
	if n := s.Client.Exists(ctx, st.RedisKey("good"), st.RedisKey("bad")).Val(); n != 0 {
		t.Fatal("an invalid batch wrote a key")
	}
	// A Delete ignores its TTL.
	if res, err := st.WriteMany(ctx, []remote.Write{{Key: "bad", Delete: true, TTL: -1}}, nil); err != nil || !res[0].Applied {
		t.Fatalf("a Delete with a negative TTL = %+v, %v", res, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	res, err := st.WriteMany(cctx, []remote.Write{{Key: "good", Value: []byte("v")}}, nil)
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteMany with a cancelled ctx = %v, %v", res, err)
	}
	if n := s.Client.Exists(ctx, st.RedisKey("good")).Val(); n != 0 {
		t.Fatal("a cancelled WriteMany wrote its key")
	}
}

// On a Cluster each hash slot's writes are one script, with its own message
// when it applied something.
func TestWriteManyOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace, ClassicPubSub: true})
	ch := invalidate.Channel(cl.Namespace)
	sub := subscribe(t, client, ch)
	var writes []remote.Write
	slots := make(map[int]bool) // the slots of the writes that apply
	for i := range 200 {
		k := fmt.Sprintf("k:%03d", i)
		w := remote.Write{Key: k, Value: []byte("v-" + k), TTL: time.Minute}
		if i%2 == 1 {
			w.Cond = remote.IfAbsent
			put(t, st, k, []byte("held"), 0)
		} else {
			slots[keySlot(st.RedisKey(k))] = true
		}
		writes = append(writes, w)
	}
	var p payloads
	res, err := st.WriteMany(ctx, writes, p.fn)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Applied != (i%2 == 0) {
			t.Fatalf("write %d = %+v", i, r)
		}
	}
	for _, keys := range p.calls {
		for _, k := range keys[1:] {
			if keySlot(st.RedisKey(k)) != keySlot(st.RedisKey(keys[0])) {
				t.Fatalf("one group holds keys of two slots: %q", keys)
			}
		}
	}
	var named []string
	for range slots {
		named = append(named, strings.Split(receive(t, sub).Payload, ",")...)
	}
	noMessage(t, sub, "one message per slot that applied something")
	for _, w := range writes {
		v, err := get(ctx, st, w.Key)
		if w.Cond == remote.Always && (err != nil || string(v) != "v-"+w.Key) {
			t.Fatalf("%s = %q, %v", w.Key, v, err)
		}
		if w.Cond == remote.IfAbsent && string(v) != "held" {
			t.Fatalf("%s = %q, %v; want held", w.Key, v, err)
		}
		if w.Cond == remote.Always && !slices.Contains(named, w.Key) {
			t.Fatalf("no message named %s", w.Key)
		}
	}
}

// A group that Redis refuses (out of memory) fails as a whole, in its
// Results: none of its writes is applied, and nothing is published.
func TestWriteManyGroupRefused(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewReal(t)
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace})
	ch := invalidate.Channel(s.Namespace)
	sub := subscribe(t, s.Client, ch)
	s.ConfigSet("maxmemory", "1")
	for _, cond := range []remote.Cond{remote.Always, remote.IfAbsent} { // a transaction, a script
		writes := []remote.Write{{Key: "a", Value: []byte("v"), Cond: cond}, {Key: "b", Value: []byte("v"), Cond: cond}}
		res, err := st.WriteMany(ctx, writes, func([]string) []byte { return []byte("m") })
		if err != nil {
			t.Fatalf("Cond %d: WriteMany = %v; want the failure in the Results", cond, err)
		}
		for i, r := range res {
			var re *remote.Error
			if r.Applied || !errors.As(r.Err, &re) || re.Op != "write-many" || !slices.Equal(re.Keys, []string{"a", "b"}) ||
				!strings.Contains(r.Err.Error(), "OOM") {
				t.Fatalf("Cond %d, write %d = %+v; want an *Error naming the group's keys", cond, i, r)
			}
		}
		noMessage(t, sub, "a refused group")
	}
	s.ConfigSet("maxmemory", "0")
	if n := s.Client.Exists(ctx, st.RedisKey("a"), st.RedisKey("b")).Val(); n != 0 {
		t.Fatalf("a refused group wrote %d keys", n)
	}
}
