package local_test

import (
	"fmt"
	"time"

	"github.com/tiercache/tiercache/internal/local"
)

func Example() {
	c, err := local.New[string, string](local.Options{Size: 1000})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	c.Set("greeting", "hello", time.Minute)
	v, ok := c.Get("greeting")
	fmt.Println(v, ok)

	// A fill: take a token, read the source, store what was read. An
	// invalidation in between (the source changed) keeps the read value out.
	tok := c.Token("user:1")
	read := "Ada (as read)"
	c.Invalidate("user:1")
	fmt.Println("stored:", c.SetIf("user:1", read, time.Minute, tok))
	_, ok = c.Get("user:1")
	fmt.Println("cached:", ok)

	// A write by this process: take a token, write the source, then Commit.
	tok = c.Token("user:1")
	fmt.Println("stored:", c.Commit("user:1", "Grace", time.Minute, tok))
	v, _ = c.Get("user:1")
	fmt.Println(v)

	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// hello true
	// stored: false
	// cached: false
	// stored: true
	// Grace
	// {Hits:2 Misses:1 Evictions:0 Expirations:0}
}
