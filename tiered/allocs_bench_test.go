package tiered_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The hot paths whose allocations allocs_test.go bounds, as benchmarks. Run
// against the real server, interleaved:
//
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench 'RemoteHit|Set$|Warm100' -count 10 ./tiered

// hotCache returns a cache made with opts on a Hub of its own made with
// hopts, over the test server's plain client, once it is live.
func hotCache(tb testing.TB, s *redistest.Server, hopts tiered.HubOptions, opts tiered.Options[string]) *tiered.Cache[string] {
	tb.Helper()
	h, err := tiered.NewHub(s.Client, hopts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	opts.Namespace = s.Namespace
	c, err := tiered.NewCache(h, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// hotKeys returns n keys "k0" … and, with values, stores "value-" + key at
// each in Redis (for an hour), writing nothing to c's local tier.
func hotKeys(tb testing.TB, s *redistest.Server, n int, values bool) []string {
	tb.Helper()
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "k" + strconv.Itoa(i)
		if values {
			if err := s.Client.Set(bg, s.Namespace+":"+ks[i], "value-"+ks[i], time.Hour).Err(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return ks
}

// ctxKinds are the two kinds of ctx a call may get: one that never ends,
// and one with a deadline (which a default client leaves to the Store to
// enforce: the Redis work runs on a goroutine of its own).
func ctxKinds(tb testing.TB) []struct {
	name string
	ctx  context.Context
} {
	dl, cancel := context.WithTimeout(bg, time.Hour)
	tb.Cleanup(cancel)
	return []struct {
		name string
		ctx  context.Context
	}{{"Background", bg}, {"deadline", dl}}
}

// cycle returns a function that returns the items of ks in turn.
func cycle(ks []string) func() string {
	i := -1
	return func() string {
		if i++; i == len(ks) {
			i = 0
		}
		return ks[i]
	}
}

// BenchmarkRemoteHit reads keys that Redis holds and the local tier does
// not (a LocalSize of 1, 1000 keys in turn): every Get is a Redis read and
// a fill.
func BenchmarkRemoteHit(b *testing.B) {
	s := redistest.New(b)
	c := hotCache(b, s, tiered.HubOptions{}, tiered.Options[string]{TTL: time.Hour, LocalSize: 1})
	next := cycle(hotKeys(b, s, 1000, true))
	for _, k := range ctxKinds(b) {
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(k.ctx, next()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSet writes 1000 keys in turn.
func BenchmarkSet(b *testing.B) {
	s := redistest.New(b)
	c := hotCache(b, s, tiered.HubOptions{}, tiered.Options[string]{TTL: time.Hour})
	next := cycle(hotKeys(b, s, 1000, false))
	for _, k := range ctxKinds(b) {
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Set(k.ctx, next(), "value"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWarm100 reads 100 keys that the local tier holds, with one
// GetMany and with 100 Gets; GetsToMap puts the Gets' values in a map as
// GetMany returns them, and Map builds that map alone (no read): the part
// of GetMany's cost that 100 Gets do not pay.
func BenchmarkWarm100(b *testing.B) {
	s := redistest.New(b)
	c := hotCache(b, s, tiered.HubOptions{}, tiered.Options[string]{TTL: time.Hour})
	ks := warmKeys(b, s, c)
	b.Run("GetMany", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m, err := c.GetMany(bg, ks); err != nil || len(m) != len(ks) {
				b.Fatal(len(m), err)
			}
		}
	})
	b.Run("Gets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, k := range ks {
				if _, err := c.Get(bg, k); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("GetsToMap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := make(map[string]string, len(ks))
			for _, k := range ks {
				v, err := c.Get(bg, k)
				if err != nil {
					b.Fatal(err)
				}
				m[k] = v
			}
		}
	})
	b.Run("Map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := make(map[string]string, len(ks))
			for _, k := range ks {
				m[k] = k
			}
			if len(m) != len(ks) {
				b.Fatal(len(m))
			}
		}
	})
}

// warmKeys stores 100 keys with Set, which leaves them in c's local tier.
func warmKeys(tb testing.TB, s *redistest.Server, c *tiered.Cache[string]) []string {
	tb.Helper()
	ks := hotKeys(tb, s, 100, false)
	for _, k := range ks {
		if err := c.Set(bg, k, "value-"+k); err != nil {
			tb.Fatal(err)
		}
	}
	return ks
}
