package invalidate

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// helloPayload is the payload of the PING that opens each connection: it
// dials the connection outside the Subscriber's mutex, and its answer
// confirms a connection that has no channel to confirm it.
const helloPayload = "tiercache-hello"

// errReplaced ends a connection on which a channel was confirmed with no
// SUBSCRIBE to answer: go-redis replaced the connection without reporting
// an error (releaseConn reconnects an unusable connection even after a
// successful read, and subscribes the new one again), so messages may have
// been lost in between.
var errReplaced = errors.New("invalidate: connection replaced by the client")

// errUnarmed ends a connection, before it becomes current, whose tracking
// was armed for a set that has gained a namespace since: the next one is
// dialed at once, and arms the set as it is then.
var errUnarmed = errors.New("invalidate: connection armed for an older set")

// link is one pub/sub connection of a Subscriber, to one node, and the
// goroutines that keep it: it subscribes every namespace of the set to the
// channels it carries (each namespace's classic channel, the group channels
// whose slots its node owns, or both), reconnects when it is lost, and
// proves its freshness (see fence).
type link struct {
	s       *Subscriber
	client  *redis.Client // the Subscriber's own, to this link's node
	addr    string        // the node's address: the connections closeAll ends; "" for every one
	classic bool          // it carries each namespace's classic channel (Channel)
	groups  []int         // the groups whose channels (GroupChannel) it carries
	fence   fence

	ctx    context.Context // ended by close (and by the Subscriber's Close)
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	ready  atomic.Bool   // the current connection is confirmed (see Subscriber.Ready)

	unreachable atomic.Pointer[error] // the network error of the latest opening PING; nil once one is answered (see Unreachable)

	// Guarded by s.mu, and reset with each new ps: the current connection;
	// the epochs of the SUBSCRIBEs sent on it and not yet confirmed, per
	// channel, oldest first; the epoch of each channel's latest
	// confirmation; the UNSUBSCRIBEs not yet confirmed.
	ps      *redis.PubSub
	pending map[string][]uint64
	current map[string]uint64
	unsubs  map[string]int
	armed   []string          // with Tracking: the key prefixes the connection tracks
	fixed   map[string]uint64 // with Repair: the epoch each namespace was repaired at on the connection
}

func (s *Subscriber) newLink(client *redis.Client, addr string, classic bool, groups []int) *link {
	l := &link{s: s, client: client, addr: addr, classic: classic, groups: groups, done: make(chan struct{})}
	l.fence.init(s.opts.MaxStaleness, s.base)
	l.ctx, l.cancel = context.WithCancel(s.ctx)
	return l
}

// channels returns the channels of namespace that the link carries.
func (l *link) channels(namespace string) []string {
	out := make([]string, 0, len(l.groups)+1)
	if l.classic {
		out = append(out, Channel(namespace))
	}
	for _, g := range l.groups {
		out = append(out, GroupChannel(namespace, g))
	}
	return out
}

// subscribe sends the SUBSCRIBEs of namespace's channels, of epoch, on the
// current connection, if there is one. s.mu held.
func (l *link) subscribe(ctx context.Context, namespace string, epoch uint64) error {
	if l.ps == nil {
		return nil // the next connection subscribes to the whole set
	}
	ctx = noDial(ctx) // a lost connection is not replaced here, under mu
	for _, ch := range l.channels(namespace) {
		l.pending[ch] = append(l.pending[ch], epoch)
	}
	var errs []error
	if l.classic {
		errs = append(errs, l.ps.Subscribe(ctx, Channel(namespace)))
	}
	for _, g := range l.groups { // one slot per SSUBSCRIBE
		errs = append(errs, l.ps.SSubscribe(ctx, GroupChannel(namespace, g)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalidate: subscribe to %q: %w", namespace, err)
	}
	return nil
}

// unsubscribe sends the UNSUBSCRIBEs of namespace's channels on the current
// connection, if there is one. s.mu held.
func (l *link) unsubscribe(ctx context.Context, namespace string) error {
	chans := l.channels(namespace)
	for _, ch := range chans {
		delete(l.current, ch)
	}
	if l.ps == nil {
		return nil
	}
	ctx = noDial(ctx) // a lost connection is not replaced here, under mu
	for _, ch := range chans {
		if l.unsubs == nil {
			l.unsubs = make(map[string]int)
		}
		l.unsubs[ch]++ // its confirmation is no loss (see unsubscribed)
	}
	var errs []error
	if l.classic {
		errs = append(errs, l.ps.Unsubscribe(ctx, Channel(namespace)))
	}
	for _, g := range l.groups {
		errs = append(errs, l.ps.SUnsubscribe(ctx, GroupChannel(namespace, g)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalidate: unsubscribe from %q: %w", namespace, err)
	}
	return nil
}

// currentLocked reports whether every channel of namespace the link
// carries is confirmed for epoch on the current connection. s.mu held.
func (l *link) currentLocked(namespace string, epoch uint64) bool {
	if !l.ready.Load() {
		return false
	}
	if l.s.opts.Tracking {
		if _, ok := l.current[TrackingChannel]; !ok || !l.armedFor(namespace) {
			return false
		}
	}
	if l.s.opts.Repair && l.fixed[namespace] != epoch {
		return false
	}
	return l.channelsCurrent(namespace, epoch)
}

// channelsCurrent reports whether every channel of namespace that the link
// carries is confirmed for epoch on the current connection. s.mu held.
func (l *link) channelsCurrent(namespace string, epoch uint64) bool {
	for _, ch := range l.channels(namespace) {
		if l.current[ch] != epoch {
			return false
		}
	}
	return true
}

// close ends the link: its goroutines stop, and its connections close.
func (l *link) close() {
	l.cancel()
	l.s.own.conns.closeAll(l.addr)
	l.s.mu.Lock()
	ps := l.ps
	l.s.mu.Unlock()
	if ps != nil {
		_ = ps.Close() // unblocks a read in progress; the goroutine closes it too
	}
}

// run is the link's goroutine: one connection after another until the link
// is closed.
func (l *link) run() {
	s := l.s
	defer s.wg.Done()
	defer close(l.done)
	lp := loop{
		l:           l,
		backoff:     min(minBackoff, s.opts.MaxBackoff),
		gapWarn:     warnLimiter{every: s.warnEvery},
		attemptWarn: warnLimiter{every: s.warnEvery},
	}
	again := false // the last connection was armed for an older set: dial at once
	for first := true; ; first = false {
		if !first {
			if !again && !lp.pause() {
				lp.retired()
				return
			}
			s.reconnects.Add(1)
		}
		ps := l.client.Subscribe(l.ctx) // no channel: nothing is sent yet
		err := l.connect(ps)
		if errors.Is(err, ErrClosed) {
			_ = ps.Close()
			lp.retired()
			return
		}
		if again = errors.Is(err, errUnarmed); again {
			_ = ps.Close()
			continue
		}
		if err == nil {
			err = lp.receive(ps)
		}
		l.setPubSub(nil)
		_ = ps.Close()
		if l.ctx.Err() != nil {
			lp.retired()
			return
		}
		lp.lost(err)
		s.askRefresh()
	}
}

// connect dials ps (with the hello PING, outside mu, so that Add, Remove
// and Close never wait for a dial), then, under mu, makes it the current
// connection and subscribes it to the channels of every namespace in the
// set: a namespace that Add puts in the set is either subscribed here or by
// Add itself on ps, never both, never neither. It returns ErrClosed once
// the link is closed, and errUnarmed (with Tracking) when the set gained a
// namespace after the dial armed tracking: Add re-arms only the current
// connection.
func (l *link) connect(ps *redis.PubSub) error {
	err := ps.Ping(l.ctx, helloPayload)
	if l.ctx.Err() == nil {
		l.reached(err)
	}
	if err != nil {
		return err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || l.ctx.Err() != nil {
		return ErrClosed
	}
	var armed []string
	if s.opts.Tracking {
		armed = s.own.armedOf(l.addr)
		if !s.armsSetLocked(armed) {
			return errUnarmed
		}
	}
	l.ps = ps
	l.unsubs, l.current, l.fixed = nil, make(map[string]uint64), make(map[string]uint64)
	l.pending = make(map[string][]uint64, len(s.names))
	var classic []string
	if s.opts.Tracking {
		l.armed = armed
		l.pending[TrackingChannel] = []uint64{0}
		classic = append(classic, TrackingChannel)
	}
	for ns, rec := range s.names {
		for _, ch := range l.channels(ns) {
			l.pending[ch] = []uint64{rec.epoch}
		}
		if l.classic {
			classic = append(classic, Channel(ns))
		}
	}
	var errs []error
	if len(classic) > 0 {
		errs = append(errs, ps.Subscribe(l.ctx, classic...))
	}
	for ns := range s.names {
		for _, g := range l.groups {
			errs = append(errs, ps.SSubscribe(l.ctx, GroupChannel(ns, g)))
		}
	}
	return errors.Join(errs...)
}

// setPubSub records the current connection for Add, Remove and close.
func (l *link) setPubSub(ps *redis.PubSub) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	l.ps = ps
	l.unsubs, l.pending, l.current, l.armed, l.fixed = nil, nil, nil, nil, nil
}
