package tiercacheotel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tiercache/tiercache/tiered"
)

// ScopeName is the instrumentation scope of the Observer's instruments (the
// name of its Meter), for Views that select them.
const ScopeName = "github.com/tiercache/tiercache/otel"

// Options configures an Observer. The zero value of every field is its
// default.
type Options struct {
	// MeterProvider creates the instruments. Default: the global one,
	// otel.GetMeterProvider() (which forwards to a provider set later with
	// otel.SetMeterProvider).
	MeterProvider metric.MeterProvider

	// Attributes are added to every measurement, to tell apart the
	// Observers of two Hubs that share namespace names (over two Redis
	// deployments, say). Resource attributes usually say the rest (the
	// service, the host). Each must be valid, used once, and not one the
	// Observer sets itself (tiercache.*, db.system.name,
	// db.operation.name, db.response.status_code, error.type).
	// Default: none.
	Attributes []attribute.KeyValue
}

// reserved reports whether the Observer sets key itself, or may in a later
// release (every tiercache.* key).
func reserved(key attribute.Key) bool {
	switch key {
	case keyDBSystem, keyDBOperation, keyDBStatus, keyErrorType:
		return true
	}
	return strings.HasPrefix(string(key), "tiercache.")
}

func (o *Options) validate() error {
	seen := make(map[attribute.Key]bool, len(o.Attributes))
	for i, kv := range o.Attributes {
		switch {
		case !kv.Valid():
			return fmt.Errorf("tiercacheotel: Attributes[%d] (%q) is not a valid attribute", i, kv.Key)
		case seen[kv.Key]:
			return fmt.Errorf("tiercacheotel: Attributes[%d] repeats the key %q", i, kv.Key)
		case reserved(kv.Key):
			return fmt.Errorf("tiercacheotel: Attributes[%d] uses the key %q, which the Observer sets", i, kv.Key)
		}
		seen[kv.Key] = true
	}
	return nil
}

// Observer is a tiered.Observer that records into OpenTelemetry instruments
// (see the package documentation for the list). Give it to
// tiered.HubOptions.Observer. It is safe for concurrent use.
type Observer struct {
	extra []attribute.KeyValue // Options.Attributes

	ins instruments

	mu sync.Mutex // serialises additions to spaces and to each space's maps
	// spaces holds the state of each namespace. Copy on write under mu:
	// read without a lock, never modified once stored.
	spaces atomic.Pointer[spaces]
}

var _ tiered.Observer = (*Observer)(nil)

// NewObserver returns an Observer whose instruments come from
// opts.MeterProvider. It fails for invalid options, naming the field, and
// when the provider refuses an instrument or the callback that reports the
// local tier's counters.
func NewObserver(opts Options) (*Observer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{extra: append([]attribute.KeyValue(nil), opts.Attributes...)}
	o.spaces.Store(&spaces{byName: map[string]*space{}})
	if err := o.ins.init(mp.Meter(ScopeName, metric.WithSchemaURL(schemaURL)), o.collect); err != nil {
		return nil, fmt.Errorf("tiercacheotel: %w", err)
	}
	return o, nil
}

// bg is the context of synchronous measurements: Observe is given none.
var bg = context.Background()

// Observe records e. Kinds it does not know are ignored.
func (o *Observer) Observe(e tiered.Event) {
	switch e.Kind {
	case tiered.EventLocalHit:
		if e.Keys > 0 {
			o.space(e.Namespace).local(o, e.Op).hits.add(uint64(e.Keys))
		}
	case tiered.EventLocalMiss:
		if e.Keys > 0 {
			o.space(e.Namespace).local(o, e.Op).miss.add(uint64(e.Keys))
		}
	case tiered.EventRead:
		if i := resultIndex(e.Result); i >= 0 && e.Keys > 0 {
			o.space(e.Namespace).local(o, e.Op).reads[i].Add(uint64(e.Keys))
		}
	case tiered.EventRedis:
		m := o.measure(e.Namespace, shapeRedis, e.Op, errorType(e.Err))
		o.ins.redisDuration.Record(bg, e.Duration.Seconds(), m.rec...)
	case tiered.EventLoad:
		m := o.measure(e.Namespace, shapeOp, e.Op, errorType(e.Err))
		o.ins.loadDuration.Record(bg, e.Duration.Seconds(), m.rec...)
	case tiered.EventBatch:
		m := o.measure(e.Namespace, shapeOp, e.Op, errType{})
		o.ins.batchSize.Record(bg, int64(e.Keys), m.rec...)
	case tiered.EventInvalidation:
		scope := "keys"
		if e.Op != "" {
			scope = e.Op
		}
		m := o.measure(e.Namespace, shapeScope, scope, errType{})
		o.ins.invalidations.Add(bg, 1, m.add...)
		if e.Duration >= 0 {
			m = o.measure(e.Namespace, shapeNamespace, "", errType{})
			o.ins.lag.Record(bg, e.Duration.Seconds(), m.rec...)
		}
	case tiered.EventSubscription:
		s := o.space(e.Namespace)
		switch e.State {
		case tiered.StateSubscribed, tiered.StateRepaired:
			s.up.Store(1)
		case tiered.StateBroken:
			s.up.Store(0)
		}
		m := o.measure(e.Namespace, shapeState, e.State.String(), errorType(e.Err))
		o.ins.subscriptionEvents.Add(bg, 1, m.add...)
	case tiered.EventBypass:
		if e.Keys > 0 {
			m := o.measure(e.Namespace, shapeReason, e.Op, errType{})
			o.ins.bypasses.Add(bg, int64(e.Keys), m.add...)
		}
	case tiered.EventStale:
		m := o.measure(e.Namespace, shapeOp, e.Op, errorType(e.Err))
		if e.Keys > 0 {
			o.ins.staleServed.Add(bg, int64(e.Keys), m.add...)
		}
		if e.Duration >= 0 {
			o.ins.staleAge.Record(bg, e.Duration.Seconds(), m.rec...)
		}
	}
}
