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
	"github.com/tiercache/tiercache/internal/remote"
)

func TestGetMany(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	for _, kv := range []struct {
		key, value string
		ttl        time.Duration
	}{
		{"ttl", "v1", 10 * time.Second},
		{"forever", "v2", 0},
		{"empty", "", time.Minute},
		{"marker", string(remote.AbsentMarker()), time.Minute},
		{"short", "gone soon", 100 * time.Millisecond},
	} {
		put(t, st, kv.key, []byte(kv.value), kv.ttl)
	}
	s.Advance(150 * time.Millisecond)                               // "short" expires
	if _, err := st.GetMany(ctx, []string{"warm-up"}); err != nil { // connections
		t.Fatal(err)
	}
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	keys := []string{"ttl", "missing", "forever", "ttl", "empty", "short", "marker", "forever"}
	items, err := st.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Count() != 1 {
		t.Fatalf("GetMany took %d round trips, want 1", calls.Count())
	}
	if len(items) != len(keys) {
		t.Fatalf("GetMany returned %d items for %d keys", len(items), len(keys))
	}
	for i, k := range keys {
		it := items[i]
		switch k {
		case "missing", "short":
			checkNotFound(t, "get-many", k, it.Value, it.Err)
		case "ttl":
			if it.Err != nil || string(it.Value) != "v1" || it.TTL <= 9*time.Second || it.TTL > 10*time.Second {
				t.Errorf("item %d (%s) = %q, %v, %v; want v1, ~10s", i, k, it.Value, it.TTL, it.Err)
			}
		case "forever":
			if it.Err != nil || string(it.Value) != "v2" || it.TTL != remote.NoExpiry {
				t.Errorf("item %d (%s) = %q, %v, %v; want v2, NoExpiry", i, k, it.Value, it.TTL, it.Err)
			}
		case "empty":
			if it.Err != nil || it.Value == nil || len(it.Value) != 0 || it.TTL <= 0 {
				t.Errorf("item %d (%s) = %#v, %v, %v; want an empty value with a TTL", i, k, it.Value, it.TTL, it.Err)
			}
		case "marker":
			if it.Err != nil || !remote.IsAbsentMarker(it.Value) {
				t.Errorf("item %d (%s) = %q, %v; want the absence marker", i, k, it.Value, it.Err)
			}
		}
	}
	// The values are the caller's: changing one changes no other.
	items[0].Value[0] = 'X'
	if string(items[3].Value) != "v1" || string(items[2].Value) != "v2" {
		t.Fatalf("writing one item's value changed another: %q, %q", items[3].Value, items[2].Value)
	}

	calls.Reset()
	if items, err := st.GetMany(ctx, nil); err != nil || len(items) != 0 || calls.Count() != 0 {
		t.Fatalf("GetMany(nil) = %v, %v after %d round trips; want nothing, none", items, err, calls.Count())
	}
}

// checkNotFound checks that err is ErrNotFound, as an *Error of op naming
// key alone, and that there is no value.
func checkNotFound(t *testing.T, op, key string, value []byte, err error) {
	t.Helper()
	var re *remote.Error
	switch {
	case !errors.Is(err, remote.ErrNotFound):
		t.Errorf("%s: err = %v, want ErrNotFound", key, err)
	case !errors.As(err, &re) || re.Op != op || !slices.Equal(re.Keys, []string{key}):
		t.Errorf("%s: err = %#v, want an *Error of %q naming the key", key, err, op)
	case errors.Is(err, redis.Nil):
		t.Errorf("%s: redis.Nil leaked", key)
	case value != nil:
		t.Errorf("%s: value %q with ErrNotFound", key, value)
	}
}

// deleteBetween is a go-redis hook that slips a DEL of key into each
// pipeline right after its first command, as if the key expired between
// GetMany's MGET and its PTTLs.
type deleteBetween struct{ key string }

func (h deleteBetween) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h deleteBetween) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h deleteBetween) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		del := redis.NewIntCmd(ctx, "del", h.key)
		err := next(ctx, slices.Insert(slices.Clone(cmds), 1, redis.Cmder(del)))
		if del.Err() != nil {
			return del.Err()
		}
		return err
	}
}

// A key that the MGET found and that is gone by its PTTL (-2) is not found.
func TestGetManyKeyGoneBeforeItsTTL(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	for _, k := range []string{"stays", "goes"} {
		put(t, st, k, []byte("v"), time.Minute)
	}
	s.Client.AddHook(deleteBetween{key: st.RedisKey("goes")})
	items, err := st.GetMany(ctx, []string{"goes", "stays"})
	if err != nil {
		t.Fatal(err)
	}
	checkNotFound(t, "get-many", "goes", items[0].Value, items[0].Err)
	if it := items[1]; it.Err != nil || string(it.Value) != "v" {
		t.Fatalf("stays = %q, %v", it.Value, it.Err)
	}
}

// GetMany answers while writes are paused (CLIENT PAUSE WRITE, as a
// failover does).
func TestGetManyAnswersDuringWritePause(t *testing.T) {
	srv := redistest.NewReal(t)
	st := mustNew(t, srv.Client, remote.Options{Namespace: srv.Namespace})
	bg := context.Background()
	put(t, st, "k", []byte("v"), time.Minute)
	if _, err := st.GetMany(bg, []string{"k"}); err != nil { // warm up the connection
		t.Fatal(err)
	}
	srv.Pause("WRITE", 3*time.Second) // a margin for a loaded machine's checks
	paused := time.Now()
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	items, err := st.GetMany(ctx, []string{"k", "missing"})
	if err != nil || string(items[0].Value) != "v" || items[0].TTL <= 0 || !errors.Is(items[1].Err, remote.ErrNotFound) {
		t.Fatalf("GetMany during a write pause = %+v, %v", items, err)
	}
	wctx, wcancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer wcancel()
	if _, err := st.WriteMany(wctx, []remote.Write{{Key: "k", Value: []byte("w")}}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WriteMany during a write pause: err = %v, want DeadlineExceeded (the pause is real)", err)
	}
	if time.Since(paused) >= 3*time.Second {
		t.Fatal("the pause ended before the checks did: the test proves nothing")
	}
}

// keySlot is the Redis Cluster hash slot of key (CRC16/XMODEM of the key,
// or of its hash tag, modulo 16384), for checking the groups.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// pipelineCommands is a go-redis hook that records, for each pipeline
// (transactions included), the arguments of each command named name.
type pipelineCommands struct {
	name string
	args chan []any
}

func (h pipelineCommands) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h pipelineCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == h.name {
				h.args <- c.Args()
			}
		}
		return next(ctx, cmds)
	}
}

// On a Cluster, GetMany reads the keys of each hash slot with one MGET, and
// answers every key.
func TestGetManyOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace})
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("k:%03d", i)
		keys = append(keys, k)
		if i%3 == 0 {
			continue // missing
		}
		put(t, st, k, []byte("v-"+k), time.Duration(i)*time.Second)
	}
	keys = append(keys, "k:001", "k:003") // duplicates
	if cl.Real {
		for _, k := range keys[:20] { // the test's slot function is the server's
			if got := client.ClusterKeySlot(ctx, st.RedisKey(k)).Val(); got != int64(keySlot(st.RedisKey(k))) {
				t.Fatalf("CLUSTER KEYSLOT %s = %d, keySlot = %d", k, got, keySlot(st.RedisKey(k)))
			}
		}
	}
	mgets := pipelineCommands{name: "mget", args: make(chan []any, 1000)}
	client.AddHook(mgets)
	items, err := st.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		var n int
		fmt.Sscanf(k, "k:%d", &n)
		it := items[i]
		if n%3 == 0 {
			checkNotFound(t, "get-many", k, it.Value, it.Err)
			continue
		}
		if it.Err != nil || string(it.Value) != "v-"+k || it.TTL <= time.Duration(n-1)*time.Second || it.TTL > time.Duration(n)*time.Second {
			t.Errorf("%s = %q, %v, %v; want v-%s, ~%ds", k, it.Value, it.TTL, it.Err, k, n)
		}
	}
	close(mgets.args)
	slots := make(map[int]bool)
	for _, k := range keys {
		slots[keySlot(st.RedisKey(k))] = true
	}
	seen := make(map[int]bool)
	for args := range mgets.args {
		sl := keySlot(fmt.Sprint(args[1]))
		if seen[sl] {
			t.Errorf("two MGETs for slot %d", sl)
		}
		seen[sl] = true
		for _, a := range args[2:] {
			if keySlot(fmt.Sprint(a)) != sl {
				t.Errorf("one MGET holds keys of slots %d and %d", sl, keySlot(fmt.Sprint(a)))
			}
		}
	}
	if len(seen) != len(slots) {
		t.Fatalf("GetMany sent %d MGETs for keys in %d slots", len(seen), len(slots))
	}
}

// Each batch call returns at its deadline while the server answers nothing
// (its connection frozen), whether or not the client enforces deadlines.
func TestBatchesReturnAtTheirDeadline(t *testing.T) {
	type op func(st *remote.Store, ctx context.Context) (bool, error) // reports whether it returned results
	ops := []struct {
		name string
		call op
	}{
		{"GetMany", func(st *remote.Store, ctx context.Context) (bool, error) {
			r, err := st.GetMany(ctx, []string{"a", "b"})
			return r != nil, err
		}},
		{"WriteMany/transaction", func(st *remote.Store, ctx context.Context) (bool, error) {
			r, err := st.WriteMany(ctx, []remote.Write{{Key: "a", Value: []byte("v")}}, nil)
			return r != nil, err
		}},
		{"WriteMany/script", func(st *remote.Store, ctx context.Context) (bool, error) {
			r, err := st.WriteMany(ctx, []remote.Write{{Key: "a", Value: []byte("v"), Cond: remote.IfAbsent}}, nil)
			return r != nil, err
		}},
		{"Acquire", func(st *remote.Store, ctx context.Context) (bool, error) {
			r, err := st.Acquire(ctx, []string{"a"}, "tok", time.Second)
			return r != nil, err
		}},
	}
	const deadline, slack = 200 * time.Millisecond, time.Second // a frozen call would wait 3s (ReadTimeout) or forever
	s := redistest.New(t)
	for _, enforces := range []bool{false, true} {
		for _, op := range ops {
			t.Run(fmt.Sprintf("%s/ContextTimeoutEnabled=%v", op.name, enforces), func(t *testing.T) {
				// One connection, opened (and the script loaded) before the
				// freeze: the call must use it.
				p := redistest.NewProxy(t, s.Addr)
				client := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: enforces, PoolSize: 1})
				t.Cleanup(func() { _ = client.Close() })
				st := mustNew(t, client, remote.Options{Namespace: s.Namespace})
				if _, err := op.call(st, context.Background()); err != nil {
					t.Fatal(err)
				}
				p.Freeze()
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				got, err := op.call(st, ctx)
				took := time.Since(start)
				var re *remote.Error
				if got || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &re) {
					t.Errorf("on a frozen server: results %v, %v; want none and an *Error wrapping DeadlineExceeded", got, err)
				}
				if took > deadline+slack {
					t.Errorf("with a %v deadline, returned after %v", deadline, took)
				}
			})
		}
	}
}

// With one master of a Cluster down, the batches fail the keys it holds
// and serve the others.
func TestBatchesWithAClusterNodeDown(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	if !cl.Real {
		t.Skip("the embedded cluster is one server (set REDIS_ADDR for a real one)")
	}
	// No retries: with go-redis's defaults each call would spend some 3s
	// retrying the dead node (dials, commands, redirects) before it gives up.
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, MaxRetries: -1, MaxRedirects: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace})
	var keys []string
	down := make(map[string]bool) // keys on the master that goes down
	for i := range 60 {
		k := fmt.Sprintf("k:%02d", i)
		keys = append(keys, k)
		put(t, st, k, []byte("v"), time.Minute)
		m, err := client.MasterForKey(ctx, st.RedisKey(k))
		if err != nil {
			t.Fatal(err)
		}
		down[k] = m.Options().Addr == cl.Addrs[0]
	}
	if n := len(slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return !down[k] })); n == 0 || n == len(keys) {
		t.Fatalf("%d of %d keys on the master that goes down; the test needs some on each side", n, len(keys))
	}
	cl.Kill(cl.Addrs[0])

	check := func(op, k string, err error, ok bool) {
		t.Helper()
		var re *remote.Error
		switch {
		case down[k] && (err == nil || errors.Is(err, remote.ErrNotFound) || !errors.As(err, &re) || re.Op != op || !slices.Contains(re.Keys, k)):
			t.Errorf("%s of %s, on the master that is down: err = %v, want an *Error naming it", op, k, err)
		case !down[k] && (err != nil || !ok):
			t.Errorf("%s of %s, on a master that is up: err = %v, ok = %v", op, k, err, ok)
		}
	}
	items, err := st.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		check("get-many", keys[i], it.Err, string(it.Value) == "v")
	}
	writes := make([]remote.Write, len(keys))
	for i, k := range keys {
		writes[i] = remote.Write{Key: k, Value: []byte("w")}
	}
	res, err := st.WriteMany(ctx, writes, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		check("write-many", keys[i], r.Err, r.Applied)
	}
	for i := range keys {
		keys[i] += ":lease"
		down[keys[i]] = func() bool {
			m, err := client.MasterForKey(ctx, st.RedisKey(keys[i]))
			return err == nil && m.Options().Addr == cl.Addrs[0]
		}()
	}
	claims, err := st.Acquire(ctx, keys, "tok", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range claims {
		check("acquire", keys[i], c.Err, c.Acquired)
	}
}

// The batch benchmarks, in the setting of benchBatch, each against the
// go-redis commands it is measured by. Against the real server:
//
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench '^(BenchmarkMGet|BenchmarkGetMany|BenchmarkPipelineSet|BenchmarkWriteMany)$' -count 10 ./remote/

// BenchmarkMGet is BenchmarkGetMany's baseline: one MGET of the keys.
func BenchmarkMGet(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	bb.run(b, func() error { return bb.srv.Client.MGet(ctx, bb.rk...).Err() })
}

// BenchmarkGetMany reads the keys, with their TTLs.
func BenchmarkGetMany(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	bb.run(b, func() error {
		items, err := bb.st.GetMany(ctx, bb.keys)
		if err == nil && items[0].Err != nil {
			err = items[0].Err
		}
		return err
	})
}

// BenchmarkPipelineSet is BenchmarkWriteMany's baseline: a pipeline of a
// SET … PX per key and one PUBLISH, which is not atomic.
func BenchmarkPipelineSet(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	bb.run(b, func() error {
		pipe := bb.srv.Client.Pipeline()
		for _, k := range bb.rk {
			pipe.Set(ctx, k, bb.val, time.Hour)
		}
		pipe.Publish(ctx, bb.ch, bb.msg)
		_, err := pipe.Exec(ctx)
		return err
	})
}

// BenchmarkWriteMany writes every key (Always, with a TTL) and publishes
// their message.
func BenchmarkWriteMany(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	writes := make([]remote.Write, len(bb.keys))
	for i, k := range bb.keys {
		writes[i] = remote.Write{Key: k, Value: bb.val, TTL: time.Hour}
	}
	payload := func([]string) []byte { return bb.msg }
	bb.run(b, func() error {
		res, err := bb.st.WriteMany(ctx, writes, payload)
		if err == nil && res[0].Err != nil {
			err = res[0].Err
		}
		return err
	})
}
