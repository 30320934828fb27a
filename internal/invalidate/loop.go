package invalidate

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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
// the read instead (see watchdog) and ends it by closing ps. Nothing on ps
// dials (see noDial): when the read fails, go-redis's own redial is
// refused, and the link dials the next connection where Close can end it.
func (lp *loop) receive(ps *redis.PubSub) error {
	l, s := lp.l, lp.l.s
	ctx := noDial(l.ctx)
	w := startWatchdog(ctx, ps, func() { s.own.conns.closeAll(l.addr) }, s.opts.HealthCheck, &l.fence)
	lp.w = w
	defer w.stop()
	for {
		w.reading()
		msg, err := ps.Receive(ctx)
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
