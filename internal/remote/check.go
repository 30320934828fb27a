package remote

import (
	"fmt"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/clients"
)

// maxNamespaceLen is the longest namespace CheckNamespace accepts, in bytes.
const maxNamespaceLen = 128

// reservedNamespace is the prefix of the library's own keys and channels
// ("tiercache:invalidate:<namespace>").
const reservedNamespace = "tiercache"

// CheckNamespace reports why ns cannot be a namespace, or nil if it can. A
// namespace is 1 to 128 bytes of ASCII letters, digits, '-', '_'
// and '.', and is not "tiercache", which the library's own keys and channels
// use. So the keys of two namespaces never alias (no ':'), never need
// escaping in a SCAN pattern (no glob characters), and never set a Cluster
// hash tag (no '{'). The error names the namespace and has no package
// prefix, for the caller to add its own.
//
// CheckNamespace("") is an error; Options treats an empty Namespace as
// DefaultNamespace and does not check it.
func CheckNamespace(ns string) error {
	switch {
	case ns == "":
		return fmt.Errorf("namespace %q is empty", ns)
	case len(ns) > maxNamespaceLen:
		return fmt.Errorf("namespace %q is %d bytes long, more than %d", ns, len(ns), maxNamespaceLen)
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			continue
		case c == ':' && i > 0:
			return fmt.Errorf("namespace %q contains ':' (keys of namespace %q could alias it)", ns, ns[:i])
		case c == ':':
			return fmt.Errorf("namespace %q contains ':' (the separator of namespace and key)", ns)
		case c >= utf8.RuneSelf:
			if r, size := utf8.DecodeRuneInString(ns[i:]); r != utf8.RuneError || size > 1 {
				return fmt.Errorf("namespace %q contains %q (only ASCII letters, digits, '-', '_' and '.' are allowed)", ns, r)
			}
			return fmt.Errorf("namespace %q contains the byte %#x, which is not UTF-8 (only ASCII letters, digits, '-', '_' and '.' are allowed)", ns, c)
		default:
			return fmt.Errorf("namespace %q contains %q (only ASCII letters, digits, '-', '_' and '.' are allowed)", ns, rune(c))
		}
	}
	if ns == reservedNamespace {
		return fmt.Errorf("namespace %q is reserved (the library's own keys and channels start with %q)", ns, reservedNamespace+":")
	}
	return nil
}

// CheckClient reports why the Store cannot serve c correctly, or nil if it
// can: c must be a non-nil *redis.Client (a single node, or Sentinel's
// failover client) or *redis.ClusterClient. The error names c's type and
// has no package prefix.
//
//   - A *redis.Ring is refused: it routes each key, and each pub/sub channel,
//     to the shard its own name hashes to, so the script that writes a key
//     and publishes its invalidation runs on one shard while the channel's
//     subscribers listen on another, and invalidations are lost.
//   - Any other type is refused, wrappers included: the Store picks the
//     per-hash-slot split of multi-key commands by the client's type, so a
//     wrapped *redis.ClusterClient would silently lose it.
//
// New refuses only what clients.NotNil does, and accepts any other client; the
// tiered package calls CheckClient and refuses what it reports.
func CheckClient(c redis.UniversalClient) error {
	if err := clients.NotNil(c); err != nil {
		return err
	}
	switch c.(type) {
	case *redis.Client, *redis.ClusterClient:
		return nil
	case *redis.Ring:
		return fmt.Errorf("client is a %T, which routes a key and its invalidation channel to different shards, "+
			"so invalidations would be lost; use a *redis.Client per shard, or a Redis Cluster with a *redis.ClusterClient", c)
	}
	return fmt.Errorf("client is a %T; only *redis.Client and *redis.ClusterClient are supported "+
		"(the store splits multi-key commands by hash slot when, and only when, the client is a *redis.ClusterClient, "+
		"so a wrapped cluster client would silently lose that)", c)
}
