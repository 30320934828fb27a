package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// slipIn is a go-redis hook that slips a command into each pipeline right
// after its first one: between GetWithTTL's GET and its PTTL.
type slipIn struct{ args []any }

func (h slipIn) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h slipIn) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h slipIn) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c := redis.NewCmd(ctx, h.args...)
		err := next(ctx, slices.Insert(slices.Clone(cmds), 1, redis.Cmder(c)))
		if c.Err() != nil {
			return c.Err()
		}
		return err
	}
}

// What GetWithTTL answers when something happens to the key between its
// GET and its PTTL, which are not atomic: see getWithTTL.
func TestGetWithTTLBetweenItsCommands(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ttl     time.Duration // the key's before the GET; 0: none
		between func(key string) []any
		check   func(t *testing.T, v []byte, ttl time.Duration, err error)
	}{
		{"deleted", time.Hour, func(k string) []any { return []any{"del", k} }, notFound},
		{"expired", time.Hour, func(k string) []any { return []any{"pexpireat", k, 1} }, notFound},
		{"deleted, no TTL", 0, func(k string) []any { return []any{"del", k} }, notFound},
		{"TTL shortened", time.Hour, func(k string) []any { return []any{"pexpire", k, 5000} },
			value("v", 4*time.Second, 5*time.Second)},
		{"written, with a shorter TTL", time.Hour, func(k string) []any { return []any{"set", k, "new", "px", 5000} },
			value("v", 4*time.Second, 5*time.Second)}, // the old value, the new TTL
		{"persisted", time.Hour, func(k string) []any { return []any{"persist", k} }, value("v", remote.NoExpiry, remote.NoExpiry)},
		{"nothing, no TTL", 0, func(k string) []any { return []any{"exists", k} }, value("v", remote.NoExpiry, remote.NoExpiry)},
		{"nothing", time.Hour, func(k string) []any { return []any{"exists", k} }, value("v", 59*time.Minute, time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.New(t)
			client := s.NewClient("")
			st := mustNew(t, client, remote.Options{Namespace: s.Namespace})
			put(t, st, "k", []byte("v"), tc.ttl)
			client.AddHook(slipIn{args: tc.between(st.RedisKey("k"))})
			v, ttl, err := st.GetWithTTL(ctx, "k")
			tc.check(t, v, ttl, err)
		})
	}
}

func notFound(t *testing.T, v []byte, _ time.Duration, err error) {
	t.Helper()
	checkNotFound(t, "get", "k", v, err)
}

func value(want string, lo, hi time.Duration) func(t *testing.T, v []byte, ttl time.Duration, err error) {
	return func(t *testing.T, v []byte, ttl time.Duration, err error) {
		t.Helper()
		if err != nil || string(v) != want || ttl < lo || ttl > hi {
			t.Fatalf("GetWithTTL = %q, %v, %v; want %q with a TTL in [%v, %v]", v, ttl, err, want, lo, hi)
		}
	}
}

// failPipelines is a go-redis hook that fails every pipeline without
// sending it: no command gets an error of its own.
type failPipelines struct{}

var errHook = errors.New("hook refused")

func (failPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failPipelines) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error { return errHook }
}

// A read that a hook fails is that error, never an empty value: the
// commands, reused or not, carry no error of their own then.
func TestGetWithTTLHookFailure(t *testing.T) {
	s := redistest.New(t)
	client := s.NewClient("")
	st := mustNew(t, client, remote.Options{Namespace: s.Namespace})
	put(t, st, "k", []byte("v"), time.Hour)
	if _, _, err := st.GetWithTTL(context.Background(), "k"); err != nil { // a reused read is pooled
		t.Fatal(err)
	}
	client.AddHook(failPipelines{})
	for range 3 {
		v, ttl, err := st.GetWithTTL(context.Background(), "k")
		if !errors.Is(err, errHook) || v != nil {
			t.Fatalf("GetWithTTL under a failing hook = %q, %v, %v; want errHook", v, ttl, err)
		}
	}
}

// Reads and writes of many keys, one after the other and from several
// goroutines, each get their own answer: nothing of one call's reused
// commands reaches the next (a value, an error, a key).
func TestReusedCommandsKeepCallsApart(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	const n = 50
	for i := range n {
		if i%3 == 0 {
			continue // missing
		}
		ttl := time.Duration(0)
		if i%2 == 0 {
			ttl = time.Hour
		}
		if err := st.SetAndPublish(ctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), ttl, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 10 {
				for j := range n {
					i := (j*7 + g + round) % n
					v, ttl, err := st.GetWithTTL(ctx, fmt.Sprint("k", i))
					switch {
					case i%3 == 0:
						if !errors.Is(err, remote.ErrNotFound) || v != nil {
							t.Errorf("k%d = %q, %v, %v; want not found", i, v, ttl, err)
						}
					case err != nil || string(v) != fmt.Sprint("v", i):
						t.Errorf("k%d = %q, %v; want v%d", i, v, err, i)
					case (i%2 == 0) != (ttl > 0):
						t.Errorf("k%d: TTL %v", i, ttl)
					}
				}
			}
		})
	}
	wg.Wait()
}
