package invalidate

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	wire "github.com/tiercache/tiercache/internal/invalidate"
	engine "github.com/tiercache/tiercache/internal/remote"
)

// Publisher tells the caches of one namespace to drop keys from their local
// tier, for a program that changes the namespace's Redis keys by other
// means. It is safe for concurrent use and holds no goroutine.
type Publisher struct {
	pub       engine.Publisher // through the store's write script, within ctx
	namespace string
}

// NewPublisher returns a Publisher for namespace (empty: tiered's default,
// "cache"), which follows tiered's rules: 1 to 128 bytes of ASCII letters,
// digits, '-', '_' and '.', not "tiercache". It sends nothing to Redis. It
// fails for an invalid namespace and for a client the caches could not be
// reached through: nil, a *redis.Ring, or a type other than *redis.Client
// and *redis.ClusterClient.
func NewPublisher(client redis.UniversalClient, namespace string) (*Publisher, error) {
	if err := engine.CheckClient(client); err != nil {
		return nil, errors.New("invalidate: " + err.Error())
	}
	if namespace == "" {
		namespace = engine.DefaultNamespace
	}
	if err := engine.CheckNamespace(namespace); err != nil {
		return nil, errors.New("invalidate: namespace: " + err.Error())
	}
	st, err := engine.New(client, engine.Options{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("invalidate: %w", err)
	}
	return &Publisher{pub: engine.Publisher{Store: st, Origin: wire.NewOrigin()}, namespace: namespace}, nil
}

// Invalidate tells every cache of the namespace to drop keys from its local
// tier (wire version 3, logged, through the write script, like a write's
// invalidation). Redis keys are not touched. It returns when the message
// is published, or when ctx ends.
func (p *Publisher) Invalidate(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	return p.publish(ctx, "invalidate", keys)
}

// InvalidateAll tells every cache of the namespace to empty its local tier.
// Redis keys are not touched.
func (p *Publisher) InvalidateAll(ctx context.Context) error {
	return p.publish(ctx, "invalidate-all", nil)
}

// publish sends the invalidation of keys; an error reads `invalidate: op
// "k" in namespace "ns": cause`.
func (p *Publisher) publish(ctx context.Context, op string, keys []string) error {
	err := p.pub.Publish(ctx, keys...)
	var e *engine.Error
	if errors.As(err, &e) {
		c := *e
		c.Op = op
		return fmt.Errorf("invalidate: %s: %w", c.Where(), c.Err)
	}
	return err
}
