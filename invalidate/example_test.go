package invalidate_test

import (
	"context"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/invalidate"
)

// A program that holds no cache changes a key of namespace "users" with a
// plain SET, then tells every cache of "users" to drop its copy.
func Example() {
	ctx := context.Background()
	redisServer, err := miniredis.Run() // an embedded Redis, for the example
	if err != nil {
		log.Fatal(err)
	}
	defer redisServer.Close()
	client := redis.NewClient(&redis.Options{Addr: redisServer.Addr()})
	defer client.Close()

	// What every cache of "users" listens on, to show the message.
	sub := client.Subscribe(ctx, "tiercache:invalidate:users")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		log.Fatal(err)
	}

	users, err := invalidate.NewPublisher(client, "users")
	if err != nil {
		log.Fatal(err) // an invalid namespace
	}
	if err := client.Set(ctx, "users:42", `{"Name":"Ann Lee"}`, 0).Err(); err != nil {
		log.Fatal(err)
	}
	if err := users.Invalidate(ctx, "42"); err != nil { // after the write
		log.Fatal(err)
	}

	m, err := sub.ReceiveMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	b := []byte(m.Payload)
	// Version 3, no flags, then 16 bytes of origin and the send time; then
	// one key of two bytes, "42"; then the write script's position in the
	// namespace's log, "1": the first message of "users".
	fmt.Printf("%s: % x … % x\n", m.Channel, b[:2], b[len(b)-5:])
	// Output:
	// tiercache:invalidate:users: 03 00 … 01 02 34 32 31
}
