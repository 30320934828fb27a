package invalidate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ownClient is the Subscriber's own client: made from the options of the
// client it was given, with a dialer that remembers its connections (see
// connSet), so that the Subscriber's connections never come from, or count
// against, the user's pool, the user's hooks do not see them, and the
// Subscriber can close one whose write is stuck. It speaks RESP2, in which
// a pub/sub connection's replies are plain arrays, and leaves out the
// client-side features (client-side caching, maintenance notifications,
// auto-pipelining) that do not apply to a subscription.
type ownClient struct {
	conns *connSet
	track func(addr string) func(context.Context, *redis.Conn) error // the tracking hook of a node's pub/sub connections; nil without Tracking

	single  *redis.Client        // for a single node (or Sentinel's failover client): reads
	pub     *redis.Client        // for a single node: its pub/sub connections
	cluster *redis.ClusterClient // for a Cluster: reads, the topology
	node    redis.Options        // for a Cluster: the options of a node's pub/sub client, but Addr and OnConnect

	mu    sync.Mutex
	nodes map[string]*redis.Client // guarded by mu: a Cluster's node pub/sub clients, by address
	armed map[string][]string      // guarded by mu: with Tracking, the prefixes the last connection to each address tracks
}

func newOwnClient(c redis.UniversalClient, track func(addr string) func(context.Context, *redis.Conn) error) (*ownClient, error) {
	own := &ownClient{conns: &connSet{}, track: track}
	switch c := c.(type) {
	case *redis.Client:
		o := *c.Options()
		o.Dialer = own.conns.wrap(o.Dialer, &o)
		subscriberOptions(&o)
		o.PushNotificationProcessor, o.MaintNotificationsConfig = nil, nil
		o.ClientSideCacheConfig, o.ClientSideCache, o.AutoPipelineOptions = nil, nil, nil
		pub := o // NewClient keeps the Options it is given
		own.single = redis.NewClient(&o)
		pub.OnConnect = chain(pub.OnConnect, track(""))
		own.pub = redis.NewClient(&pub)
	case *redis.ClusterClient:
		o := *c.Options()
		// go-redis appends the nodes it discovers to Addrs in place: a copy
		// of the options must not share the array with the caller's client.
		o.Addrs = slices.Clone(o.Addrs)
		o.Dialer = own.conns.wrap(o.Dialer, &redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig})
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 2, 0, 2
		o.Protocol = 2
		o.PushNotificationProcessor, o.MaintNotificationsConfig, o.AutoPipelineOptions = nil, nil, nil
		own.cluster = redis.NewClusterClient(&o)
		own.node = redis.Options{
			ClientName: o.ClientName, Dialer: o.Dialer, OnConnect: o.OnConnect,
			Username: o.Username, Password: o.Password, CredentialsProvider: o.CredentialsProvider,
			CredentialsProviderContext: o.CredentialsProviderContext, StreamingCredentialsProvider: o.StreamingCredentialsProvider,
			DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, DialerRetryTimeout: o.DialerRetryTimeout,
			ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, TLSConfig: o.TLSConfig,
			DisableIdentity: o.DisableIdentity, IdentitySuffix: o.IdentitySuffix,
		}
		subscriberOptions(&own.node)
	default:
		return nil, fmt.Errorf("invalidate: client is a %T; only *redis.Client and *redis.ClusterClient are supported", c)
	}
	return own, nil
}

// subscriberOptions makes o those of a client that serves pub/sub
// connections alone: no pool to speak of (a pub/sub connection is dialed
// apart from it), RESP2.
func subscriberOptions(o *redis.Options) {
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 2, 0, 2
	o.Protocol = 2
}

// nodeClient returns the client of the Cluster node at addr, made on first
// use.
func (o *ownClient) nodeClient(addr string) *redis.Client {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.nodes[addr]; ok {
		return c
	}
	opts := o.node
	opts.Addr = addr
	opts.OnConnect = chain(opts.OnConnect, o.track(addr))
	c := redis.NewClient(&opts)
	if o.nodes == nil {
		o.nodes = make(map[string]*redis.Client)
	}
	o.nodes[addr] = c
	return c
}

// reader returns the client that reads (the logs, the topology).
func (o *ownClient) reader() redis.Cmdable {
	if o.cluster != nil {
		return o.cluster
	}
	return o.single
}

// setArmed records the prefixes that the last pub/sub connection to addr
// tracks.
func (o *ownClient) setArmed(addr string, prefixes []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.armed == nil {
		o.armed = make(map[string][]string)
	}
	o.armed[addr] = prefixes
}

// armedOf returns the prefixes that the last pub/sub connection to addr
// tracks.
func (o *ownClient) armedOf(addr string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.armed[addr]
}

// chain returns a hook that runs first, then then, either of which may be
// nil.
func chain(first, then func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	switch {
	case first == nil:
		return then
	case then == nil:
		return first
	}
	return func(ctx context.Context, cn *redis.Conn) error {
		if err := first(ctx, cn); err != nil {
			return err
		}
		return then(ctx, cn)
	}
}

// close closes every client.
func (o *ownClient) close() {
	o.conns.closeAll("")
	for _, c := range []*redis.Client{o.single, o.pub} {
		if c != nil {
			_ = c.Close()
		}
	}
	if o.cluster != nil {
		_ = o.cluster.Close()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.nodes {
		_ = c.Close()
	}
}

// connSet remembers the connections its clients dialed and have not
// closed, by address, so that the Subscriber can close one whose write is
// stuck: go-redis holds a PubSub's mutex while it writes, so PubSub.Close
// would wait behind the very write it is meant to end (a peer that reads
// nothing fills the socket's send buffer, and the write waits for the
// client's WriteTimeout).
//
// A connection dialed after its closer ran would escape it, and go-redis
// holds a PubSub's mutex through a redial and its handshake, which a hung
// server never answers (the handshake waits out go-redis's timeouts).
// So the dialer refuses a dial under a context that noDial marked (every
// command on a pub/sub connection once it is open: go-redis's redial
// inside Receive, Subscribe, Unsubscribe, Ping), and a connection whose
// dial's context has ended, or that the Subscriber's Close has shut the set
// for, is closed before go-redis sees it: a closer that means to stop a
// dial in progress ends its context before it calls closeAll (link.close).
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]string // guarded by mu: each connection and the address it was dialed to
	shut  bool                    // guarded by mu: shutdown has run; no connection is kept
}

// noDialKey marks a context under which the Subscriber's dialer refuses to
// dial (see noDial).
type noDialKey struct{}

// errNoDial is the error of a dial that the Subscriber refuses: go-redis
// tried to replace a lost pub/sub connection itself.
var errNoDial = errors.New("invalidate: connection lost (the subscriber dials the next one itself)")

// noDial returns ctx marked so that no connection is dialed under it: for
// the commands on a pub/sub connection once it is open.
func noDial(ctx context.Context) context.Context {
	return context.WithValue(ctx, noDialKey{}, true)
}

// wrap returns a dialer that dials with d (or go-redis's default dialer for
// o, when d is nil) and remembers each connection until it is closed.
func (cs *connSet) wrap(d func(context.Context, string, string) (net.Conn, error), o *redis.Options) func(context.Context, string, string) (net.Conn, error) {
	if d == nil {
		d = redis.NewDialer(o)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Value(noDialKey{}) != nil {
			return nil, errNoDial
		}
		c, err := d(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: cs}
		cs.mu.Lock()
		if err := ctx.Err(); cs.shut || err != nil { // its closer has run: it would escape
			if cs.shut {
				err = ErrClosed
			}
			cs.mu.Unlock()
			_ = c.Close()
			return nil, fmt.Errorf("invalidate: dial %s: %w", addr, err)
		}
		if cs.conns == nil {
			cs.conns = make(map[*trackedConn]string)
		}
		cs.conns[tc] = addr
		cs.mu.Unlock()
		return tc, nil
	}
}

// shutdown closes every connection and every one dialed from now on.
func (cs *connSet) shutdown() {
	cs.mu.Lock()
	cs.shut = true
	cs.mu.Unlock()
	cs.closeAll("")
}

// closeAll closes every connection dialed to addr (to any address, for
// "") and not closed yet, which ends any read or write in progress on
// them.
func (cs *connSet) closeAll(addr string) {
	cs.mu.Lock()
	var all []*trackedConn
	for c, a := range cs.conns {
		if addr == "" || a == addr {
			all = append(all, c)
		}
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
