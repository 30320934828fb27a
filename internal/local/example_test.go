package local_test

import (
	"fmt"
	"time"

	"github.com/tiercache/tiercache/internal/local"
)

// The protocol tiered follows: every store goes through a Token taken
// before the source was read (SetIf) or written (Commit), and lives for a
// positive life.
func Example() {
	c, err := local.New[string, string](local.Options[string]{Size: 1000})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// A fill: take a token, read the source, store what was read.
	tok := c.Token("user:1")
	fmt.Println("stored:", c.SetIf("user:1", "Ada", time.Minute, tok))
	v, ok := c.Get("user:1")
	fmt.Println(v, ok)

	// An invalidation between the token and the store (the source changed
	// meanwhile) keeps the value read out.
	tok = c.Token("user:1")
	c.Invalidate("user:1")
	fmt.Println("stored:", c.SetIf("user:1", "Ada (as read)", time.Minute, tok))
	_, ok = c.Get("user:1")
	fmt.Println("cached:", ok)

	// A write by this process: take a token, write the source, then Commit.
	tok = c.Token("user:1")
	fmt.Println("stored:", c.Commit("user:1", "Grace", time.Minute, tok))
	v, _ = c.Get("user:1")
	fmt.Println(v)

	// A life that is already over stores nothing: there is no "no expiry".
	fmt.Println("stored:", c.SetIf("user:2", "Alan", 0, c.Token("user:2")))

	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// stored: true
	// Ada true
	// stored: false
	// cached: false
	// stored: true
	// Grace
	// stored: false
	// {Hits:2 Misses:1 Evictions:0 Expirations:0 Rejections:0 Bytes:0}
}
