package tiercache_test

import (
	"context"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

type Order struct {
	Total int
}

// A service with several caches (one per value type, say) shares one Hub:
// one Redis pub/sub connection and four goroutines for all of them.
func Example_hub() {
	ctx := context.Background()
	redisServer, err := miniredis.Run() // an embedded Redis, for the example
	if err != nil {
		log.Fatal(err)
	}
	defer redisServer.Close()
	client := redis.NewClient(&redis.Options{Addr: redisServer.Addr()})
	defer client.Close()

	hub, err := tiered.NewHub(client, tiered.HubOptions{}) // MaxStaleness: 10ms
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close() // closes the caches still attached, too
	users, err := tiered.NewCache(hub, tiered.Options[User]{Namespace: "users"})
	if err != nil {
		log.Fatal(err)
	}
	orders, err := tiered.NewCache(hub, tiered.Options[Order]{Namespace: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	if err := hub.WaitReady(ctx); err != nil { // optional: fail fast at startup
		log.Fatal(err)
	}

	if err := orders.Set(ctx, "o-1", Order{Total: 30}); err != nil {
		log.Fatal(err)
	}
	o, err := orders.Get(ctx, "o-1")
	fmt.Println(o.Total, err)
	_, err = users.Get(ctx, "42")
	fmt.Println(err)
	// Output:
	// 30 <nil>
	// tiered: get "42" in namespace "users": not found
}
