package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/clients"
)

// Subscriber receives the invalidation messages of a set of namespaces, over
// one pub/sub connection per node it needs (one on a single node, one per
// master on a Cluster), each on goroutines of its own, until Close.
type Subscriber struct {
	opts      Options   // validated, defaults filled in; Namespaces is nil (see names)
	base      time.Time // the fences' epoch, with a monotonic reading
	log       *slog.Logger
	warnEvery time.Duration // warnEvery when Subscribe ran
	own       *ownClient

	ctx       context.Context // ended by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every link's goroutines, and the topology keeper's
	closeOnce sync.Once
	cb        sync.Mutex // held by each callback: one at a time

	mu     sync.Mutex
	closed bool              // guarded by mu: Close has begun
	names  map[string]*nsRec // guarded by mu: the set
	epochs uint64            // guarded by mu: the last epoch given to a namespace by Add
	links  []*link           // guarded by mu: the connections of the current topology

	view atomic.Pointer[[]*link] // links, for the readers that take no lock (Fresh)

	messages, malformed, reconnects atomic.Uint64
	answers                         atomic.Uint64 // opening PINGs answered (see Answers)
	repaired, gaps                  atomic.Uint64 // messages read back from logs; gaps of positions read back
	positions                       positions     // with Repair: where each channel's log stood at its last message
	retiredPings, retiredHealth     atomic.Uint64 // the fences' counts of links since retired
	lastErr                         atomic.Pointer[error]
	permanent                       atomic.Pointer[error]    // see PermanentError
	prefixes                        atomic.Pointer[[]string] // with Tracking: the set's key prefixes, for a new connection to track
	refresh                         chan struct{}            // capacity 1: a link asks the keeper to read the topology again
}

// nsRec is what the Subscriber keeps for a namespace of the set.
type nsRec struct {
	epoch    uint64 // of the Add that put it in the set: confirmations of older ones are stale
	reported bool   // Subscribed (or Repaired) was reported since the namespace's last loss
	purge    bool   // the next report is Subscribed: the owner must purge (new, or not repaired)
	unlogged bool   // with Repair: a message without a position was heard, so a loss is purged (see unlogged)
}

// Subscribe validates opts and starts a Subscriber. It returns at once: it
// never waits for Redis and does not fail because Redis is unreachable
// (the Subscriber keeps trying; Ready reports true and OnState reports
// Subscribed for each namespace when it succeeds, and until then LastError
// says why it has not). It fails only for a nil client (untyped, or a nil
// pointer), a client that is neither a *redis.Client nor a
// *redis.ClusterClient, or bad Options, naming the field. The Subscriber
// dials with clients of its own, made from the options of the one it is
// given (see ownClient); it never closes the one it is given.
func Subscribe(client redis.UniversalClient, opts Options) (*Subscriber, error) {
	if err := clients.NotNil(client); err != nil {
		return nil, fmt.Errorf("invalidate: %w", err)
	}
	switch {
	case opts.OnMessage == nil:
		return nil, errors.New("invalidate: OnMessage must not be nil")
	case opts.OnState == nil:
		return nil, errors.New("invalidate: OnState must not be nil")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	names := make(map[string]*nsRec, len(opts.Namespaces))
	for i, ns := range opts.Namespaces {
		names[ns] = &nsRec{epoch: uint64(i + 1), purge: true}
	}
	if opts.HealthCheck == 0 {
		opts.HealthCheck = DefaultHealthCheck
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.RepairLimit == 0 {
		opts.RepairLimit = DefaultRepairLimit
	}
	if opts.Tracking {
		opts.Repair = false // tracking's invalidations have no position
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Subscriber{
		opts:      opts,
		base:      time.Now(),
		log:       log,
		warnEvery: warnEvery,
		names:     names,
		epochs:    uint64(len(names)),
		refresh:   make(chan struct{}, 1),
	}
	s.opts.Namespaces = nil
	s.setPrefixesLocked()
	own, err := newOwnClient(client, s.track)
	if err != nil {
		return nil, err
	}
	s.own = own
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if own.cluster == nil {
		s.start([]*link{s.newLink(own.pub, "", true, nil)})
	} else {
		s.wg.Add(1)
		go s.keep()
	}
	return s, nil
}

// start makes links the current connections and starts their goroutines.
func (s *Subscriber) start(links []*link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.links = links
	s.view.Store(&links)
	for _, l := range links {
		s.wg.Add(1)
		go l.run()
	}
}

// Add puts namespace in the set and, on each connection that is up, sends
// the SUBSCRIBEs of its channels; OnState reports Subscribed for it once
// every one is confirmed. Each later connection subscribes to them too,
// until Remove. Adding a namespace already in the set does nothing. The
// namespace is in the set when Add returns, even with an error: an error
// means a SUBSCRIBE could not be sent, which ends that connection
// (reported as Broken if it was confirmed), and the next one subscribes.
// Add fails for an empty namespace and, with ErrClosed, once Close has
// begun. It is safe to call concurrently, from the callbacks too.
func (s *Subscriber) Add(ctx context.Context, namespace string) error {
	if namespace == "" {
		return errors.New("invalidate: Add: namespace must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.names[namespace]; ok {
		return nil
	}
	s.epochs++
	s.names[namespace] = &nsRec{epoch: s.epochs, purge: true}
	s.setPrefixesLocked()
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.subscribe(ctx, namespace, s.epochs))
		if s.opts.Tracking && l.ps != nil && !l.armedFor(namespace) {
			l.rearm() // its connection tracks the prefixes of the set it was made with
		}
	}
	return errors.Join(errs...)
}

// Remove takes namespace out of the set and, on each connection that is
// up, sends the UNSUBSCRIBEs of its channels. Messages of it that arrive
// after Remove returns are ignored; one whose delivery had begun may still
// reach OnMessage. Removing a namespace not in the set does nothing.
// Remove waits for no reply and never dials; behind a write stuck on a
// peer that reads nothing it waits until the health check closes that
// connection (two HealthChecks at most) or Close begins. Remove fails with
// ErrClosed once Close has begun. It is safe to call concurrently, from
// the callbacks too.
func (s *Subscriber) Remove(ctx context.Context, namespace string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.names[namespace]; !ok {
		return nil
	}
	delete(s.names, namespace)
	s.setPrefixesLocked()
	var errs []error
	for _, l := range s.links {
		for _, ch := range l.channels(namespace) {
			s.positions.forget(ch)
		}
		errs = append(errs, l.unsubscribe(ctx, namespace))
	}
	return errors.Join(errs...)
}

// Current reports whether namespace is in the set and every one of its
// channels has been confirmed, on every connection, for the Add that put it
// there: every message published for it from now on will be delivered
// (until Broken, or Remove). A Subscribed that a Remove and a new Add have
// overtaken (reported as the connection found it, just before) leaves
// Current false: an owner that acts on Subscribed checks Current first. It
// is safe to call concurrently, from the callbacks too.
func (s *Subscriber) Current(namespace string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currentLocked(namespace)
}

// currentLocked is Current with mu held.
func (s *Subscriber) currentLocked(namespace string) bool {
	rec, ok := s.names[namespace]
	if !ok || len(s.links) == 0 {
		return false
	}
	for _, l := range s.links {
		if !l.currentLocked(namespace, rec.epoch) {
			return false
		}
	}
	return true
}

// confirmedLocked is told by a link that it confirmed a channel: it
// returns what to report of namespace, if that completes its confirmation
// on every connection, once per loss: Subscribed when the owner must purge,
// Repaired when every message missed was read back; 0 otherwise. mu held.
func (s *Subscriber) confirmedLocked(namespace string) State {
	rec, ok := s.names[namespace]
	if !ok || rec.reported || !s.currentLocked(namespace) {
		return 0
	}
	rec.reported = true
	if rec.purge {
		rec.purge = false
		return Subscribed
	}
	return Repaired
}

// lostLocked is told that a confirmed connection was lost: every
// namespace will be reported again once confirmed again, as Subscribed
// unless Repair reads back what it missed. mu held.
func (s *Subscriber) lostLocked() {
	for _, rec := range s.names {
		rec.reported = false
		if !s.opts.Repair {
			rec.purge = true
		}
	}
}

// inSet reports whether namespace is in the set.
func (s *Subscriber) inSet(namespace string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.names[namespace]
	return ok
}

// callback runs f while holding cb, so that callbacks run one at a time.
func (s *Subscriber) callback(f func()) {
	s.cb.Lock()
	defer s.cb.Unlock()
	f()
}

// Close stops the Subscriber and waits for its goroutines to exit; no
// callback runs after Close returns. It closes every connection first and
// waits for nothing from Redis, so a hung server does not hold it (nor a
// Remove in progress), only a callback that is running does. It is
// idempotent, safe to call concurrently, and always returns nil. It must
// not be called from OnMessage or OnState (it would wait for itself).
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.own.conns.shutdown() // ends any write or handshake that holds a PubSub's mutex, or mu
		s.mu.Lock()
		s.closed = true
		links := s.links
		s.mu.Unlock()
		for _, l := range links {
			l.close()
		}
	})
	s.wg.Wait()
	s.own.close()
	return nil
}

// Stats returns the Subscriber's counters.
func (s *Subscriber) Stats() SubscriberStats {
	st := SubscriberStats{
		Messages:     s.messages.Load(),
		Malformed:    s.malformed.Load(),
		Reconnects:   s.reconnects.Load(),
		Replayed:     s.repaired.Load(),
		GapsRepaired: s.gaps.Load(),
		FencePings:   s.retiredPings.Load(),
		HealthPings:  s.retiredHealth.Load(),
	}
	for _, l := range s.current() {
		st.FencePings += l.fence.pings.Load()
		st.HealthPings += l.fence.healthPings.Load()
		st.Connections++
	}
	return st
}

// current returns the links of the current topology; nil before the first.
func (s *Subscriber) current() []*link {
	if p := s.view.Load(); p != nil {
		return *p
	}
	return nil
}

// Ready reports whether every connection is confirmed: the server
// confirmed a channel on it or, while the set is empty, answered a PING on
// it. It turns false when a connection is lost (before OnState reports
// Broken) and true again when every one is confirmed. It is safe to call
// concurrently.
func (s *Subscriber) Ready() bool {
	links := s.current()
	for _, l := range links {
		if !l.ready.Load() {
			return false
		}
	}
	return len(links) > 0
}

// LastError returns the error of the most recent failed attempt to
// subscribe or of the most recent loss of a connection, or nil while every
// connection is confirmed (and before the first attempt has failed). The
// error wraps the one from go-redis, so a dial error shows as it is (say,
// "connection refused"). It is safe to call concurrently, from OnState too:
// there it returns the cause of the loss with Broken.
func (s *Subscriber) LastError() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// setLastError records err for LastError; nil clears it once every
// connection is confirmed.
func (s *Subscriber) setLastError(err error) {
	if err == nil {
		if s.Ready() {
			s.lastErr.Store(nil)
		}
		return
	}
	s.lastErr.Store(&err)
}

// PermanentError returns why the Subscriber can never succeed with this
// server (a feature it needs that the server lacks or refuses), or nil: an
// owner waiting for Ready may give up at once.
func (s *Subscriber) PermanentError() error {
	if p := s.permanent.Load(); p != nil {
		return *p
	}
	return nil
}
