package remote_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/remote"
)

func TestCheckNamespace(t *testing.T) {
	for _, ns := range []string{
		"a", "cache", "users-v2", "a_b", "a.b", "A.Z-0_9", ".", "tiercache-warm-up", "TIERCACHE",
		strings.Repeat("n", 128),
	} {
		if err := remote.CheckNamespace(ns); err != nil {
			t.Errorf("CheckNamespace(%q) = %v, want nil", ns, err)
		}
		if err := newError(t, remote.Options{Namespace: ns}); err != nil {
			t.Errorf("New(Namespace: %q) = %v, want nil", ns, err)
		}
	}
	for _, tc := range []struct{ ns, why string }{
		{"", "is empty"},
		{strings.Repeat("n", 129), "129 bytes long, more than 128"},
		{"a:b", `contains ':' (keys of namespace "a" could alias it)`},
		{":x", `contains ':' (the separator of namespace and key)`},
		{"a:b:c", `contains ':' (keys of namespace "a" could alias it)`},
		{"a b", `contains ' '`},
		{"a\x00b", `contains '\x00'`},
		{"a\nb", `contains '\n'`},
		{"a\x7f", `contains '\x7f'`},
		{"a*", `contains '*'`},
		{"a?", `contains '?'`},
		{"a[b]", `contains '['`},
		{`a\`, `contains '\\'`},
		{"{tag}", `contains '{'`},
		{"a}", `contains '}'`},
		{"a/b", `contains '/'`},
		{"café", `contains 'é'`},
		{"a\xffb", "the byte 0xff, which is not UTF-8"},
		{"tiercache", `is reserved (the library's own keys and channels start with "tiercache:")`},
	} {
		err := remote.CheckNamespace(tc.ns)
		if err == nil {
			t.Errorf("CheckNamespace(%q) = nil, want an error", tc.ns)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "namespace ") || !strings.Contains(msg, strconvQuote(tc.ns)) || !strings.Contains(msg, tc.why) {
			t.Errorf("CheckNamespace(%q) = %q; want it to quote the namespace and say %q, with no package prefix", tc.ns, msg, tc.why)
		}
		if tc.ns == "" {
			continue // Options treat "" as DefaultNamespace
		}
		if err := newError(t, remote.Options{Namespace: tc.ns}); err == nil || err.Error() != "remote: Namespace: "+msg {
			t.Errorf("New(Namespace: %q) = %v, want %q", tc.ns, err, "remote: Namespace: "+msg)
		}
	}
	if err := newError(t, remote.Options{}); err != nil {
		t.Errorf("New with the default namespace: %v", err)
	}
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// wrappedClient is what a caller might pass to add behaviour to a client:
// it is a redis.UniversalClient, but not a *redis.Client.
type wrappedClient struct{ *redis.Client }

func TestCheckClient(t *testing.T) {
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer single.Close()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": "127.0.0.1:2"}})
	defer ring.Close()

	for _, c := range []redis.UniversalClient{single, cluster} {
		if err := remote.CheckClient(c); err != nil {
			t.Errorf("CheckClient(%T) = %v, want nil", c, err)
		}
	}
	var nilClient *redis.Client
	var nilCluster *redis.ClusterClient
	for _, tc := range []struct {
		client redis.UniversalClient
		want   []string
	}{
		{nil, []string{"client is nil"}},
		{nilClient, []string{"client is a nil *redis.Client"}},
		{nilCluster, []string{"client is a nil *redis.ClusterClient"}},
		{ring, []string{"client is a *redis.Ring", "shards", "invalidations would be lost", "*redis.Client per shard", "*redis.ClusterClient"}},
		{wrappedClient{single}, []string{"client is a remote_test.wrappedClient", "only *redis.Client and *redis.ClusterClient", "hash slot"}},
		{&wrappedClient{single}, []string{"client is a *remote_test.wrappedClient"}},
	} {
		err := remote.CheckClient(tc.client)
		if err == nil {
			t.Errorf("CheckClient(%T) = nil, want an error", tc.client)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CheckClient(%T) = %q, want it to say %q", tc.client, err, w)
			}
		}
		if strings.HasPrefix(err.Error(), "remote:") {
			t.Errorf("CheckClient(%T) = %q: no package prefix wanted", tc.client, err)
		}
	}
	// New accepts them all the same: refusing is the tiered package's call.
	mustNew(t, ring, remote.Options{})
	mustNew(t, wrappedClient{single}, remote.Options{})
}
