package tiered_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// Two instances of a service share one Redis. A write on one reaches Redis
// and invalidates the other's local copy.
func Example() {
	ctx := context.Background()
	srv := miniredis.NewMiniRedis() // an embedded Redis, for the example
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()

	newInstance := func() (*tiered.Cache[string], func()) {
		client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		c, err := tiered.New(client, tiered.Options[string]{Namespace: "greetings", TTL: time.Hour})
		if err != nil {
			panic(err)
		}
		for !c.Subscribed() { // only needed to make the example's output certain
			time.Sleep(time.Millisecond)
		}
		return c, func() { c.Close(); client.Close() }
	}
	a, closeA := newInstance()
	defer closeA()
	b, closeB := newInstance()
	defer closeB()

	_ = a.Set(ctx, "en", "hello")
	v, _ := b.Get(ctx, "en") // read from Redis, now held in b's local tier
	fmt.Println(v)

	_ = a.Set(ctx, "en", "hello, world") // b's copy is invalidated
	for v == "hello" {
		v, _ = b.Get(ctx, "en")
	}
	fmt.Println(v)

	loaded, _ := b.Fetch(ctx, "fr", func(context.Context) (string, error) {
		return "bonjour", nil // e.g. from the database, on a miss
	})
	fmt.Println(loaded)
	// Output:
	// hello
	// hello, world
	// bonjour
}
