package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
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
