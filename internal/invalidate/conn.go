package invalidate

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ownClient returns the Subscriber's own client: a copy of the options of
// the client it was given, whose connections it can close itself (see
// connSet). The Subscriber's connections never come from, or count against,
// the user's pool, and the user's hooks do not see them. It has no pool to
// speak of (a pub/sub connection is dialed apart from the pool), speaks
// RESP2, in which a pub/sub connection's replies are plain arrays, and
// leaves out the client-side features (client-side caching, maintenance
// notifications, auto-pipelining) that do not apply to a subscription.
func ownClient(c redis.UniversalClient, conns *connSet) (redis.UniversalClient, error) {
	switch c := c.(type) {
	case *redis.Client:
		o := *c.Options()
		o.Dialer = conns.wrap(o.Dialer, &o)
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		o.Protocol = 2
		o.PushNotificationProcessor, o.MaintNotificationsConfig = nil, nil
		o.ClientSideCacheConfig, o.ClientSideCache, o.AutoPipelineOptions = nil, nil, nil
		return redis.NewClient(&o), nil
	case *redis.ClusterClient:
		o := *c.Options()
		o.Dialer = conns.wrap(o.Dialer, &redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig})
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		o.Protocol = 2
		o.PushNotificationProcessor, o.MaintNotificationsConfig, o.AutoPipelineOptions = nil, nil, nil
		return redis.NewClusterClient(&o), nil
	}
	return nil, fmt.Errorf("invalidate: client is a %T; only *redis.Client and *redis.ClusterClient are supported", c)
}

// connSet remembers the connections its client dialed and has not closed,
// so that the Subscriber can close one whose write is stuck: go-redis holds
// a PubSub's mutex while it writes, so PubSub.Close would wait behind the
// very write it is meant to end (a peer that reads nothing fills the
// socket's send buffer, and the write waits for the client's WriteTimeout).
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{} // guarded by mu
}

// wrap returns a dialer that dials with d (or go-redis's default dialer for
// o, when d is nil) and remembers each connection until it is closed.
func (cs *connSet) wrap(d func(context.Context, string, string) (net.Conn, error), o *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	if d == nil {
		d = redis.NewDialer(o)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: cs}
		cs.mu.Lock()
		if cs.conns == nil {
			cs.conns = make(map[*trackedConn]struct{})
		}
		cs.conns[tc] = struct{}{}
		cs.mu.Unlock()
		return tc, nil
	}
}

// closeAll closes every connection the client dialed and has not closed,
// which ends any read or write in progress on them.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	all := make([]*trackedConn, 0, len(cs.conns))
	for c := range cs.conns {
		all = append(all, c)
	}
	cs.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}

// trackedConn is a connection that leaves its set when closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}
