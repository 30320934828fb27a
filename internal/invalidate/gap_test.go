package invalidate

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
)

// nextVersion is a well-formed message but for its version byte, one this
// release does not know, as a newer release would send it during a rolling
// upgrade.
func nextVersion() []byte {
	b := Message{Keys: []string{"k"}}.Append(nil)
	b[0] = Version + 1
	return b
}

// A payload this version cannot decode may have meant to invalidate keys:
// it is reported as a Gap, every time, in order with the messages around it,
// without breaking the subscription, and warned about once per interval.
func TestSubscriberReportsGap(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	r := newRecorder()
	logger, logs := newCapture()
	var mu sync.Mutex
	var seq []string // guarded by mu: callbacks in the order they ran
	opts := r.options(ch)
	opts.Logger = logger
	opts.OnMessage = func(channel string, m Message) {
		mu.Lock()
		seq = append(seq, "msg "+strings.Join(m.Keys, ","))
		mu.Unlock()
		r.onMessage(channel, m)
	}
	opts.OnState = func(st State, channel string, err error) {
		mu.Lock()
		seq = append(seq, st.String())
		mu.Unlock()
		r.onState(st, channel, err)
	}
	sub := start(t, s.NewClient(""), opts)
	r.nextState(t, Subscribed, wait)

	upgraded, garbage := nextVersion(), []byte("not a message")
	publish(t, s.Client, ch, Message{Keys: []string{"a"}}.Append(nil))
	publish(t, s.Client, ch, upgraded)
	publish(t, s.Client, ch, garbage)
	publish(t, s.Client, ch, Message{Keys: []string{"b"}}.Append(nil))

	for _, payload := range [][]byte{upgraded, garbage} {
		ev := r.nextStateOn(t, Gap, ch)
		if !errors.Is(ev.err, ErrMalformed) {
			t.Errorf("Gap error %q does not wrap ErrMalformed", ev.err)
		}
		for _, want := range []string{ch, fmt.Sprintf("%d bytes", len(payload))} {
			if !strings.Contains(ev.err.Error(), want) {
				t.Errorf("Gap error %q does not say %q", ev.err, want)
			}
		}
	}
	for _, want := range []string{"a", "b"} {
		if got := r.nextMessage(t); !slices.Equal(got.Keys, []string{want}) {
			t.Fatalf("delivered keys %q, want [%s]", got.Keys, want)
		}
	}
	mu.Lock()
	got := slices.Clone(seq)
	mu.Unlock()
	if want := []string{"Subscribed", "msg a", "Gap", "Gap", "msg b"}; !slices.Equal(got, want) {
		t.Fatalf("callbacks ran as %q, want %q", got, want)
	}
	if st := sub.Stats(); st.Malformed != 2 || st.Messages != 2 {
		t.Fatalf("Stats() = %+v, want 2 malformed and 2 messages", st)
	}
	if err := sub.LastError(); err != nil {
		t.Errorf("LastError() = %v after a Gap, want nil: the subscription holds", err)
	}

	// A flood of them is reported in full but warned about once.
	const flood = 20
	for range flood {
		publish(t, s.Client, ch, garbage)
	}
	for range flood {
		r.nextState(t, Gap, wait)
	}
	warns := logs.at(slog.LevelWarn)
	if len(warns) != 1 {
		t.Fatalf("%d Warn records for %d undecodable messages within %v, want 1: %+v", len(warns), flood+2, warnEvery, warns)
	}
	if e := warns[0].attrs["error"]; !strings.Contains(e, "unknown version 4") {
		t.Errorf("Warn record carries error %q, want the first cause (unknown version 4)", e)
	}
	r.noState(t, 50*time.Millisecond) // a bad payload does not break the subscription
}

// A Gap is an event, not a state: the subscription is still Subscribed
// after it, so its loss is still reported as Broken.
func TestSubscriberGapKeepsSubscribed(t *testing.T) {
	s := redistest.New(t)
	ch := s.Namespace
	p, client := viaProxy(t, s)
	r := newRecorder()
	opts := r.options(ch)
	opts.MaxBackoff = 5 * time.Millisecond
	start(t, client, opts)
	r.nextState(t, Subscribed, wait)

	publish(t, s.Client, ch, nextVersion())
	r.nextState(t, Gap, wait)

	p.CutPubSub(true)
	r.nextState(t, Broken, wait)
	p.CutPubSub(false)
	r.nextState(t, Subscribed, wait)
	r.noState(t, 50*time.Millisecond)
}

func TestWarnLimiter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := warnLimiter{every: 10 * time.Second}
	for i, step := range []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0}, // the first at once
		{time.Second, false, 0},
		{2 * time.Second, false, 0},
		{10 * time.Second, true, 2}, // one interval after the last Warn, with the count held back
		{10*time.Second + time.Millisecond, false, 0},
		{19 * time.Second, false, 0},
		{30 * time.Second, true, 2},
		{time.Hour, true, 0}, // a new burst after a quiet spell starts at once
	} {
		ok, n := w.allow(t0.Add(step.at))
		if ok != step.ok || (ok && n != step.suppressed) {
			t.Errorf("step %d (%v): allow = %v, %d; want %v, %d", i, step.at, ok, n, step.ok, step.suppressed)
		}
	}
}
