package remote

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetAndPublish stores value at key and publishes payload on channel, both
// in one Lua script: one round trip, and either both happen or neither. A
// ttl of 0 means no expiry; see the package doc for how a positive ttl is
// sent.
func (s *Store) SetAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, channel string, payload []byte) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return s.opError("set", err, key)
	}
	a := setArgs{key: key, value: value, ms: ms, channel: channel, payload: payload}
	if _, err := call(ctx, s, a, (*Store).setAndPublish); err != nil {
		return s.opError("set", err, key)
	}
	return nil
}

type setArgs struct {
	key     string
	value   []byte
	ms      int64 // PX argument; 0 means no expiry
	channel string
	payload []byte
}

// setAndPublish runs setAndPublishScript by EVALSHA, and by EVAL if the
// server lacks the script. On a single node the EVALSHA command is reused
// from call to call (see reuse.go).
func (s *Store) setAndPublish(ctx context.Context, a setArgs) (struct{}, error) {
	if !reusable(s.client) {
		err := setAndPublishScript.Run(ctx, s.client, []string{s.prefix + a.key}, a.value, a.ms, a.channel, a.payload).Err()
		return struct{}{}, err
	}
	w, _ := s.reuse.sets.Get().(*setCmds)
	if w == nil {
		w = newSetCmds()
	}
	w.fill(s.prefix, a)
	err := s.client.Process(ctx, w.cmd)
	w.reset()
	s.reuse.sets.Put(w)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") { // HasErrorPrefix(nil) allocates
		err = setAndPublishScript.Eval(ctx, s.client, []string{s.prefix + a.key}, a.value, a.ms, a.channel, a.payload).Err()
	}
	return struct{}{}, err
}

// setCmds is the reused EVALSHA of setAndPublish on a single node.
type setCmds struct {
	key, value, ms, payload arg
	args                    []any // evalsha, sha, 1, key, value, ms, channel, payload
	cmd                     *redis.Cmd
}

const setChannelArg = 6 // the channel's place in setCmds.args

func newSetCmds() *setCmds {
	w := &setCmds{}
	w.args = []any{"evalsha", setAndPublishScript.Hash(), 1, &w.key, &w.value, &w.ms, "", &w.payload}
	// go-redis runs a command under the ctx of the call that sends it.
	w.cmd = redis.NewCmd(context.Background(), w.args...)
	w.cmd.SetFirstKeyPos(3)
	return w
}

// fill sets the arguments of a's write; the channel is boxed again only
// when it changes (a Store's callers use one).
func (w *setCmds) fill(prefix string, a setArgs) {
	w.key.set(prefix, a.key)
	w.value.ref(a.value)
	w.ms.b = strconv.AppendInt(w.ms.b[:0], a.ms, 10)
	w.payload.ref(a.payload)
	if ch, _ := w.args[setChannelArg].(string); ch != a.channel {
		w.args[setChannelArg] = a.channel
	}
}

// reset readies w for its next call, dropping what the last one carried.
func (w *setCmds) reset() {
	w.key.release(true)
	w.value.release(false)
	w.ms.release(true)
	w.payload.release(false)
	w.cmd.SetVal(nil)
	w.cmd.SetErr(nil)
}

// DeleteAndPublish removes keys and publishes payload(keys) on channel in one
// Lua script: one round trip, and either both happen or neither; keys that
// do not exist are ignored. On a Cluster, or for more than 1000 keys, the
// keys are split into groups (by hash slot, then by 1000), each deleted and
// published by its own script with payload called on that group's keys; the
// groups are sent one after the other, and the first that fails ends the
// call, the groups before it staying deleted. DeleteAndPublish calls
// payload for every group, on the caller's goroutine, before it sends
// anything; with payload nil the message is empty.
func (s *Store) DeleteAndPublish(ctx context.Context, channel string, payload func(keys []string) []byte, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	key := func(i int) string { return keys[i] }
	rk := s.packKeys(len(keys), key)
	groups := s.groups(len(keys), key)
	d := deletes{channel: channel, groups: make([][]string, len(groups)), payloads: make([][]byte, len(groups))}
	for gi, g := range groups {
		group, names := make([]string, len(g)), make([]string, len(g))
		for j, i := range g {
			group[j], names[j] = rk[i], keys[i]
		}
		d.groups[gi] = group
		if payload != nil {
			d.payloads[gi] = payload(names)
		}
	}
	if _, err := call(ctx, s, d, (*Store).deleteAndPublish); err != nil {
		return s.opError("delete", err, keys...)
	}
	return nil
}

// deletes is the work of a DeleteAndPublish: one script call per group.
type deletes struct {
	channel  string
	groups   [][]string // Redis keys that one script deletes
	payloads [][]byte   // per group
}

// deleteAndPublish runs the scripts of d in order and stops at the first
// error; the groups before it stay deleted.
func (s *Store) deleteAndPublish(ctx context.Context, d deletes) (struct{}, error) {
	for i, g := range d.groups {
		if err := deleteAndPublishScript.Run(ctx, s.client, g, d.channel, d.payloads[i]).Err(); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

// Publish publishes payload on channel, touching no key, within ctx like
// every Store method. keys only name the call in its error.
func (s *Store) Publish(ctx context.Context, channel string, payload []byte, keys ...string) error {
	a := publishArgs{channel: channel, payload: payload}
	if _, err := call(ctx, s, a, (*Store).publish); err != nil {
		return s.opError("publish", err, keys...)
	}
	return nil
}

type publishArgs struct {
	channel string
	payload []byte
}

func (s *Store) publish(ctx context.Context, a publishArgs) (struct{}, error) {
	return struct{}{}, s.client.Publish(ctx, a.channel, a.payload).Err()
}

// The scripts. Each touches only the keys it is given in KEYS, so it runs on
// the node that owns them in a Cluster; PUBLISH is broadcast cluster-wide.
var (
	setAndPublishScript    = redis.NewScript(SetAndPublishSource)
	deleteAndPublishScript = redis.NewScript(DeleteAndPublishSource)
)

// SetAndPublishSource is the Lua source of the script of SetAndPublish:
// KEYS[1] is the Redis key; ARGV[1] the value, ARGV[2] the TTL in
// milliseconds ("0": no expiry), ARGV[3] the channel, ARGV[4] the message.
const SetAndPublishSource = `
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`

// DeleteAndPublishSource is the Lua source of the script of
// DeleteAndPublish: KEYS are the Redis keys (at least one); ARGV[1] is the
// channel, ARGV[2] the message. It returns how many keys it deleted.
const DeleteAndPublishSource = `
local n = redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n`
