package remote_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// cmdStrings is a go-redis hook that records what each command prints
// (Cmd.String, which logging and tracing hooks use).
type cmdStrings struct {
	mu   sync.Mutex
	seen []string
}

func (h *cmdStrings) record(c redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, c.String())
}

func (h *cmdStrings) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cmdStrings) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		err := next(ctx, c)
		h.record(c)
		return err
	}
}
func (h *cmdStrings) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.record(c)
		}
		return err
	}
}

// A hook prints a reused command's arguments as it would anyone's: the key
// and the value, not the addresses of the buffers that hold them.
func TestReusedCommandsPrintTheirArguments(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	client := s.NewClient("")
	st := mustNew(t, client, remote.Options{Namespace: s.Namespace})
	h := &cmdStrings{}
	client.AddHook(h)
	for range 2 { // the second time, the commands are reused
		if err := st.SetAndPublish(ctx, "key", []byte("value"), 1500*time.Millisecond, []byte("msg")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.GetWithTTL(ctx, "key"); err != nil {
			t.Fatal(err)
		}
	}
	k := st.RedisKey("key")
	want := []string{
		" 1 " + k + " " + s.Namespace + " msg  c 10000 S value 1500 : 1", // evalsha <sha> 1 key ns payload where pub loglen op value ms cond: position
		"get " + k + ": value",
		"pttl " + k + ": ",
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) < 6 {
		t.Fatalf("recorded %q", h.seen)
	}
	for i, s := range h.seen[len(h.seen)-3:] {
		if !strings.Contains(s, want[i]) || strings.Contains(s, "0x") {
			t.Errorf("command %d prints %q, want it to contain %q", i, s, want[i])
		}
	}
}

// When the server lacks the script (flushed, or a new server behind the
// same address), SetAndPublish loads it and writes and publishes all the
// same, reused command or not.
func TestSetAndPublishAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewOwn(t)
	st := mustNew(t, s.Client, remote.Options{Namespace: s.Namespace})
	sub := listen(t, s.Client, "tiercache:invalidate:"+s.Namespace)
	for i := range 3 {
		if err := s.Client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		payload := fmt.Sprint("msg-", i)
		if err := st.SetAndPublish(ctx, "k", []byte(payload), time.Hour, []byte(payload)); err != nil {
			t.Fatalf("SetAndPublish after SCRIPT FLUSH: %v", err)
		}
		if m := receive(t, sub); m.Payload != payload { // not version 3: no position after it
			t.Fatalf("published %q, want %q", m.Payload, payload)
		}
		if v, _ := get(ctx, st, "k"); string(v) != payload {
			t.Fatalf("value = %q, want %q", v, payload)
		}
	}
}
