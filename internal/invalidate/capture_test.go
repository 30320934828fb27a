package invalidate

import (
	"context"
	"log/slog"
	"sync"
)

// captured is one log record, with its attributes (including those added by
// Logger.With) flattened to strings.
type captured struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// captureHandler is a slog.Handler that keeps every record, at every level,
// for a test to inspect.
type captureHandler struct {
	store *captureStore
	attrs []slog.Attr // from WithAttrs
}

type captureStore struct {
	mu      sync.Mutex
	records []captured // guarded by mu
}

// newCapture returns a Logger whose records the returned handler keeps.
func newCapture() (*slog.Logger, *captureHandler) {
	h := &captureHandler{store: &captureStore{}}
	return slog.New(h), h
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	c := captured{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		c.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		c.attrs[a.Key] = a.Value.String()
		return true
	})
	h.store.mu.Lock()
	h.store.records = append(h.store.records, c)
	h.store.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &captureHandler{store: h.store, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup is not used by the package; groups are ignored.
func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// at returns the records logged at level so far.
func (h *captureHandler) at(level slog.Level) []captured {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	var out []captured
	for _, c := range h.store.records {
		if c.level == level {
			out = append(out, c)
		}
	}
	return out
}
