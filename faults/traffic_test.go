package faults

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// The traffic's shape. Every call gets a context with callTimeout.
const (
	nKeys       = 8
	readersPer  = 2                      // reader goroutines per instance
	readPause   = 100 * time.Microsecond // between two reads of one reader
	writePause  = time.Millisecond       // between two writes of one writer
	callTimeout = 200 * time.Millisecond
)

// op is the kind of a call.
type op uint8

const (
	opGet op = iota
	opSet
	opDelete
)

// sample is one call. Times are nanoseconds since fixture.base (monotonic).
type sample struct {
	start, end, deadline int64
	version              int64 // a Get's result: the version read, 0 for ErrNotFound
	err                  string
	op                   op
	inst, key, phase     uint8
}

// ack is a version of a key whose Set returned nil, at (after the return).
type ack struct {
	version, at int64
	inst        uint8
}

// keyState is one key's history. A writer holds mu across its whole Set, so
// that versions reach Redis in the order of their numbers and a newer number
// is always the newer value: without it, two instances' Sets of one key could
// land in either order, and a read of the lower number would not be stale.
type keyState struct {
	mu      sync.Mutex
	version atomic.Int64 // the last version handed out; written under mu
	acks    []ack        // guarded by mu: in version order, so at ascends too
	failed  []int64      // guarded by mu: versions whose Set returned an error
}

// fixture is the suite's state: the instances, the keys' histories and the
// samples of every call.
type fixture struct {
	base    time.Time
	insts   []*tiered.Cache[string]
	hubs    []*tiered.Hub           // each instance's
	clients []redis.UniversalClient // each instance's
	names   []string                // each instance's client name, for KillPubSub
	keys    [nKeys]keyState
	phase   atomic.Int32 // index of the phase running now

	stop    atomic.Bool // ends the traffic
	stalls  *stalls     // when the process could not run; nil: not watched
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples [][]sample // guarded by mu: one slice per finished goroutine
}

func (f *fixture) now() int64 { return int64(time.Since(f.base)) }

func keyName(k int) string { return "k" + strconv.Itoa(k) }

// call runs fn under a fresh context with callTimeout, and returns its
// sample with times, deadline, phase and error filled in.
func (f *fixture) call(o op, inst, key int, fn func(ctx context.Context) error) sample {
	s := sample{op: o, inst: uint8(inst), key: uint8(key), phase: uint8(f.phase.Load())}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	dl, _ := ctx.Deadline()
	err := fn(ctx)
	end := time.Now()
	cancel()
	s.start, s.end, s.deadline = int64(start.Sub(f.base)), int64(end.Sub(f.base)), int64(dl.Sub(f.base))
	if err != nil {
		s.err = errorKind(err)
	}
	return s
}

// start runs every instance's writer and readers until stopTraffic.
func (f *fixture) start() {
	for i := range f.insts {
		f.goLog(func(log *[]sample) { f.writer(i, log) })
		for range readersPer {
			f.goLog(func(log *[]sample) { f.reader(i, log) })
		}
	}
}

// goLog runs fn on a goroutine of the traffic and keeps the samples it logs.
// The channel is closed when fn has returned.
func (f *fixture) goLog(fn func(log *[]sample)) <-chan struct{} {
	done := make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(done)
		var log []sample
		fn(&log)
		f.mu.Lock()
		f.samples = append(f.samples, log)
		f.mu.Unlock()
	}()
	return done
}

// stopTraffic ends every traffic goroutine and waits for them. Idempotent.
func (f *fixture) stopTraffic() {
	f.stop.Store(true)
	f.wg.Wait()
	if f.stalls != nil {
		f.stalls.end()
	}
}

// writer writes increasing versions of random keys on instance i.
func (f *fixture) writer(i int, log *[]sample) {
	c := f.insts[i]
	for !f.stop.Load() {
		k := rand.IntN(nKeys)
		f.write(c, i, k, log)
		time.Sleep(writePause)
	}
}

// write sets key k to its next version on instance i and records the
// outcome; it returns the version and the Set's error.
func (f *fixture) write(c *tiered.Cache[string], i, k int, log *[]sample) (int64, error) {
	ks := &f.keys[k]
	ks.mu.Lock()
	defer ks.mu.Unlock()
	v := ks.version.Add(1)
	var err error
	s := f.call(opSet, i, k, func(ctx context.Context) error {
		err = c.Set(ctx, keyName(k), strconv.FormatInt(v, 10))
		return err
	})
	if err == nil {
		ks.acks = append(ks.acks, ack{version: v, at: s.end, inst: uint8(i)})
	} else {
		ks.failed = append(ks.failed, v)
	}
	*log = append(*log, s)
	return v, err
}

// reader reads random keys on instance i, every other one with GetMany,
// so that the batch path is judged by the same rules as Get.
func (f *fixture) reader(i int, log *[]sample) {
	c := f.insts[i]
	for n := 0; !f.stop.Load(); n++ {
		k := rand.IntN(nKeys)
		var v string
		s := f.call(opGet, i, k, func(ctx context.Context) (err error) {
			if n%2 == 0 {
				v, err = c.Get(ctx, keyName(k))
				return err
			}
			got, err := c.GetMany(ctx, []string{keyName(k)})
			var found bool
			v, found = got[keyName(k)]
			if err == nil && !found {
				err = tiered.ErrNotFound
			}
			return err
		})
		switch {
		case s.err == errNotFound:
			s.err, s.version = "", 0
		case s.err == "":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				s.err = "bad value " + strconv.Quote(v)
			}
			s.version = n
		}
		*log = append(*log, s)
		time.Sleep(readPause)
	}
}

// storm writes large values under long keys on instance i, and deletes them
// in batches, until stop is set. Invalidation messages carry keys, not
// values: a Delete of a batch is one message of about 40 KB, more than a
// subscriber's 16 KB reply buffer, so with a small pub/sub output-buffer
// limit Redis drops every subscriber it publishes to.
func (f *fixture) storm(i int, stop *atomic.Bool, log *[]sample) {
	const batch, keyLen, valueLen = 200, 200, 32 << 10
	c := f.insts[i]
	value := strings.Repeat("v", valueLen)
	for n := 0; !stop.Load(); {
		keys := make([]string, 0, batch)
		for range batch {
			k := "storm/" + strconv.Itoa(i) + "/" + strconv.Itoa(n) + "/"
			keys = append(keys, k+strings.Repeat("x", keyLen-len(k)))
			n++
		}
		for _, k := range keys {
			*log = append(*log, f.call(opSet, i, -1, func(ctx context.Context) error { return c.Set(ctx, k, value) }))
			if stop.Load() {
				break
			}
		}
		*log = append(*log, f.call(opDelete, i, -1, func(ctx context.Context) error { return c.Delete(ctx, keys...) }))
	}
}

// errNotFound is the kind of tiered.ErrNotFound, which a read may return.
const errNotFound = "not found"

// errDeadline is the kind of a ctx's deadline exceeded.
const errDeadline = "deadline exceeded"

// errorKind sorts an error into a few kinds for the report.
func errorKind(err error) string {
	var rerr redis.Error
	var nerr net.Error
	switch {
	case errors.Is(err, tiered.ErrNotFound):
		return errNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return errDeadline
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, tiered.ErrClosed):
		return "closed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "connection lost"
	case errors.As(err, &nerr) && nerr.Timeout():
		return "network timeout"
	case errors.As(err, &rerr):
		word, _, _ := strings.Cut(rerr.Error(), " ")
		return "redis " + word
	case strings.Contains(err.Error(), "pool timeout"):
		return "pool timeout"
	}
	return "other: " + err.Error()
}
