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
	"github.com/tiercache/tiercache/remote"
)

// On a Cluster client, the keys spread over every master: the batch calls
// serve them all, and, with a master down, GetMany serves the keys of the
// others and names the keys it could not read.
func TestOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st, err := remote.New(client, remote.Options{Namespace: cl.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	items := make(map[string][]byte)
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("k:%03d", i)
		items[k], keys = []byte("v"+k), append(keys, k)
	}
	if err := st.SetMany(ctx, items, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetMany(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("GetMany on a cluster: %d values, %v; want %d", len(got), err, len(keys))
	}
	if listed, err := st.Keys(ctx); err != nil || !slices.Equal(listed, keys) {
		t.Fatalf("Keys on a cluster: %d keys, %v; want %d", len(listed), err, len(keys))
	}
	if !cl.Real {
		return // the embedded cluster is one server: it cannot lose a node
	}

	victim := cl.Addrs[0]
	var lost []string // the keys of the victim
	for _, k := range keys {
		if addr, err := masterOf(ctx, client, cl.Namespace+":"+k); err != nil {
			t.Fatal(err)
		} else if addr == victim {
			lost = append(lost, k)
		}
	}
	cl.Kill(victim)
	got, err = st.GetMany(ctx, keys)
	if len(got) != len(keys)-len(lost) || err == nil || !strings.HasPrefix(err.Error(), "remote: get-many "+fmt.Sprintf("%q", lost[0])) {
		t.Fatalf("GetMany with a master down: %d values, %v; want %d and an error naming %d keys", len(got), err, len(keys)-len(lost), len(lost))
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("and %d more in namespace", len(lost)-3)) {
		t.Fatalf("GetMany with a master down: %v; want the %d keys of that master", err, len(lost))
	}
}

// masterOf returns the address of the master that holds key.
func masterOf(ctx context.Context, client *redis.ClusterClient, key string) (string, error) {
	slot, err := client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := client.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", errors.New("no master holds slot " + fmt.Sprint(slot))
}

// A batch write that Redis refuses (out of memory) names its keys, and
// writes and publishes nothing.
func TestSetManyRefused(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewReal(t) // CONFIG SET: on a server of the test's own
	st := newStore(t, s, s.Namespace)
	next := subscribe(t, s, s.Namespace)
	s.ConfigSet("maxmemory", "1")
	err := st.SetMany(ctx, map[string][]byte{"b": []byte("v"), "a": []byte("v")}, 0)
	want := fmt.Sprintf(`remote: set-many "a", "b" in namespace %q: OOM`, s.Namespace)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("SetMany refused: %v; want %s…", err, want)
	}
	s.ConfigSet("maxmemory", "0")
	if n := s.Client.Exists(ctx, s.Namespace+":a", s.Namespace+":b").Val(); n != 0 {
		t.Fatalf("a refused SetMany wrote %d keys", n)
	}
	if err := st.Set(ctx, "c", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if m := next(); !slices.Equal(m.Keys, []string{"c"}) {
		t.Fatalf("first message %+v; want the key c", m)
	}
}
