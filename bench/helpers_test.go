package main

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
)

func TestMain(m *testing.M) {
	installGoRedisLog()
	leakcheck.Main(m)
}

// newEnv returns an env on the server at REDIS_ADDR (host:port, as -redis
// takes it too), or on an embedded one, closed (and its namespace deleted)
// when tb ends.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	return envAt(tb, os.Getenv(redistest.EnvAddr))
}

// embeddedEnv returns an env on an embedded server, closed when tb ends.
func embeddedEnv(tb testing.TB) *env {
	tb.Helper()
	return envAt(tb, "")
}

// envAt returns an env on the server that -redis server would name.
func envAt(tb testing.TB, server string) *env {
	tb.Helper()
	e, err := openEnv(context.Background(), server)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// servers are the envs a scenario test runs on: the embedded server, and
// the one at REDIS_ADDR when it is set.
func servers() map[string]func(testing.TB) *env {
	envs := map[string]func(testing.TB) *env{"embedded": embeddedEnv}
	if os.Getenv(redistest.EnvAddr) != "" {
		envs["real"] = newEnv
	}
	return envs
}

// onServers runs scenario with cfg on each of servers(), hands check what
// it returned, then checks the width of its report.
func onServers(t *testing.T, scenario string, cfg config, check func(t *testing.T, server string, e *env, res result)) {
	for name, env := range servers() {
		t.Run(name, func(t *testing.T) {
			e := env(t)
			res, err := runScenario(context.Background(), e, cfg, scenario)
			if err != nil {
				t.Fatal(err)
			}
			check(t, name, e, res)
			rep := newReport(e, cfg)
			rep.add(res, time.Second)
			checkWidth(t, rep)
		})
	}
}

// must returns a function that returns v, failing tb if err is not nil:
// must[T](tb)(f()).
func must[T any](tb testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

// loop calls f on items in turn, as many times as b asks, failing on the
// first error: the Go benchmarks' cycle.
func loop[T any](b *testing.B, items []T, f func(T) error) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := f(items[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(items) {
			i = 0
		}
	}
}

// loopParallel is loop from GOMAXPROCS goroutines, each starting at its own
// place in items.
func loopParallel[T any](b *testing.B, items []T, f func(T) error) {
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)*7919) % len(items)
		for pb.Next() {
			if err := f(items[i]); err != nil {
				b.Error(err)
				return
			}
			if i++; i == len(items) {
				i = 0
			}
		}
	})
}
