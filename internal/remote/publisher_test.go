package remote_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/remote"
)

// A Publisher encodes its origin, the keys (or All, for none) in its wire
// version (0: the current one), with a send time from version 2 on; and
// Publish puts that message on the namespace's channel.
func TestPublisherMessage(t *testing.T) {
	origin := invalidate.NewOrigin()
	for _, tc := range []struct {
		wire, version int
		keys          []string
	}{
		{0, invalidate.Version, []string{"a", "b"}},
		{3, 3, nil},
		{2, 2, []string{"k"}},
		{1, 1, []string{"k"}},
	} {
		p := remote.Publisher{Origin: origin, Wire: tc.wire}
		m, err := invalidate.Decode(p.Message(tc.keys))
		if err != nil {
			t.Fatalf("wire %d: %v", tc.wire, err)
		}
		if m.Origin != origin || !slices.Equal(m.Keys, tc.keys) || m.All != (tc.keys == nil) {
			t.Errorf("wire %d: decoded %+v, want origin %v, keys %q, All %v", tc.wire, m, origin, tc.keys, tc.keys == nil)
		}
		if m.Sent.IsZero() != (tc.version < 2) {
			t.Errorf("wire %d: Sent %v; want a send time only from version 2 on", tc.wire, m.Sent)
		}
	}

	st, s := newStore(t)
	sub := listen(t, s.Client, "tiercache:invalidate:"+s.Namespace)
	if err := (remote.Publisher{Store: st, Origin: origin}).Publish(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	m, err := invalidate.Decode([]byte(receive(t, sub).Payload))
	if err != nil || m.Origin != origin || !slices.Equal(m.Keys, []string{"x"}) {
		t.Fatalf("published %+v (%v), want the invalidation of x by %v", m, err, origin)
	}
}
