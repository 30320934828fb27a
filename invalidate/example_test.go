package invalidate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/invalidate"
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

	channel := invalidate.Channel("users")
	subscribed := make(chan struct{}, 1)
	received := make(chan invalidate.Message, 1)
	sub, err := invalidate.Subscribe(client, invalidate.Options{
		Channel:   channel,
		OnMessage: func(m invalidate.Message) { received <- m },
		OnState: func(st invalidate.State, err error) {
			fmt.Println("state:", st)
			if st == invalidate.Subscribed {
				subscribed <- struct{}{}
			}
			// On Broken or Gap, a cache would purge its local tier here.
		},
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	select {
	case <-subscribed:
	case <-time.After(5 * time.Second):
		fmt.Println("not subscribed")
		return
	}
	// Writers publish inside the script that writes the keys; here, directly.
	payload := invalidate.Message{Keys: []string{"user:1"}}.Append(nil)
	if err := client.Publish(context.Background(), channel, payload).Err(); err != nil {
		panic(err)
	}
	select {
	case m := <-received:
		fmt.Println("drop:", m.Keys)
	case <-time.After(5 * time.Second):
		fmt.Println("no message")
	}
	// Output:
	// state: Subscribed
	// drop: [user:1]
}
