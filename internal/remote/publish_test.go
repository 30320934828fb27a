package remote_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// Publish publishes the payload as given, and a call whose ctx has ended
// sends nothing and returns an error naming the keys it was given.
func TestPublish(t *testing.T) {
	st, s := newStore(t)
	ch := "ch:" + s.Namespace
	sub := listen(t, s.Client, ch)
	if err := st.Publish(context.Background(), ch, []byte("\x00payload"), "a"); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, sub); m.Payload != "\x00payload" {
		t.Fatalf("published %q", m.Payload)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := st.Publish(ctx, ch, []byte("late"), "a", "b")
	want := fmt.Sprintf(`remote: publish "a", "b" in namespace %q: context canceled`, s.Namespace)
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Fatalf("Publish with an ended ctx: %v; want %s", err, want)
	}
	noMessage(t, sub, "Publish with an ended ctx")
}
