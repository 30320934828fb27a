package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// helloPayload is the payload of the PING that opens each connection: it
// dials the connection outside the Subscriber's mutex, and its answer
// confirms a connection that has no channel to confirm it.
const helloPayload = "tiercache-hello"

// errReplaced ends a connection on which a channel was confirmed twice:
// go-redis replaced the connection without reporting an error (releaseConn
// reconnects an unusable connection even after a successful read, and
// subscribes the new one again), so messages may have been lost in between.
var errReplaced = errors.New("invalidate: connection replaced by the client")

// run is the Subscriber's goroutine: one connection after another until ctx
// ends.
func (s *Subscriber) run(ctx context.Context) {
	defer close(s.done)
	l := loop{
		s:           s,
		backoff:     min(minBackoff, s.opts.MaxBackoff),
		gapWarn:     warnLimiter{every: s.warnEvery},
		attemptWarn: warnLimiter{every: s.warnEvery},
	}
	for first := true; ; first = false {
		if !first {
			if !l.pause(ctx) {
				return
			}
			s.reconnects.Add(1)
		}
		ps := s.client.Subscribe(ctx) // no channel: nothing is sent yet
		err := s.connect(ctx, ps)
		if errors.Is(err, ErrClosed) {
			_ = ps.Close()
			return
		}
		if err == nil {
			err = l.receive(ctx, ps)
		}
		s.setPubSub(nil)
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		l.lost(err)
	}
}

// connect dials ps (with the hello PING, outside mu, so that Add, Remove
// and Close never wait for a dial), then, under mu, makes it the current
// connection and subscribes it to every channel in the set: a channel that
// Add puts in the set is either in that SUBSCRIBE or sent by Add itself on
// ps, never both, never neither. It returns ErrClosed once Close has begun.
func (s *Subscriber) connect(ctx context.Context, ps *redis.PubSub) error {
	if err := ps.Ping(ctx, helloPayload); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.ps = ps
	s.unsubs, s.current = nil, make(map[string]uint64)
	set := *s.set.Load()
	s.pending = make(map[string][]uint64, len(set))
	for ch, e := range set {
		s.pending[ch] = []uint64{e}
	}
	if len(set) > 0 {
		return ps.Subscribe(ctx, slices.Sorted(maps.Keys(set))...)
	}
	return nil
}

// setPubSub records the current connection for Add, Remove and Close.
func (s *Subscriber) setPubSub(ps *redis.PubSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.ps = ps
		s.unsubs, s.pending, s.current = nil, nil, nil
	}
}

// loop is the state of the goroutine, touched by it alone.
type loop struct {
	s           *Subscriber
	backoff     time.Duration // the next pause's upper bound
	gapWarn     warnLimiter   // Warn records about undecodable messages
	attemptWarn warnLimiter   // Warn records about failed subscribe attempts
	confirmed   bool          // the current connection is confirmed (see Subscriber.Ready)
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
func (l *loop) receive(ctx context.Context, ps *redis.PubSub) error {
	s := l.s
	w := startWatchdog(ctx, ps, s.conns.closeAll, s.opts.HealthCheck, &s.fence)
	l.w = w
	defer w.stop()
	for {
		w.reading()
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if cause := w.failure(); cause != nil {
				return cause
			}
			return err
		}
		w.received()

		switch m := msg.(type) {
		case *redis.Message:
			if !s.inSet(m.Channel) {
				s.log.Debug("invalidate: message on a channel not in the set", slog.String("channel", m.Channel))
				continue
			}
			dec, err := Decode([]byte(m.Payload))
			if err != nil {
				l.gap(m.Channel, len(m.Payload), err)
				continue
			}
			s.messages.Add(1)
			s.opts.OnMessage(m.Channel, dec)
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe":
				if err := l.subscribed(m.Channel); err != nil {
					return err
				}
			case "unsubscribe":
				if err := l.unsubscribed(m.Channel); err != nil {
					return err
				}
			}
		case *redis.Pong:
			if !l.confirmed {
				l.confirmIfNoChannel()
			}
			l.pong(m.Payload)
		default:
			s.log.Debug("invalidate: ignoring unexpected reply", slog.String("type", fmt.Sprintf("%T", msg)))
		}
	}
}

// subscribed handles the server's confirmation of channel on the current
// connection: it answers the oldest SUBSCRIBE of channel sent on it. It is
// reported as Subscribed if that SUBSCRIBE is of the Add that put channel
// in the set (not of one that a Remove has undone since), and then makes
// Current true for channel. A confirmation with no SUBSCRIBE to answer
// means the client replaced the connection itself (see errReplaced).
func (l *loop) subscribed(channel string) error {
	s := l.s
	s.mu.Lock()
	queue := s.pending[channel]
	if len(queue) == 0 {
		s.mu.Unlock()
		return errReplaced
	}
	e := queue[0]
	if len(queue) == 1 {
		delete(s.pending, channel)
	} else {
		s.pending[channel] = queue[1:]
	}
	now, ok := (*s.set.Load())[channel]
	ok = ok && now == e
	if ok {
		s.current[channel] = e
	}
	s.mu.Unlock()
	if !ok {
		s.log.Debug("invalidate: confirmation of a channel removed since", slog.String("channel", channel))
		return nil
	}
	l.confirm()
	l.s.opts.OnState(Subscribed, channel, nil)
	return nil
}

// unsubscribed handles an "unsubscribe" reply for channel. One that answers
// Remove is expected, and so is one for a channel no longer in the set; for
// a channel still in the set, the server dropped it: the connection is
// treated as lost.
func (l *loop) unsubscribed(channel string) error {
	s := l.s
	s.mu.Lock()
	expected := s.unsubs[channel] > 0
	if expected {
		if s.unsubs[channel]--; s.unsubs[channel] == 0 {
			delete(s.unsubs, channel) // nothing is kept for a channel done with
		}
	}
	inSet := s.inSet(channel)
	s.mu.Unlock()
	if expected || !inSet {
		return nil
	}
	return fmt.Errorf("invalidate: server unsubscribed the connection from %q", channel)
}

// confirmIfNoChannel confirms the current connection on a PONG while the set
// is empty: no channel will.
func (l *loop) confirmIfNoChannel() {
	if len(*l.s.set.Load()) == 0 {
		l.confirm()
	}
}

// confirm marks the current connection confirmed, once: LastError clears,
// Ready turns true and the backoff starts over.
func (l *loop) confirm() {
	if l.confirmed {
		return
	}
	s := l.s
	l.confirmed = true
	l.backoff = min(minBackoff, s.opts.MaxBackoff)
	s.setLastError(nil)
	s.ready.Store(true)
	l.w.ask(&l.w.wantHealth) // a first proof (LastProof) on the new connection, whatever the fence
	if l.lostBefore {
		s.log.Info("invalidate: subscribed again")
	}
}

// gap handles a payload on channel that Decode rejected, of n bytes: it may
// have named keys to drop, so it is counted and reported as a Gap. The Warn
// is rate-limited, since a writer of a newer version sends one with every
// write.
func (l *loop) gap(channel string, n int, err error) {
	s := l.s
	s.malformed.Add(1)
	err = fmt.Errorf("invalidate: message of %d bytes on %q cannot be decoded: %w", n, channel, err)
	if ok, suppressed := l.gapWarn.allow(time.Now()); ok {
		s.log.Warn("invalidate: cannot decode a message; reporting a gap",
			slog.String("channel", channel), slog.Any("error", err), slog.Int("suppressed", suppressed))
	} else {
		s.log.Debug("invalidate: cannot decode a message; reporting a gap",
			slog.String("channel", channel), slog.Any("error", err))
	}
	s.opts.OnState(Gap, channel, err)
}

// lost handles the end of a connection or of an attempt at one; err becomes
// LastError. Every proof of freshness is withdrawn. If the connection was
// confirmed, the loss is logged and reported as Broken. Otherwise an
// attempt failed: that is logged at Warn at most once per warnEvery (with
// the number held back since), and at Debug the other times.
func (l *loop) lost(err error) {
	s := l.s
	l.floor = s.fence.withdraw()
	s.ready.Store(false)
	channels := len(*s.set.Load())
	if !l.confirmed {
		err = fmt.Errorf("invalidate: subscribe: %w", err)
		s.setLastError(err)
		if ok, suppressed := l.attemptWarn.allow(time.Now()); ok {
			s.log.Warn("invalidate: cannot subscribe; retrying", slog.Int("channels", channels),
				slog.Any("error", err), slog.Int("suppressed", suppressed))
		} else {
			s.log.Debug("invalidate: subscribe attempt failed", slog.Any("error", err))
		}
		return
	}
	l.confirmed = false
	l.lostBefore = true
	err = fmt.Errorf("invalidate: subscription lost: %w", err)
	s.setLastError(err)
	s.log.Warn("invalidate: subscription lost; messages may have been missed",
		slog.Int("channels", channels), slog.Any("error", err))
	s.opts.OnState(Broken, "", err)
}

// pong handles a PONG: a fence's answer proves freshness (see fence.prove).
// Any PONG is also traffic, which received() has noted for the health
// check.
func (l *loop) pong(payload string) {
	if rest, ok := strings.CutPrefix(payload, fencePrefix); ok && l.confirmed {
		l.s.fence.prove(rest, l.floor)
	}
}

// pause waits before the next attempt: a random time in the upper half of
// the current backoff, which then doubles up to MaxBackoff. It reports
// false if ctx ended first.
func (l *loop) pause(ctx context.Context) bool {
	d := l.backoff/2 + rand.N(l.backoff/2+1)
	l.backoff = min(2*l.backoff, l.s.opts.MaxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
