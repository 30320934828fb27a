package remote_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/remote"
)

// A batch job with no cache of its own writes the keys of namespace
// "users": every replica's tiered cache of "users" drops what it changes.
func Example() {
	ctx := context.Background()
	redisServer, err := miniredis.Run() // an embedded Redis, for the example
	if err != nil {
		log.Fatal(err)
	}
	defer redisServer.Close()
	client := redis.NewClient(&redis.Options{Addr: redisServer.Addr()})
	defer client.Close()

	users, err := remote.New(client, remote.Options{Namespace: "users"})
	if err != nil {
		log.Fatal(err) // invalid options
	}
	if err := users.Set(ctx, "42", []byte(`{"Name":"Ann"}`), time.Hour); err != nil {
		log.Fatal(err)
	}
	err = users.SetMany(ctx, map[string][]byte{"7": []byte(`{"Name":"Bo"}`), "9": []byte(`{"Name":"Cy"}`)}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	if err := users.Delete(ctx, "9"); err != nil {
		log.Fatal(err)
	}

	v, err := users.Get(ctx, "42")
	fmt.Println(string(v), err)
	found, err := users.GetMany(ctx, []string{"7", "9"})
	fmt.Println(len(found), string(found["7"]), err)
	keys, err := users.Keys(ctx)
	fmt.Println(keys, err)
	raw, err := client.Get(ctx, "users:42").Result() // the layout other programs see
	fmt.Println(raw, err)
	_, err = users.Get(ctx, "9")
	fmt.Println(errors.Is(err, remote.ErrNotFound), err)
	// Output:
	// {"Name":"Ann"} <nil>
	// 1 {"Name":"Bo"} <nil>
	// [42 7] <nil>
	// {"Name":"Ann"} <nil>
	// true remote: get "9" in namespace "users": not found
}
