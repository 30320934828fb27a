package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// The known outage's timeline and targets (issue 23).
const (
	knownAfter    = time.Second             // the outage is known this long after the stop
	knownMeasure  = 1500 * time.Millisecond // calls measured while it is known
	knownBack     = 1500 * time.Millisecond // calls measured after the server returns
	knownWorkers  = 4                       // goroutines making calls, each paced by knownPace
	knownPace     = time.Millisecond
	knownDeadline = 200 * time.Millisecond // each call's ctx, as a handler's
	knownHeld     = 50                     // keys every worker's cache holds
	heldTarget    = 10 * time.Millisecond  // p99 of a held key's read
	unheldTarget  = 20 * time.Millisecond  // p99 of an unheld key's failure
	maxRecords    = 10                     // log records while the outage is known
)

// knownKinds are the calls measured, in turn.
var knownKinds = []string{"Get held", "Get unheld", "Fetch"}

// knownRun is what one run of TestOutageKnown measured.
type knownRun struct {
	mu       sync.Mutex
	lats     map[string][]time.Duration // by kind, while the outage is known
	errs     map[string]int             // by kind, while the outage is known
	late     int                        // calls that returned past their deadline
	examples []string                   // the first errors of each kind
	records  int                        // log records while the outage is known
	back     struct {
		calls, errs, firstSecond int // held-key reads after the return; failed; failed in its first second
		stalled                  int // deadlines missed in calls the process was stalled for half their time: not errs
		examples                 []string
	}
}

// recordCount is a slog.Handler that counts the records at Info or above.
type recordCount struct{ n atomic.Int64 }

func (h *recordCount) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *recordCount) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h *recordCount) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordCount) WithGroup(string) slog.Handler                { return h }

// TestOutageKnown stops a redis-server of its own under traffic from a
// cache whose client has go-redis's default options (no
// ContextTimeoutEnabled, 5 dials per attempt) and StaleIfError 1 minute.
// Once the outage is known (1s after the stop): a held key is read at p99
// <= 10ms, an unheld key fails at p99 <= 20ms with ErrRedisDown, a Fetch
// with a healthy loader is answered within its deadline, and at most 10
// records are logged; in the 1.5s after the server returns, no read of a
// held key fails. It logs the figures for docs/outages.md.
func TestOutageKnown(t *testing.T) {
	needRealServer(t)
	redis.SetLogger(dialLog{quiet: true})
	defer redis.SetLogger(dialLog{})
	s := redistest.NewReal(t)
	ctx := context.Background()
	logs := &recordCount{}
	client := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = client.Close() })
	h, err := tiered.NewHub(client, tiered.HubOptions{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := tiered.NewCache(h, tiered.Options[string]{Namespace: s.Namespace, StaleIfError: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	for !c.Subscribed() { // a Set made before does not fill the local tier
		if wctx.Err() != nil {
			t.Fatal("not subscribed")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range knownHeld {
		k := heldKey(i)
		if err := c.Set(ctx, k, k); err != nil {
			t.Fatal(err)
		}
	}
	r := &knownRun{lats: map[string][]time.Duration{}, errs: map[string]int{}}
	s.Stop()
	time.Sleep(knownAfter)
	before := logs.n.Load()
	r.measure(c, knownMeasure)
	r.records = int(logs.n.Load() - before)
	s.Start()
	raw := s.NewClient("raw") // a redis-server comes back empty
	for i := range knownHeld {
		if err := raw.Set(ctx, s.Namespace+":"+heldKey(i), heldKey(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.readBack(c, time.Now())
	r.check(t)
	t.Logf("for docs/outages.md:\n%s", r.table())
}

// measure makes calls of every kind from knownWorkers goroutines for d.
func (r *knownRun) measure(c *tiered.Cache[string], d time.Duration) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := range knownWorkers {
		wg.Go(func() {
			for i := w; time.Now().Before(end); i++ {
				kind := knownKinds[i%len(knownKinds)]
				ctx, cancel := context.WithTimeout(context.Background(), knownDeadline)
				t0 := time.Now()
				err := knownCall(ctx, c, kind, i)
				lat := time.Since(t0)
				cancel()
				r.mu.Lock()
				r.lats[kind] = append(r.lats[kind], lat)
				if err != nil {
					if r.errs[kind]++; r.errs[kind] <= 2 {
						r.examples = append(r.examples, err.Error())
					}
				}
				if lat > knownDeadline+5*time.Millisecond {
					r.late++
				}
				r.mu.Unlock()
				time.Sleep(knownPace)
			}
		})
	}
	wg.Wait()
}

// knownCall makes one call of kind; its error is nil when the call did
// what the outage should make of it.
func knownCall(ctx context.Context, c *tiered.Cache[string], kind string, i int) error {
	switch kind {
	case "Get held":
		k := heldKey(i % knownHeld)
		if v, err := c.Get(ctx, k); v != k || err != nil {
			return fmt.Errorf("Get %s = %q, %v", k, v, err)
		}
	case "Get unheld":
		if _, err := c.Get(ctx, fmt.Sprintf("unheld-%d", i)); !errors.Is(err, tiered.ErrRedisDown) {
			return fmt.Errorf("Get unheld: %v, want ErrRedisDown", err)
		}
	default:
		k := fmt.Sprintf("fetch-%d", i)
		if v, err := c.Fetch(ctx, k, func(context.Context) (string, error) { return k, nil }); v != k || err != nil {
			return fmt.Errorf("Fetch %s = %q, %v", k, v, err)
		}
	}
	return nil
}

// readBack reads held keys from knownWorkers goroutines for knownBack
// from back, when the server answered again. A deadline missed in a call
// the process was stalled for half its time (see stalls) is counted apart:
// on a loaded machine it says nothing of the cache.
func (r *knownRun) readBack(c *tiered.Cache[string], back time.Time) {
	type failure struct {
		start, end int64
		err        error
	}
	st := watchStalls(back)
	var failures []failure // guarded by r.mu
	var wg sync.WaitGroup
	for w := range knownWorkers {
		wg.Go(func() {
			for i := w; time.Since(back) < knownBack; i++ {
				start := time.Since(back)
				ctx, cancel := context.WithTimeout(context.Background(), knownDeadline)
				err := knownCall(ctx, c, "Get held", i)
				cancel()
				r.mu.Lock()
				r.back.calls++
				if err != nil {
					failures = append(failures, failure{int64(start), int64(time.Since(back)), err})
				}
				r.mu.Unlock()
				time.Sleep(knownPace)
			}
		})
	}
	wg.Wait()
	st.end()
	for _, f := range failures {
		if errors.Is(f.err, context.DeadlineExceeded) && 2*st.excuse(f.start, f.end) >= int64(knownDeadline) {
			r.back.stalled++
			continue
		}
		r.back.errs++
		if f.start < int64(time.Second) {
			r.back.firstSecond++
		}
		if len(r.back.examples) < 3 {
			r.back.examples = append(r.back.examples, fmt.Sprintf("+%v: %v", time.Duration(f.start).Round(time.Millisecond), f.err))
		}
	}
}

func (r *knownRun) check(t *testing.T) {
	t.Helper()
	for _, kind := range knownKinds {
		if n := len(r.lats[kind]); n < 100 || r.errs[kind] != 0 {
			t.Errorf("outage known: %d of %d %s calls did not do what they should, want 0 of >= 100 (%q)", r.errs[kind], n, kind, r.examples)
		}
	}
	if p := pctl(r.lats["Get held"], 99); p > heldTarget {
		t.Errorf("outage known: Get held p99 %v, want <= %v", p, heldTarget)
	}
	if p := pctl(r.lats["Get unheld"], 99); p > unheldTarget {
		t.Errorf("outage known: Get unheld p99 %v, want <= %v", p, unheldTarget)
	}
	if r.late != 0 {
		t.Errorf("outage known: %d calls returned past their %v deadline, want 0", r.late, knownDeadline)
	}
	if r.records > maxRecords {
		t.Errorf("outage known: %d log records for %d failing reads, want <= %d", r.records, len(r.lats["Get unheld"]), maxRecords)
	}
	if r.back.calls == 0 || r.back.errs != 0 {
		t.Errorf("back: %d of %d reads of held keys failed in the %v after the return, want 0 of some: %q",
			r.back.errs, r.back.calls, knownBack, r.back.examples)
	}
}

// table is the run's figures, as a Markdown table.
func (r *knownRun) table() string {
	var b strings.Builder
	b.WriteString("| once the outage is known | calls | p50 | p99 | errors |\n|---|---|---|---|---|\n")
	for _, kind := range knownKinds {
		l := r.lats[kind]
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %d |\n", kind, len(l), pctl(l, 50), pctl(l, 99), r.errs[kind])
	}
	fmt.Fprintf(&b, "\nlog records while known: %d; calls past their deadline: %d\n", r.records, r.late)
	fmt.Fprintf(&b, "after the return: %d held-key reads in %v, %d failed (%d in the first second)\n",
		r.back.calls, knownBack, r.back.errs, r.back.firstSecond)
	if r.back.stalled > 0 {
		fmt.Fprintf(&b, "and %d more missed their deadline with the process stalled for half their time\n", r.back.stalled)
	}
	return b.String()
}

// pctl returns the p-th percentile of lats (0 for none).
func pctl(lats []time.Duration, p int) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)].Round(10 * time.Microsecond)
}
