package tiered

import (
	"errors"
	"strconv"
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/remote"
)

// Observer receives what happens in the caches of a Hub (HubOptions.Observer),
// for metrics and traces: each Event names its cache's namespace. The
// tiercache/otel module adapts it to OpenTelemetry.
//
// Observe is called synchronously where the event happens, on the local-hit
// path too, from many goroutines at once: it must be safe for concurrent
// use, fast, and must not block or call back into the cache. A panic in it
// is not recovered. An Event is passed by value; keeping it is safe.
//
// With no Observer (the default) nothing is built or called: a local hit
// costs what it costs without this feature.
type Observer interface {
	Observe(Event)
}

// EventKind says what an Event reports, and so which of its fields are set.
type EventKind uint8

// The kinds of Event. Every Event has Kind and Namespace; the other fields
// are set as each kind says, and zero otherwise.
const (
	// EventLocalHit: a read answered by the local tier (a value, or a key
	// known absent). Op is the call: "Get", "Fetch", "GetMany" or "FetchMany";
	// Keys is how many keys it answered.
	EventLocalHit EventKind = iota + 1
	// EventLocalMiss: keys a read looked up in the local tier (live and
	// proven fresh) and did not find. Op and Keys as for EventLocalHit.
	EventLocalMiss
	// EventRedis: one call to Redis made by the cache. Op is the remote
	// operation ("get", "get-many", "write-many", "acquire", "renew", "set",
	// "delete", "publish", "keys", and for a refresh ahead
	// "acquire-refresh", "release-refresh"); Keys is how many keys it carried;
	// Duration is how long it took; Err is its error (a key not found is
	// not an error).
	EventRedis
	// EventLoad: one loader call (Fetch, FetchMany or a refresh ahead).
	// Op is "Fetch", "FetchMany" or "RefreshAhead"; Keys is how many keys it was asked for;
	// Duration is how long it ran; Err is its error (ErrNotFound is not an
	// error).
	EventLoad
	// EventBatch: a batch call. Op is "GetMany", "FetchMany" or
	// "SetMany"; Keys is its number of distinct keys.
	EventBatch
	// EventInvalidation: an invalidation message from another instance
	// applied to the local tier. Keys is how many keys it dropped (0 and Op
	// "all" for a purge of every key). Duration is its lag, from the
	// publisher building it to this instance applying it, by the two
	// hosts' wall clocks (so their skew is included, and a lag that skew
	// makes negative is reported as 0); -1 when the message does not carry
	// its send time (an older release's, or a Hub with WireVersion 1).
	EventInvalidation
	// EventSubscription: the subscription of the cache's channel changed
	// state: State is StateSubscribed (the local tier is in use from now
	// on), StateBroken (lost: the local tier is purged, or kept suspect
	// with StaleIfError, and bypassed; Err says why) or StateGap (a
	// message did not decode: the local tier is purged; Err says why).
	EventSubscription
	// EventBypass: keys read from Redis because the local tier could not be
	// trusted. Op is "unsubscribed" (the subscription is not confirmed) or
	// "unproven" (the Hub could not prove the local tier fresh within
	// MaxStaleness); Keys is how many.
	EventBypass
	// EventStale: values served stale because Redis failed (StaleIfError).
	// Op is the call ("Get", "Fetch", "GetMany", "FetchMany"); Keys is
	// how many values; Duration is the age of the oldest of them, counted
	// from when it was last known current; Err is the Redis error they
	// hid.
	EventStale
	// EventEncode: a loaded value that the Codec could not encode, so not
	// stored in Redis (see Stats.EncodeErrors). Op is the call (Fetch,
	// FetchMany, RefreshAhead); Keys is 1; Err is the Codec's error.
	EventEncode
	// EventRead: keys of a read call (Get, Fetch, GetMany, FetchMany)
	// that the local tier did not answer, by how they were answered:
	// Result is ResultRemote, ResultLoader, ResultMiss, ResultStale or
	// ResultError; Keys is how many. With EventLocalHit's keys, every key
	// a read call asked for is counted once: a hit ratio is one sum.
	EventRead
)

var eventKindNames = [...]string{
	EventLocalHit:     "local-hit",
	EventLocalMiss:    "local-miss",
	EventRedis:        "redis",
	EventLoad:         "load",
	EventBatch:        "batch",
	EventInvalidation: "invalidation",
	EventSubscription: "subscription",
	EventBypass:       "bypass",
	EventStale:        "stale",
	EventEncode:       "encode",
	EventRead:         "read",
}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing that happened in a cache; see EventKind for which
// fields each kind sets.
type Event struct {
	Kind      EventKind
	Namespace string        // the cache's namespace
	Op        string        // the operation, or for EventBypass the reason
	Keys      int           // how many keys
	Duration  time.Duration // a latency, a lag or an age
	Err       error         // what failed
	State     State         // EventSubscription
	Result    string        // EventRead: ResultRemote, ResultLoader, …
}

// State is the state of a cache's invalidation subscription, as an
// EventSubscription reports it.
type State int

// The states of a subscription.
const (
	// StateSubscribed: Redis confirmed the cache's channel; every
	// invalidation published from now on reaches this instance.
	StateSubscribed State = iota + 1
	// StateBroken: the connection was lost or failed its health check;
	// invalidations may have been lost.
	StateBroken
	// StateGap: a message on the channel did not decode (or messages were
	// missed and could not be read back), so an invalidation may have been
	// lost; the subscription itself holds.
	StateGap
	// StateRepaired: the subscription is back after a loss, and every
	// invalidation missed meanwhile was read back from the logs and
	// applied: the local tier is in use again, as it was.
	StateRepaired
)

// String returns "Subscribed", "Broken", "Gap", "Repaired" or "State(n)".
func (s State) String() string {
	switch s {
	case StateSubscribed:
		return "Subscribed"
	case StateBroken:
		return "Broken"
	case StateGap:
		return "Gap"
	case StateRepaired:
		return "Repaired"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// stateOf is the State of a subscriber's state.
func stateOf(s invalidate.State) State {
	switch s {
	case invalidate.Subscribed:
		return StateSubscribed
	case invalidate.Broken:
		return StateBroken
	case invalidate.Gap:
		return StateGap
	case invalidate.Repaired:
		return StateRepaired
	}
	return State(s)
}

// observe hands e, stamped with the cache's namespace, to the Hub's
// Observer. Callers check c.obs != nil first, so that nothing is built
// without one.
func (c *Cache[V]) observe(e Event) {
	e.Namespace = c.namespace
	switch e.Kind {
	case EventLocalHit, EventLocalMiss, EventLoad, EventBatch, EventStale:
		e.Op = callName(e.Op)
	}
	if e.Err != nil {
		e.Err = unlabel(e.Err)
	}
	c.obs.Observe(e)
}

// since starts the timing of a Redis call or a load: the current time with
// an Observer, the zero Time (no clock read) without.
func (c *Cache[V]) since() time.Time {
	if c.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// observeRedis reports a Redis call that began at start (see since).
func (c *Cache[V]) observeRedis(op string, keys int, start time.Time, err error) {
	c.hub.down.record(err)
	if err == nil || errors.Is(err, ErrNotFound) {
		c.redisAnswered()
	}
	if c.obs == nil {
		return
	}
	c.observe(Event{Kind: EventRedis, Op: op, Keys: keys, Duration: time.Since(start), Err: nonNotFound(err)})
}

// observeLocal reports the local tier's answers to a read: hits and misses.
func (c *Cache[V]) observeLocal(op string, hits, misses int) {
	if c.obs == nil {
		return
	}
	if hits > 0 {
		c.observe(Event{Kind: EventLocalHit, Op: op, Keys: hits})
	}
	if misses > 0 {
		c.observe(Event{Kind: EventLocalMiss, Op: op, Keys: misses})
	}
}

// bypassed counts (and reports) keys read from Redis without the local tier
// because the subscription is not confirmed ("unsubscribed") or the Hub
// could not prove the local tier fresh ("unproven").
func (c *Cache[V]) bypassed(reason string, keys int) {
	if c.localOff {
		return // no local tier to bypass
	}
	if reason == "unproven" {
		c.stats.unproven.Add(uint64(keys))
	} else {
		c.stats.bypassed.Add(uint64(keys))
	}
	if c.obs != nil {
		c.observe(Event{Kind: EventBypass, Op: reason, Keys: keys})
	}
}

// nonNotFound is err, or nil for ErrNotFound (an answer, not a failure).
func nonNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// itemsErr is, for EventRedis, the error of a batch read whose call
// succeeded but some of whose keys failed (remote.Store.GetMany reports a
// node's failure per key): the first such failure.
func itemsErr(items []remote.Item) error {
	for _, it := range items {
		if it.Err != nil && !errors.Is(it.Err, ErrNotFound) {
			return it.Err
		}
	}
	return nil
}

// manyErr is the error of a GetMany: the call's, or else its first key's
// that is not ErrNotFound.
func manyErr(err error, items []remote.Item) error {
	if err != nil {
		return err
	}
	return itemsErr(items)
}

// The calls that Events, log records and metrics name: the methods a user
// calls, and RefreshAhead for a refresh ahead of expiry.
const (
	opGet       = "Get"
	opFetch     = "Fetch"
	opGetMany   = "GetMany"
	opFetchMany = "FetchMany"
	opSetMany   = "SetMany"
	opRefresh   = "RefreshAhead"
)

// callName is the name Events, log records and metrics give the call that
// an error's text names op ("get-many"): the method the user called
// ("GetMany").
func callName(op string) string {
	switch op {
	case "get":
		return opGet
	case "fetch":
		return opFetch
	case "get-many":
		return opGetMany
	case "fetch-many":
		return opFetchMany
	case "set-many":
		return opSetMany
	case "refresh":
		return opRefresh
	}
	return op
}
