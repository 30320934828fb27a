package remote_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

// The batch benchmarks' setting: 100 keys of 100 bytes, written with a TTL
// of an hour. Against the real server, each benchmark also reports the
// server's CPU time per call (INFO cpu, read before and after; other
// clients of the server count too).
const benchKeys, benchValueSize = 100, 100

// benchBatch is one batch benchmark's store and keys.
type benchBatch struct {
	st   *remote.Store
	srv  *redistest.Server
	keys []string // without the namespace
	rk   []string // Redis keys
	val  []byte
	ch   string
	msg  []byte // the message of the keys
}

func newBenchBatch(b *testing.B) *benchBatch {
	s := redistest.New(b)
	bb := &benchBatch{
		st:  mustNew(b, s.Client, remote.Options{Namespace: s.Namespace}),
		srv: s,
		val: []byte(strings.Repeat("v", benchValueSize)),
		ch:  "ch:" + s.Namespace,
	}
	pipe := s.Client.Pipeline()
	for i := range benchKeys {
		k := fmt.Sprintf("key:%03d", i)
		bb.keys, bb.rk = append(bb.keys, k), append(bb.rk, bb.st.RedisKey(k))
		pipe.Set(context.Background(), bb.st.RedisKey(k), bb.val, time.Hour)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
	bb.msg = []byte(strings.Join(bb.keys, ","))
	return bb
}

// run runs f b.N times (and once before, to warm up), reporting the
// allocations and, against a real server, the server's CPU time per call.
func (bb *benchBatch) run(b *testing.B, f func() error) {
	if err := f(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := bb.serverCPU(b)
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if bb.srv.Real() {
		b.ReportMetric((bb.serverCPU(b)-before).Seconds()*1e6/float64(b.N), "server-µs/op")
	}
}

// serverCPU returns the CPU time the server has used (user and system).
func (bb *benchBatch) serverCPU(b *testing.B) time.Duration {
	if !bb.srv.Real() {
		return 0
	}
	info, err := bb.srv.Client.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sec float64
	for _, line := range strings.Split(info, "\r\n") {
		name, v, _ := strings.Cut(line, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sec += f
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// The designs considered for GetMany and WriteMany, on the 100 keys of the
// batch benchmarks (see BenchmarkGetMany). Run against the real server:
//
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench 'Designs' -count 10 ./remote/
var (
	// GetMany as one script, read-only when run by EVALSHA_RO (Redis 7;
	// miniredis has it too), which declares no flags: under EVALSHA it
	// would count as a write, and CLIENT PAUSE WRITE would hold it.
	getManyScript = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  out[2*i-1] = v
  if v then out[2*i] = redis.call('PTTL', k) else out[2*i] = -2 end
end
return out`)

	// WriteMany's script for all-Always writes, at its leanest: a SET … PX
	// per key, then the PUBLISH.
	setManyScript = redis.NewScript(`
local j = 3
for _, k in ipairs(KEYS) do
  redis.call('SET', k, ARGV[j], 'PX', ARGV[j+1])
  j = j + 2
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return #KEYS`)
)

func BenchmarkGetManyDesigns(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	c := bb.srv.Client
	for _, d := range []struct {
		name string
		get  func() error
	}{
		{"mget-alone", func() error { return c.MGet(ctx, bb.rk...).Err() }},
		{"pipeline-mget-pttls", func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.MGet(ctx, bb.rk...)
				for _, k := range bb.rk {
					p.PTTL(ctx, k)
				}
				return nil
			})
			return err
		}},
		{"pipeline-get-pttl-pairs", func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range bb.rk {
					p.Get(ctx, k)
					p.PTTL(ctx, k)
				}
				return nil
			})
			return err
		}},
		{"multi-exec-mget-pttls", func() error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.MGet(ctx, bb.rk...)
				for _, k := range bb.rk {
					p.PTTL(ctx, k)
				}
				return nil
			})
			return err
		}},
		{"script-evalsha_ro", func() error { return getManyScript.RunRO(ctx, c, bb.rk).Err() }},
		{"Store.GetMany", func() error { _, err := bb.st.GetMany(ctx, bb.keys); return err }},
	} {
		b.Run(d.name, func(b *testing.B) { bb.run(b, d.get) })
	}
}

func BenchmarkWriteManyDesigns(b *testing.B) {
	bb, ctx := newBenchBatch(b), context.Background()
	c := bb.srv.Client
	setArgs := []any{bb.ch, bb.msg}
	for range bb.rk {
		setArgs = append(setArgs, bb.val, time.Hour.Milliseconds())
	}
	sets := func(p redis.Pipeliner) error {
		for _, k := range bb.rk {
			p.Set(ctx, k, bb.val, time.Hour)
		}
		p.Publish(ctx, bb.ch, bb.msg)
		return nil
	}
	for _, d := range []struct {
		name  string
		write func() error
	}{
		{"pipeline-not-atomic", func() error { _, err := c.Pipelined(ctx, sets); return err }},
		{"multi-exec", func() error { _, err := c.TxPipelined(ctx, sets); return err }},
		{"script", func() error {
			err := setManyScript.EvalSha(ctx, c, bb.rk, setArgs...).Err()
			if redis.HasErrorPrefix(err, "NOSCRIPT") {
				err = setManyScript.Eval(ctx, c, bb.rk, setArgs...).Err()
			}
			return err
		}},
		{"Store.WriteMany", func() error {
			writes := make([]remote.Write, len(bb.keys))
			for i, k := range bb.keys {
				writes[i] = remote.Write{Key: k, Value: bb.val, TTL: time.Hour}
			}
			_, err := bb.st.WriteMany(ctx, writes, func([]string) []byte { return bb.msg })
			return err
		}},
	} {
		b.Run(d.name, func(b *testing.B) { bb.run(b, d.write) })
	}
}
