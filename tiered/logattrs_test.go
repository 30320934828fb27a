package tiered_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// jsonLog is a Logger that keeps its records as JSON, for tests to read.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jsonLog) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// records returns the records whose message is msg.
func (l *jsonLog) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// A loader's panic is logged with its stack as a list of frames, one
// "function file:line" each, the loader's among them: not one string of
// escaped newlines.
func TestPanicStackIsStructured(t *testing.T) {
	s := redistest.New(t)
	var log jsonLog
	c := newInstance(t, s, "a", tiered.Options[string]{Logger: log.logger()})
	func() {
		defer func() { _ = recover() }()
		_, _ = c.Fetch(bg, "k", func(context.Context) (string, error) { panic("boom") })
	}()
	recs := log.records(t, "tiered: a Codec or loader panicked")
	if len(recs) != 1 {
		t.Fatalf("%d panic records, want 1: %s", len(recs), log.buf.String())
	}
	frames, ok := recs[0]["stack"].([]any)
	if !ok || len(frames) < 3 {
		t.Fatalf("stack is %T %v, want a list of frames", recs[0]["stack"], recs[0]["stack"])
	}
	found := false
	for _, f := range frames {
		line, ok := f.(string)
		if !ok || strings.Contains(line, "\n") || !strings.Contains(line, ".go:") {
			t.Errorf("frame %q is not one \"function file:line\"", f)
		}
		found = found || strings.Contains(line, "TestPanicStackIsStructured")
	}
	if !found {
		t.Errorf("no frame of the loader (the test function): %v", frames)
	}
	if recs[0]["panic"] != "boom" {
		t.Errorf("panic = %v, want boom", recs[0]["panic"])
	}
}

// Events and log records name the call the user made: a single-key Fetch
// whose Redis read fails is "Fetch" in the fallback's log record (whose
// error is the cause, without the store's internal operation), in its load
// event and in its read event.
func TestOperationNamesAreTheCalls(t *testing.T) {
	s := redistest.New(t)
	p := redistest.NewProxy(t, s.Addr)
	var log jsonLog
	rec := &recorder{}
	a := newInstanceWith(t, s, "a", tiered.Options[string]{Logger: log.logger(), LeaseTTL: -1},
		instanceConfig{addr: p.Addr(), hub: tiered.HubOptions{Observer: rec},
			client: func(o *redis.Options) { o.MaxRetries = -1 }})
	p.CutData(true)
	if v, err := a.Fetch(bg, "k", func(context.Context) (string, error) { return "v", nil }); err != nil || v != "v" {
		t.Fatalf("Fetch with Redis cut = %q, %v; want the loader's value", v, err)
	}
	p.CutData(false)
	recs := log.records(t, "tiered: Redis read failed; answering from the loader without storing")
	if len(recs) != 1 {
		t.Fatalf("%d fallback records, want 1: %s", len(recs), log.buf.String())
	}
	if recs[0]["op"] != "Fetch" {
		t.Errorf("fallback record's op = %v, want Fetch", recs[0]["op"])
	}
	if e, _ := recs[0]["err"].(string); strings.Contains(e, "get-many") || e == "" {
		t.Errorf("fallback record's err %q names the store's internal operation", e)
	}
	if ev := rec.of(tiered.EventLoad); len(ev) != 1 || ev[0].Op != "Fetch" {
		t.Errorf("load events %+v, want one of Fetch", ev)
	}
	if ev := rec.of(tiered.EventRead); len(ev) != 1 || ev[0].Op != "Fetch" || ev[0].Result != tiered.ResultLoader {
		t.Errorf("read events %+v, want one of Fetch answered by the loader", ev)
	}
}

// EventRead and EventLocalHit count every key a read call asked for once,
// by how it was answered.
func TestReadEventsCountEveryKey(t *testing.T) {
	s := redistest.New(t)
	rec := &recorder{}
	a := newInstanceWith(t, s, "a", tiered.Options[string]{}, instanceConfig{hub: tiered.HubOptions{Observer: rec}})
	b := newInstance(t, s, "b", tiered.Options[string]{})
	if err := b.Set(bg, "r", "v"); err != nil {
		t.Fatal(err)
	}
	applied(t, 1, a)                                                                   // so that the message does not drop what a reads next
	_, _ = a.Get(bg, "r")                                                              // remote
	_, _ = a.Get(bg, "r")                                                              // local
	_, _ = a.Get(bg, "missing")                                                        // miss
	_, _ = a.Fetch(bg, "f", func(context.Context) (string, error) { return "x", nil }) // loader
	_, _ = a.Fetch(bg, "f", func(context.Context) (string, error) { return "x", nil }) // local
	if err := b.Set(bg, "r2", "v"); err != nil {
		t.Fatal(err)
	}
	applied(t, 2, a)
	_, _ = a.GetMany(bg, []string{"r", "r2", "none"}) // local, remote, miss
	_, _ = a.FetchMany(bg, []string{"f", "g"}, func(_ context.Context, ks []string) (map[string]string, error) {
		out := map[string]string{}
		for _, k := range ks {
			out[k] = "x"
		}
		return out, nil
	}) // local, loader
	want := map[string]int{"Get/remote": 1, "Get/miss": 1, "Fetch/loader": 1, "GetMany/remote": 1, "GetMany/miss": 1, "FetchMany/loader": 1}
	got := map[string]int{}
	for _, e := range rec.of(tiered.EventRead) {
		got[e.Op+"/"+e.Result] += e.Keys
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("reads %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reads %v, want %v", got, want)
	}
	if n := rec.keys(tiered.EventLocalHit, ""); n != 4 {
		t.Errorf("local hits = %d, want 4", n)
	}
}
