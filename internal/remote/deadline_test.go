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
			st := mustNew(t, client, remote.Options{Namespace: "deadline"})
			if st.EnforcesDeadlines() != tc.enforces {
				t.Fatalf("EnforcesDeadlines() = %v, want %v", st.EnforcesDeadlines(), tc.enforces)
			}
			bg := context.Background()
			// This also loads the script of SetAndPublish: the abandoned call
			// below is then one EVALSHA, which the server runs once the pause
			// ends (after a NOSCRIPT, go-redis would send EVAL on the ctx,
			// which has ended by then).
			if err := st.SetAndPublish(bg, "k", []byte("old"), 0, nil); err != nil {
				t.Fatal(err)
			}
			// A call that waited for the server would return only when the
			// pause ends, so that is the bound: each call must return before
			// it. The pause outlasts the three deadlines by far more than a
			// loaded machine delays a timer.
			const (
				pause    = 2000 * time.Millisecond
				deadline = 200 * time.Millisecond
			)
			srv.Pause("ALL", pause)
			paused := time.Now()
			ops := []struct {
				name string
				call func(context.Context) error
			}{
				{"GetWithTTL", func(ctx context.Context) error { _, _, err := st.GetWithTTL(ctx, "k"); return err }},
				{"SetAndPublish", func(ctx context.Context) error {
					return st.SetAndPublish(ctx, "k", []byte("new"), 0, nil)
				}},
				{"DeleteAndPublish", func(ctx context.Context) error {
					return st.DeleteAndPublish(ctx, nil, "other")
				}},
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
				if time.Since(paused) >= pause {
					t.Fatalf("%s with a %v deadline returned after %v, when the pause had ended: it may have waited for the server", op.name, deadline, took)
				}
			}
			if tc.enforces {
				return
			}
			// The abandoned SetAndPublish was not cancelled: it lands once
			// the pause ends, as the doc of clientEnforcesDeadlines says a
			// write may.
			for end := paused.Add(pause + 3*time.Second); ; {
				v, err := get(bg, st, "k")
				if err == nil && string(v) == "new" {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("the abandoned SetAndPublish never landed: GetWithTTL = %q, %v", v, err)
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
		st := mustNew(t, tc.client, remote.Options{Namespace: s.Namespace})
		hook := goroutineHook{last: make(chan uint64, 1)}
		tc.client.AddHook(hook)
		ops := map[string]func() error{
			"GetWithTTL": func() error { _, _, err := st.GetWithTTL(tc.ctx, "k"); return err },
			"GetMany":    func() error { _, err := st.GetMany(tc.ctx, []string{"k"}); return err },
			"Keys":       func() error { _, err := st.Keys(tc.ctx); return err },
			"SetAndPublish": func() error {
				return st.SetAndPublish(tc.ctx, "k", []byte("v"), 0, nil)
			},
			"DeleteAndPublish": func() error {
				return st.DeleteAndPublish(tc.ctx, func([]string) []byte { return nil }, "k")
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

// rawGetWithTTL is what GetWithTTL sends for key of namespace ns, through
// go-redis alone: GET and PTTL in one pipeline.
func rawGetWithTTL(ctx context.Context, c redis.UniversalClient, ns, key string) error {
	k := ns + ":" + key
	pipe := c.Pipeline()
	get := pipe.Get(ctx, k)
	pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	return get.Err()
}

// The inline path adds no allocation to go-redis's own.
func TestInlineGetWithTTLAllocatesNothingExtra(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts of go-redis vary under the race detector")
	}
	s := redistest.New(t)
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace})
	ctx := context.Background()
	put(t, st, "k", []byte("value"), 0)
	raw := testing.AllocsPerRun(200, func() {
		if err := rawGetWithTTL(ctx, s.Client, s.Namespace, "k"); err != nil {
			t.Fatal(err)
		}
	})
	store := testing.AllocsPerRun(200, func() {
		if _, _, err := st.GetWithTTL(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per read: go-redis %v, Store.GetWithTTL %v", raw, store)
	if store > raw {
		t.Fatalf("Store.GetWithTTL allocates %v times per call, go-redis alone %v", store, raw)
	}
}

// BenchmarkGetPaths compares the read of GetWithTTL sent by go-redis alone
// with Store.GetWithTTL on each path: inline (Background; a deadline the
// client enforces) and on a goroutine (a deadline a default client would
// ignore).
func BenchmarkGetPaths(b *testing.B) {
	s := redistest.New(b)
	enforcing := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	b.Cleanup(func() { _ = enforcing.Close() })
	st := mustNew(b, s.Client, remote.Options{Namespace: s.Namespace})
	stEnforcing := mustNew(b, enforcing, remote.Options{Namespace: s.Namespace})
	bg := context.Background()
	put(b, st, "k", []byte("value"), 0)
	withDeadline, cancel := context.WithTimeout(bg, time.Hour)
	defer cancel()
	for _, bc := range []struct {
		name string
		get  func() error
	}{
		{"go-redis", func() error { return rawGetWithTTL(bg, s.Client, s.Namespace, "k") }},
		{"Store/inline/Background", func() error { _, _, err := st.GetWithTTL(bg, "k"); return err }},
		{"Store/inline/enforced-deadline", func() error { _, _, err := stEnforcing.GetWithTTL(withDeadline, "k"); return err }},
		{"Store/goroutine/deadline", func() error { _, _, err := st.GetWithTTL(withDeadline, "k"); return err }},
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
