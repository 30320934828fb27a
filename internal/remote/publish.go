package remote

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetAndPublish stores value at key and publishes payload, its
// invalidation, both in one run of the write script (see WriteMany): one
// round trip, and either both happen or neither. A ttl of 0 means no
// expiry; see the package doc for how a positive ttl is sent. A Silent
// store sends a plain SET.
func (s *Store) SetAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, payload []byte) error {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return s.opError("set", err, key)
	}
	a := setArgs{key: key, value: value, ms: ms, payload: payload}
	if _, err := call(ctx, s, a, (*Store).setAndPublish); err != nil {
		return s.opError("set", err, key)
	}
	return nil
}

type setArgs struct {
	key     string
	value   []byte
	ms      int64 // PX argument; 0 means no expiry
	payload []byte
}

// setAndPublish runs the write script by EVALSHA, and by EVAL if the
// server lacks it. On a single node the EVALSHA command is reused from call
// to call (see reuse.go).
func (s *Store) setAndPublish(ctx context.Context, a setArgs) (struct{}, error) {
	if s.silent {
		return struct{}{}, s.client.Set(ctx, s.prefix+a.key, a.value, time.Duration(a.ms)*time.Millisecond).Err()
	}
	if !reusable(s.client) {
		k := s.prefix + a.key
		return struct{}{}, writeScript.Run(ctx, s.client, []string{k}, s.setArgs(k, a)...).Err()
	}
	w, _ := s.reuse.sets.Get().(*setCmds)
	if w == nil {
		w = s.newSetCmds()
	}
	w.fill(s.prefix, a)
	err := s.client.Process(ctx, w.cmd)
	w.reset()
	s.reuse.sets.Put(w)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") { // HasErrorPrefix(nil) allocates
		k := s.prefix + a.key
		err = writeScript.Eval(ctx, s.client, []string{k}, s.setArgs(k, a)...).Err()
	}
	return struct{}{}, err
}

// setArgs returns the write script's ARGV for a's write of k.
func (s *Store) setArgs(k string, a setArgs) []any {
	return append(s.invalidation(make([]any, 0, scriptArgs+4), a.payload, k, s.silent), "S", a.value, a.ms, "")
}

// setCmds is the reused EVALSHA of setAndPublish on a single node: its
// arguments that change from call to call are args of their own, the
// others (the namespace, where and how to publish, the log's length) are
// the Store's.
type setCmds struct {
	key, value, ms, payload arg
	cmd                     *redis.Cmd
}

func (s *Store) newSetCmds() *setCmds {
	w := &setCmds{}
	args := []any{"evalsha", writeScript.Hash(), 1, &w.key}
	args = s.invalidation(args, nil, "", s.silent)
	args[4+1] = &w.payload // ARGV[2], the message
	args = append(args, "S", &w.value, &w.ms, "")
	// go-redis runs a command under the ctx of the call that sends it.
	w.cmd = redis.NewCmd(context.Background(), args...)
	w.cmd.SetFirstKeyPos(3)
	return w
}

// fill sets the arguments of a's write.
func (w *setCmds) fill(prefix string, a setArgs) {
	w.key.set(prefix, a.key)
	w.value.ref(a.value)
	w.ms.b = strconv.AppendInt(w.ms.b[:0], a.ms, 10)
	w.payload.ref(a.payload)
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

// DeleteAndPublish removes keys and publishes payload(keys), their
// invalidation, as WriteMany does: one run of the write script per group
// of keys (all of them on a single node, one hash slot's on a Cluster),
// each atomic, in one round trip per node. Keys that do not exist are
// ignored. It returns the first group's error, if any failed; the others
// were applied.
func (s *Store) DeleteAndPublish(ctx context.Context, payload func(keys []string) []byte, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ws := make([]Write, len(keys))
	for i, k := range keys {
		ws[i] = Write{Key: k, Delete: true}
	}
	res, err := s.WriteMany(ctx, ws, payload)
	if err != nil {
		return s.opError("delete", unlabel(err), keys...)
	}
	for _, r := range res {
		if r.Err != nil {
			return s.opError("delete", unlabel(r.Err), keys...)
		}
	}
	return nil
}

// Publish publishes the invalidation of keys, payload(keys), without
// writing them, through the write script (so that it is logged like any
// write's): one run per group of keys, in one round trip per node. With no
// keys, it publishes payload(nil), an invalidation of every key, on a
// single node, or on every group channel of every master of a Cluster. A
// Silent store publishes (and logs) it too: Silent is about the writes,
// whose changes Redis reports itself; here Redis sees no change.
func (s *Store) Publish(ctx context.Context, payload func(keys []string) []byte, keys ...string) error {
	if len(keys) > 0 {
		ws := make([]Write, len(keys))
		for i, k := range keys {
			ws[i] = Write{Key: k, Cond: invalidateOnly}
		}
		res, err := s.writeMany(ctx, ws, payload, false)
		if err != nil {
			return s.opError("publish", unlabel(err), keys...)
		}
		for _, r := range res {
			if r.Err != nil {
				return s.opError("publish", unlabel(r.Err), keys...)
			}
		}
		return nil
	}
	if _, err := call(ctx, s, payload(nil), (*Store).publishAll); err != nil {
		return s.opError("publish", err)
	}
	return nil
}

// publishAll runs the write script with no key, once on a single node,
// once per master on a Cluster (each publishes on its group channels).
func (s *Store) publishAll(ctx context.Context, payload []byte) (struct{}, error) {
	args := s.invalidation(make([]any, 0, scriptArgs), payload, "", false)
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return struct{}{}, writeScript.Run(ctx, s.client, nil, args...).Err()
	}
	return struct{}{}, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return writeScript.Run(ctx, c, nil, args...).Err()
	})
}

// unlabel is the cause of err, an *Error of the store, or err.
func unlabel(err error) error {
	var re *Error
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}
