package tiercacheotel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tiercache/tiercache/internal/leakcheck"
	tiercacheotel "github.com/tiercache/tiercache/otel"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var bg = context.Background()

// newObserver returns an Observer on a MeterProvider of its own, and the
// reader that collects from it.
func newObserver(t testing.TB, opts tiercacheotel.Options) (*tiercacheotel.Observer, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(bg) })
	opts.MeterProvider = mp
	obs, err := tiercacheotel.NewObserver(opts)
	if err != nil {
		t.Fatal(err)
	}
	return obs, r
}

// metrics is one collection, with lookups that fail the test when what
// they look for is absent or not as expected.
type metrics struct {
	t  *testing.T
	rm metricdata.ResourceMetrics
}

func collect(t *testing.T, r *sdkmetric.ManualReader) metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(bg, &rm); err != nil {
		t.Fatal(err)
	}
	return metrics{t: t, rm: rm}
}

// names are the instruments that have data points.
func (m metrics) names() []string {
	var out []string
	for _, sm := range m.rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			out = append(out, x.Name)
		}
	}
	return out
}

// get returns instrument name, checking its scope and unit.
func (m metrics) get(name, unit string) metricdata.Metrics {
	m.t.Helper()
	for _, sm := range m.rm.ScopeMetrics {
		for _, x := range sm.Metrics {
			if x.Name != name {
				continue
			}
			if sm.Scope.Name != tiercacheotel.ScopeName {
				m.t.Errorf("%s: scope %q, want %q", name, sm.Scope.Name, tiercacheotel.ScopeName)
			}
			if x.Unit != unit {
				m.t.Errorf("%s: unit %q, want %q", name, x.Unit, unit)
			}
			return x
		}
	}
	m.t.Fatalf("no data for %s; have %v", name, m.names())
	return metricdata.Metrics{}
}

// point finds the data point with exactly the attributes want.
func point[P any](t *testing.T, name string, pts []P, attrs func(P) attribute.Set, want []attribute.KeyValue) (P, bool) {
	t.Helper()
	ws := attribute.NewSet(want...)
	for _, p := range pts {
		if a := attrs(p); a.Equals(&ws) {
			return p, true
		}
	}
	var have []string
	for _, p := range pts {
		s := attrs(p)
		have = append(have, s.Encoded(attribute.DefaultEncoder()))
	}
	t.Logf("%s: no point {%s}; have {%s}", name, ws.Encoded(attribute.DefaultEncoder()), strings.Join(have, "} {"))
	var zero P
	return zero, false
}

// sum is the value of counter name at attrs (a cumulative, monotonic sum).
func (m metrics) sum(name, unit string, attrs ...attribute.KeyValue) int64 {
	m.t.Helper()
	s, ok := m.get(name, unit).Data.(metricdata.Sum[int64])
	if !ok {
		m.t.Fatalf("%s is not an int64 sum", name)
	}
	if !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		m.t.Errorf("%s: monotonic %v, temporality %v", name, s.IsMonotonic, s.Temporality)
	}
	p, ok := point(m.t, name, s.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes }, attrs)
	if !ok {
		m.t.Fatalf("%s: no data point with those attributes", name)
	}
	return p.Value
}

// hasSum reports whether counter name has a point at attrs.
func (m metrics) hasSum(name, unit string, attrs ...attribute.KeyValue) bool {
	m.t.Helper()
	s, _ := m.get(name, unit).Data.(metricdata.Sum[int64])
	_, ok := point(m.t, name, s.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes }, attrs)
	return ok
}

// sumWhere adds up the points of counter name whose attributes match, and
// returns their attribute sets.
func (m metrics) sumWhere(name, unit string, match func(attribute.Set) bool) (total int64, sets []attribute.Set) {
	m.t.Helper()
	s, ok := m.get(name, unit).Data.(metricdata.Sum[int64])
	if !ok {
		m.t.Fatalf("%s is not an int64 sum", name)
	}
	for _, p := range s.DataPoints {
		if match(p.Attributes) {
			total += p.Value
			sets = append(sets, p.Attributes)
		}
	}
	return total, sets
}

// gauge is the value of gauge name at attrs.
func (m metrics) gauge(name, unit string, attrs ...attribute.KeyValue) int64 {
	m.t.Helper()
	g, ok := m.get(name, unit).Data.(metricdata.Gauge[int64])
	if !ok {
		m.t.Fatalf("%s is not an int64 gauge", name)
	}
	p, ok := point(m.t, name, g.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes }, attrs)
	if !ok {
		m.t.Fatalf("%s: no data point with those attributes", name)
	}
	return p.Value
}

// histPoints are every point of histogram name, of numbers N.
func histPoints[N int64 | float64](m metrics, name, unit string) []metricdata.HistogramDataPoint[N] {
	m.t.Helper()
	h, ok := m.get(name, unit).Data.(metricdata.Histogram[N])
	if !ok {
		m.t.Fatalf("%s is not a histogram of %T", name, *new(N))
	}
	return h.DataPoints
}

// histAt is the point of histogram name, of numbers N, at attrs.
func histAt[N int64 | float64](m metrics, name, unit string, attrs []attribute.KeyValue) (metricdata.HistogramDataPoint[N], bool) {
	m.t.Helper()
	return point(m.t, name, histPoints[N](m, name, unit),
		func(p metricdata.HistogramDataPoint[N]) attribute.Set { return p.Attributes }, attrs)
}

// hist is the point of float64 histogram name at attrs.
func (m metrics) hist(name, unit string, attrs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	m.t.Helper()
	p, ok := histAt[float64](m, name, unit, attrs)
	if !ok {
		m.t.Fatalf("%s: no data point with those attributes", name)
	}
	return p
}

// intHist is the point of int64 histogram name at attrs.
func (m metrics) intHist(name, unit string, attrs ...attribute.KeyValue) metricdata.HistogramDataPoint[int64] {
	m.t.Helper()
	p, ok := histAt[int64](m, name, unit, attrs)
	if !ok {
		m.t.Fatalf("%s: no data point with those attributes", name)
	}
	return p
}

// bounds returns min and max of a histogram point, failing when unset.
func bounds(t *testing.T, name string, p metricdata.HistogramDataPoint[float64]) (lo, hi float64) {
	t.Helper()
	mn, ok1 := p.Min.Value()
	mx, ok2 := p.Max.Value()
	if !ok1 || !ok2 {
		t.Fatalf("%s: no min or max", name)
	}
	return mn, mx
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Attribute shorthands.
func ns(n string) attribute.KeyValue       { return attribute.String("tiercache.namespace", n) }
func op(o string) attribute.KeyValue       { return attribute.String("tiercache.operation", o) }
func dbOp(o string) attribute.KeyValue     { return attribute.String("db.operation.name", o) }
func errType(e string) attribute.KeyValue  { return attribute.String("error.type", e) }
func dbStatus(c string) attribute.KeyValue { return attribute.String("db.response.status_code", c) }
func state(s string) attribute.KeyValue    { return attribute.String("tiercache.subscription.state", s) }
func scope(s string) attribute.KeyValue    { return attribute.String("tiercache.invalidation.scope", s) }
func reason(r string) attribute.KeyValue   { return attribute.String("tiercache.bypass.reason", r) }
func redisSystem() attribute.KeyValue      { return attribute.String("db.system.name", "redis") }
