// Package invalidate carries the messages that tell every instance of
// tiercache to drop keys from its local tier: their encoding, the pub/sub
// channels they travel on, and a Subscriber that delivers them, reports
// whether the stream can be trusted, and proves how fresh it is. It is an
// internal part of the library, built for package tiered, which hard-wires
// it (one Subscriber per tiered.Hub), and for the public packages remote and
// invalidate, which publish its messages; its API is what they need, and
// changes with them. The wire format is specified for other languages in
// the public package invalidate.
//
// The package knows nothing of the cache. Publishing is the writer's job:
// tiered, through the remote tier, sends the bytes of [Message.Append] to
// [Channel] (or, on a Cluster, to a [GroupChannel] by SPUBLISH) inside the
// same Lua script as the write, so the two are atomic; the script also
// appends each version 3 message to its channel's log (see [LogKey]).
//
// One Subscriber serves a whole process, for a set of namespaces that
// [Subscriber.Add] and [Subscriber.Remove] change at run time. It holds one
// pub/sub connection per node it needs: one on a single node; on a
// Cluster, one per master, carrying the group channels whose first slot
// the master owns (the first master also carries the classic channels),
// and a goroutine that follows the topology. Each connection has a reader,
// which calls the callbacks, and a watchdog beside it (see watchdog): one
// goroutine keeps the time of the health check and of the fence, and
// another writes their PINGs, so that a write stuck on a peer that reads
// nothing delays no judgement. With [Options.Tracking], each connection
// also has Redis report every change to the keys of the set's namespaces
// (CLIENT TRACKING … BCAST). It dials with clients of its own, made from
// the options of the one it is given, so that it can close a connection
// whose write is stuck.
//
// # Promises
//
//   - Delivery is at most once, as Redis pub/sub gives it: a message published
//     while no connection is subscribed to its channel is lost. With
//     [Options.Repair], what a namespace missed is read back from its logs
//     after a loss (reported as [Repaired]) or a jump of positions, when
//     that can be proven complete; otherwise the owner purges, as without.
//   - [Subscribed] is reported for a channel when the server has confirmed
//     it on the current connection; every message published on it after
//     that point is delivered (or, if it cannot be decoded, reported as a
//     [Gap]), in publish order, until [Broken] is reported or the channel
//     is removed. Each connection subscribes to every channel in the set
//     when it starts; a channel added later is subscribed on the
//     connection then up, and on every later one. Each Add gives its
//     channel a new epoch; a confirmation is reported only for the
//     SUBSCRIBE of the channel's current epoch, and [Subscriber.Current]
//     tells an owner whether the confirmation it handles is still that of
//     the current epoch (a Remove and an Add may have come in between).
//   - [Broken] is reported, for the whole connection (channel ""), once per
//     loss of a confirmed connection (closed, error, a failed health check,
//     or the server dropping a channel still in the set), with the cause.
//     Messages on every channel may have been lost since its last
//     [Subscribed], so the owner must treat its whole local tier as stale
//     (purge it). Broken is reported only for a connection that was
//     confirmed (see [Subscriber.Ready]): never before the first
//     confirmation, and between two Brokens comes a Subscribed for each
//     channel the next connection confirms (with an empty set, only Ready
//     shows that connection's confirmation).
//   - [Gap] is reported, with its channel, for every message on a channel of
//     the set that this version cannot decode (a newer wire version during
//     a rolling upgrade, or garbage), with the cause: the keys it named are
//     unknown, so the owner must drop everything it cached before it for
//     that channel, and may go on caching afterwards. The subscription
//     holds: a Gap changes no state (the next state reported is Broken,
//     when the connection is lost), and it is reported every time, however
//     many come in a row. Such messages are also counted
//     ([SubscriberStats.Malformed]).
//   - A removed channel is done with: messages on it that arrive after
//     [Subscriber.Remove] returns are ignored, and so is the server's
//     confirmation of the UNSUBSCRIBE.
//   - A silently dead connection (no FIN, no RST) is noticed by the health
//     check: every [Options.HealthCheck] the Subscriber sends PING, and
//     reports Broken if nothing at all arrives within a HealthCheck of it
//     (time spent in callbacks does not count), so within twice
//     HealthCheck, even when the PING cannot be written. Until then,
//     messages may be lost unnoticed; the freshness fence, below, notices
//     sooner. A negative HealthCheck turns the health check off: then only
//     a failing socket (a read error, once TCP keep-alive gives up on the
//     peer, or an error sending a PING) ends such a connection, if anything
//     does, and only the fence bounds how long its silence goes unnoticed.
//   - OnMessage and OnState run on the Subscriber's own goroutine, one call
//     at a time, in the order events happened. A slow callback delays later
//     ones (and, if slow for long, lets Redis disconnect the subscriber for
//     exceeding its output buffer limit, which is reported as Broken).
//   - After a loss, and until the first connection, the Subscriber
//     (re)connects by itself, backing off exponentially (with jitter) up to
//     [Options.MaxBackoff]. [Subscriber.LastError] returns the cause of the
//     latest failed attempt or loss, nil while the connection is confirmed;
//     so that a wrong address shows, failed attempts are logged at Warn. A
//     connection with no channel is confirmed when it answers a PING, so
//     [Subscriber.Ready] works with an empty set too.
//   - [Subscriber.Close] is idempotent and safe to call concurrently; it
//     returns after its goroutines have exited, and no callback runs after
//     it returns. It waits for nothing from Redis: it closes the sockets
//     first, and go-redis never dials a replacement for a lost pub/sub
//     connection (the Subscriber dials each one itself, where Close ends it).
//
// Warnings that can repeat fast (a Gap per message, a failed attempt per
// backoff) are logged at most once per 10 seconds for each kind, carrying
// the number held back since the last; the others go to Debug.
//
// # Freshness
//
// Delivery is prompt but not bounded: a busy process may run the reader
// late, and a frozen connection delivers nothing until the health check
// gives up on it (or ever, with the health check off). With [Options.MaxStaleness] set, [Subscriber.Fresh]
// bounds it: it reports true only if every message published on the
// channels more than MaxStaleness before the call has been passed to
// OnMessage (and OnMessage has returned) or reported as a Gap. A reader
// that keeps state from the messages (a local tier) may trust that state
// while Fresh holds, and should go to Redis otherwise.
//
// The proof is a PING with its send time as payload, sent on the
// subscription connection: Redis writes a connection's replies in order,
// so its PONG reaches the reader after every message published before the
// PING was sent, and the reader, handling them in order, records that time
// only after it has handled them. Fresh compares the latest such time with
// the monotonic clock, read at each call, so a starved goroutine can only
// make it false, never wrongly true. Fresh is false before the first proof
// and from the loss of a connection until a proof arrives on the next; it
// says nothing of a channel before that channel's Subscribed (the owner
// drops what it cached before then).
//
// Every PING the Subscriber sends carries its send time and proves, the
// health check's too ([Subscriber.LastProof] is the latest proof, kept
// across losses, so that an owner can date what it kept from the
// messages): one goes out when a connection is confirmed, and one every
// HealthCheck. With a fence, the proofs also follow the traffic: from the
// first call of Fresh, one every MaxStaleness/2, so that a reader finds a
// proof younger than MaxStaleness at any read rate, until 2s after the
// last call; a call that finds no young proof asks for one at once. The
// cost is 2/MaxStaleness PINGs a second per Subscriber while it is read,
// plus the health check's ([SubscriberStats.FencePings] and HealthPings
// count them). The fence works the same with the health check off, but it
// only judges freshness: an unanswered fence PING makes Fresh false and
// ends no connection. A call of Fresh reads the clock and a few atomic
// values; it takes no lock and does not allocate.
//
// # Changing the wire format
//
// A reader treats a message whose version it does not know as a Gap, so its
// owner purges its local tier: correct, but a purge per message for as long
// as an older reader hears a newer writer. This release decodes versions 1
// to 3 and writes the one its owner asks for ([Message.AppendVersion];
// tiered's WireVersion, 3 by default): during a rolling upgrade, the
// oldest that an instance still running reads. Only version 3 carries a
// position in the log; a Subscriber that hears a message without one on a
// namespace purges that namespace after a loss instead of repairing it. A
// later change of format follows the same path: first a release that
// decodes both versions and can still write the old one, then the new one.
//
// The Subscriber takes a *redis.Client (a single node, or Sentinel's
// failover client) or a *redis.ClusterClient.
package invalidate
