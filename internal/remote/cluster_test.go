package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
	"github.com/tiercache/tiercache/internal/slot"
)

// The store's contract on a Redis Cluster client: keys spread over every
// master are listed, multi-key deletes are split by slot (one message per
// slot's group), and the scripts run where their keys live.
func TestOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace, ScanCount: 10, ClassicPubSub: true})

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

	ch := invalidate.Channel(cl.Namespace)
	sub := listen(t, client, ch)
	if err := st.SetAndPublish(ctx, "k:000", []byte("w"), 0, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); m.Payload != "one" {
		t.Fatalf("SetAndPublish on a cluster published %q", m.Payload)
	}
	join := func(ks []string) []byte { return []byte(strings.Join(ks, ",")) }
	if err := st.DeleteAndPublish(ctx, join, want...); err != nil {
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

// On a Cluster, a write publishes its invalidation on a group channel that
// lives on the node that holds the key (never over the cluster bus), logs
// it there, and publishes nothing on the classic channel. Checked for a key
// on every master.
func TestShardedPublishOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	if !cl.Real {
		t.Skip("the embedded server has no sharded pub/sub: the classic channel is used")
	}
	client := cl.NewClient()
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace})
	classic := listen(t, client, invalidate.Channel(cl.Namespace))
	for _, master := range cl.Masters() {
		key := cl.KeysOn(master, cl.Namespace+":", 1)[0]
		node := redis.NewClient(&redis.Options{Addr: master})
		t.Cleanup(func() { _ = node.Close() })
		// Every group channel whose first slot the node owns.
		sub := node.Subscribe(ctx)
		t.Cleanup(func() { _ = sub.Close() })
		n := 0
		for g := range invalidate.Groups {
			if cl.MasterOf("{"+slot.Tag(invalidate.GroupSlot(g))+"}") == master {
				if err := sub.SSubscribe(ctx, invalidate.GroupChannel(cl.Namespace, g)); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
		for range n {
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SetAndPublish(ctx, key, []byte("v"), 0, []byte("sharded")); err != nil {
			t.Fatalf("SetAndPublish of %q on %s: %v", key, master, err)
		}
		if m := receive(t, sub); m.Payload != "sharded" {
			t.Fatalf("key %q on %s: published %q on %q", key, master, m.Payload, m.Channel)
		}
		noMessage(t, classic, "a sharded write on the classic channel")
	}
}

// logLenHook records the log length (ARGV[5]) of every run of the write
// script.
type logLenHook struct {
	mu   sync.Mutex
	seen map[string]int
}

func (h *logLenHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *logLenHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(cmd)
		return next(ctx, cmd)
	}
}

func (h *logLenHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.record(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *logLenHook) record(cmd redis.Cmder) {
	args := cmd.Args()
	if name := strings.ToLower(cmd.Name()); (name != "evalsha" && name != "eval") || len(args) < 3 {
		return
	}
	keys, _ := strconv.Atoi(fmt.Sprint(args[2]))
	if i := 3 + keys + 4; i < len(args) {
		h.mu.Lock()
		h.seen[fmt.Sprint(args[i])]++
		h.mu.Unlock()
	}
}

// On a Cluster, a namespace's log is split over the 128 groups: each
// group's keeps ceil(LogLength/128), at least 16, so the namespace keeps
// about LogLength in all, not 128 times as much.
func TestLogLengthPerGroupOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	client := cl.NewClient()
	hook := &logLenHook{seen: make(map[string]int)}
	client.AddHook(hook)
	const logLen, perGroup = 128*20 + 1, 21
	st := mustNew(t, client, remote.Options{Namespace: cl.Namespace, LogLength: logLen})
	msg := invalidate.Message{Keys: []string{"k"}, Sent: time.Now()}.AppendVersion(nil, invalidate.Version)
	const n = 128 * perGroup * 2
	writes := make([]remote.Write, n)
	for i := range writes {
		writes[i] = remote.Write{Key: fmt.Sprint("k", i), Value: []byte("v")}
	}
	// Batches of 200: a pipeline of a thousand scripts on the embedded
	// server, under -race on a loaded machine, outlasts go-redis's 3s
	// ReadTimeout.
	const batch = 200
	for from := 0; from < n; from += batch {
		res, err := st.WriteMany(ctx, writes[from:min(from+batch, n)], func([]string) []byte { return msg })
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	if len(hook.seen) != 1 || hook.seen[strconv.Itoa(perGroup)] == 0 {
		t.Fatalf("the write script was given the log lengths %v; want %d alone", hook.seen, perGroup)
	}
	for l, want := range map[int]int{1: 16, 128 * 16: 16, 128*16 + 1: 17, remote.DefaultLogLength: 79} {
		if got := remote.GroupLogLength(l); got != want {
			t.Errorf("GroupLogLength(%d) = %d, want %d", l, got, want)
		}
	}
	if cl.Real {
		return // Redis trims a stream by whole nodes (MAXLEN ~): only the embedded server is exact
	}
	total := int64(0)
	for g := range invalidate.Groups {
		total += client.XLen(ctx, invalidate.LogKey(cl.Namespace, g)).Val()
	}
	if total > 128*perGroup || total < 128*perGroup/2 {
		t.Fatalf("%d writes left %d entries in the namespace's logs; want at most %d", n, total, 128*perGroup)
	}
}
