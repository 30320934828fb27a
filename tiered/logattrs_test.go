package tiered_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

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
