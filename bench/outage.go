package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The outage scenario's key sets (see outageKeys).
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

// readCounts counts the keys that reader calls asked for in one phase, and
// what became of them.
type readCounts struct {
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

func (c *readCounts) add(d readCounts) {
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

// sideResult is one side of the outage scenario: every instance with the
// same StaleIfError.
type sideResult struct {
	StaleIfError time.Duration      `json:"stale_if_error_ns"`
	Readers      int                `json:"reader_instances"`
	Phases       [phases]readCounts `json:"phases"` // before, outage, after the start, after resubscribing
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
	Reconverge   time.Duration   `json:"reconverge_ns"`   // start → every reader Subscribed and reading the writer's newest value; -1: not within cfg.outageCap
	PerInstance  []time.Duration `json:"reconverge_per_reader_ns"`
}

// label names the side: "StaleIfError 10s" or "StaleIfError off".
func (s sideResult) label() string {
	if s.StaleIfError <= 0 {
		return "StaleIfError off"
	}
	return "StaleIfError " + s.StaleIfError.String()
}

// outageResult is the outage scenario.
type outageResult struct {
	Server      string        `json:"server"`
	KeepsData   bool          `json:"keeps_data"`
	Before      time.Duration `json:"before_ns"`
	For         time.Duration `json:"outage_ns"`
	HealthCheck time.Duration `json:"health_check_ns"`
	MaxBackoff  time.Duration `json:"max_backoff_ns"`
	ReadEvery   time.Duration `json:"read_every_ns"`
	WriteEvery  time.Duration `json:"write_every_ns"`
	On          sideResult    `json:"stale_if_error_on"`
	Off         sideResult    `json:"stale_if_error_off"`
}

// outage stops a Redis server of the scenario's own (see newOwnServer) for
// cfg.outageFor in the middle of traffic, twice: with every instance's
// StaleIfError at cfg.outageStale, then at 0. Readers (one goroutine per
// instance, max(cfg.instances, 2) instances, one call every
// cfg.outageReadEvery: Gets, some GetManys, some Fetches whose loader
// fails) read warm keys, and a writer instance Sets the hot ones every
// cfg.outageWriteEvery. It counts, by phase, the errors returned and the
// stale values served, checks every stale value against what its instance
// last held, and times the reconvergence after the server starts again.
func outage(ctx context.Context, e *env, cfg config) (result, error) {
	r := &outageResult{
		Before: cfg.outageBefore, For: cfg.outageFor, HealthCheck: cfg.outageHealthCheck,
		MaxBackoff: cfg.outageBackoff, ReadEvery: cfg.outageReadEvery, WriteEvery: cfg.outageWriteEvery,
	}
	goRedisLog.quiet.Add(1) // the dial errors of a server stopped on purpose
	defer goRedisLog.quiet.Add(-1)
	var err error
	for i, stale := range []time.Duration{cfg.outageStale, 0} {
		side := &r.On
		if i == 1 {
			side = &r.Off
		}
		*side, err = outageSide(ctx, e, cfg, stale, r)
		if errors.Is(err, errNoRedisServer) {
			return skipped{Scenario: "outage", Reason: err.Error() + ": it stops a server of its own, never the run's"}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	cfg.progress.done()
	return r, nil
}

func (r *outageResult) name() string { return "outage" }
func (r *outageResult) title() string {
	return fmt.Sprintf("outage: Redis stopped for %v mid-traffic, with StaleIfError %v and without", r.For, r.On.StaleIfError)
}

// reconvergeLimit is the reconvergence target: a go-redis pool that gave up
// dialing probes the server once a second; the subscriber's next attempt
// comes within MaxBackoff, its health check within HealthCheck.
func (r *outageResult) reconvergeLimit() time.Duration {
	return goRedisProbe + r.HealthCheck + r.MaxBackoff
}

func (r *outageResult) rows() []row {
	limit := r.reconvergeLimit()
	of := func(a, b int) string { return fmt.Sprintf("%d of %d", a, b) }
	var rows []row
	for _, s := range []sideResult{r.On, r.Off} {
		on := s.StaleIfError > 0
		o, after, resub := s.Phases[phaseOutage], s.Phases[phaseAfter], s.Phases[phaseResubscribed]
		title := fmt.Sprintf("StaleIfError %v, %d reader instances + 1 writer:", s.StaleIfError, s.Readers)
		if !on {
			title = fmt.Sprintf("StaleIfError 0 (off, the control), %d reader instances + 1 writer:", s.Readers)
		}
		rows = append(rows, section(title),
			row{Measure: "  outage: keys read (calls)", Tiered: fmt.Sprintf("%d (%d)", o.Keys, o.Calls)})
		if on {
			rows = append(rows,
				row{Measure: "  outage: errors, held keys", Tiered: of(o.HeldErrors, o.HeldKeys), Target: "0",
					OK: o.HeldKeys > 0 && o.HeldErrors == 0},
				row{Measure: "  outage: errors, written keys", Tiered: of(o.HotErrors, o.HotKeys)},
				row{Measure: "  outage: stale values served", Tiered: of(o.Stale, o.Keys), Target: "> 0", OK: o.Stale > 0},
				row{Measure: "  wrong stale values", Tiered: strconv.Itoa(s.Wrong), Target: "0", OK: s.Wrong == 0},
				row{Measure: "  stale though Redis answered", Tiered: strconv.Itoa(s.Answered), Target: "0", OK: s.Answered == 0},
			)
		} else {
			rows = append(rows,
				row{Measure: "  outage: errors", Tiered: of(o.Errors, o.Keys), Target: "all but local hits",
					OK: o.Errors > 0 && o.Errors+o.Values+o.NotFound == o.Keys && o.Stale == 0},
				row{Measure: "  outage: local hits (first ms)", Tiered: strconv.Itoa(o.Values - o.Stale)},
				row{Measure: "  stale values served", Tiered: strconv.Itoa(s.StaleEvents), Target: "0", OK: s.StaleEvents == 0},
			)
		}
		rows = append(rows,
			row{Measure: "  after start: errors / stale", Tiered: fmt.Sprintf("%d / %d of %d", after.Errors, after.Stale, after.Keys)},
			row{Measure: "  after resubscribe: errors / stale", Tiered: fmt.Sprintf("%d / %d of %d", resub.Errors, resub.Stale, resub.Keys)},
			row{Measure: "  after resubscribe: held-key errors", Tiered: of(resub.HeldErrors, resub.HeldKeys)},
			row{Measure: "  writer's Sets failed", Tiered: fmt.Sprintf("%d in the outage, %d after",
				s.WritesFailed[phaseOutage], s.WritesFailed[phaseAfter])},
			row{Measure: "  start → PONG / all Subscribed", Tiered: dur(s.ServerUp) + " / " + durOrNever(s.Resubscribed)},
			row{Measure: "  start → last failed Redis call", Tiered: dur(s.LastFail)},
			row{Measure: "  start → reconverged", Tiered: durOrNever(s.Reconverge), Target: "<= " + dur(limit),
				OK: s.Reconverge >= 0 && s.Reconverge <= limit},
		)
	}
	return rows
}

func (r *outageResult) notes() []string {
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
	for _, s := range []sideResult{r.On, r.Off} {
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
