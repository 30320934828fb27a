package tiered_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// A list page needs many keys: FetchMany reads the cold ones from Redis in one
// round trip and calls the loader once with the keys Redis does not hold.
// Keys the loader leaves out are absent, and with NotFoundTTL every instance
// remembers that for a while instead of asking the database again. With
// several instances, leases (on by default) make the loader run once in the
// whole fleet for a cold key.
func ExampleCache_FetchMany() {
	ctx := context.Background()
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	users, err := tiered.New(client, tiered.Options[string]{
		Namespace:   "users",
		TTL:         time.Hour,
		NotFoundTTL: time.Minute, // remember absent users for a minute
		TTLJitter:   0.1,         // spread expiries by ±10%
	})
	if err != nil {
		panic(err)
	}
	defer users.Close()

	_ = users.SetMany(ctx, map[string]string{"1": "Ann", "2": "Bob"})
	db := map[string]string{"3": "Cy"} // the source of truth
	loads := 0
	load := func(ctx context.Context, missing []string) (map[string]string, error) {
		loads++
		found := make(map[string]string)
		for _, id := range missing {
			if name, ok := db[id]; ok {
				found[id] = name
			}
		}
		_ = tiered.SetTTL(ctx, 10*time.Minute) // this load's values live 10 minutes
		return found, nil
	}
	got, _ := users.FetchMany(ctx, []string{"1", "2", "3", "4"}, load)
	fmt.Println(got["1"], got["2"], got["3"], len(got), "loads:", loads)

	got, _ = users.FetchMany(ctx, []string{"3", "4"}, load) // "4" is remembered as absent
	fmt.Println(len(got), "loads:", loads)
	_, err = users.Get(ctx, "4")
	fmt.Println(errors.Is(err, tiered.ErrNotFound))
	// Output:
	// Ann Bob Cy 3 loads: 1
	// 1 loads: 1
	// true
}

// hitCounter is an Observer that counts local hits and the Redis calls of
// each operation. An Observer is called on the hit path: it must be fast.
type hitCounter struct {
	mu    sync.Mutex
	hits  int
	redis map[string]int
}

func (h *hitCounter) Observe(e tiered.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Kind {
	case tiered.EventLocalHit:
		h.hits += e.Keys
	case tiered.EventRedis:
		h.redis[e.Op]++
	}
}

// An Observer on a Hub sees what every cache on it does; the
// github.com/tiercache/tiercache/otel module is one that records
// OpenTelemetry metrics.
func ExampleObserver() {
	ctx := context.Background()
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()

	obs := &hitCounter{redis: map[string]int{}}
	hub, err := tiered.NewHub(client, tiered.HubOptions{
		Observer: obs,
		// Only so that the counts below are certain: with the freshness
		// proof on (the default), a read right after startup goes to
		// Redis until the first proof arrives.
		MaxStaleness: -1,
	})
	if err != nil {
		panic(err)
	}
	defer hub.Close()
	users, err := tiered.NewCache(hub, tiered.Options[string]{Namespace: "users"})
	if err != nil {
		panic(err)
	}
	if err := users.WaitReady(ctx); err != nil {
		panic(err)
	}

	_ = users.Set(ctx, "42", "Ann")
	for range 3 {
		_, _ = users.Get(ctx, "42") // local hits: the Set filled the local tier
	}
	_, _ = users.Get(ctx, "43") // a miss, read from Redis

	obs.mu.Lock()
	defer obs.mu.Unlock()
	fmt.Println("local hits:", obs.hits)
	fmt.Println("Redis calls:", obs.redis["set"], "set,", obs.redis["get"], "get")
	// Output:
	// local hits: 3
	// Redis calls: 1 set, 1 get
}
