package invalidate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
)

func ExampleMessage_Append() {
	msg := invalidate.Message{
		Origin: invalidate.NewOrigin(),
		Keys:   []string{"user:1", "user:2"},
	}
	b := msg.Append(nil) // the payload to PUBLISH on invalidate.Channel(namespace)

	got, err := invalidate.Decode(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b), got.Origin == msg.Origin, got.All, got.Keys)

	all, _ := invalidate.Decode(invalidate.Message{All: true}.Append(nil))
	fmt.Println(all.All, len(all.Keys))

	_, err = invalidate.Decode([]byte("junk"))
	fmt.Println(err)
	// Output:
	// 33 true false [user:1 user:2]
	// true 0
	// invalidate: malformed message: 4 bytes, need at least 19
}

func ExampleSubscribe() {
	mr, err := miniredis.Run() // an embedded server, for the example
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()

	users, orders := invalidate.Channel("users"), invalidate.Channel("orders")
	subscribed := make(chan string, 2)
	received := make(chan string, 1)
	sub, err := invalidate.Subscribe(client, invalidate.Options{
		Channels: []string{users},
		OnMessage: func(channel string, m invalidate.Message) {
			received <- fmt.Sprint(channel, " drop ", m.Keys)
		},
		OnState: func(st invalidate.State, channel string, err error) {
			if st == invalidate.Subscribed {
				subscribed <- channel
			}
			// On Broken (every channel) or Gap (this channel), a cache
			// would purge its local tier here.
		},
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	for i := range 2 {
		select {
		case ch := <-subscribed:
			fmt.Println("subscribed:", ch)
		case <-time.After(5 * time.Second):
			fmt.Println("not subscribed")
			return
		}
		if i == 0 {
			// Another cache of the process joins the same connection.
			if err := sub.Add(context.Background(), orders); err != nil {
				panic(err)
			}
		}
	}
	// Writers publish inside the script that writes the keys; here, directly.
	payload := invalidate.Message{Keys: []string{"order:7"}}.Append(nil)
	if err := client.Publish(context.Background(), orders, payload).Err(); err != nil {
		panic(err)
	}
	select {
	case m := <-received:
		fmt.Println(m)
	case <-time.After(5 * time.Second):
		fmt.Println("no message")
	}
	// Output:
	// subscribed: tiercache:invalidate:users
	// subscribed: tiercache:invalidate:orders
	// tiercache:invalidate:orders drop [order:7]
}

func ExampleSubscriber_Fresh() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()

	sub, err := invalidate.Subscribe(client, invalidate.Options{
		Channels:     []string{invalidate.Channel("users")},
		OnMessage:    func(string, invalidate.Message) { /* drop the keys */ },
		OnState:      func(invalidate.State, string, error) { /* purge on Broken or Gap */ },
		MaxStaleness: 10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	// A reader serves its local copy only while Fresh holds, and otherwise
	// reads Redis. The first calls ask for a proof; it comes a round trip
	// later.
	fresh := sub.Fresh()
	fmt.Println("fresh:", fresh)
	for deadline := time.Now().Add(5 * time.Second); !fresh && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // a real reader would read Redis here
		fresh = sub.Fresh()
	}
	fmt.Println("fresh:", fresh)
	// Output:
	// fresh: false
	// fresh: true
}
