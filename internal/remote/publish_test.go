package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
)

// Publish hands the write script the payload built for the keys, which
// publishes it on the namespace's channel with its position in the log
// after it; a call whose ctx has ended sends nothing and returns an error
// naming the keys it was given.
func TestPublish(t *testing.T) {
	st, s := newStore(t)
	sub := listen(t, s.Client, "tiercache:invalidate:"+s.Namespace)
	var got []string
	payload := func(keys []string) []byte {
		got = append([]string(nil), keys...)
		return []byte("\x00payload")
	}
	if err := st.Publish(context.Background(), payload, "a"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); !strings.HasPrefix(m.Payload, "\x00payload") || len(got) != 1 || got[0] != "a" {
		t.Fatalf("published %q for the keys %q", m.Payload, got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := st.Publish(ctx, payload, "a", "b")
	want := fmt.Sprintf(`remote: publish "a", "b" in namespace %q: context canceled`, s.Namespace)
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Fatalf("Publish with an ended ctx: %v; want %s", err, want)
	}
	noMessage(t, sub, "Publish with an ended ctx")
}

// A Silent store's writes publish nothing, but an explicit invalidation
// (of keys, or of every key) is published all the same: nothing else would
// tell the other instances, since Redis sees no change.
func TestPublishSilent(t *testing.T) {
	st, s := newStore(t)
	sub := listen(t, s.Client, "tiercache:invalidate:"+s.Namespace)
	silent := st.Silent()
	payload := func([]string) []byte { return []byte("\x00payload") }
	if err := silent.Publish(context.Background(), payload, "a"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); !strings.HasPrefix(m.Payload, "\x00payload") {
		t.Fatalf("Publish of a key by a Silent store published %q", m.Payload)
	}
	if err := silent.Publish(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); !strings.HasPrefix(m.Payload, "\x00payload") {
		t.Fatalf("Publish of every key by a Silent store published %q", m.Payload)
	}
	if err := silent.SetAndPublish(context.Background(), "a", []byte("v"), 0, payload(nil)); err != nil {
		t.Fatal(err)
	}
	noMessage(t, sub, "a Silent store's write")
}

// Only a version 3 message takes a position in the log: a version 1 or 2
// one (a writer that speaks to readers of an older release) carries none,
// so a position it took would show as a gap to every reader, read back
// from the log for nothing. It marks the counter instead, for the readers
// that miss it to purge.
func TestOnlyVersion3IsLogged(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	seq, log := invalidate.SeqKey(s.Namespace, -1), invalidate.LogKey(s.Namespace, -1)
	for v := 1; v <= invalidate.Version; v++ {
		m := invalidate.Message{Keys: []string{"k"}, Sent: time.Now()}.AppendVersion(nil, v)
		if err := st.SetAndPublish(ctx, "k", []byte("v"), 0, m); err != nil {
			t.Fatal(err)
		}
		if err := st.Publish(ctx, func([]string) []byte { return m }, "k"); err != nil {
			t.Fatal(err)
		}
		n, err := s.Client.XLen(ctx, log).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(0); v == invalidate.Version {
			want = 2
			if pos, _ := s.Client.Get(ctx, seq).Int64(); pos != want {
				t.Errorf("version %d: position %d, want %d", v, pos, want)
			}
		} else if n != want || s.Client.Exists(ctx, seq).Val() != 0 {
			t.Errorf("version %d: the log holds %d, its counter exists: %d; want neither", v, n, s.Client.Exists(ctx, seq).Val())
		} else if mark := s.Client.Get(ctx, invalidate.UnloggedKey(s.Namespace, -1)).Val(); mark != "0" {
			t.Errorf("version %d: the unlogged mark is %q, want the counter then, 0", v, mark)
		}
	}
}
