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
//     subscription; every message published after that point is delivered
//     (or, if it cannot be decoded, reported as a [Gap]), in publish order,
//     until [Broken] is reported.
//   - [Broken] is reported once per loss of the subscription (connection
//     closed, error, or a failed health check), with the cause. Messages may
//     have been lost since the last [Subscribed], so the owner must treat its
//     whole local tier as stale (purge it). Broken is never reported before
//     the first Subscribed, nor twice in a row; states alternate
//     Subscribed, Broken, Subscribed, ..., with Gap events in between.
//   - [Gap] is reported for every message on the channel that this version
//     cannot decode (a newer wire version during a rolling upgrade, or
//     garbage), with the cause: the keys it named are unknown, so the owner
//     must drop everything it cached before it, and may go on caching
//     afterwards. The subscription holds: a Gap changes no state (the next
//     state reported is Broken, when the subscription is lost), and it is
//     reported every time, however many come in a row. Such messages are
//     also counted
//     ([SubscriberStats.Malformed]).
//   - A silently dead connection (no FIN, no RST) is noticed by the health
//     check: after [Options.HealthCheck] with nothing received the
//     Subscriber sends PING, and reports Broken if nothing arrives within
//     another HealthCheck (time spent in callbacks does not count). Until
//     then, messages may be lost unnoticed.
//   - OnMessage and OnState run on the Subscriber's own goroutine, one call
//     at a time, in the order events happened. A slow callback delays later
//     ones (and, if slow for long, lets Redis disconnect the subscriber for
//     exceeding its output buffer limit, which is reported as Broken).
//   - After a loss, and until the first subscription, the Subscriber
//     (re)connects by itself, backing off exponentially (with jitter) up to
//     [Options.MaxBackoff]. [Subscriber.LastError] returns the cause of the
//     latest failed attempt or loss, nil while subscribed; so that a wrong
//     address shows, failed attempts are logged at Warn.
//   - [Subscriber.Close] is idempotent and safe to call concurrently; it
//     returns after the goroutine has exited, and no callback runs after it
//     returns.
//
// Warnings that can repeat fast (a Gap per message, a failed attempt per
// backoff) are logged at most once per 10 seconds for each kind, carrying
// the number held back since the last; the others go to Debug.
//
// # Changing the wire format
//
// A reader treats a message whose version it does not know as a Gap, so its
// owner purges its local tier: correct, but a purge per message for as long
// as an older reader hears a newer writer. A change of format therefore
// ships in two releases: the first decodes both versions and still writes
// the old one; the second, deployed once every instance runs the first,
// writes the new one. During a rolling upgrade, old and new instances then
// always understand each other. (See [Message.Append].)
//
// The Subscriber uses only [redis.UniversalClient], so a single node,
// Sentinel and Cluster clients all work (PUBLISH reaches subscribers on
// every node of a cluster).
package invalidate
