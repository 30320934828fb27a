// Package tiercacheotel reports what the caches of a tiered.Hub do as
// OpenTelemetry metrics. It is a module of its own, so that the cache itself
// does not depend on OpenTelemetry:
//
//	import tiercacheotel "github.com/tiercache/tiercache/otel"
//
//	obs, err := tiercacheotel.NewObserver(tiercacheotel.Options{MeterProvider: mp})
//	...
//	hub, err := tiered.NewHub(client, tiered.HubOptions{Observer: obs})
//
// One Observer serves any number of Hubs and caches, and each measurement
// carries the namespace of its cache (tiercache.namespace): a process needs
// one. The callback that reports the local tier's counters stays registered
// with the MeterProvider for the provider's life.
//
// # Instruments
//
// The Redis calls a cache makes follow the OpenTelemetry semantic
// conventions for database clients; everything else is named under
// tiercache. Every instrument carries tiercache.namespace and the
// Options.Attributes.
//
//	name                           kind             unit            attributes (besides tiercache.namespace)
//	db.client.operation.duration   histogram        s               db.system.name="redis", db.operation.name,
//	                                                                error.type, db.response.status_code
//	tiercache.local.hits           counter (async)  {key}           tiercache.operation
//	tiercache.local.misses         counter (async)  {key}           tiercache.operation
//	tiercache.reads                counter (async)  {key}           tiercache.operation, tiercache.read.result
//	tiercache.local.bypasses       counter          {key}           tiercache.bypass.reason
//	tiercache.load.duration        histogram        s               tiercache.operation, error.type
//	tiercache.batch.size           histogram        {key}           tiercache.operation
//	tiercache.invalidations        counter          {message}       tiercache.invalidation.scope
//	tiercache.invalidation.lag     histogram        s               -
//	tiercache.subscription.events  counter          {event}         tiercache.subscription.state, error.type
//	tiercache.subscription.up      gauge (async)    {subscription}  -
//	tiercache.stale.served         counter          {key}           tiercache.operation, error.type
//	tiercache.stale.age            histogram        s               tiercache.operation, error.type
//
// What each measures:
//
//   - db.client.operation.duration: one call to Redis made by a cache.
//   - tiercache.local.hits: keys the local tier answered (a value, or a key
//     known absent); tiercache.local.misses: keys looked up there and not
//     found. Reads that skip the local tier count in neither.
//   - tiercache.reads: every key a read call (Get, Fetch, GetMany,
//     FetchMany) asked for, once, by how it was answered
//     (tiercache.read.result): so a hit ratio is one query, the sum of
//     result local and remote over the sum of all. tiercache.local.hits is
//     its result local, kept for the dashboards that use it.
//   - tiercache.local.bypasses: keys read from Redis because the local tier
//     could not be trusted.
//   - tiercache.load.duration: one loader call.
//   - tiercache.batch.size: the distinct keys of one GetMany, FetchMany or
//     SetMany.
//   - tiercache.invalidations: invalidation messages from other instances
//     applied to the local tier; tiercache.invalidation.lag: the time from
//     the publisher sending each to this instance applying it.
//   - tiercache.subscription.events: changes of the invalidation
//     subscription; tiercache.subscription.up: 1 while it is confirmed, 0
//     once lost (the last Subscribed or Broken seen; no point before
//     either).
//   - tiercache.stale.served: values served stale because Redis failed
//     (Options.StaleIfError); tiercache.stale.age: the age of the oldest
//     value of each such answer.
//
// On failures only, error.type and db.response.status_code are set; the
// other attributes always are.
//
// Attribute values:
//
//   - db.operation.name is the cache's remote operation, as tiered.EventRedis
//     names it ("get", "get-many", "set", "write-many", "acquire",
//     "delete", "publish", "keys"…), not a Redis command name: one
//     operation may be a transaction, a script or a pipeline.
//   - tiercache.operation is the method the user called: "Get", "Fetch",
//     "GetMany", "FetchMany", "SetMany" (batch.size), and "RefreshAhead"
//     for a refresh ahead of expiry (loads).
//   - tiercache.read.result is "local" (the local tier answered), "remote"
//     (Redis did), "loader" (Fetch's or FetchMany's loader did, a value or
//     not found), "miss" (not found), "stale" (served stale in place of a
//     Redis error) or "error".
//   - tiercache.bypass.reason is "unsubscribed" (the subscription is not
//     confirmed) or "unproven" (the local tier could not be proven fresh
//     within HubOptions.MaxStaleness).
//   - tiercache.invalidation.scope is "keys" or "all" (a purge).
//   - tiercache.subscription.state is "Subscribed", "Broken" or "Gap" (a
//     message that did not decode; not a change of state, so it leaves
//     subscription.up as it was).
//   - error.type is present only on failures: "timeout" for a deadline
//     (context.DeadlineExceeded, an I/O timeout), "canceled" for a canceled
//     context, the name of a well-known error value ("io.EOF",
//     "net.ErrClosed", "redis.ErrClosed"…), the value of an ErrorType()
//     string method in the error's chain, the code that begins a Redis
//     error reply ("WRONGTYPE", "READONLY", "LOADING"…, which is also
//     db.response.status_code), else the Go type of the error under
//     fmt.Errorf's wrappers ("*net.OpError"). Never the error's text, so
//     the number of series stays bounded.
//
// The duration and lag histograms have bucket boundaries from 100µs to 10s,
// a superset of those the semantic conventions advise for
// db.client.operation.duration, since a cache's Redis calls are mostly well
// under a millisecond. An SDK View can change them.
//
// Invalidation lag is measured by the publisher's and this host's wall
// clocks, so their skew is included; a message that does not carry its send
// time (HubOptions.WireVersion 1, or an older release), or whose lag comes
// out negative because of skew, is counted in tiercache.invalidations but
// not in the lag histogram.
//
// Series are kept for every namespace and operation seen, for the life of
// the Observer: the caches of a process have a bounded set of namespaces, so
// this is bounded too.
//
// # Cost
//
// Observe is called on the cache's local-hit path. A local hit or miss adds
// to an atomic counter split over cache lines, found by the namespace in a
// map read without a lock: it does not allocate and costs a few tens of
// nanoseconds. The counters are read when the MeterProvider collects, by a
// callback registered once. Every other event records into a synchronous
// instrument with attribute sets built on first use and kept, so it does not
// allocate either after the first event of its kind, namespace, operation
// and error type.
//
// An Observer is safe for concurrent use.
package tiercacheotel
