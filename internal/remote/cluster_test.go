package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// The store's contract on a Redis Cluster client: keys spread over every
// master are listed, multi-key deletes are split by slot (one message per
// slot's group), and the scripts run where their keys live.
func TestOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace, ScanCount: 10})

	const n = 300
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("k:%03d", i)
		put(t, st, want[i], []byte("v"), time.Minute)
	}
	keys, err := st.Keys(ctx)
	if err != nil || !slices.Equal(keys, want) {
		t.Fatalf("Keys on a cluster: %d keys, %v; want %d", len(keys), err, n)
	}
	if cl.Real {
		// The keys really are spread: every master holds some.
		err := client.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			if size := c.DBSize(ctx).Val(); size == 0 {
				return errors.New("a master holds no key")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	v, ttl, err := st.GetWithTTL(ctx, "k:007")
	if err != nil || string(v) != "v" || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("GetWithTTL on a cluster = %q, %v, %v", v, ttl, err)
	}

	ch := "ch:" + cl.Namespace
	sub := listen(t, client, ch)
	if err := st.SetAndPublish(ctx, "k:000", []byte("w"), 0, ch, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); m.Payload != "one" {
		t.Fatalf("SetAndPublish on a cluster published %q", m.Payload)
	}
	join := func(ks []string) []byte { return []byte(strings.Join(ks, ",")) }
	if err := st.DeleteAndPublish(ctx, ch, join, want...); err != nil {
		t.Fatalf("DeleteAndPublish across slots: %v", err)
	}
	var named []string
	for len(named) < n {
		named = append(named, strings.Split(receive(t, sub).Payload, ",")...)
	}
	slices.Sort(named)
	if !slices.Equal(named, want) {
		t.Fatalf("the messages named %d keys, want each of the %d once", len(named), n)
	}
	if left, err := st.Keys(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after DeleteAndPublish: %d keys left, %v", len(left), err)
	}
}
