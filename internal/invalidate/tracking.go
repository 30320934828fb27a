package invalidate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// TrackingChannel is where Redis sends the invalidations of server-assisted
// tracking to a connection that redirects them to itself (RESP2).
const TrackingChannel = "__redis__:invalidate"

// noPrefix is the prefix tracked while the set is empty: BCAST with no
// prefix at all would track every key of the server.
const noPrefix = "tiercache:none:"

// setPrefixesLocked records the key prefixes of the set, for the next
// connection that arms tracking. s.mu held (or the Subscriber not started).
func (s *Subscriber) setPrefixesLocked() {
	if !s.opts.Tracking {
		return
	}
	p := make([]string, 0, len(s.names))
	for _, ns := range slices.Sorted(maps.Keys(s.names)) {
		p = append(p, ns+":")
	}
	s.prefixes.Store(&p)
}

// track is the OnConnect hook of the Subscriber's own pub/sub clients, nil
// without Tracking: it turns server-assisted invalidation on for the new
// connection, redirected to itself, for the prefixes of the set, and
// records what it armed for the link of addr. It runs as go-redis dials,
// never under the Subscriber's mutex (see prefixes).
func (s *Subscriber) track(addr string) func(ctx context.Context, cn *redis.Conn) error {
	if !s.opts.Tracking {
		return nil
	}
	return func(ctx context.Context, cn *redis.Conn) error {
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return s.trackingUnavailable(err)
		}
		prefixes := *s.prefixes.Load()
		args := []any{"CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST"}
		armed := prefixes
		if len(prefixes) == 0 {
			armed = []string{noPrefix}
		}
		for _, p := range armed {
			args = append(args, "PREFIX", p)
		}
		if err := cn.Do(ctx, args...).Err(); err != nil {
			return s.trackingUnavailable(err)
		}
		s.own.setArmed(addr, prefixes)
		return nil
	}
}

// trackingUnavailable is the error of a connection that could not turn
// tracking on: when the server answered (it lacks the command, or an ACL or
// a proxy refuses it), it can never succeed, and PermanentError says so.
func (s *Subscriber) trackingUnavailable(err error) error {
	err = fmt.Errorf("invalidate: Tracking is not available on this server: %w", err)
	var re redis.Error
	if errors.As(err, &re) {
		s.permanent.Store(&err)
	}
	return err
}

// armedFor reports whether the link's current connection tracks the keys
// of namespace. s.mu held.
func (l *link) armedFor(namespace string) bool {
	return slices.Contains(l.armed, namespace+":")
}

// armsSetLocked reports whether a connection that tracks the prefixes
// armed tracks every namespace of the set. s.mu held.
func (s *Subscriber) armsSetLocked(armed []string) bool {
	for ns := range s.names {
		if !slices.Contains(armed, ns+":") {
			return false
		}
	}
	return true
}

// rearm ends the link's current connection, so that the next one tracks
// the prefixes of the set as it is now: a loss, reported as Broken if the
// connection was confirmed. s.mu held.
func (l *link) rearm() {
	l.s.own.conns.closeAll(l.addr)
}

// tracked hands the keys of a tracking invalidation to OnMessage, by
// namespace; a nil payload (FLUSHDB, FLUSHALL) never reaches here: go-redis
// fails the read, and the connection is replaced (a loss).
func (lp *loop) tracked(keys []string) {
	s := lp.l.s
	byNS := make(map[string][]string)
	for _, k := range keys {
		ns, key, ok := strings.Cut(k, ":")
		if ok && s.inSet(ns) {
			byNS[ns] = append(byNS[ns], key)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(byNS)) {
		s.messages.Add(1)
		m := Message{Keys: byNS[ns], Tracked: true}
		s.callback(func() { s.opts.OnMessage(ns, m) })
	}
}
