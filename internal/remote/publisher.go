package remote

import (
	"context"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
)

// Publisher is the one encoder and publisher of a writer's invalidations:
// tiered's caches, the remote package's Store and the invalidate package's
// Publisher all make their messages here. Its zero Wire means
// invalidate.Version. A Publisher is a small value; copy it freely.
//
// Message is the payload of the invalidation that accompanies a write (it
// is what SetAndPublish, WriteMany and DeleteAndPublish are given); Publish
// is an explicit invalidation, which touches no key. A Silent Store skips
// the former's publish (its writes are plain SETs and DELs); what it does
// with the latter is Store.Publish's rule, not the Publisher's.
type Publisher struct {
	Store  *Store
	Origin invalidate.Origin // the writer's: its own messages are not applied twice
	Wire   int               // the wire version to encode (0: invalidate.Version)
}

// Message encodes the invalidation of keys (of every key, for nil) in the
// Publisher's wire version, with its send time from version 2 on.
func (p Publisher) Message(keys []string) []byte {
	wire := p.Wire
	if wire == 0 {
		wire = invalidate.Version
	}
	m := invalidate.Message{Origin: p.Origin, Keys: keys, All: keys == nil}
	if wire >= 2 {
		m.Sent = time.Now()
	}
	return m.AppendVersion(nil, wire)
}

// Publish publishes the invalidation of keys (of every key, for none)
// without touching them, through Store.Publish.
func (p Publisher) Publish(ctx context.Context, keys ...string) error {
	return p.Store.Publish(ctx, p.Message, keys...)
}
