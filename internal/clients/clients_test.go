package clients

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// wrapped is a client type of the caller's own, to check that a nil pointer
// of any type is caught, not only go-redis's.
type wrapped struct{ redis.UniversalClient }

func TestNotNil(t *testing.T) {
	live := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never used
	t.Cleanup(func() { _ = live.Close() })
	var (
		nilClient  *redis.Client
		nilCluster *redis.ClusterClient
		nilWrapped *wrapped
	)
	for _, tc := range []struct {
		client redis.UniversalClient
		want   string // "" for none
	}{
		{nil, "client is nil"},
		{nilClient, "client is a nil *redis.Client"},
		{nilCluster, "client is a nil *redis.ClusterClient"},
		{nilWrapped, "client is a nil *clients.wrapped"},
		{live, ""},
		{wrapped{live}, ""},
	} {
		err := NotNil(tc.client)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("NotNil(%T) = %v, want nil", tc.client, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("NotNil(%T) = %v, want %q", tc.client, err, tc.want)
		}
	}
}
