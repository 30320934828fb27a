// Package invalidate is how a program that holds no cache tells tiercache's
// caches (package tiered) to drop keys: a Publisher for Go, and the wire
// format, specified here byte by byte, for any other language.
//
// A cache drops a key when another replica writes it, because every write
// of tiered (and of package remote) publishes its invalidation with it. A
// program that changes the namespace's Redis keys by other means (plain
// SET, another language, a restore) must publish too, or every replica may
// serve the old value for up to its LocalTTL. With Go, write through
// package remote, which publishes for you; or write as you do and then call
// Publisher.Invalidate with the keys, once the write is acknowledged.
//
// # The channel
//
// The caches of namespace ns listen on the Redis pub/sub channel
// "tiercache:invalidate:" + ns. A message is the payload of one PUBLISH on
// it: binary, not text.
//
// # Wire format
//
// Integers are unsigned varints (LEB128, as Go's encoding/binary and
// protobuf write them: seven bits a byte, least significant first, the top
// bit set on every byte but the last), in their shortest form. Byte 0 is
// the version, which decides the rest; this release reads versions 1 and
// 2.
//
// Version 2 (what the Publisher and tiered write):
//
//	byte 0       2
//	byte 1       flags: 0x01 = all (drop every key); the other bits are 0
//	bytes 2-17   origin: 16 bytes naming the sender
//	varint       sent: the sender's wall clock when it built the message,
//	             in nanoseconds since 1970-01-01 UTC; 1 to 2^63-1
//	varint       N, the number of keys: 0 when all is set
//	N times      varint L, then the L bytes of a key
//
// Version 1 is version 2 without sent: byte 0 is 1, and N follows the
// origin at byte 18.
//
// Nothing follows the last key. A key is the cache's key, without the
// "ns:" prefix, and may hold any bytes. The encoding is canonical: a reader
// refuses anything else (an unknown version or flag, a varint longer than
// needed, a sent of 0 in version 2, keys with all, bytes left over).
//
// What a cache does with a message: if its origin is the cache's own, it
// ignores it; else it drops the keys named (every key, with all) from its
// local tier. A message it cannot read, of a newer version or malformed,
// may have named any key, so it empties its local tier: correct, but a
// purge per message.
//
// A writer picks 16 random bytes as its origin (a cryptographic random
// source; one per process is enough) and never reuses a cache's. It writes
// version 2 with its clock (the caches measure their invalidation lag
// from it) or version 1.
//
// A later version (a third, say, carrying a position in a log) gets a
// section of its own here. It is introduced in two steps: a release that
// reads it, then one that writes it, so that no reader of the fleet sees a
// version it does not know.
//
// # Golden vectors
//
// In hex, with spaces between the fields. The origin is 00 11 22 … ff; the
// keys, "user:1", "" (the empty key) and "a:b"; sent, 1700000000123456789
// (2023-11-14T22:13:20.123456789Z).
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
// To change key k of namespace ns and invalidate it in one atomic step,
// send a transaction:
//
//	MULTI
//	SET ns:k <value> PX <milliseconds>   (or SET without PX, or DEL ns:k)
//	PUBLISH tiercache:invalidate:ns <message naming k>
//	EXEC
//
// or EVAL the script that tiercache itself runs: SetScript and DeleteScript
// return its source and say its KEYS and ARGV. A value must not begin with
// the bytes 00 74 69 65 72 63 61 63 68 65 00 ("\x00tiercache\x00"), which
// begin the caches' own markers; a key that holds one reads as absent. To
// invalidate without writing, PUBLISH the message alone, after the write
// was acknowledged: a message that arrives before the write lands lets a
// cache fill its local tier with the old value again.
//
// # Who may publish
//
// Whoever may PUBLISH on a namespace's channel may make every cache of the
// namespace drop any key, or, with all set or with bytes that do not
// decode, empty its local tier at every message: no stale read, but a load
// on Redis and behind it. Keep the channel, like the keys, to the services
// that own the namespace, with a Redis ACL (Redis 6.2 or later; since
// Redis 7, a new user has no channel until given one). For namespace
// "users", one command:
//
//	ACL SETUSER users-svc on >secret resetkeys resetchannels -@all
//	  ~users:* ~tiercache:refresh:users:* &tiercache:invalidate:users
//	  +get +mget +pttl +set +del +exists +pexpire +scan +multi +exec
//	  +eval +evalsha +publish +subscribe +unsubscribe +ping
//
// That is what tiered, remote and the Publisher send: the namespace's keys,
// the keys of its refresh leases, its channel, and no other. Add
// +client|setname for a client with a ClientName; a Cluster client needs
// +cluster|slots and +asking too. A program that only reads through package
// remote needs ~users:* with +get +mget +pttl +multi +exec +scan, and no
// channel. Every other user, the default one included, gets no
// &tiercache:invalidate:* channel: its PUBLISH there is refused with
// NOPERM (from a script, too).
package invalidate
