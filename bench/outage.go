package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/tiered"
)

// The outage scenario's key sets: held keys are read and never written
// after the warm-up, so every reader holds them when the server stops; hot
// keys are what the writer changes.
const (
	outageHeldKeys = 200
	outageHotKeys  = 20
	outageManyKeys = 8 // keys per GetMany: 6 held, 2 hot
)

// goRedisProbe is how long a go-redis pool whose dials failed PoolSize times
// in a row waits between probes of the server (pool.tryDial); until a probe
// succeeds, every call fails at once with the last dial error.
const goRedisProbe = time.Second

// errBackendDown is what the outage scenario's loaders return: the source of
// truth is down too.
var errBackendDown = errors.New("backend down too")

// Phases of a call, by when it began.
const (
	phaseBefore       = iota // before the server stopped
	phaseOutage              // while it was stopped
	phaseAfter               // after it was started again, before this instance's subscription was confirmed again
	phaseResubscribed        // after that
	phases
)

// ReadCounts counts the keys that reader calls asked for in one phase, and
// what became of them.
type ReadCounts struct {
	Calls      int `json:"calls"`
	Keys       int `json:"keys"`
	Values     int `json:"values"`    // values returned (stale ones included)
	Stale      int `json:"stale"`     // values (or absences) served stale: Stats.StaleServed
	NotFound   int `json:"not_found"` // ErrNotFound, or left out of a GetMany
	Errors     int `json:"errors"`
	HeldKeys   int `json:"held_keys"`
	HeldErrors int `json:"held_errors"`
	HotKeys    int `json:"hot_keys"`
	HotErrors  int `json:"hot_errors"`
}

func (c *ReadCounts) add(d ReadCounts) {
	c.Calls += d.Calls
	c.Keys += d.Keys
	c.Values += d.Values
	c.Stale += d.Stale
	c.NotFound += d.NotFound
	c.Errors += d.Errors
	c.HeldKeys += d.HeldKeys
	c.HeldErrors += d.HeldErrors
	c.HotKeys += d.HotKeys
	c.HotErrors += d.HotErrors
}

// OutageSide is one side of the outage scenario: every instance with the
// same StaleIfError.
type OutageSide struct {
	StaleIfError time.Duration      `json:"stale_if_error_ns"`
	Readers      int                `json:"reader_instances"`
	Phases       [phases]ReadCounts `json:"phases"` // before, outage, after the start, after resubscribing
	Errors       [phases][]string   `json:"error_examples"`
	StaleEvents  int                `json:"stale_event_keys"` // keys of the readers' EventStale events
	LoaderCalls  int                `json:"loader_calls"`
	WritesOK     [phases]int        `json:"writes_ok"` // the writer's, by phase (after the start: phaseAfter)
	WritesFailed [phases]int        `json:"writes_failed"`

	Wrong         int      `json:"wrong_stale_values"`
	WrongExamples []string `json:"wrong_stale_examples,omitempty"`
	// Answered counts values served stale in calls whose Redis round trips
	// all succeeded (as the client's hook saw them).
	Answered int `json:"stale_with_redis_answering"`
	// Misreported counts calls whose client saw a failed round trip while
	// the cache observed only EventRedis without an error.
	Misreported   int    `json:"event_redis_without_error_on_failure"`
	MisreportedOp string `json:"event_redis_misreported_op,omitempty"`
	// HeldErrorExamples are the first errors for held keys in the outage.
	HeldErrorExamples []string `json:"held_error_examples,omitempty"`

	Stopping     time.Duration   `json:"stopping_ns"`     // Stop called → the server gone
	Stopped      time.Duration   `json:"stopped_ns"`      // the server gone → it answered PING again
	ServerUp     time.Duration   `json:"server_up_ns"`    // start → PONG
	Restored     time.Duration   `json:"restored_ns"`     // start → the bench's rewrite of the lost data (redis-server)
	Resubscribed time.Duration   `json:"resubscribed_ns"` // start → every instance Subscribed again; -1: not all
	LastFail     time.Duration   `json:"last_fail_ns"`    // start → the last failed round trip, of any instance
	Reconverge   time.Duration   `json:"reconverge_ns"`   // start → every reader Subscribed and reading the writer's newest value; -1: not within OutageCap
	PerInstance  []time.Duration `json:"reconverge_per_reader_ns"`
}

// label names the side: "StaleIfError 10s" or "StaleIfError off".
func (s OutageSide) label() string {
	if s.StaleIfError <= 0 {
		return "StaleIfError off"
	}
	return "StaleIfError " + s.StaleIfError.String()
}

// OutageResult is the outage scenario.
type OutageResult struct {
	Server      string        `json:"server"`
	KeepsData   bool          `json:"keeps_data"`
	Before      time.Duration `json:"before_ns"`
	For         time.Duration `json:"outage_ns"`
	HealthCheck time.Duration `json:"health_check_ns"`
	MaxBackoff  time.Duration `json:"max_backoff_ns"`
	ReadEvery   time.Duration `json:"read_every_ns"`
	WriteEvery  time.Duration `json:"write_every_ns"`
	On          OutageSide    `json:"stale_if_error_on"`
	Off         OutageSide    `json:"stale_if_error_off"`
}

// Outage stops a Redis server of the scenario's own (see NewOwnServer) for
// cfg.OutageFor in the middle of traffic, twice: with every instance's
// StaleIfError at cfg.OutageStale, then at 0. Readers (one goroutine per
// instance, max(cfg.Instances, 2) instances, one call every
// cfg.OutageReadEvery: Gets, some GetManys, some Fetches whose loader
// fails) read warm keys, and a writer instance Sets the hot ones every
// cfg.OutageWriteEvery. It counts, by phase, the errors returned and the
// stale values served, checks every stale value against what its instance
// last held, and times the reconvergence after the server starts again.
func Outage(ctx context.Context, e *Env, cfg Config) (Result, error) {
	r := &OutageResult{
		Before: cfg.OutageBefore, For: cfg.OutageFor, HealthCheck: cfg.OutageHealthCheck,
		MaxBackoff: cfg.OutageBackoff, ReadEvery: cfg.OutageReadEvery, WriteEvery: cfg.OutageWriteEvery,
	}
	goRedisLog.quiet.Add(1) // the dial errors of a server stopped on purpose
	defer goRedisLog.quiet.Add(-1)
	var err error
	for i, stale := range []time.Duration{cfg.OutageStale, 0} {
		side := &r.On
		if i == 1 {
			side = &r.Off
		}
		*side, err = outageSide(ctx, e, cfg, stale, r)
		if errors.Is(err, errNoRedisServer) {
			return Skipped{Scenario: "outage", Reason: err.Error() + ": it stops a server of its own, never the run's"}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	cfg.Progress.Done()
	return r, nil
}

// outageObserver follows one instance through the outage: its Redis calls
// as the cache reports them (EventRedis), its subscription confirmed again,
// and the stale values it served. Times are since base (monotonic).
type outageObserver struct {
	base       time.Time
	start      atomic.Int64 // when the server was started again; 0 before
	ok, failed atomic.Int64 // EventRedis without and with an error
	subscribed atomic.Int64 // the first Subscribed after start
	broken     atomic.Int64 // the last Broken observed
	gaps       atomic.Int64 // Gap events (a message that did not decode: the local tier purged)
	staleKeys  atomic.Int64
}

// failHook is a go-redis hook that counts the round trips of a client in
// which a command failed (redis.Nil is an answer), and keeps the time of the
// last after the start: what the client saw, whatever the cache reports.
type failHook struct {
	clock    *outageClock
	failed   atomic.Int64
	lastFail atomic.Int64 // since clock.base; after clock.restart only
}

func (h *failHook) fail() {
	h.failed.Add(1)
	if h.clock.restart.Load() != 0 {
		h.lastFail.Store(h.clock.now())
	}
}

func failed(err error) bool { return err != nil && !errors.Is(err, redis.Nil) }

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(err) || failed(cmd.Err()) {
			h.fail()
		}
		return err
	}
}

func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		bad := failed(err)
		for _, c := range cmds {
			bad = bad || failed(c.Err())
		}
		if bad {
			h.fail()
		}
		return err
	}
}

func (o *outageObserver) now() int64 { return max(int64(time.Since(o.base)), 1) }

func (o *outageObserver) Observe(ev tiered.Event) {
	switch ev.Kind {
	case tiered.EventRedis:
		if ev.Err == nil {
			o.ok.Add(1)
			return
		}
		o.failed.Add(1)
	case tiered.EventSubscription:
		switch {
		case ev.State == tiered.StateSubscribed && o.start.Load() != 0:
			o.subscribed.CompareAndSwap(0, o.now())
		case ev.State == tiered.StateBroken:
			o.broken.Store(o.now())
		case ev.State == tiered.StateGap:
			o.gaps.Add(1)
		}
	case tiered.EventStale:
		o.staleKeys.Add(int64(ev.Keys))
	}
}

// ownInstance is a cache on a Hub of its own over a client of its own, all
// three closed by Close, on the scenario's own server.
type ownInstance struct {
	*tiered.Cache[string]
	hub    *tiered.Hub
	client *redis.Client
	obs    *outageObserver
	hook   *failHook
}

// failFast are the options of every outage client: no retries, one dial
// attempt of at most 200ms. By default go-redis dials 5 times 100ms apart
// before it reports a server down, so that each call on a stopped server
// takes about 0.5s.
func failFast(addr string) *redis.Options {
	return &redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: 10 * time.Millisecond}
}

func newOwnInstance(ctx context.Context, addr, ns string, cfg Config, stale time.Duration, clock *outageClock) (*ownInstance, error) {
	in := &ownInstance{client: redis.NewClient(failFast(addr)), obs: &outageObserver{base: clock.base}, hook: &failHook{clock: clock}}
	in.client.AddHook(in.hook)
	var err error
	in.hub, err = tiered.NewHub(in.client, tiered.HubOptions{
		HealthCheck: cfg.OutageHealthCheck, MaxBackoff: cfg.OutageBackoff, Observer: in.obs})
	if err != nil {
		_ = in.client.Close()
		return nil, err
	}
	in.Cache, err = tiered.NewCache(in.hub, tiered.Options[string]{
		Namespace: ns, TTL: keyTTL, LocalSize: tiered.DefaultLocalSize, StaleIfError: stale})
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = in.WaitReady(wctx)
		cancel()
	}
	if err != nil {
		_ = in.Close()
		return nil, err
	}
	return in, nil
}

// Close closes the cache, the Hub and the client.
func (in *ownInstance) Close() error {
	var err error
	if in.Cache != nil {
		err = in.Cache.Close()
	}
	return errors.Join(err, in.hub.Close(), in.client.Close())
}

// versioned is the value of key at version v: "<key>#<v>".
func versioned(key string, v int) string { return key + "#" + strconv.Itoa(v) }

// versionOf is the version of a value made by versioned, or -1.
func versionOf(s string) int {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return -1
	}
	v, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return -1
	}
	return v
}

// ack is the writer's newest acknowledged write.
type ack struct {
	key string
	ver int
	at  int64 // since base
}

// outageClock is what every goroutine of a side needs to know of its
// timeline: when the server stopped and started again (since base; 0:
// not yet).
type outageClock struct {
	base          time.Time
	stop, restart atomic.Int64
}

func (c *outageClock) now() int64 { return max(int64(time.Since(c.base)), 1) }

// phase is the phase of a call that begins at t on an instance whose
// subscription was confirmed again at subscribed (0: not yet).
func (c *outageClock) phase(t, subscribed int64) int {
	stop, restart := c.stop.Load(), c.restart.Load()
	switch {
	case stop == 0 || t < stop:
		return phaseBefore
	case restart == 0 || t < restart:
		return phaseOutage
	case subscribed == 0 || t < subscribed:
		return phaseAfter
	}
	return phaseResubscribed
}

// reader is one reader instance's goroutine state, touched by it alone
// until the side ends.
type reader struct {
	idx      int
	in       *ownInstance
	counts   [phases]ReadCounts
	maxSeen  map[string]int // the newest version this instance returned for each key
	wrong    []string
	nwrong   int
	answered int // stale values served in calls whose Redis calls all succeeded
	// misreported counts calls in which the client saw a failed round trip
	// but the cache observed only Redis calls without error (EventRedis).
	misreported   int
	misreportedOp string           // the first such call's method
	heldErrs      []string         // the first held keys that failed in the outage
	errs          [phases][]string // the first distinct errors of each phase
	loads         int
	// converged is when this instance, Subscribed, first read the writer's
	// newest value written after the start (since base; 0: not yet).
	converged atomic.Int64
}

func outageSide(ctx context.Context, e *Env, cfg Config, stale time.Duration, r *OutageResult) (OutageSide, error) {
	side := OutageSide{StaleIfError: stale, Readers: max(cfg.Instances, 2), Reconverge: -1}
	label := side.label()
	cfg.Progress.Update("outage, %s: starting a server of its own", label)
	srv, err := NewOwnServer(ctx, e)
	if err != nil {
		return side, err
	}
	defer srv.Close()
	r.Server, r.KeepsData = srv.Describe(), srv.KeepsData()
	ns := e.Namespace
	held, hot := keys("outage:held:", outageHeldKeys), keys("outage:hot:", outageHotKeys)
	all := append(append([]string{}, held...), hot...)
	hotIndex := make(map[string]int, len(hot))
	for i, k := range hot {
		hotIndex[k] = i
	}
	isHeld := func(k string) bool { return strings.HasPrefix(k, "outage:held:") }
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	// lastAck holds each hot key's newest acknowledged version, for the
	// rewrite of a server that comes back empty.
	lastAck := make([]atomic.Int64, len(hot))
	populate := func(ctx context.Context, nx bool) error {
		_, err := admin.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range all {
				v := 0
				if i, ok := hotIndex[k]; ok {
					v = int(lastAck[i].Load())
				}
				if nx {
					p.SetNX(ctx, ns+":"+k, versioned(k, v), keyTTL)
				} else {
					p.Set(ctx, ns+":"+k, versioned(k, v), keyTTL)
				}
			}
			return nil
		})
		return err
	}
	if err := populate(ctx, false); err != nil {
		return side, fmt.Errorf("outage: populate: %w", err)
	}

	clock := &outageClock{base: time.Now()}
	var ins []*ownInstance
	defer func() {
		for _, in := range ins {
			_ = in.Close()
		}
	}()
	for range side.Readers + 1 {
		in, err := newOwnInstance(ctx, srv.Addr(), ns, cfg, stale, clock)
		if err != nil {
			return side, fmt.Errorf("outage: %w", err)
		}
		ins = append(ins, in)
	}
	writer, readerIns := ins[0], ins[1:]
	readers := make([]*reader, len(readerIns))
	for i, in := range readerIns {
		if err := warmLocal(ctx, in.Cache, all); err != nil {
			return side, fmt.Errorf("outage: warm-up: %w", err)
		}
		readers[i] = &reader{idx: i, in: in, maxSeen: make(map[string]int, len(all))}
		for _, k := range all {
			readers[i].maxSeen[k] = 0
		}
	}

	var (
		h       halt
		newest  atomic.Pointer[ack]
		wg      sync.WaitGroup
		writerW [2][phases]int // [ok, failed] by phase
	)
	wg.Go(func() {
		next := time.Now()
		for i := 0; !h.done(); i++ {
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
			next = next.Add(cfg.OutageWriteEvery)
			k, ver := hot[i%len(hot)], i+1
			ph := clock.phase(clock.now(), 0) // before, outage or after
			if err := writer.Set(ctx, k, versioned(k, ver)); err != nil {
				if errors.Is(err, tiered.ErrClosed) || ctx.Err() != nil {
					h.fail(err)
					return
				}
				writerW[1][ph]++
				continue
			}
			writerW[0][ph]++
			lastAck[i%len(hot)].Store(int64(ver))
			newest.Store(&ack{key: k, ver: ver, at: clock.now()})
		}
	})
	for _, rd := range readers {
		wg.Go(func() {
			if err := rd.run(ctx, cfg, clock, &h.stopped, &newest, held, hot, isHeld); err != nil {
				h.fail(err)
			}
		})
	}
	finish := func() error {
		h.stop()
		wg.Wait()
		if err := h.err(); err != nil {
			return err
		}
		return ctx.Err()
	}
	sleepCtx := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}

	cfg.Progress.Update("outage, %s: traffic for %v, then the server stops for %v", label, cfg.OutageBefore, cfg.OutageFor)
	if !sleepCtx(cfg.OutageBefore) || h.done() {
		return side, finish()
	}
	stopAt := time.Now()
	if err := srv.Stop(); err != nil {
		_ = finish()
		return side, err
	}
	// The outage begins once the server is gone (a redis-server may answer
	// for a while after SIGTERM).
	side.Stopping = time.Since(stopAt)
	clock.stop.Store(clock.now())
	cfg.Progress.Update("outage, %s: server stopped for %v", label, cfg.OutageFor)
	if !sleepCtx(time.Until(stopAt.Add(side.Stopping+cfg.OutageFor))) || h.done() {
		return side, finish()
	}
	startAt := clock.now()
	clock.restart.Store(startAt)
	for _, in := range ins {
		in.obs.start.Store(startAt)
	}
	if err := srv.Start(ctx); err != nil {
		_ = finish()
		return side, err
	}
	side.ServerUp = time.Duration(clock.now() - startAt)
	side.Stopped = time.Since(stopAt) - side.Stopping
	if !srv.KeepsData() {
		// A redis-server without persistence comes back empty: write the
		// keys again as they were (a hot key's newest acknowledged
		// version; SET NX, so that a write of the writer's since wins).
		if err := populate(ctx, true); err != nil {
			_ = finish()
			return side, fmt.Errorf("outage: rewrite the data lost in the restart: %w", err)
		}
		side.Restored = time.Duration(clock.now() - startAt)
	}
	cfg.Progress.Update("outage, %s: server started again; waiting for every instance to reconverge", label)
	converged := func() bool {
		for _, rd := range readers {
			if rd.converged.Load() == 0 {
				return false
			}
		}
		return true
	}
	_ = waitUntil(ctx, cfg.OutageCap, func() bool { return converged() || h.done() })
	if converged() {
		var worst int64
		for _, rd := range readers {
			worst = max(worst, rd.converged.Load()-startAt)
		}
		side.Reconverge = time.Duration(worst)
	}
	if !sleepCtx(cfg.OutageAfter) {
		return side, finish()
	}
	if err := finish(); err != nil {
		return side, err
	}

	// Gather.
	side.WritesOK, side.WritesFailed = writerW[0], writerW[1]
	for _, in := range ins {
		if s := in.obs.subscribed.Load(); s != 0 {
			side.Resubscribed = max(side.Resubscribed, time.Duration(s-startAt))
		} else {
			side.Resubscribed = -1
		}
		if lf := in.hook.lastFail.Load(); lf != 0 {
			side.LastFail = max(side.LastFail, time.Duration(lf-startAt))
		}
	}
	for _, rd := range readers {
		for p := range side.Phases {
			side.Phases[p].add(rd.counts[p])
		}
		side.Wrong += rd.nwrong
		side.Answered += rd.answered
		side.Misreported += rd.misreported
		side.HeldErrorExamples = append(side.HeldErrorExamples, rd.heldErrs...)
		if side.MisreportedOp == "" {
			side.MisreportedOp = rd.misreportedOp
		}
		side.WrongExamples = append(side.WrongExamples, rd.wrong...)
		side.LoaderCalls += rd.loads
		for p := range side.Errors {
			if len(side.Errors[p]) < 3 {
				side.Errors[p] = append(side.Errors[p], rd.errs[p]...)
			}
		}
		side.StaleEvents += int(rd.in.obs.staleKeys.Load())
		if c := rd.converged.Load(); c != 0 {
			side.PerInstance = append(side.PerInstance, time.Duration(c-startAt))
		} else {
			side.PerInstance = append(side.PerInstance, -1)
		}
	}
	if len(side.WrongExamples) > 3 {
		side.WrongExamples = side.WrongExamples[:3]
	}
	return side, nil
}

// causeText is err's text without the cache's `tiered: get "k" in
// namespace "ns": ` prefix.
func causeText(err error) string {
	msg := fmt.Sprint(err)
	if i := strings.Index(msg, `in namespace "`); i >= 0 {
		if j := strings.Index(msg[i+len(`in namespace "`):], `": `); j >= 0 {
			return msg[i+len(`in namespace "`)+j+3:]
		}
	}
	return msg
}

// opName names a reader's op: below 8 Get, 8 GetMany, 9 Fetch.
func opName(op int) string { return [...]string{"Get", "GetMany", "Fetch"}[min(max(op-7, 0), 2)] }

// run reads until stop: one call every cfg.OutageReadEvery, on a schedule.
// After the start, until converged, each call is a Get of the writer's
// newest key.
func (rd *reader) run(ctx context.Context, cfg Config, clock *outageClock, stop *atomic.Bool,
	newest *atomic.Pointer[ack], held, hot []string, isHeld func(string) bool) error {
	rng := rand.New(rand.NewPCG(uint64(rd.idx), 7))
	pick := func() string {
		if rng.IntN(4) == 0 {
			return hot[rng.IntN(len(hot))]
		}
		return held[rng.IntN(len(held))]
	}
	load := func(context.Context) (string, error) {
		rd.loads++
		return "", errBackendDown
	}
	next := time.Now()
	for !stop.Load() {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		next = next.Add(cfg.OutageReadEvery)
		t := clock.now()
		ph := clock.phase(t, rd.in.obs.subscribed.Load())
		var (
			probe *ack
			sub   bool
			op    = rng.IntN(10)
			ks    []string
		)
		if clock.restart.Load() != 0 && rd.converged.Load() == 0 {
			if a := newest.Load(); a != nil && a.at > clock.restart.Load() {
				probe, sub, op = a, rd.in.Subscribed(), 0
				ks = []string{a.key}
			}
		}
		if ks == nil {
			switch {
			case op < 8:
				ks = []string{pick()}
			case op < 9:
				for j := range outageManyKeys {
					if j < 2 {
						ks = append(ks, hot[rng.IntN(len(hot))])
					} else {
						ks = append(ks, held[rng.IntN(len(held))])
					}
				}
			default:
				ks = []string{pick()}
			}
		}
		sub0 := rd.in.Subscribed()
		stale0, hookFail0 := rd.in.Stats().StaleServed, rd.in.hook.failed.Load()
		evOK0, evFail0 := rd.in.obs.ok.Load(), rd.in.obs.failed.Load()
		values := map[string]string{}
		failed := map[string]bool{}
		errOf := map[string]error{}
		note := func(err error) {
			msg := err.Error()
			for _, m := range rd.errs[ph] {
				if m == msg {
					return
				}
			}
			if len(rd.errs[ph]) < 3 {
				rd.errs[ph] = append(rd.errs[ph], msg)
			}
		}
		switch {
		case op < 8 || op == 9:
			var v string
			var err error
			if op < 8 {
				v, err = rd.in.Get(ctx, ks[0])
			} else {
				v, err = rd.in.Fetch(ctx, ks[0], load)
			}
			switch {
			case err == nil:
				values[ks[0]] = v
			case errors.Is(err, tiered.ErrClosed):
				return err
			case !errors.Is(err, tiered.ErrNotFound):
				failed[ks[0]] = true
				errOf[ks[0]] = err
				note(err)
			}
		default:
			out, err := rd.in.GetMany(ctx, ks)
			values = out
			var be *tiered.BatchError
			switch {
			case err == nil:
			case errors.As(err, &be):
				for k, err := range be.Keys {
					failed[k] = true
					errOf[k] = err
				}
				note(err)
			case errors.Is(err, tiered.ErrClosed):
				return err
			default:
				for _, k := range ks {
					failed[k] = true
					errOf[k] = err
				}
				note(err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		staleN := int(rd.in.Stats().StaleServed - stale0)
		hookFailed := rd.in.hook.failed.Load() != hookFail0
		if hookFailed && rd.in.obs.failed.Load() == evFail0 && rd.in.obs.ok.Load() != evOK0 {
			// The client saw a failed round trip; the cache reported its
			// Redis calls as answered.
			rd.misreported++
			if rd.misreportedOp == "" {
				rd.misreportedOp = opName(op)
			}
		}
		if staleN > 0 && !hookFailed {
			// A stale value is served only in place of a Redis failure.
			rd.answered += staleN
			if len(rd.wrong) < 3 {
				rd.wrong = append(rd.wrong, fmt.Sprintf("instance %d: %d values served stale by a call (%q) "+
					"whose Redis round trips all succeeded", rd.idx, staleN, ks))
			}
		}

		c := &rd.counts[ph]
		c.Calls++
		c.Stale += staleN
		seen := map[string]bool{}
		for _, k := range ks {
			if seen[k] {
				continue
			}
			seen[k] = true
			c.Keys++
			bad := failed[k]
			if isHeld(k) {
				c.HeldKeys++
				if bad {
					c.HeldErrors++
					if ph == phaseOutage && len(rd.heldErrs) < 3 {
						since := "before Broken was observed"
						if b := rd.in.obs.broken.Load(); b != 0 && t >= b {
							since = time.Duration(t-b).Round(time.Microsecond).String() + " after Broken was observed"
						} else if b != 0 {
							since = time.Duration(b-t).Round(time.Microsecond).String() + " before Broken was observed"
						}
						rd.heldErrs = append(rd.heldErrs, fmt.Sprintf("instance %d, %s %q begun %v after the stop, "+
							"%s (Subscribed %v → %v, %d gaps): %v", rd.idx, opName(op), k,
							time.Duration(t-clock.stop.Load()).Round(time.Microsecond), since, sub0, rd.in.Subscribed(),
							rd.in.obs.gaps.Load(), causeText(errOf[k])))
					}
				}
			} else {
				c.HotKeys++
				if bad {
					c.HotErrors++
				}
			}
			v, ok := values[k]
			switch {
			case bad:
				c.Errors++
				continue
			case !ok:
				c.NotFound++
				continue
			}
			c.Values++
			ver, had := versionOf(v), rd.maxSeen[k]
			// A stale value must be the newest this instance had returned
			// for the key: during the outage (when no value can be fresh)
			// and for a single key served stale; in a batch that mixes
			// stale and fresh values, none may be older than that.
			if staleN > 0 {
				exact := ph == phaseOutage || len(ks) == 1
				if ver < had || (exact && ver != had) {
					rd.nwrong++
					if len(rd.wrong) < 3 {
						rd.wrong = append(rd.wrong, fmt.Sprintf("instance %d, %q: served %q stale, had returned version %d",
							rd.idx, k, v, had))
					}
				}
			}
			if ver > had {
				rd.maxSeen[k] = ver
			}
		}
		if probe != nil && sub && len(failed) == 0 {
			if v, ok := values[probe.key]; ok && versionOf(v) >= probe.ver {
				rd.converged.CompareAndSwap(0, clock.now())
			}
		}
	}
	return nil
}

func (r *OutageResult) Name() string { return "outage" }
func (r *OutageResult) Title() string {
	return fmt.Sprintf("outage: Redis stopped for %v mid-traffic, with StaleIfError %v and without", r.For, r.On.StaleIfError)
}

// reconvergeLimit is the reconvergence target: a go-redis pool that gave up
// dialing probes the server once a second; the subscriber's next attempt
// comes within MaxBackoff, its health check within HealthCheck.
func (r *OutageResult) reconvergeLimit() time.Duration {
	return goRedisProbe + r.HealthCheck + r.MaxBackoff
}

func (r *OutageResult) Rows() []Row {
	limit := r.reconvergeLimit()
	of := func(a, b int) string { return fmt.Sprintf("%d of %d", a, b) }
	var rows []Row
	for _, s := range []OutageSide{r.On, r.Off} {
		on := s.StaleIfError > 0
		o, after, resub := s.Phases[phaseOutage], s.Phases[phaseAfter], s.Phases[phaseResubscribed]
		title := fmt.Sprintf("StaleIfError %v, %d reader instances + 1 writer:", s.StaleIfError, s.Readers)
		if !on {
			title = fmt.Sprintf("StaleIfError 0 (off, the control), %d reader instances + 1 writer:", s.Readers)
		}
		rows = append(rows, Section(title),
			Row{Measure: "  outage: keys read (calls)", Tiered: fmt.Sprintf("%d (%d)", o.Keys, o.Calls)})
		if on {
			rows = append(rows,
				Row{Measure: "  outage: errors, held keys", Tiered: of(o.HeldErrors, o.HeldKeys), Target: "0",
					OK: o.HeldKeys > 0 && o.HeldErrors == 0},
				Row{Measure: "  outage: errors, written keys", Tiered: of(o.HotErrors, o.HotKeys)},
				Row{Measure: "  outage: stale values served", Tiered: of(o.Stale, o.Keys), Target: "> 0", OK: o.Stale > 0},
				Row{Measure: "  wrong stale values", Tiered: strconv.Itoa(s.Wrong), Target: "0", OK: s.Wrong == 0},
				Row{Measure: "  stale though Redis answered", Tiered: strconv.Itoa(s.Answered), Target: "0", OK: s.Answered == 0},
			)
		} else {
			rows = append(rows,
				Row{Measure: "  outage: errors", Tiered: of(o.Errors, o.Keys), Target: "all but local hits",
					OK: o.Errors > 0 && o.Errors+o.Values+o.NotFound == o.Keys && o.Stale == 0},
				Row{Measure: "  outage: local hits (first ms)", Tiered: strconv.Itoa(o.Values - o.Stale)},
				Row{Measure: "  stale values served", Tiered: strconv.Itoa(s.StaleEvents), Target: "0", OK: s.StaleEvents == 0},
			)
		}
		rows = append(rows,
			Row{Measure: "  after start: errors / stale", Tiered: fmt.Sprintf("%d / %d of %d", after.Errors, after.Stale, after.Keys)},
			Row{Measure: "  after resubscribe: errors / stale", Tiered: fmt.Sprintf("%d / %d of %d", resub.Errors, resub.Stale, resub.Keys)},
			Row{Measure: "  after resubscribe: held-key errors", Tiered: of(resub.HeldErrors, resub.HeldKeys)},
			Row{Measure: "  writer's Sets failed", Tiered: fmt.Sprintf("%d in the outage, %d after",
				s.WritesFailed[phaseOutage], s.WritesFailed[phaseAfter])},
			Row{Measure: "  start → PONG / all Subscribed", Tiered: dur(s.ServerUp) + " / " + durOrNever(s.Resubscribed)},
			Row{Measure: "  start → last failed Redis call", Tiered: dur(s.LastFail)},
			Row{Measure: "  start → reconverged", Tiered: durOrNever(s.Reconverge), Target: "<= " + dur(limit),
				OK: s.Reconverge >= 0 && s.Reconverge <= limit},
		)
	}
	return rows
}

// durOrNever is dur, or "never" for a negative duration.
func durOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return dur(d)
}

func (r *OutageResult) Notes() []string {
	notes := []string{
		fmt.Sprintf("on %s, stopped %v after traffic began (gone %v and %v after the stop on the two sides), "+
			"started again %v later; HubOptions HealthCheck %v, MaxBackoff %v; every client fails fast "+
			"(MaxRetries -1, DialTimeout 200ms, DialerRetries 1): by default go-redis dials 5 times 100ms apart "+
			"before it reports a server down, and each call on a stopped server takes about 0.5s",
			r.Server, r.Before, r.On.Stopping.Round(time.Millisecond), r.Off.Stopping.Round(time.Millisecond),
			r.For, r.HealthCheck, r.MaxBackoff),
		fmt.Sprintf("each reader instance makes one call every %v (80%% Get, 10%% GetMany of %d keys, 10%% "+
			"Fetch whose loader fails) over %d held keys (read-only, so every reader holds them when the server "+
			"stops) and %d keys the writer Sets every %v; a call counts in the phase in which it began; "+
			"stale counts are Stats.StaleServed per call", r.ReadEvery, outageManyKeys, outageHeldKeys, outageHotKeys, r.WriteEvery),
		"wrong: a stale value that is not the newest version its instance had returned for the key (in a " +
			"batch mixing fresh and stale values after the start: older than it); stale though Redis answered: " +
			"values served stale by a call none of whose Redis round trips failed, as a go-redis hook on the " +
			"client saw them",
		"after the start, Redis answers at once, but a go-redis pool whose dials failed PoolSize times in a row " +
			"stops dialing and probes the server once a second, failing every call with the last dial error " +
			"meanwhile (each client has two such pools, for commands and for pipelines); the subscription, " +
			"dialed apart, is back first. Stale values replace those errors until the subscription is " +
			"confirmed again; from then on (\"after resubscribe\") the suspect tier is gone, as documented, and " +
			"reads of held keys fail until the client's pools probe the server. The readers' pools break " +
			"within milliseconds of the stop and probe whole seconds after it: with a whole-second outage they " +
			"are back within milliseconds of the start (-outage 2.5s shows the window)",
		fmt.Sprintf("reconverged: every reader Subscribed and reading the newest value the writer wrote after "+
			"the start; target %v = go-redis's 1s dial probe + HealthCheck + MaxBackoff", r.reconvergeLimit()),
	}
	if !r.KeepsData {
		notes = append(notes, "redis-server has no persistence here and comes back empty: the bench rewrites "+
			"every key as it was (SET NX, the writer's newest acknowledged versions) as soon as it answers PING, "+
			fmt.Sprintf("%v and %v after the start on the two sides", r.On.Restored.Round(100*time.Microsecond),
				r.Off.Restored.Round(100*time.Microsecond)))
	}
	for _, s := range []OutageSide{r.On, r.Off} {
		if s.Misreported > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d calls (the first a %s) in whose time the client saw a "+
				"Redis round trip fail while the cache's EventRedis reported none: the hook counts per client, "+
				"so work that outlives its call (a Fetch's detached load and lease release) lands in a later "+
				"call's time", s.label(), s.Misreported, s.MisreportedOp))
		}
		if s.StaleIfError > 0 && len(s.HeldErrorExamples) > 0 {
			notes = append(notes, fmt.Sprintf("%s: held keys failed in the outage (%d in all); the first: %s",
				s.label(), s.Phases[phaseOutage].HeldErrors, strings.Join(s.HeldErrorExamples[:min(2, len(s.HeldErrorExamples))], "; ")))
		}
		for _, w := range s.WrongExamples {
			notes = append(notes, "wrong stale value: "+w)
		}
	}
	return notes
}
