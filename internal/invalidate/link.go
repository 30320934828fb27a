package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

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
	for first := true; ; first = false {
		if !first {
			if !lp.pause() {
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
// the link is closed.
func (l *link) connect(ps *redis.PubSub) error {
	if err := ps.Ping(l.ctx, helloPayload); err != nil {
		return err
	}
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || l.ctx.Err() != nil {
		return ErrClosed
	}
	l.ps = ps
	l.unsubs, l.current, l.fixed = nil, make(map[string]uint64), make(map[string]uint64)
	l.pending = make(map[string][]uint64, len(s.names))
	var classic []string
	if s.opts.Tracking {
		l.armed = s.own.armedOf(l.addr)
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

// loop is the state of a link's goroutine, touched by it alone.
type loop struct {
	l           *link
	backoff     time.Duration // the next pause's upper bound
	gapWarn     warnLimiter   // Warn records about undecodable messages
	attemptWarn warnLimiter   // Warn records about failed subscribe attempts
	confirmed   bool          // the current connection is confirmed (see link.ready)
	lostBefore  bool          // a confirmed connection was lost: the next confirmation is logged
	floor       int64         // fence time of the last loss: proofs sent before it do not count
	w           *watchdog     // the current connection's
}

// receive reads from ps until the connection fails, and returns why.
//
// It reads with no deadline: a read that times out in the middle of a reply
// has consumed part of it, and go-redis (ReceiveTimeout, which keeps the
// connection after a timeout) would parse the rest as a reply of its own,
// so a message could vanish without an error. The health check runs beside
// the read instead (see watchdog) and ends it by closing ps.
func (lp *loop) receive(ps *redis.PubSub) error {
	l, s := lp.l, lp.l.s
	w := startWatchdog(l.ctx, ps, func() { s.own.conns.closeAll(l.addr) }, s.opts.HealthCheck, &l.fence)
	lp.w = w
	defer w.stop()
	for {
		w.reading()
		msg, err := ps.Receive(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil {
				return l.ctx.Err()
			}
			if cause := w.failure(); cause != nil {
				return cause
			}
			return err
		}
		w.received()
		if err := lp.handle(msg); err != nil {
			return err
		}
	}
}

// handle acts on one reply of the connection.
func (lp *loop) handle(msg any) error {
	s := lp.l.s
	switch m := msg.(type) {
	case *redis.Message:
		if m.Channel == TrackingChannel {
			lp.tracked(m.PayloadSlice)
			return nil
		}
		ns, ok := namespaceOf(m.Channel)
		if !ok || !s.inSet(ns) {
			s.log.Debug("invalidate: message on a channel not in the set", slog.String("channel", m.Channel))
			return nil
		}
		dec, err := Decode([]byte(m.Payload))
		if err != nil {
			lp.gap(ns, m.Channel, len(m.Payload), err)
			return nil
		}
		if s.opts.Repair && dec.Seq == 0 && !dec.Tracked {
			s.unlogged(ns)
		}
		if s.opts.Repair && dec.Seq != 0 {
			if err := lp.positioned(ns, m.Channel, dec, m.Payload); err != nil {
				s.log.Info("invalidate: messages were missed and cannot be read back; reporting a gap",
					slog.String("channel", m.Channel), slog.Any("error", err))
				s.callback(func() { s.opts.OnState(Gap, ns, err) })
			}
		}
		s.messages.Add(1)
		s.callback(func() { s.opts.OnMessage(ns, dec) })
	case *redis.Subscription:
		switch m.Kind {
		case "subscribe", "ssubscribe":
			return lp.subscribed(m.Channel)
		case "unsubscribe", "sunsubscribe":
			return lp.unsubscribed(m.Channel)
		}
	case *redis.Pong:
		if !lp.confirmed {
			lp.confirmIfNoChannel()
		}
		lp.pong(m.Payload)
	default:
		s.log.Debug("invalidate: ignoring unexpected reply", slog.String("type", fmt.Sprintf("%T", msg)))
	}
	return nil
}

// subscribed handles the server's confirmation of channel on the current
// connection: it answers the oldest SUBSCRIBE of channel sent on it. It
// counts if that SUBSCRIBE is of the Add that put the channel's namespace
// in the set (not of one that a Remove has undone since), and Subscribed
// is reported once the namespace is confirmed on every connection. A
// confirmation with no SUBSCRIBE to answer means the client replaced the
// connection itself (see errReplaced).
func (lp *loop) subscribed(channel string) error {
	l, s := lp.l, lp.l.s
	s.mu.Lock()
	queue := l.pending[channel]
	if len(queue) == 0 {
		s.mu.Unlock()
		return errReplaced
	}
	e := queue[0]
	if len(queue) == 1 {
		delete(l.pending, channel)
	} else {
		l.pending[channel] = queue[1:]
	}
	counts := channel == TrackingChannel
	if ns, ok := namespaceOf(channel); ok {
		rec := s.names[ns]
		counts = rec != nil && rec.epoch == e
	}
	if counts {
		l.current[channel] = e
	}
	s.mu.Unlock()
	if !counts {
		s.log.Debug("invalidate: confirmation of a channel removed since", slog.String("channel", channel))
		return nil
	}
	if !lp.confirmed && len(l.groups) > 0 {
		s.mu.Lock()
		waiting := len(l.pending) > 0
		s.mu.Unlock()
		if waiting {
			return nil // every channel first, then the node's ownership of them
		}
		if err := lp.checkOwner(); err != nil {
			return err
		}
	}
	lp.confirm()
	if s.opts.Repair {
		lp.repairConfirmed()
	}
	s.mu.Lock()
	done := make(map[string]State)
	for ns := range s.names {
		if st := s.confirmedLocked(ns); st != 0 {
			done[ns] = st
		}
	}
	s.mu.Unlock()
	for ns, st := range done {
		s.callback(func() { s.opts.OnState(st, ns, nil) })
	}
	return nil
}

// repairConfirmed reads back what each namespace whose channels the
// connection now all confirms missed on them, once per connection and
// epoch, before the namespace can count as confirmed (see
// link.currentLocked); a namespace that cannot be repaired will be
// reported Subscribed, for its owner to purge.
func (lp *loop) repairConfirmed() {
	l, s := lp.l, lp.l.s
	type todo struct {
		ns    string
		epoch uint64
	}
	var work []todo
	s.mu.Lock()
	for ns, rec := range s.names {
		if l.fixed[ns] != rec.epoch && l.channelsCurrent(ns, rec.epoch) {
			work = append(work, todo{ns, rec.epoch})
		}
	}
	s.mu.Unlock()
	for _, w := range work {
		s.mu.Lock()
		unlogged := s.names[w.ns] != nil && s.names[w.ns].unlogged
		s.mu.Unlock()
		ok := !unlogged && lp.repairLink(w.ns)
		s.mu.Lock()
		if rec := s.names[w.ns]; rec != nil && rec.epoch == w.epoch && l.fixed != nil {
			l.fixed[w.ns] = w.epoch
			if !ok {
				rec.purge = true
			}
		}
		s.mu.Unlock()
	}
}

// unsubscribed handles an "unsubscribe" reply for channel. One that answers
// Remove is expected, and so is one for a namespace no longer in the set;
// for one still in the set, the server dropped it (on a Cluster, its slot
// moved to another node): the connection is treated as lost.
func (lp *loop) unsubscribed(channel string) error {
	l, s := lp.l, lp.l.s
	ns, _ := namespaceOf(channel)
	s.mu.Lock()
	expected := l.unsubs[channel] > 0
	if expected {
		if l.unsubs[channel]--; l.unsubs[channel] == 0 {
			delete(l.unsubs, channel) // nothing is kept for a channel done with
		}
	}
	_, inSet := s.names[ns]
	s.mu.Unlock()
	if expected || !inSet {
		return nil
	}
	return fmt.Errorf("invalidate: server unsubscribed the connection from %q", channel)
}

// confirmIfNoChannel confirms the current connection on a PONG while it
// carries no channel: none will.
func (lp *loop) confirmIfNoChannel() {
	l, s := lp.l, lp.l.s
	s.mu.Lock()
	empty := len(s.names) == 0 || (!l.classic && len(l.groups) == 0)
	s.mu.Unlock()
	if empty {
		lp.confirm()
	}
}

// confirm marks the current connection confirmed, once: LastError clears
// (once every connection is), Ready may turn true and the backoff starts
// over.
func (lp *loop) confirm() {
	if lp.confirmed {
		return
	}
	l, s := lp.l, lp.l.s
	lp.confirmed = true
	lp.backoff = min(minBackoff, s.opts.MaxBackoff)
	l.ready.Store(true)
	s.setLastError(nil)
	lp.w.ask(&lp.w.wantHealth) // a first proof (LastProof) on the new connection, whatever the fence
	if lp.lostBefore {
		s.log.Info("invalidate: subscribed again", slog.String("node", l.addr))
	}
}

// gap handles a payload on a channel of namespace that Decode rejected, of
// n bytes: it may have named keys to drop, so it is counted and reported
// as a Gap. The Warn is rate-limited, since a writer of a newer version
// sends one with every write.
func (lp *loop) gap(namespace, channel string, n int, err error) {
	s := lp.l.s
	s.malformed.Add(1)
	err = fmt.Errorf("invalidate: message of %d bytes on %q cannot be decoded: %w", n, channel, err)
	if ok, suppressed := lp.gapWarn.allow(time.Now()); ok {
		s.log.Warn("invalidate: cannot decode a message; reporting a gap",
			slog.String("channel", channel), slog.Any("error", err), slog.Int("suppressed", suppressed))
	} else {
		s.log.Debug("invalidate: cannot decode a message; reporting a gap",
			slog.String("channel", channel), slog.Any("error", err))
	}
	s.callback(func() { s.opts.OnState(Gap, namespace, err) })
}

// lost handles the end of a connection or of an attempt at one; err becomes
// LastError. Every proof of freshness is withdrawn. If the connection was
// confirmed, the loss is logged and reported as Broken. Otherwise an
// attempt failed: that is logged at Warn at most once per warnEvery (with
// the number held back since), and at Debug the other times.
func (lp *loop) lost(err error) {
	l, s := lp.l, lp.l.s
	lp.floor = l.fence.withdraw()
	l.ready.Store(false)
	if !lp.confirmed {
		err = fmt.Errorf("invalidate: subscribe: %w", err)
		s.setLastError(err)
		if ok, suppressed := lp.attemptWarn.allow(time.Now()); ok {
			s.log.Warn("invalidate: cannot subscribe; retrying", slog.String("node", l.addr),
				slog.Any("error", err), slog.Int("suppressed", suppressed))
		} else {
			s.log.Debug("invalidate: subscribe attempt failed", slog.Any("error", err))
		}
		return
	}
	lp.confirmed = false
	lp.lostBefore = true
	err = fmt.Errorf("invalidate: subscription lost: %w", err)
	s.setLastError(err)
	s.log.Warn("invalidate: subscription lost; messages may have been missed",
		slog.String("node", l.addr), slog.Any("error", err))
	lp.broken(err)
}

// broken reports the loss of a confirmed connection: every namespace is
// reported Subscribed again once confirmed again.
func (lp *loop) broken(err error) {
	s := lp.l.s
	s.mu.Lock()
	s.lostLocked()
	s.mu.Unlock()
	s.callback(func() { s.opts.OnState(Broken, "", err) })
}

// retired handles the end of a link that is closed: by the Subscriber's
// Close, nothing more is reported; by a change of the Cluster's topology,
// a confirmed connection is reported lost like any other.
func (lp *loop) retired() {
	l, s := lp.l, lp.l.s
	l.fence.withdraw()
	l.ready.Store(false)
	if s.ctx.Err() != nil || !lp.confirmed {
		return
	}
	lp.confirmed = false
	s.log.Info("invalidate: connection retired: the cluster's topology changed", slog.String("node", l.addr))
	lp.broken(errors.New("invalidate: the cluster's topology changed"))
}

// pong handles a PONG: a fence's answer proves freshness (see fence.prove).
// Any PONG is also traffic, which received() has noted for the health
// check.
func (lp *loop) pong(payload string) {
	if rest, ok := strings.CutPrefix(payload, fencePrefix); ok && lp.confirmed {
		lp.l.fence.prove(rest, lp.floor)
	}
}

// pause waits before the next attempt: a random time in the upper half of
// the current backoff, which then doubles up to MaxBackoff. It reports
// false if the link was closed first.
func (lp *loop) pause() bool {
	d := lp.backoff/2 + rand.N(lp.backoff/2+1)
	lp.backoff = min(2*lp.backoff, lp.l.s.opts.MaxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-lp.l.ctx.Done():
		return false
	}
}
