package tiercacheotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

const schemaURL = semconv.SchemaURL

// The attribute keys the Observer sets.
const (
	keyNamespace   = attribute.Key("tiercache.namespace")
	keyOperation   = attribute.Key("tiercache.operation")
	keyScope       = attribute.Key("tiercache.invalidation.scope")
	keyState       = attribute.Key("tiercache.subscription.state")
	keyReason      = attribute.Key("tiercache.bypass.reason")
	keyResult      = attribute.Key("tiercache.read.result")
	keyDBSystem    = semconv.DBSystemNameKey
	keyDBOperation = semconv.DBOperationNameKey
	keyDBStatus    = semconv.DBResponseStatusCodeKey
	keyErrorType   = semconv.ErrorTypeKey
)

// Bucket boundaries.
var (
	// durationBuckets (Redis calls, loads, invalidation lag) span 100µs to
	// 10s; they include every boundary the semantic conventions advise for
	// db.client.operation.duration (1ms, 5ms, 10ms, 50ms, 100ms, 500ms, 1s,
	// 5s, 10s).
	durationBuckets = []float64{
		0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005,
		0.01, 0.025, 0.05,
		0.1, 0.25, 0.5,
		1, 2.5, 5, 10,
	}
	// ageBuckets (stale values) span 10ms to an hour.
	ageBuckets = []float64{0.01, 0.1, 1, 5, 10, 30, 60, 300, 600, 1800, 3600}
	// sizeBuckets (batch sizes) span 1 to 10,000 keys.
	sizeBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}
)

// instruments are an Observer's instruments, made once.
type instruments struct {
	redisDuration      metric.Float64Histogram
	loadDuration       metric.Float64Histogram
	batchSize          metric.Int64Histogram
	invalidations      metric.Int64Counter
	lag                metric.Float64Histogram
	subscriptionEvents metric.Int64Counter
	bypasses           metric.Int64Counter
	staleServed        metric.Int64Counter
	staleAge           metric.Float64Histogram

	// Observed by collect, from the counters of each space.
	hits   metric.Int64ObservableCounter
	misses metric.Int64ObservableCounter
	reads  metric.Int64ObservableCounter
	up     metric.Int64ObservableGauge
}

// init makes the instruments on m and registers collect for the observable
// ones.
func (ins *instruments) init(m metric.Meter, collect metric.Callback) error {
	var errs []error
	f64 := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	observed := func(name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit("{key}"), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}

	ins.redisDuration = f64("db.client.operation.duration", "s",
		"Duration of database client operations: one call to Redis by a cache.", durationBuckets)
	ins.loadDuration = f64("tiercache.load.duration", "s",
		"Duration of one loader call (Fetch, FetchMany or a refresh ahead).", durationBuckets)
	var err error
	ins.batchSize, err = m.Int64Histogram("tiercache.batch.size", metric.WithUnit("{key}"),
		metric.WithDescription("Distinct keys of one batch call (GetMany, FetchMany, SetMany)."),
		metric.WithExplicitBucketBoundaries(sizeBuckets...))
	errs = append(errs, err)
	ins.invalidations = counter("tiercache.invalidations", "{message}",
		"Invalidation messages from other instances applied to the local tier.")
	ins.lag = f64("tiercache.invalidation.lag", "s",
		"Time from an instance publishing an invalidation to this one applying it, by the two hosts' wall clocks.",
		durationBuckets)
	ins.subscriptionEvents = counter("tiercache.subscription.events", "{event}",
		"Changes of the invalidation subscription of a cache's channel.")
	ins.bypasses = counter("tiercache.local.bypasses", "{key}",
		"Keys read from Redis because the local tier could not be trusted.")
	ins.staleServed = counter("tiercache.stale.served", "{key}",
		"Values served stale because Redis failed (StaleIfError).")
	ins.staleAge = f64("tiercache.stale.age", "s",
		"Age of the oldest value of a stale answer, from when it was last known current.", ageBuckets)
	ins.hits = observed("tiercache.local.hits", "Keys answered by the local tier.")
	ins.misses = observed("tiercache.local.misses", "Keys looked up in the local tier and not found there.")
	ins.reads = observed("tiercache.reads",
		"Keys asked for by read calls (Get, Fetch, GetMany, FetchMany), by how each was answered.")
	ins.up, err = m.Int64ObservableGauge("tiercache.subscription.up", metric.WithUnit("{subscription}"),
		metric.WithDescription("1 while the invalidation subscription of a cache's channel is confirmed, 0 once it is lost."))
	errs = append(errs, err)

	if err := errors.Join(errs...); err != nil {
		return err
	}
	_, err = m.RegisterCallback(collect, ins.hits, ins.misses, ins.reads, ins.up)
	return err
}

// collect reports the local tier's counters and the subscription states.
// The MeterProvider calls it when it collects.
func (o *Observer) collect(_ context.Context, obs metric.Observer) error {
	for _, s := range o.spaces.Load().byName {
		if locals := s.locals.Load(); locals != nil {
			for _, l := range *locals {
				hits := int64(l.hits.load())
				obs.ObserveInt64(o.ins.hits, hits, l.opts...)
				obs.ObserveInt64(o.ins.misses, int64(l.miss.load()), l.opts...)
				if hits > 0 {
					obs.ObserveInt64(o.ins.reads, hits, l.readOpts[0]...)
				}
				for i := range l.reads {
					if n := l.reads[i].Load(); n > 0 {
						obs.ObserveInt64(o.ins.reads, int64(n), l.readOpts[i+1]...)
					}
				}
			}
		}
		if up := s.up.Load(); up >= 0 {
			obs.ObserveInt64(o.ins.up, int64(up), s.opts...)
		}
	}
	return nil
}
