package local_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	engine "github.com/tiercache/tiercache/internal/local"
	"github.com/tiercache/tiercache/local"
)

func byteLen(v []byte) int64 { return int64(len(v)) }

func newCache[V any](t *testing.T, opts local.Options[V]) *local.Cache[string, V] {
	t.Helper()
	c, err := local.New[string, V](opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestOptionsErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		opts local.Options[[]byte]
		want string
	}{
		{local.Options[[]byte]{Size: -1}, "local: Size must be >= 0, got -1"},
		{local.Options[[]byte]{MaxBytes: -1}, "local: MaxBytes must be >= 0, got -1"},
		{local.Options[[]byte]{MaxBytes: 1 << 20}, "local: Sizer is required with MaxBytes (1048576)"},
		{local.Options[[]byte]{Shards: 3}, "local: Shards must be a power of two, got 3"},
		{local.Options[[]byte]{Shards: -4}, "local: Shards must be a power of two, got -4"},
		{local.Options[[]byte]{Size: 8, Shards: 16}, "local: Shards must be <= Size (8), got 16"},
		{local.Options[[]byte]{MaxBytes: 8, Sizer: byteLen, Shards: 16}, "local: Shards must be <= MaxBytes (8), got 16"},
	} {
		c, err := local.New[string, []byte](tc.opts)
		if err == nil {
			c.Close()
			t.Errorf("New(%+v): no error, want %q", tc.opts, tc.want)
			continue
		}
		if c != nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, %q; want nil, %q", tc.opts, c, err, tc.want)
		}
	}
}

// Every bad field is reported, each by name, not only the first.
func TestOptionsErrorsNameEveryField(t *testing.T) {
	c, err := local.New[string, []byte](local.Options[[]byte]{Size: -1, MaxBytes: 1 << 20, Shards: 3})
	if err == nil {
		c.Close()
		t.Fatal("New with three bad fields: no error")
	}
	for _, want := range []string{
		"local: Size must be >= 0, got -1",
		"local: Sizer is required with MaxBytes (1048576)",
		"local: Shards must be a power of two, got 3",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// The defaults documented here are the engine's.
func TestDefaults(t *testing.T) {
	if local.DefaultSize != engine.DefaultSize || local.DefaultShards != engine.DefaultShards {
		t.Fatalf("documented defaults %d entries, %d shards; the engine's are %d, %d",
			local.DefaultSize, local.DefaultShards, engine.DefaultSize, engine.DefaultShards)
	}
	c := newCache(t, local.Options[int]{})
	for i := range 3 * local.DefaultSize {
		c.Set(fmt.Sprint(i), i, 0)
	}
	if n := c.Len(); n != local.DefaultSize {
		t.Fatalf("the zero Options hold %d entries, want %d", n, local.DefaultSize)
	}
}

func TestSetGetDeletePurge(t *testing.T) {
	c := newCache(t, local.Options[string]{Size: 100})
	c.Set("a", "1", time.Hour)
	c.Set("b", "2", 0)
	c.Set("a", "3", time.Hour) // replaces
	if v, ok := c.Get("a"); !ok || v != "3" {
		t.Fatalf("Get(a) = %q, %v; want 3, true", v, ok)
	}
	c.Delete("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get after Delete hit")
	}
	c.Set("b", "4", -time.Second) // a negative ttl removes the key
	if _, ok := c.Get("b"); ok {
		t.Fatal("Set with a negative ttl left the key's old value")
	}
	for i := range 10 {
		c.Set(fmt.Sprint(i), "x", time.Hour)
	}
	if n := c.Len(); n != 10 {
		t.Fatalf("Len = %d, want 10", n)
	}
	c.Purge()
	if n := c.Len(); n != 0 {
		t.Fatalf("Len after Purge = %d, want 0", n)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 2 {
		t.Fatalf("Stats = %+v, want 1 hit, 2 misses", st)
	}
}

// An entry is gone by its ttl, up to a millisecond early; ttl 0 never
// expires. In a synctest bubble, where the clock goroutine runs on fake
// time.
func TestTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := local.New[string, int](local.Options[int]{Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Set("short", 1, 20*time.Millisecond)
		c.Set("forever", 2, 0)
		c.Set("tiny", 3, time.Millisecond) // gone at once: entries go up to 1ms early
		if _, ok := c.Get("tiny"); ok {
			t.Fatal("a ttl of 1ms stored a value")
		}
		time.Sleep(18 * time.Millisecond)
		if _, ok := c.Get("short"); !ok {
			t.Fatal("an entry with a 20ms ttl was gone after 18ms")
		}
		time.Sleep(2 * time.Millisecond)
		if _, ok := c.Get("short"); ok {
			t.Fatal("an entry with a 20ms ttl was still there after 20ms")
		}
		time.Sleep(100 * 365 * 24 * time.Hour)
		if v, ok := c.Get("forever"); !ok || v != 2 {
			t.Fatal("an entry with ttl 0 expired")
		}
		if st := c.Stats(); st.Expirations != 1 {
			t.Fatalf("Expirations = %d, want 1", st.Expirations)
		}
	})
}

// A hit does not allocate, with or without a byte bound.
func TestGetHitDoesNotAllocate(t *testing.T) {
	for _, opts := range []local.Options[[]byte]{{}, {MaxBytes: 1 << 20, Sizer: byteLen}} {
		c := newCache(t, opts)
		keys := []string{"alpha", "beta", "a key long enough to hash in more than one block of the hash"}
		for _, k := range keys {
			c.Set(k, []byte(k), time.Hour)
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			if _, ok := c.Get(keys[i%len(keys)]); !ok {
				t.Fatal("miss")
			}
			i++
		})
		if allocs != 0 {
			t.Fatalf("Options %+v: a hit allocates %v times, want 0", opts, allocs)
		}
	}
}

// MaxBytes bounds what is held, whatever the entry count.
func TestMaxBytes(t *testing.T) {
	const maxBytes = 1 << 20
	c := newCache(t, local.Options[[]byte]{MaxBytes: maxBytes, Sizer: byteLen})
	for i := range 4000 {
		k := fmt.Sprint("key-", i)
		if _, ok := c.Get(k); !ok {
			c.Set(k, make([]byte, 1024), time.Hour)
		}
	}
	st := c.Stats()
	if st.Bytes > maxBytes*11/10 || st.Bytes < maxBytes*9/10 {
		t.Errorf("%d bytes held, want about 1 MiB (at most 1.1 MiB)", st.Bytes)
	}
	if n := c.Len(); n < 900 || n > 1024 {
		t.Errorf("%d entries held, want about 1,000", n)
	}
	if int64(c.Len())*1024 != st.Bytes {
		t.Errorf("Bytes = %d for %d entries of 1 KiB", st.Bytes, c.Len())
	}
}

// Keys read again and again stay while a scan of keys read once passes.
func TestHotKeysOutlastAScan(t *testing.T) {
	c := newCache(t, local.Options[int]{Size: 1000})
	read := func(k string) {
		if _, ok := c.Get(k); !ok {
			c.Set(k, 1, time.Hour)
		}
	}
	for range 5 {
		for i := range 500 {
			read(fmt.Sprint("hot", i))
		}
	}
	for i := range 100_000 {
		read(fmt.Sprint("scan", i))
	}
	before := c.Stats().Hits
	for i := range 500 {
		read(fmt.Sprint("hot", i))
	}
	// Size 1000 makes 8 shards. The last hot key each shard read may still
	// be in its window when the scan begins: never read after it was
	// admitted, it ages out. Every other hot key stays.
	if hits := c.Stats().Hits - before; hits < 500-8 {
		t.Fatalf("%d of 500 hot keys hit after a scan of 100,000 keys read once, want at least 492", hits)
	}
}

// A closed Cache holds nothing and stores nothing; Close is idempotent.
// TestMain's leak check proves the clock goroutine exits.
func TestClose(t *testing.T) {
	c, err := local.New[string, int](local.Options[int]{})
	if err != nil {
		t.Fatal(err)
	}
	c.Set("k", 1, 0)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(c.Close)
	}
	wg.Wait()
	c.Close()
	if _, ok := c.Get("k"); ok {
		t.Fatal("a closed Cache returned a value")
	}
	c.Set("k2", 2, 0)
	if _, ok := c.Get("k2"); ok {
		t.Fatal("a closed Cache stored a value")
	}
}

// Every method from many goroutines at once, for -race; a value always
// names its key.
func TestConcurrentUse(t *testing.T) {
	c := newCache(t, local.Options[[]byte]{Size: 256, MaxBytes: 256 * 40, Sizer: byteLen, Shards: 4})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 5000 {
				k := fmt.Sprint(rng.IntN(600))
				switch op := rng.IntN(100); {
				case op < 60:
					if v, ok := c.Get(k); ok && string(v[:len(k)]) != k {
						t.Errorf("Get(%s) returned %q", k, v)
						return
					}
				case op < 90:
					c.Set(k, append([]byte(k), make([]byte, rng.IntN(80))...), time.Duration(rng.IntN(5))*time.Millisecond)
				case op < 99:
					c.Delete(k)
				default:
					if i%100 == 0 {
						c.Purge()
					}
				}
				if i%500 == 0 {
					if st := c.Stats(); st.Bytes > 256*40 {
						t.Errorf("Bytes = %d > MaxBytes %d", st.Bytes, 256*40)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 256 {
		t.Fatalf("Len = %d > Size 256", n)
	}
}
