package remote_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// A call returns within its deadline even while the server answers nothing
// (CLIENT PAUSE ALL), whether or not the client enforces deadlines itself.
func TestDeadlineUnderPauseAll(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enforces bool
	}{
		{"default client, calls on a goroutine", false},
		{"ContextTimeoutEnabled, calls inline", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.NewReal(t)
			client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: tc.enforces})
			t.Cleanup(func() { _ = client.Close() })
			st := remote.New(client, remote.Options{Namespace: "deadline"})
			if st.EnforcesDeadlines() != tc.enforces {
				t.Fatalf("EnforcesDeadlines() = %v, want %v", st.EnforcesDeadlines(), tc.enforces)
			}
			bg := context.Background()
			if err := st.Set(bg, "k", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			const (
				pause    = 1000 * time.Millisecond
				deadline = 200 * time.Millisecond
				slack    = 100 * time.Millisecond
			)
			srv.Pause("ALL", pause)
			paused := time.Now()
			ops := []struct {
				name string
				call func(context.Context) error
			}{
				{"GetWithTTL", func(ctx context.Context) error { _, _, err := st.GetWithTTL(ctx, "k"); return err }},
				{"Set", func(ctx context.Context) error { return st.Set(ctx, "k", []byte("new"), 0) }},
				{"Delete", func(ctx context.Context) error { return st.Delete(ctx, "other") }},
			}
			for _, op := range ops {
				ctx, cancel := context.WithTimeout(bg, deadline)
				start := time.Now()
				err := op.call(ctx)
				took := time.Since(start)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s under CLIENT PAUSE: err = %v, want DeadlineExceeded", op.name, err)
				}
				t.Logf("%s: %v after %v", op.name, err, took)
				if took > deadline+slack {
					t.Errorf("%s with a %v deadline returned after %v", op.name, deadline, took)
				}
			}
			if time.Since(paused) >= pause {
				t.Fatal("the pause ended before the calls did: the test proves nothing")
			}
			if tc.enforces {
				return
			}
			// The abandoned Set was not cancelled: it lands once the pause
			// ends, as the doc of EnforcesDeadlines says a write may.
			for end := time.Now().Add(3 * time.Second); ; {
				v, err := st.Get(bg, "k")
				if err == nil && string(v) == "new" {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("the abandoned Set never landed: Get = %q, %v", v, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// goid returns the id of the calling goroutine.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// goroutineHook records the goroutine that sends each command.
type goroutineHook struct{ last chan uint64 }

func (h goroutineHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h goroutineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		select {
		case h.last <- goid():
		default:
		}
		return next(ctx, cmd)
	}
}

func (h goroutineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		select {
		case h.last <- goid():
		default:
		}
		return next(ctx, cmds)
	}
}

// A call runs on the caller's goroutine when its ctx cannot end, or when the
// client enforces the ctx's deadline itself; on a goroutine of its own
// otherwise.
func TestCallsRunInlineWhenTheyCan(t *testing.T) {
	s := redistest.New(t)
	plain := s.NewClient("")
	enforcing := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = enforcing.Close() })
	bg := context.Background()
	withDeadline, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	cancellable, cancel2 := context.WithCancel(bg)
	defer cancel2()

	for _, tc := range []struct {
		name   string
		client *redis.Client
		ctx    context.Context
		inline bool
	}{
		{"default client, Background", plain, bg, true},
		{"default client, WithoutCancel", plain, context.WithoutCancel(withDeadline), true},
		{"default client, deadline", plain, withDeadline, false},
		{"default client, cancel only", plain, cancellable, false},
		{"ContextTimeoutEnabled, Background", enforcing, bg, true},
		{"ContextTimeoutEnabled, deadline", enforcing, withDeadline, true},
		{"ContextTimeoutEnabled, cancel only", enforcing, cancellable, false},
	} {
		st := remote.New(tc.client, remote.Options{Namespace: s.Namespace})
		hook := goroutineHook{last: make(chan uint64, 1)}
		tc.client.AddHook(hook)
		ops := map[string]func() error{
			"Get":         func() error { _, err := st.Get(tc.ctx, "k"); return err },
			"GetWithTTL":  func() error { _, _, err := st.GetWithTTL(tc.ctx, "k"); return err },
			"Set":         func() error { return st.Set(tc.ctx, "k", []byte("v"), 0) },
			"SetIfAbsent": func() error { _, err := st.SetIfAbsent(tc.ctx, "k", []byte("v"), 0); return err },
			"Delete":      func() error { return st.Delete(tc.ctx, "k") },
			"Keys":        func() error { _, err := st.Keys(tc.ctx); return err },
			"SetAndPublish": func() error {
				return st.SetAndPublish(tc.ctx, "k", []byte("v"), 0, "ch:"+s.Namespace, nil)
			},
			"DeleteAndPublish": func() error {
				return st.DeleteAndPublish(tc.ctx, "ch:"+s.Namespace, func([]string) []byte { return nil }, "k")
			},
		}
		for name, op := range ops {
			err := op()
			if err != nil && !errors.Is(err, remote.ErrNotFound) {
				t.Fatalf("%s: %s: %v", tc.name, name, err)
			}
			if got := <-hook.last; (got == goid()) != tc.inline {
				t.Errorf("%s: %s ran inline = %v, want %v", tc.name, name, got == goid(), tc.inline)
			}
		}
	}
}

// The inline path adds no allocation to go-redis's own.
func TestInlineGetAllocatesNothingExtra(t *testing.T) {
	s := redistest.New(t)
	st := remote.New(s.Client, remote.Options{Namespace: s.Namespace})
	ctx := context.Background()
	if err := st.Set(ctx, "k", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	raw := testing.AllocsPerRun(200, func() {
		if _, err := s.Client.Get(ctx, st.RedisKey("k")).Bytes(); err != nil {
			t.Fatal(err)
		}
	})
	store := testing.AllocsPerRun(200, func() {
		if _, err := st.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per Get: go-redis %v, Store.Get %v", raw, store)
	if store > raw {
		t.Fatalf("Store.Get allocates %v times per call, go-redis alone %v", store, raw)
	}
}

// BenchmarkGetPaths compares a plain go-redis GET with Store.Get on each
// path: inline (Background; a deadline the client enforces) and on a
// goroutine (a deadline a default client would ignore).
func BenchmarkGetPaths(b *testing.B) {
	s := redistest.New(b)
	enforcing := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = enforcing.Close() })
	st := remote.New(s.Client, remote.Options{Namespace: s.Namespace})
	stEnforcing := remote.New(enforcing, remote.Options{Namespace: s.Namespace})
	bg := context.Background()
	if err := st.Set(bg, "k", []byte("value"), 0); err != nil {
		b.Fatal(err)
	}
	withDeadline, cancel := context.WithTimeout(bg, time.Hour)
	defer cancel()
	for _, bc := range []struct {
		name string
		get  func() error
	}{
		{"go-redis", func() error { _, err := s.Client.Get(bg, st.RedisKey("k")).Bytes(); return err }},
		{"Store/inline/Background", func() error { _, err := st.Get(bg, "k"); return err }},
		{"Store/inline/enforced-deadline", func() error { _, err := stEnforcing.Get(withDeadline, "k"); return err }},
		{"Store/goroutine/deadline", func() error { _, err := st.Get(withDeadline, "k"); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.get(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
