package invalidate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tiercache/tiercache/internal/field"
)

// State is the health of a subscription, as reported to Options.OnState.
type State int

const (
	// Subscribed means every channel of a namespace is confirmed on every
	// connection: every message published for it from now on will be
	// delivered, or reported as a Gap if it cannot be decoded (until
	// Broken, or until the namespace is removed).
	Subscribed State = iota + 1
	// Broken means a connection was lost or failed its health check:
	// messages of every namespace may have been lost since their last
	// Subscribed.
	Broken
	// Repaired means a namespace is confirmed on every connection again,
	// and every message it missed since the loss has been read back from
	// its logs and passed to OnMessage: what the owner kept from the
	// messages is current, and it may go on using it (Options.Repair).
	Repaired
	// Gap means messages of one namespace may have been lost while the
	// subscription itself holds (a message arrived that this version cannot
	// decode); the receiver must drop everything it cached from before for
	// that namespace, and may keep using its cache afterwards. It is an
	// event, not a change of state: the namespace is still Subscribed.
	Gap
)

// String returns "Subscribed", "Broken", "Repaired", "Gap" or "State(n)".
func (s State) String() string {
	switch s {
	case Subscribed:
		return "Subscribed"
	case Broken:
		return "Broken"
	case Gap:
		return "Gap"
	case Repaired:
		return "Repaired"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Defaults and limits for Options.
const (
	// DefaultHealthCheck is the HealthCheck used when Options.HealthCheck is 0.
	DefaultHealthCheck = time.Second
	// DefaultMaxBackoff is the MaxBackoff used when Options.MaxBackoff is 0.
	DefaultMaxBackoff = time.Second
	// MinMaxStaleness is the least positive Options.MaxStaleness: a fence
	// PING at most every 500µs, 2000 a second.
	MinMaxStaleness = time.Millisecond
)

// ErrClosed is returned by Add and Remove once Close has begun.
var ErrClosed = errors.New("invalidate: Subscriber is closed")

// minBackoff is the first pause between reconnect attempts.
const minBackoff = 10 * time.Millisecond

// warnEvery is the least time between two Warn records about the same kind
// of repeated trouble (undecodable messages, failed subscribe attempts). A
// Subscriber reads it once, in Subscribe; tests may shorten it.
var warnEvery = 10 * time.Second

// Options configure a Subscriber.
type Options struct {
	// Namespaces is the initial set of namespaces; Add and Remove change
	// the set later. It may be empty. A namespace must not be empty or
	// appear twice.
	Namespaces []string
	// OnMessage receives each well-formed message of a namespace of the
	// set. Required.
	OnMessage func(namespace string, m Message)
	// OnState is called on every change of state: Subscribed with a
	// namespace each time it is confirmed again, Broken with namespace ""
	// once per loss of a confirmed connection, with its cause; and Gap, with
	// the namespace and the cause, for every message of it that cannot be
	// decoded (a Gap changes no state). Required.
	OnState func(st State, namespace string, err error)
	// HealthCheck: every HealthCheck the Subscriber sends PING on each
	// connection, and if nothing arrives within a HealthCheck of it, it
	// reports Broken and reconnects (time spent in the callbacks does not
	// count). 0 means DefaultHealthCheck (1s). Negative turns the health
	// check off (see the package doc). A positive value must be at least
	// 1ms.
	HealthCheck time.Duration
	// MaxBackoff caps the pause between reconnect attempts, which starts at
	// 10ms and doubles after each failed attempt (each pause is drawn at
	// random from its upper half). 0 means DefaultMaxBackoff (1s); it must
	// not be negative.
	MaxBackoff time.Duration
	// MaxStaleness turns on the freshness fence: Fresh reports true only
	// while every message published more than MaxStaleness before the call
	// has been handled (see Subscriber.Fresh). 0 or negative means no
	// fence: Fresh always reports true. A positive value must be at least
	// MinMaxStaleness (1ms).
	MaxStaleness time.Duration
	// Repair reads back what a namespace missed instead of having its
	// owner purge: after a lost connection, its Subscribed comes as
	// Repaired once every message published while it was down has been
	// read back from the channels' logs (see LogKey) and passed to
	// OnMessage; when the positions of a live channel jump, the messages
	// in between are read back at once. Where that cannot be proven
	// complete (a log trimmed past the last position applied, a log
	// recreated, more than RepairLimit messages, a read that fails), the
	// namespace is reported Subscribed (after a loss) or as a Gap, as
	// without Repair. It needs every writer of the namespace to log (the
	// write scripts of this release do), and does nothing with Tracking,
	// whose invalidations have no position.
	Repair bool
	// RepairLimit is the most messages read back for one channel; more
	// means a purge, cheaper than reading them. 0 means DefaultRepairLimit
	// (10,000); it must not be negative.
	RepairLimit int
	// Tracking has Redis itself report every change to a namespace's keys,
	// whoever makes it (any client's write, an expiry, an eviction, a
	// FLUSHDB): each connection turns on server-assisted invalidation for
	// itself (CLIENT TRACKING ON REDIRECT to its own id, BCAST, one PREFIX
	// per namespace) before it subscribes, and hears "__redis__:invalidate"
	// besides the namespaces' channels. Its messages reach OnMessage with
	// Message.Tracked set. The prefixes are fixed for a connection: a
	// namespace added while one is up makes it reconnect (a loss). Where
	// the server cannot track (miniredis, Redis before 6, CLIENT refused by
	// an ACL or a proxy), no connection is confirmed, and PermanentError
	// says why.
	Tracking bool
	// Logger receives warnings (lost subscriptions; undecodable messages and
	// failed subscribe attempts, each kind at most once per 10s with the
	// number held back since) and debug details. nil means silent.
	Logger *slog.Logger
}

// SubscriberStats are counters of a Subscriber since it started.
type SubscriberStats struct {
	// Messages is the number of messages passed to OnMessage.
	Messages uint64
	// Malformed is the number of payloads that Decode rejected (each was
	// reported as a Gap).
	Malformed uint64
	// Reconnects is the number of connection attempts after the first, on
	// every connection.
	Reconnects uint64
	// FencePings is the number of PINGs sent to prove freshness (see
	// Subscriber.Fresh).
	FencePings uint64
	// HealthPings is the number of PINGs the health check sent, and the
	// first proof of each connection.
	HealthPings uint64
	// Replayed is the number of messages read back from the logs
	// (Options.Repair), after a loss or a gap.
	Replayed uint64
	// GapsRepaired is the number of jumps of a live channel's positions
	// whose messages were read back.
	GapsRepaired uint64
	// Connections is the number of connections the Subscriber keeps now:
	// 1 on a single node, one per master that holds a group channel on a
	// Cluster.
	Connections int
}

// validate reports every invalid field of o, by name (errors.Join of one
// *field.Error each). OnMessage and OnState are checked by Subscribe.
func (o *Options) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, field.Errorf("invalidate", name, format, args...))
	}
	seen := make(map[string]bool, len(o.Namespaces))
	for i, ns := range o.Namespaces {
		if ns == "" {
			bad(fmt.Sprintf("Namespaces[%d]", i), "must not be empty")
		} else if seen[ns] {
			bad(fmt.Sprintf("Namespaces[%d]", i), "repeats %q", ns)
		}
		seen[ns] = true
	}
	if o.HealthCheck > 0 && o.HealthCheck < time.Millisecond {
		bad("HealthCheck", "must be negative (off), 0 (the default) or at least 1ms, got %v", o.HealthCheck)
	}
	if o.MaxBackoff < 0 {
		bad("MaxBackoff", "must be >= 0, got %v", o.MaxBackoff)
	}
	if o.MaxStaleness > 0 && o.MaxStaleness < MinMaxStaleness {
		bad("MaxStaleness", "must be <= 0 (no fence) or at least %v, got %v", MinMaxStaleness, o.MaxStaleness)
	}
	if o.RepairLimit < 0 {
		bad("RepairLimit", "must be >= 0, got %d", o.RepairLimit)
	}
	return errors.Join(errs...)
}

// CheckOptions validates o's fields as Subscribe does (not OnMessage and
// OnState): nil, or every invalid field (errors.Join of one *field.Error
// each), for an owner that reports its own options' errors before it
// subscribes.
func CheckOptions(o Options) error { return o.validate() }
