package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// The batch scenario's keys: 10 groups of 100, read or written in turn.
const batchSize, batchGroups = 100, 10

// batchKeys returns the groups of keys named prefix0 … prefix999.
func batchKeys(prefix string) [][]string {
	ks := keys(prefix, batchSize*batchGroups)
	groups := make([][]string, batchGroups)
	for g := range groups {
		groups[g] = ks[g*batchSize : (g+1)*batchSize]
	}
	return groups
}

// getManyOp reads a group with one GetMany and checks that every key came
// back.
func getManyOp(ctx context.Context, c *tiered.Cache[string]) func([]string) error {
	return func(ks []string) error {
		m, err := c.GetMany(ctx, ks)
		if err == nil && len(m) != len(ks) {
			err = fmt.Errorf("bench: GetMany found %d of %d keys", len(m), len(ks))
		}
		return err
	}
}

// getsOp reads a group with one Get per key, in turn.
func getsOp(ctx context.Context, c *tiered.Cache[string]) func([]string) error {
	return func(ks []string) error {
		for _, k := range ks {
			if _, err := c.Get(ctx, k); err != nil {
				return err
			}
		}
		return nil
	}
}

// redisKeys returns the groups' Redis keys in namespace ns.
func redisKeys(ns string, groups [][]string) [][]string {
	out := make([][]string, len(groups))
	for g, ks := range groups {
		for _, k := range ks {
			out[g] = append(out[g], ns+":"+k)
		}
	}
	return out
}

// mGetOp reads group g of namespace ns with one plain MGET.
func mGetOp(ctx context.Context, c *redis.Client, ns string, groups [][]string) func(int) error {
	rks := redisKeys(ns, groups)
	return func(g int) error {
		vs, err := c.MGet(ctx, rks[g]...).Result()
		if err == nil && slices.Contains(vs, nil) {
			err = errors.New("bench: MGET found a key missing")
		}
		return err
	}
}

// setManyOp writes group g with one SetMany.
func setManyOp(ctx context.Context, c *tiered.Cache[string], groups [][]string) func(int) error {
	items := make([]map[string]string, len(groups))
	for g, ks := range groups {
		items[g] = make(map[string]string, len(ks))
		for i, k := range ks {
			items[g][k] = value(i)
		}
	}
	return func(g int) error { return c.SetMany(ctx, items[g]) }
}

// pipelineOp writes group g of namespace ns with one pipeline of a SET …
// PX per key and a PUBLISH of the keys (about the size of SetMany's
// invalidation) to a channel no one reads.
func pipelineOp(ctx context.Context, c *redis.Client, ns string, groups [][]string) func(int) error {
	rks := redisKeys(ns, groups)
	return func(g int) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range rks[g] {
				p.Set(ctx, k, value(i), keyTTL)
			}
			p.Publish(ctx, ns+":nobody", strings.Join(groups[g], "\n"))
			return nil
		})
		return err
	}
}

// indexes returns 0 … n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// batch times GetMany of 100 keys from Redis against one MGET, SetMany of
// 100 keys against a pipeline, and GetMany of 100 warm keys against 100
// local hits.
func batch(ctx context.Context, e *env, cfg config) ([]row, error) {
	cold, ns := batchKeys("cold"), e.ns("batch")
	if err := e.populate(ctx, ns, slices.Concat(cold...), value); err != nil {
		return nil, err
	}
	// LocalSize 1: a group never finds its keys in the local tier.
	reader, err := newCache(ctx, e, ns, tiered.HubOptions{}, tiered.Options[string]{LocalSize: 1})
	if err != nil {
		return nil, err
	}
	wns := e.ns("batch-w")
	writer, err := newCache(ctx, e, wns, tiered.HubOptions{}, tiered.Options[string]{})
	if err != nil {
		return nil, err
	}
	hot := batchKeys("hot")[:1]
	warmed, err := warmCache(ctx, e, e.ns("batch-warm"), hot[0])
	if err != nil {
		return nil, err
	}
	plain, written, ids := e.client(nil), batchKeys("w"), indexes(batchGroups)
	f, err := compare(ctx, cfg.duration, cfg.rounds,
		job{op: cycle(cold, getManyOp(ctx, reader))},
		job{op: cycle(ids, mGetOp(ctx, plain, ns, cold))},
		job{op: cycle(ids, setManyOp(ctx, writer, written))},
		job{op: cycle(ids, pipelineOp(ctx, plain, wns, written))},
		job{batch: 10, op: cycle(hot, getManyOp(ctx, warmed))},
		job{batch: 10, op: cycle(hot, getsOp(ctx, warmed))},
	)
	if err != nil {
		return nil, err
	}
	return []row{
		judge(row{Measure: "GetMany of 100, from Redis", Tiered: dur(f[0].ns), Baseline: "MGET " + dur(f[1].ns),
			Target: "≤ 1.5× MGET"}, f[0].ns <= 1.5*f[1].ns),
		judge(row{Measure: "SetMany of 100", Tiered: dur(f[2].ns), Baseline: "pipeline " + dur(f[3].ns),
			Target: "≤ 1.5× pipeline"}, f[2].ns <= 1.5*f[3].ns),
		judge(row{Measure: "GetMany of 100, warm", Tiered: dur(f[4].ns), Baseline: "100 local Gets " + dur(f[5].ns),
			Target: "≤ baseline"}, f[4].ns <= f[5].ns),
		{Measure: "GetMany of 100, warm: allocs", Tiered: allocs(f[4].allocs),
			Baseline: "100 local Gets " + allocs(f[5].allocs)},
	}, nil
}
