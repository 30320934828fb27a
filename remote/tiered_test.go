package remote_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// getIs returns a condition for eventually: c's Get of key returns want.
func getIs(c *tiered.Cache[string], key, want string) func() (bool, string) {
	return func() (bool, string) {
		v, err := c.Get(context.Background(), key)
		return err == nil && v == want, fmt.Sprintf("%q, %v", v, err)
	}
}

// A service with no local tier writes through a Store: a cache of the same
// namespace, on another client, that holds the key drops it, and returns
// the new value, then (after Delete) ErrNotFound.
func TestStoreWritesDropTheKeyFromCaches(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	c := newCache(t, s)
	st := newStore(t, s, s.Namespace)

	holdLocally(t, c, "k", "old")
	if err := st.Set(ctx, "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Now(), "the cache's Get after Store.Set", getIs(c, "k", "new"))

	holdLocally(t, c, "k", "old")
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Now(), "the cache's Get after Store.Delete", func() (bool, string) {
		v, err := c.Get(ctx, "k")
		return errors.Is(err, tiered.ErrNotFound), fmt.Sprintf("%q, %v", v, err)
	})
}

// So does a batch write.
func TestStoreSetManyDropsTheKeysFromCaches(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	c := newCache(t, s)
	st := newStore(t, s, s.Namespace)

	holdLocally(t, c, "a", "old")
	holdLocally(t, c, "b", "old")
	if err := st.SetMany(ctx, map[string][]byte{"a": []byte("new a"), "b": []byte("new b")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, start, "the cache's Get of a after Store.SetMany", getIs(c, "a", "new a"))
	eventually(t, start, "the cache's Get of b after Store.SetMany", getIs(c, "b", "new b"))
}
