package invalidate

import engine "github.com/tiercache/tiercache/internal/remote"

// SetScript returns the Lua source of the script with which tiercache sets
// a key and publishes its invalidation atomically, for a writer in another
// language to EVAL (see the package doc): KEYS[1] is the Redis key "ns:k";
// ARGV[1] is the value, ARGV[2] the TTL in milliseconds ("0": no expiry),
// ARGV[3] the channel and ARGV[4] the message. It returns 1.
func SetScript() string { return engine.SetAndPublishSource }

// DeleteScript returns the Lua source of the script with which tiercache
// deletes keys and publishes their invalidation atomically: KEYS are the
// Redis keys (at least one; on a Cluster, of one hash slot), ARGV[1] is the
// channel and ARGV[2] the message, which names the same keys. It returns
// how many keys it deleted.
func DeleteScript() string { return engine.DeleteAndPublishSource }
