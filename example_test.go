package tiercache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

type User struct {
	Name string
}

func Example() {
	ctx := context.Background()
	server, err := miniredis.Run() // an embedded Redis; a service dials its own
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	client := redis.NewClient(&redis.Options{Addr: server.Addr()})
	defer client.Close()

	users, err := tiered.New(client, tiered.Options[User]{
		Namespace: "users",   // the same in every replica
		TTL:       time.Hour, // how long Redis keeps what Set and Fetch store
	})
	if err != nil {
		log.Fatal(err) // invalid options: New does not wait for Redis
	}
	defer users.Close()

	// The local tier, else Redis, else the loader: once across the fleet.
	u, err := users.Fetch(ctx, "42", func(ctx context.Context) (User, error) {
		return User{Name: "Ann"}, nil // the service's database
	})
	fmt.Println(u.Name, err)

	// A write goes to Redis and drops every other replica's copy.
	if err := users.Set(ctx, "42", User{Name: "Ann Lee"}); err != nil {
		log.Fatal(err)
	}
	u, err = users.Get(ctx, "42")
	fmt.Println(u.Name, err)

	_, err = users.Get(ctx, "7")
	fmt.Println(err, errors.Is(err, tiered.ErrNotFound))
	// Output:
	// Ann <nil>
	// Ann Lee <nil>
	// tiered: get "7" in namespace "users": not found true
}
