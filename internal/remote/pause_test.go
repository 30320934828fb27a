package remote_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// Reads go on while writes are paused (CLIENT PAUSE WRITE, as a failover
// does): GetWithTTL answers at once, writes wait.
func TestGetWithTTLAnswersDuringWritePause(t *testing.T) {
	srv := redistest.NewReal(t)
	st := mustNew(t, srv.Client, remote.Options{Namespace: "pause"})
	bg := context.Background()
	put(t, st, "k", []byte("v"), time.Minute)
	if _, _, err := st.GetWithTTL(bg, "k"); err != nil { // warm up: connection, any script
		t.Fatal(err)
	}
	// A read that waited for the pause would take 3s; the checks' bound,
	// 1s, is a loaded machine's margin.
	srv.Pause("WRITE", 3*time.Second)
	paused := time.Now()

	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	start := time.Now()
	v, ttl, err := st.GetWithTTL(ctx, "k")
	took := time.Since(start)
	if err != nil || string(v) != "v" || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("GetWithTTL during a write pause = %q, %v, %v after %v; want v, ~1m", v, ttl, err, took)
	}
	if took > time.Second {
		t.Fatalf("GetWithTTL during a write pause took %v", took)
	}
	if _, _, err := st.GetWithTTL(ctx, "missing"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("GetWithTTL(missing) during a write pause: err = %v, want ErrNotFound", err)
	}

	// The pause is real: a write waits for it.
	wctx, wcancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer wcancel()
	if err := st.SetAndPublish(wctx, "k", []byte("w"), 0, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SetAndPublish during a write pause: err = %v, want DeadlineExceeded", err)
	}
	if time.Since(paused) >= 3*time.Second {
		t.Fatal("the pause ended before the checks did: the test proves nothing")
	}
}

// The designs considered for GetWithTTL, each one round trip that reads the
// value and its PTTL: atomically but for the pipeline, which GetWithTTL
// sends (see getWithTTL). Run against the real server:
//
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench GetWithTTLDesigns -count 10 ./remote/
var (
	// The script GetWithTTL used before: no flags, so Redis counts EVALSHA
	// as a possible write and CLIENT PAUSE WRITE holds it.
	getWithTTLScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}`)

	// The same script declared read-only (Redis 7): run with EVALSHA_RO.
	// miniredis v2.40 cannot parse the shebang.
	getWithTTLNoWrites = redis.NewScript(`#!lua flags=no-writes
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}`)
)

func BenchmarkGetWithTTLDesigns(b *testing.B) {
	s := redistest.New(b)
	st := mustNew(b, s.Client, remote.Options{Namespace: s.Namespace})
	ctx := context.Background()
	put(b, st, "k", []byte("a value of some thirty bytes.."), time.Hour)
	key := st.RedisKey("k")
	for _, bc := range []struct {
		name string
		get  func() error
	}{
		{"lua-evalsha", func() error { return getWithTTLScript.Run(ctx, s.Client, []string{key}).Err() }},
		{"lua-no-writes-evalsha_ro", func() error {
			if !s.Real() {
				return errSkip
			}
			r := getWithTTLNoWrites.EvalShaRO(ctx, s.Client, []string{key})
			if redis.HasErrorPrefix(r.Err(), "NOSCRIPT") {
				r = getWithTTLNoWrites.EvalRO(ctx, s.Client, []string{key})
			}
			return r.Err()
		}},
		{"multi-exec", func() error {
			_, err := s.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, key)
				p.PTTL(ctx, key)
				return nil
			})
			return err
		}},
		{"pipeline", func() error {
			_, err := s.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, key)
				p.PTTL(ctx, key)
				return nil
			})
			return err
		}},
		{"Store.GetWithTTL", func() error { _, _, err := st.GetWithTTL(ctx, "k"); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if err := bc.get(); errors.Is(err, errSkip) {
				b.Skip("miniredis cannot parse #!lua flags=no-writes")
			} else if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.get(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var errSkip = errors.New("skip")
