package tiercacheotel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	tiercacheotel "github.com/tiercache/tiercache/otel"
	"github.com/tiercache/tiercache/tiered"
)

// redisReply is an error reply of the server as go-redis gives it: a
// string type with a RedisError method.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

// Every kind of Event lands in its instrument, with its attributes; the
// extra attributes of Options are on every point.
func TestObserveEveryKind(t *testing.T) {
	region := attribute.String("deployment.region", "eu")
	obs, r := newObserver(t, tiercacheotel.Options{Attributes: []attribute.KeyValue{region}})
	const n = "users"
	wrongType := redisReply("WRONGTYPE Operation against a key holding the wrong kind of value")
	for _, e := range []tiered.Event{
		{Kind: tiered.EventLocalHit, Op: "Get", Keys: 1},
		{Kind: tiered.EventLocalHit, Op: "Get", Keys: 1},
		{Kind: tiered.EventLocalHit, Op: "Get", Keys: 0}, // nothing answered: nothing counted
		{Kind: tiered.EventLocalHit, Op: "GetMany", Keys: 5},
		{Kind: tiered.EventLocalMiss, Op: "Get", Keys: 2},
		{Kind: tiered.EventRedis, Op: "get", Keys: 1, Duration: 300 * time.Microsecond},
		{Kind: tiered.EventRedis, Op: "get", Keys: 1, Duration: 700 * time.Microsecond},
		{Kind: tiered.EventRedis, Op: "get", Keys: 1, Duration: 2 * time.Second,
			Err: fmt.Errorf("wait: %w", context.DeadlineExceeded)},
		{Kind: tiered.EventRedis, Op: "set", Keys: 1, Duration: time.Millisecond,
			Err: wrongType},
		{Kind: tiered.EventLoad, Op: "Fetch", Keys: 1, Duration: 20 * time.Millisecond},
		{Kind: tiered.EventLoad, Op: "Fetch", Keys: 3, Duration: 5 * time.Millisecond, Err: errors.New("database down")},
		{Kind: tiered.EventLoad, Op: "RefreshAhead", Keys: 1, Duration: 10 * time.Millisecond},
		{Kind: tiered.EventBatch, Op: "GetMany", Keys: 10},
		{Kind: tiered.EventBatch, Op: "GetMany", Keys: 30},
		{Kind: tiered.EventInvalidation, Keys: 2, Duration: 800 * time.Microsecond},
		{Kind: tiered.EventInvalidation, Keys: 1, Duration: -1}, // no send time: counted, no lag
		{Kind: tiered.EventInvalidation, Op: "all", Duration: 3 * time.Millisecond},
		{Kind: tiered.EventSubscription, State: tiered.StateSubscribed},
		{Kind: tiered.EventSubscription, State: tiered.StateBroken, Err: fmt.Errorf("read: %w", io.EOF)},
		{Kind: tiered.EventSubscription, State: tiered.StateGap, Err: errors.New("bad version")},
		{Kind: tiered.EventBypass, Op: "unproven", Keys: 4},
		{Kind: tiered.EventBypass, Op: "unsubscribed", Keys: 1},
		{Kind: tiered.EventRead, Op: "Get", Keys: 2, Result: tiered.ResultRemote},
		{Kind: tiered.EventRead, Op: "Get", Keys: 1, Result: "nonsense"}, // unknown result: ignored
		{Kind: tiered.EventStale, Op: "Get", Keys: 1, Duration: 3 * time.Second, Err: context.DeadlineExceeded},
		{Kind: tiered.EventKind(200), Op: "Get", Keys: 1, Duration: time.Second}, // unknown: ignored
		{Kind: 0, Op: "Get", Keys: 1},
	} {
		e.Namespace = n
		obs.Observe(e)
	}
	m := collect(t, r)
	nsr := []attribute.KeyValue{ns(n), region}
	with := func(kv ...attribute.KeyValue) []attribute.KeyValue { return append(slices.Clone(nsr), kv...) }

	if got := m.sum("tiercache.local.hits", "{key}", with(op("Get"))...); got != 2 {
		t.Errorf("local hits (get) = %d, want 2", got)
	}
	if got := m.sum("tiercache.local.hits", "{key}", with(op("GetMany"))...); got != 5 {
		t.Errorf("local hits (get-many) = %d, want 5", got)
	}
	if got := m.sum("tiercache.local.misses", "{key}", with(op("Get"))...); got != 2 {
		t.Errorf("local misses (get) = %d, want 2", got)
	}
	res := func(r string) attribute.KeyValue { return attribute.String("tiercache.read.result", r) }
	if got := m.sum("tiercache.reads", "{key}", with(op("Get"), res("local"))...); got != 2 {
		t.Errorf("reads (Get, local) = %d, want 2, the local hits", got)
	}
	if got := m.sum("tiercache.reads", "{key}", with(op("Get"), res("remote"))...); got != 2 {
		t.Errorf("reads (Get, remote) = %d, want 2", got)
	}
	if all, sets := m.sumWhere("tiercache.reads", "{key}", func(attribute.Set) bool { return true }); all != 9 {
		t.Errorf("reads = %d, want 9 (2+5 local, 2 remote; the unknown result ignored): %v", all, sets)
	}

	const redis = "db.client.operation.duration"
	ok := m.hist(redis, "s", with(redisSystem(), dbOp("get"))...)
	if lo, hi := bounds(t, redis, ok); ok.Count != 2 || lo != 0.0003 || hi != 0.0007 {
		t.Errorf("redis get: count %d, min %v, max %v; want 2, 0.0003, 0.0007", ok.Count, lo, hi)
	}
	if p := m.hist(redis, "s", with(redisSystem(), dbOp("get"), errType("timeout"))...); p.Count != 1 || p.Sum != 2 {
		t.Errorf("redis get timeout: count %d, sum %v", p.Count, p.Sum)
	}
	if p := m.hist(redis, "s", with(redisSystem(), dbOp("set"), errType("WRONGTYPE"), dbStatus("WRONGTYPE"))...); p.Count != 1 {
		t.Errorf("redis set WRONGTYPE: count %d", p.Count)
	}
	// The boundaries reach below a millisecond: 300µs and 700µs land apart.
	if ok.Bounds[0] != 0.0001 || ok.Bounds[len(ok.Bounds)-1] != 10 {
		t.Errorf("redis buckets %v, want 100µs to 10s", ok.Bounds)
	}

	if p := m.hist("tiercache.load.duration", "s", with(op("Fetch"))...); p.Count != 1 || p.Sum != 0.02 {
		t.Errorf("load fetch: count %d, sum %v", p.Count, p.Sum)
	}
	if p := m.hist("tiercache.load.duration", "s", with(op("Fetch"), errType("*errors.errorString"))...); p.Count != 1 {
		t.Errorf("failed load: count %d", p.Count)
	}
	if p := m.hist("tiercache.load.duration", "s", with(op("RefreshAhead"))...); p.Count != 1 {
		t.Errorf("refresh load: count %d", p.Count)
	}

	if p := m.intHist("tiercache.batch.size", "{key}", with(op("GetMany"))...); p.Count != 2 || p.Sum != 40 {
		t.Errorf("batch size: count %d, sum %d; want 2, 40", p.Count, p.Sum)
	}

	if got := m.sum("tiercache.invalidations", "{message}", with(scope("keys"))...); got != 2 {
		t.Errorf("invalidations (keys) = %d, want 2", got)
	}
	if got := m.sum("tiercache.invalidations", "{message}", with(scope("all"))...); got != 1 {
		t.Errorf("invalidations (all) = %d, want 1", got)
	}
	lag := m.hist("tiercache.invalidation.lag", "s", nsr...)
	if lo, hi := bounds(t, "lag", lag); lag.Count != 2 || lo != 0.0008 || hi != 0.003 {
		t.Errorf("lag: count %d, min %v, max %v; want 2, 0.0008, 0.003", lag.Count, lo, hi)
	}

	const events = "tiercache.subscription.events"
	if got := m.sum(events, "{event}", with(state("Subscribed"))...); got != 1 {
		t.Errorf("Subscribed events = %d, want 1", got)
	}
	if got := m.sum(events, "{event}", with(state("Broken"), errType("io.EOF"))...); got != 1 {
		t.Errorf("Broken events = %d, want 1", got)
	}
	if got := m.sum(events, "{event}", with(state("Gap"), errType("*errors.errorString"))...); got != 1 {
		t.Errorf("Gap events = %d, want 1", got)
	}
	if got := m.gauge("tiercache.subscription.up", "{subscription}", nsr...); got != 0 {
		t.Errorf("up = %d after Broken then Gap, want 0", got)
	}

	if got := m.sum("tiercache.local.bypasses", "{key}", with(reason("unproven"))...); got != 4 {
		t.Errorf("bypasses (unproven) = %d, want 4", got)
	}
	if got := m.sum("tiercache.local.bypasses", "{key}", with(reason("unsubscribed"))...); got != 1 {
		t.Errorf("bypasses (unsubscribed) = %d, want 1", got)
	}

	if got := m.sum("tiercache.stale.served", "{key}", with(op("Get"), errType("timeout"))...); got != 1 {
		t.Errorf("stale served = %d, want 1", got)
	}
	if p := m.hist("tiercache.stale.age", "s", with(op("Get"), errType("timeout"))...); p.Count != 1 || p.Sum != 3 {
		t.Errorf("stale age: count %d, sum %v", p.Count, p.Sum)
	}

	want := []string{
		"db.client.operation.duration", "tiercache.batch.size", "tiercache.invalidation.lag",
		"tiercache.invalidations", "tiercache.load.duration", "tiercache.local.bypasses",
		"tiercache.local.hits", "tiercache.local.misses", "tiercache.reads", "tiercache.stale.age",
		"tiercache.stale.served", "tiercache.subscription.events", "tiercache.subscription.up",
	}
	got := m.names()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("instruments with data: %v, want %v", got, want)
	}
}

// Kinds the Observer does not know (a later release's) record nothing.
func TestUnknownKindsAreIgnored(t *testing.T) {
	obs, r := newObserver(t, tiercacheotel.Options{})
	for _, k := range []tiered.EventKind{0, tiered.EventStale + 1, 200, 255} {
		obs.Observe(tiered.Event{Kind: k, Namespace: "ns", Op: "RefreshAhead", Keys: 3, Duration: time.Second, Err: io.EOF})
	}
	if got := collect(t, r).names(); len(got) != 0 {
		t.Errorf("unknown kinds recorded into %v", got)
	}
}

// The gauge follows the last Subscribed or Broken of each namespace.
func TestSubscriptionUp(t *testing.T) {
	obs, r := newObserver(t, tiercacheotel.Options{})
	sub := func(n string, s tiered.State) {
		obs.Observe(tiered.Event{Kind: tiered.EventSubscription, Namespace: n, State: s})
	}
	sub("a", tiered.StateSubscribed)
	sub("b", tiered.StateSubscribed)
	sub("b", tiered.StateBroken)
	sub("c", tiered.StateGap) // not a state: c has no gauge yet
	m := collect(t, r)
	if got := m.gauge("tiercache.subscription.up", "{subscription}", ns("a")); got != 1 {
		t.Errorf("a: up = %d, want 1", got)
	}
	if got := m.gauge("tiercache.subscription.up", "{subscription}", ns("b")); got != 0 {
		t.Errorf("b: up = %d, want 0", got)
	}
	sub("b", tiered.StateSubscribed)
	sub("b", tiered.StateGap)
	if got := collect(t, r).gauge("tiercache.subscription.up", "{subscription}", ns("b")); got != 1 {
		t.Errorf("b: up = %d after Subscribed and Gap, want 1", got)
	}
}

func TestNewObserverRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		attrs []attribute.KeyValue
		want  string
	}{
		{[]attribute.KeyValue{{}}, "Attributes[0]"},
		{[]attribute.KeyValue{attribute.String("a", "1"), attribute.String("a", "2")}, `Attributes[1] repeats the key "a"`},
		{[]attribute.KeyValue{attribute.String("tiercache.namespace", "x")}, `"tiercache.namespace", which the Observer sets`},
		{[]attribute.KeyValue{attribute.String("tiercache.anything", "x")}, `"tiercache.anything", which the Observer sets`},
		{[]attribute.KeyValue{attribute.String("error.type", "x")}, `"error.type", which the Observer sets`},
		{[]attribute.KeyValue{attribute.String("db.system.name", "x")}, `"db.system.name", which the Observer sets`},
	} {
		_, err := tiercacheotel.NewObserver(tiercacheotel.Options{Attributes: c.attrs})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "tiercacheotel: ") {
			t.Errorf("Attributes %v: error %v, want one naming %s", c.attrs, err, c.want)
		}
	}
	// The default provider (the global one, a no-op here) works.
	obs, err := tiercacheotel.NewObserver(tiercacheotel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(tiered.Event{Kind: tiered.EventLocalHit, Namespace: "ns", Op: "Get", Keys: 1})
	obs.Observe(tiered.Event{Kind: tiered.EventRedis, Namespace: "ns", Op: "get", Keys: 1, Duration: time.Millisecond})
}
