package remote_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/redistest"
)

// subscribe subscribes a client of its own to the namespace's invalidation
// channel and returns the next message's decoding, each call.
func subscribe(t *testing.T, s *redistest.Server, ns string) func() invalidate.Message {
	t.Helper()
	ctx := context.Background()
	ps := s.NewClient("").Subscribe(ctx, invalidate.Channel(ns))
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	return func() invalidate.Message {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := invalidate.Decode([]byte(m.Payload))
		if err != nil {
			t.Fatalf("the published message does not decode: %v", err)
		}
		return msg
	}
}

// Every write publishes one message naming its keys, with the send time
// (wire version 2) and the Store's Origin: one per Store, never another's.
func TestWritesPublish(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st, other := newStore(t, s, s.Namespace), newStore(t, s, s.Namespace)
	next := subscribe(t, s, s.Namespace)

	var origins []invalidate.Origin
	check := func(what string, write func() error, keys ...string) {
		t.Helper()
		before := time.Now()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		m := next()
		if m.All || !slices.Equal(m.Keys, keys) {
			t.Fatalf("%s published %+v; want the keys %q", what, m, keys)
		}
		if m.Sent.Before(before.Add(-time.Second)) || m.Sent.After(time.Now().Add(time.Second)) {
			t.Fatalf("%s published the send time %v; want about now", what, m.Sent)
		}
		origins = append(origins, m.Origin)
	}
	check("Set", func() error { return st.Set(ctx, "a", []byte("1"), 0) }, "a")
	check("SetMany", func() error {
		return st.SetMany(ctx, map[string][]byte{"c": []byte("3"), "b": []byte("2")}, 0)
	}, "b", "c")
	check("Delete", func() error { return st.Delete(ctx, "a", "b") }, "a", "b")
	check("another Store's Set", func() error { return other.Set(ctx, "a", []byte("1"), 0) }, "a")
	if origins[0] != origins[1] || origins[0] != origins[2] {
		t.Fatalf("one Store published with Origins %x", origins[:3])
	}
	if origins[3] == origins[0] || origins[0] == (invalidate.Origin{}) {
		t.Fatalf("two Stores share the Origin %x", origins[0])
	}
}

// A refused write publishes nothing: the next message is the next write's.
func TestRefusedWritePublishesNothing(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	st := newStore(t, s, s.Namespace)
	next := subscribe(t, s, s.Namespace)
	if err := st.Set(ctx, "m", []byte(marker), 0); err == nil {
		t.Fatal("Set of a marker succeeded")
	}
	if err := st.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if m := next(); !slices.Equal(m.Keys, []string{"k"}) {
		t.Fatalf("first message %+v; want the key k", m)
	}
}
