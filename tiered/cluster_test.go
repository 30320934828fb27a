package tiered_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// On a Redis Cluster, a write's invalidation (published by the script on
// whichever master owns the key) reaches an instance subscribed through any
// node, and multi-key deletes spanning slots invalidate every key.
func TestInvalidationOnCluster(t *testing.T) {
	cl := redistest.NewCluster(t)
	open := func() *tiered.Cache[string] {
		c, err := tiered.New(cl.NewClient(), tiered.Options[string]{Namespace: cl.Namespace})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		waitFor(t, 10*time.Second, "subscribed", c.Subscribed)
		return c
	}
	a, b := open(), open()
	keys := make([]string, 20) // spread over the masters' slots
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		if err := a.Set(bg, keys[i], "v1"); err != nil {
			t.Fatal(err)
		}
	}
	// Fill b once every message of those Sets has arrived (they may come in
	// any order across nodes, so wait on b's counter).
	waitFor(t, 10*time.Second, "b applies a's 20 messages", func() bool { return b.Stats().Invalidations >= 20 })
	for range 2 { // the first read fills b's local tier, the second hits it
		for _, k := range keys {
			if v, err := b.Get(bg, k); err != nil || v != "v1" {
				t.Fatalf("b Get(%s) = %q, %v", k, v, err)
			}
		}
	}
	if hits := b.Stats().LocalHits; hits != uint64(len(keys)) {
		t.Fatalf("b answered %d of %d second reads locally", hits, len(keys))
	}
	for _, k := range keys {
		if err := a.Set(bg, k, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		waitFor(t, 10*time.Second, "b sees v2 of "+k, func() bool { v, _ := b.Get(bg, k); return v == "v2" })
	}
	if err := a.Delete(bg, keys...); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		waitFor(t, 10*time.Second, "b sees the delete of "+k, func() bool {
			_, err := b.Get(bg, k)
			return err != nil
		})
	}
}
