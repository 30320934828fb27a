package local_test

import (
	"fmt"
	"log"
	"time"

	"github.com/tiercache/tiercache/local"
)

// A cache of up to 64 MiB of byte slices, in 16 shards of 4 MiB.
func Example() {
	c, err := local.New[string, []byte](local.Options[[]byte]{
		MaxBytes: 64 << 20,
		Sizer:    func(v []byte) int64 { return int64(len(v)) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	c.Set("user:1", []byte("Ada"), time.Minute)
	v, ok := c.Get("user:1")
	fmt.Println(string(v), ok)

	c.Delete("user:1")
	_, ok = c.Get("user:1")
	fmt.Println(ok)

	// Larger than a shard's 4 MiB: never stored.
	c.Set("video", make([]byte, 5<<20), time.Minute)
	_, ok = c.Get("video")
	fmt.Println(ok)

	c.Set("config", []byte("v2"), 0) // no expiry
	st := c.Stats()
	fmt.Printf("%d entry, %d bytes; %d hit, %d misses, %d rejected\n", c.Len(), st.Bytes, st.Hits, st.Misses, st.Rejections)
	// Output:
	// Ada true
	// false
	// false
	// 1 entry, 2 bytes; 1 hit, 2 misses, 1 rejected
}
