package tiercache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// db stands for the service's database.
var db = map[string]User{"42": {Name: "Ann"}}

func loadUser(ctx context.Context, id string) (User, error) {
	u, ok := db[id]
	if !ok {
		return User{}, tiered.ErrNotFound // remembered as absent for NotFoundTTL
	}
	return u, nil
}

// replica is one process of the service: its own Redis client and cache.
func replica(ctx context.Context, addr string) (*tiered.Cache[User], func()) {
	client := redis.NewClient(&redis.Options{Addr: addr})
	users, err := tiered.New(client, tiered.Options[User]{
		Namespace:   "users",   // the same in every replica
		TTL:         time.Hour, // how long Redis keeps what Set and Fetch store
		NotFoundTTL: time.Minute,
	})
	if err != nil {
		log.Fatal(err) // invalid options; New does not wait for Redis
	}
	// Optional: wait until the local tier is in use (until then, reads go
	// to Redis), failing fast on a wrong address.
	if err := users.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	return users, func() { users.Close(); client.Close() }
}

// Two replicas of a service share a cache of users: a write on one
// reaches the other.
func Example_replicas() {
	ctx := context.Background()
	redisServer, err := miniredis.Run() // an embedded Redis, for the example
	if err != nil {
		log.Fatal(err)
	}
	defer redisServer.Close()

	a, closeA := replica(ctx, redisServer.Addr())
	defer closeA()
	b, closeB := replica(ctx, redisServer.Addr())
	defer closeB()

	// The local tier, else Redis, else the loader: once across the fleet.
	id := "42"
	u, err := a.Fetch(ctx, id, func(ctx context.Context) (User, error) {
		return loadUser(ctx, id)
	})
	fmt.Println(u.Name, err)

	u, err = b.Get(ctx, id) // from Redis; b's local tier holds it now
	fmt.Println(u.Name, err)

	// A write reaches Redis and invalidates every other replica's copy:
	// b serves the old value for at most HubOptions.MaxStaleness (10ms by
	// default) after Set returns.
	if err := a.Set(ctx, id, User{Name: "Ann Lee"}); err != nil {
		log.Fatal(err)
	}
	for u.Name == "Ann" {
		u, err = b.Get(ctx, id)
	}
	fmt.Println(u.Name, err)

	_, err = b.Fetch(ctx, "7", func(ctx context.Context) (User, error) {
		return loadUser(ctx, "7")
	})
	fmt.Println(err)
	// Output:
	// Ann <nil>
	// Ann <nil>
	// Ann Lee <nil>
	// tiered: fetch "7" in namespace "users": not found
}
