package remote

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Keys returns every key of the namespace, without the namespace prefix,
// sorted. It uses SCAN, never KEYS; on a Cluster it scans every master. Keys
// written or deleted while it runs may or may not be listed.
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	keys, err := call(ctx, s, struct{}{}, (*Store).keys)
	if err != nil {
		return nil, s.opError("keys", err)
	}
	return keys, nil
}

func (s *Store) keys(ctx context.Context, _ struct{}) ([]string, error) {
	var (
		mu   sync.Mutex
		seen = make(map[string]struct{})
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.pattern, s.scanCount).Iterator()
		for iter.Next(ctx) {
			k, ok := strings.CutPrefix(iter.Val(), s.prefix)
			if !ok { // cannot happen with a correct pattern; never leak others' keys
				continue
			}
			mu.Lock()
			seen[k] = struct{}{}
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// EscapeGlob escapes the characters that Redis glob patterns (SCAN MATCH,
// KEYS, PSUBSCRIBE) treat specially, so that s matches only itself.
func EscapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
