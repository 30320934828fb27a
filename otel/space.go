package tiercacheotel

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/tiercache/tiercache/tiered"
)

// space is what an Observer keeps for one namespace.
type space struct {
	ns   string
	opts []metric.ObserveOption // the namespace's attribute set, for subscription.up
	up   atomic.Int32           // subscription.up; -1 until a Subscribed or Broken

	// locals holds the local tier's counters by operation, measures the
	// attribute sets of the synchronous instruments. Both are copied on
	// write under Observer.mu: read without a lock, never modified once
	// stored.
	locals   atomic.Pointer[[]*localOp]
	measures atomic.Pointer[map[measureKey]*measure]
}

// localOp counts the local tier's answers to one operation of a namespace.
type localOp struct {
	op   string                 // read by every hit
	opts []metric.ObserveOption // its attribute set
	_    [64]byte               // keeps the fields above off the counters' cache lines
	hits counter
	miss counter

	// reads counts the op's keys that the local tier did not answer, by
	// result (see results); readOpts are the attribute sets of
	// tiercache.reads, by result, local first.
	reads    [len(results)]atomic.Uint64
	readOpts [len(results) + 1][]metric.ObserveOption
}

// results are the values of tiercache.read.result besides "local", in the
// order of localOp.reads.
var results = [...]string{tiered.ResultRemote, tiered.ResultLoader, tiered.ResultMiss, tiered.ResultStale, tiered.ResultError}

// resultIndex is the index of result in results, or -1.
func resultIndex(result string) int {
	for i, r := range results {
		if r == result {
			return i
		}
	}
	return -1
}

// counter is split over padded cells, so that goroutines on different cores
// rarely add to the same cache line (as the local tier counts its hits).
// Cells are 128 bytes apart: whatever the alignment of the allocation, no
// two of them share a 64-byte line.
type counter [8]struct {
	n atomic.Uint64
	_ [120]byte
}

func (c *counter) add(n uint64) { c[rand.Uint32()%uint32(len(c))].n.Add(n) }

func (c *counter) load() uint64 {
	var n uint64
	for i := range c {
		n += c[i].n.Load()
	}
	return n
}

// shape says which attributes a measurement carries besides the namespace
// and the extra ones.
type shape uint8

const (
	shapeNamespace shape = iota // nothing more
	shapeRedis                  // db.system.name, db.operation.name
	shapeOp                     // tiercache.operation
	shapeScope                  // tiercache.invalidation.scope
	shapeState                  // tiercache.subscription.state
	shapeReason                 // tiercache.bypass.reason
	shapeRead                   // tiercache.operation, tiercache.read.result (value "op\x00result")
)

// measureKey identifies an attribute set within a namespace: its shape, the
// value of the shape's attribute, and error.type ("" for none), which is
// also db.response.status_code when status is set.
type measureKey struct {
	shape   shape
	value   string
	errType string
	status  bool
}

// measure is an attribute set as the options of synchronous instruments,
// built once: passing a kept slice allocates nothing per measurement.
type measure struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// spaces are the namespaces an Observer has seen. The first few are also in
// a list, scanned before the map: a cache passes its namespace as the same
// string every time, and comparing a string with itself stops at the
// pointers, which is cheaper than hashing it.
type spaces struct {
	list   []*space // the first maxListed spaces
	byName map[string]*space
}

const maxListed = 8

// space returns the state of namespace ns, adding it on first use.
func (o *Observer) space(ns string) *space {
	sp := o.spaces.Load()
	for _, s := range sp.list {
		if s.ns == ns {
			return s
		}
	}
	if s := sp.byName[ns]; s != nil {
		return s
	}
	return o.addSpace(ns)
}

func (o *Observer) addSpace(ns string) *space {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.spaces.Load()
	if s := old.byName[ns]; s != nil {
		return s
	}
	s := &space{ns: ns}
	s.opts = []metric.ObserveOption{metric.WithAttributeSet(o.attrs(s, measureKey{}))}
	s.up.Store(-1)
	s.locals.Store(&[]*localOp{})
	s.measures.Store(&map[measureKey]*measure{})
	next := &spaces{list: old.list, byName: make(map[string]*space, len(old.byName)+1)}
	for name, sp := range old.byName {
		next.byName[name] = sp
	}
	next.byName[ns] = s
	if len(old.list) < maxListed {
		next.list = append(old.list[:len(old.list):len(old.list)], s)
	}
	o.spaces.Store(next)
	return s
}

// local returns the counters of op in s, adding them on first use.
func (s *space) local(o *Observer, op string) *localOp {
	for _, l := range *s.locals.Load() {
		if l.op == op {
			return l
		}
	}
	return o.addLocal(s, op)
}

func (o *Observer) addLocal(s *space, op string) *localOp {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *s.locals.Load()
	for _, l := range old {
		if l.op == op {
			return l
		}
	}
	// op is kept as given, not cloned: the caches pass string constants, and
	// comparing a string with itself stops at the pointers.
	l := &localOp{op: op}
	l.opts = []metric.ObserveOption{metric.WithAttributeSet(o.attrs(s, measureKey{shape: shapeOp, value: op}))}
	for i, r := range append([]string{"local"}, results[:]...) {
		set := o.attrs(s, measureKey{shape: shapeRead, value: op + "\x00" + r})
		l.readOpts[i] = []metric.ObserveOption{metric.WithAttributeSet(set)}
	}
	locals := append(old[:len(old):len(old)], l)
	s.locals.Store(&locals)
	return l
}

// measure returns the attribute set of k in namespace ns, building it on
// first use.
func (o *Observer) measure(ns string, sh shape, value string, et errType) *measure {
	s := o.space(ns)
	k := measureKey{shape: sh, value: value, errType: et.name, status: et.status && sh == shapeRedis}
	if m := (*s.measures.Load())[k]; m != nil {
		return m
	}
	return o.addMeasure(s, k)
}

func (o *Observer) addMeasure(s *space, k measureKey) *measure {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *s.measures.Load()
	if m := old[k]; m != nil {
		return m
	}
	// Keep no part of a longer string (an error's text) alive.
	k.value, k.errType = strings.Clone(k.value), strings.Clone(k.errType)
	opt := metric.WithAttributeSet(o.attrs(s, k))
	m := &measure{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
	measures := make(map[measureKey]*measure, len(old)+1)
	for ok, om := range old {
		measures[ok] = om
	}
	measures[k] = m
	s.measures.Store(&measures)
	return m
}

// attrs builds the attribute set of k in s.
func (o *Observer) attrs(s *space, k measureKey) attribute.Set {
	kv := make([]attribute.KeyValue, 0, 4+len(o.extra))
	kv = append(kv, keyNamespace.String(s.ns))
	switch k.shape {
	case shapeRedis:
		kv = append(kv, semconv.DBSystemNameRedis, keyDBOperation.String(k.value))
	case shapeOp:
		kv = append(kv, keyOperation.String(k.value))
	case shapeScope:
		kv = append(kv, keyScope.String(k.value))
	case shapeState:
		kv = append(kv, keyState.String(k.value))
	case shapeReason:
		kv = append(kv, keyReason.String(k.value))
	case shapeRead:
		op, result, _ := strings.Cut(k.value, "\x00")
		kv = append(kv, keyOperation.String(op), keyResult.String(result))
	}
	if k.errType != "" {
		kv = append(kv, keyErrorType.String(k.errType))
	}
	if k.status {
		kv = append(kv, keyDBStatus.String(k.errType))
	}
	kv = append(kv, o.extra...)
	return attribute.NewSet(kv...)
}
