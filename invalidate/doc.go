// Package invalidate is how a program that holds no cache tells tiercache's
// caches (package tiered) to drop keys: a Publisher for Go, and the wire
// format and the write script, specified here, for any other language.
//
// A cache drops a key when another replica writes it, because every write
// of tiered (and of package remote) publishes its invalidation with it. A
// program that changes the namespace's Redis keys by other means (plain
// SET, another language, a restore) must publish too, or every replica may
// serve the old value for up to its LocalTTL (unless the caches run with
// tiered's HubOptions.Tracking, which has Redis report every write). With
// Go, write through package remote, which publishes for you; or write as
// you do and then call Publisher.Invalidate with the keys, once the write
// is acknowledged.
//
// # Channels and logs
//
// On a single node (and with Sentinel) the caches of namespace ns listen on
// the Redis pub/sub channel "tiercache:invalidate:" + ns. On a Redis 7
// Cluster they listen, on each master, to the sharded channels of the 128
// groups of hash slots whose first slot the master owns:
// "tiercache:invalidate:ns:{tag}", where tag puts the channel in its group's
// first slot; a write publishes on the first such channel of the node that
// runs it, so that no invalidation crosses the cluster bus. A message is the
// payload of one PUBLISH (or SPUBLISH): binary, not text.
//
// Each message of version 3 is also appended to its channel's log, a stream
// ("tiercache:log:" + the channel's name after "tiercache:invalidate:"), at
// the position a counter ("tiercache:seq:" + the same) gives it, and the
// message carries that position: a cache that lost its subscription reads
// back exactly what it missed, instead of emptying its local tier. A
// message published without being logged (a bare PUBLISH) reaches the
// caches that are subscribed, but a cache that was not at that moment
// never learns of it: write through the script below.
//
// # Wire format
//
// Integers are unsigned varints (LEB128, as Go's encoding/binary and
// protobuf write them: seven bits a byte, least significant first, the top
// bit set on every byte but the last), in their shortest form. Byte 0 is
// the version, which decides the rest; this release reads versions 1, 2
// and 3.
//
// Version 3 (what the Publisher, remote and tiered write):
//
//	byte 0       3
//	byte 1       flags: 0x01 = all (drop every key); the other bits are 0
//	bytes 2-17   origin: 16 bytes naming the sender
//	varint       sent: the sender's wall clock when it built the message,
//	             in nanoseconds since 1970-01-01 UTC; 0 for unknown
//	varint       N, the number of keys: 0 when all is set
//	N times      varint L, then the L bytes of a key
//	1-19 bytes   the position in the log, in decimal ASCII ("1" to
//	             "9223372036854775807", no sign, no leading zero), or
//	             nothing for a message that no log holds
//
// The write script appends the position itself: a writer hands it the
// message without one.
//
// Version 2 is version 3 with a sent of 1 to 2^63-1 and nothing after the
// last key; version 1 is version 2 without sent: byte 0 is 1, and N follows
// the origin at byte 18.
//
// A key is the cache's key, without the "ns:" prefix, and may hold any
// bytes. The encoding is canonical: a reader refuses anything else (an
// unknown version or flag, a varint longer than needed, a sent of 0 in
// version 2, keys with all, bytes left over in versions 1 and 2, a position
// that is not canonical decimal).
//
// What a cache does with a message: if its origin is the cache's own, it
// ignores it; else it drops the keys named (every key, with all) from its
// local tier. A message it cannot read, of a newer version or malformed,
// may have named any key, so it empties its local tier: correct, but a
// purge per message.
//
// A writer picks 16 random bytes as its origin (a cryptographic random
// source; one per process is enough) and never reuses a cache's.
//
// # Golden vectors
//
// In hex, with spaces between the fields. The origin is 00 11 22 … ff; the
// keys, "user:1", "" (the empty key) and "a:b"; sent, 1700000000123456789
// (2023-11-14T22:13:20.123456789Z).
//
// Version 3, the three keys, at position 42:
//
//	03 00 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 03 06 757365723a31 00 03 613a62 3432
//
// Version 3, all, with no position:
//
//	03 01 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 00
//
// Version 2, the three keys:
//
//	02 00 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 03 06 757365723a31 00 03 613a62
//
// Version 2, all:
//
//	02 01 00112233445566778899aabbccddeeff 959a97ece39fe7cb17 00
//
// Version 1, the three keys:
//
//	01 00 00112233445566778899aabbccddeeff 03 06 757365723a31 00 03 613a62
//
// Version 1, all:
//
//	01 01 00112233445566778899aabbccddeeff 00
//
// # Writing from another language
//
// EVAL (or EVALSHA) the script that tiercache itself runs, whose source
// WriteScript returns: it applies the writes, logs the message and
// publishes it, in one atomic step. KEYS are the Redis keys written ("ns:k";
// on a Cluster, all of one hash slot). ARGV:
//
//	1  the namespace
//	2  the message, without a position (version 3, or 2 or 1 for a
//	   cache fleet of an older release: such a message takes no
//	   position and is not logged; the script marks the counter
//	   (its key + ":unlogged"), so that a cache that missed it empties
//	   its local tier instead of reading the log back)
//	3  "" on a single node; on a Cluster, the group of the keys' slot
//	   (slot * 128 / 16384, in decimal), or "*" with no key (every group)
//	4  "c" to publish on the classic channel, "s" on a group channel (on a
//	   Cluster; the script falls back to the classic channel where the
//	   server has no sharded pub/sub), "-" not at all
//	5  the log's length, about how many messages it keeps (XADD MAXLEN ~);
//	   10000 is tiercache's default, "0" keeps no log; on a Cluster,
//	   tiercache gives each group's log ceil(its LogLength/128), at
//	   least 16
//
// then four per key: a code ("S" set, "N" set if absent, "E" set if equal,
// "D" delete, "I" no write: the key is only invalidated), the value, the
// TTL in milliseconds ("0": no expiry) and the value expected by "E" ("" for
// the others). It returns a string of one '1' (applied) or '0' per key,
// and publishes only if it applied one, or was given no key (an
// invalidation of every key). A value must not begin with the bytes 00 74
// 69 65 72 63 61 63 68 65 00 ("\x00tiercache\x00"), which begin the caches'
// own markers; a key that holds one reads as absent.
//
// # Who may publish
//
// Whoever may PUBLISH on a namespace's channel, or write its log, may make
// every cache of the namespace drop any key, or, with all set or with bytes
// that do not decode, empty its local tier at every message: no stale read,
// but a load on Redis and behind it. Keep the channels, like the keys, to
// the services that own the namespace, with a Redis ACL (Redis 6.2 or
// later; since Redis 7, a new user has no channel until given one). For
// namespace "users", one command:
//
//	ACL SETUSER users-svc on >secret resetkeys resetchannels -@all
//	  ~users:* ~tiercache:refresh:users:* ~tiercache:log:users* ~tiercache:seq:users*
//	  &tiercache:invalidate:users &tiercache:invalidate:users:*
//	  +get +mget +pttl +set +del +exists +pexpire +incr +xadd +xrange +xrevrange
//	  +scan +eval +evalsha +publish +spublish +subscribe +ssubscribe
//	  +unsubscribe +sunsubscribe +ping
//
// That is what tiered, remote and the Publisher send: the namespace's keys,
// the keys of its refresh leases and of its channels' logs, its channels,
// and no other. Add +client|setname for a client with a ClientName; a
// Cluster client needs +cluster|slots and +asking too, and +pubsub|shardnumsub;
// HubOptions.Tracking needs +client|id and +client|tracking, and the channel
// &__redis__:invalidate. A program that only reads through package remote
// needs ~users:* with +get +mget +pttl +scan, and no channel. Every other
// user, the default one included, gets no &tiercache:invalidate:* channel
// and no ~tiercache:* key: its PUBLISH there is refused with NOPERM (from a
// script, too).
package invalidate
