package faults

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// events collects what the caches log at Warn and above (lost
// subscriptions, with their causes), by phase, for the report.
type events struct {
	f  *fixture
	mu sync.Mutex
	by []map[string]int // guarded by mu: per phase, count per message
}

// logger returns the Logger of instance i.
func (e *events) logger(i int) *slog.Logger {
	return slog.New(eventHandler{e: e, prefix: fmt.Sprintf("instance %d: ", i)})
}

func (e *events) add(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := int(e.f.phase.Load())
	for len(e.by) <= p {
		e.by = append(e.by, map[string]int{})
	}
	e.by[p][msg]++
}

// phase returns the messages logged during phase p, most frequent first,
// with the namespace left out.
func (e *events) phase(p int, namespace string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p >= len(e.by) {
		return ""
	}
	m := map[string]int{}
	for msg, n := range e.by[p] {
		m[strings.ReplaceAll(msg, namespace, "…")] += n
	}
	if len(m) == 0 {
		return ""
	}
	return kinds(m)
}

// eventHandler keeps the cache's own reports ("tiered: …"; package
// invalidate logs the same losses again), shortened to their first clause
// and the innermost cause of their error.
type eventHandler struct {
	e      *events
	prefix string
}

func (h eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h eventHandler) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "tiered:") {
		return nil
	}
	msg, _, _ := strings.Cut(r.Message, ";")
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" || a.Key == "error" {
			cause := a.Value.String()
			if i := strings.LastIndex(cause, ": "); i >= 0 {
				cause = cause[i+2:]
			}
			msg += " (" + cause + ")"
		}
		return true
	})
	h.e.add(h.prefix + msg)
	return nil
}

func (h eventHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h eventHandler) WithGroup(string) slog.Handler { return h }
