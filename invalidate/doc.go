// Package invalidate carries the messages that tell every instance of a
// two-tier cache to drop keys from its local tier: their encoding, the
// pub/sub channel they travel on, and a Subscriber that delivers them and
// reports whether the stream can be trusted.
//
// The package knows nothing of the cache. Publishing is the writer's job: it
// sends the bytes of [Message.Append] to [Channel] (typically inside the same
// Lua script as the write, so the two are atomic).
//
// # Promises
//
//   - Delivery is at most once, as Redis pub/sub gives it: a message published
//     while no connection is subscribed is lost, and nothing is replayed.
//   - [Subscribed] is reported when the server has confirmed the
//     subscription; every message published after that point is delivered,
//     in publish order, until [Broken] is reported.
//   - [Broken] is reported once per loss of the subscription (connection
//     closed, error, or a failed health check), with the cause. Messages may
//     have been lost since the last [Subscribed], so the owner must treat its
//     whole local tier as stale (purge it). Broken is never reported before
//     the first Subscribed, nor twice in a row; states alternate
//     Subscribed, Broken, Subscribed, ...
//   - A silently dead connection (no FIN, no RST) is noticed by the health
//     check: after [Options.HealthCheck] with nothing received the
//     Subscriber sends PING, and reports Broken if nothing arrives within
//     another HealthCheck (time spent in callbacks does not count). Until
//     then, messages may be lost unnoticed.
//   - OnMessage and OnState run on the Subscriber's own goroutine, one call
//     at a time, in the order events happened. A slow callback delays later
//     ones (and, if slow for long, lets Redis disconnect the subscriber for
//     exceeding its output buffer limit, which is reported as Broken).
//   - After a loss the Subscriber reconnects by itself, backing off
//     exponentially (with jitter) up to [Options.MaxBackoff].
//   - [Subscriber.Close] is idempotent and safe to call concurrently; it
//     returns after the goroutine has exited, and no callback runs after it
//     returns.
//
// Malformed payloads on the channel are counted ([SubscriberStats.Malformed]),
// logged at Warn and skipped; they do not break the subscription.
//
// The Subscriber uses only [redis.UniversalClient], so a single node,
// Sentinel and Cluster clients all work (PUBLISH reaches subscribers on
// every node of a cluster).
package invalidate
