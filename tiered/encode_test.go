package tiered_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// choosy encodes every string but "unencodable".
type choosy struct{}

func (choosy) Marshal(v string) ([]byte, error) {
	if v == "unencodable" {
		return nil, errors.New("choosy refuses it")
	}
	return []byte(v), nil
}
func (choosy) Unmarshal(data []byte) (string, error) { return string(data), nil }

// A loaded value that does not encode is returned, counted (Stats and the
// Observer, under the call's name), logged, and held in the local tier
// alone: the next Fetches answer from it without calling the loader again,
// and another instance's write still invalidates it.
func TestLoadedValueThatDoesNotEncode(t *testing.T) {
	for _, leases := range []bool{true, false} {
		t.Run(map[bool]string{true: "leases", false: "no leases"}[leases], func(t *testing.T) {
			s := redistest.New(t)
			var log jsonLog
			rec := &recorder{}
			opts := tiered.Options[string]{Codec: choosy{}, Logger: log.logger()}
			if !leases {
				opts.LeaseTTL = -1
			}
			a := newInstanceWith(t, s, "a", opts, instanceConfig{hub: tiered.HubOptions{Observer: rec}})
			b := newInstance(t, s, "b", tiered.Options[string]{Codec: choosy{}})
			var calls atomic.Int32
			load := func(context.Context) (string, error) { calls.Add(1); return "unencodable", nil }
			for range 3 {
				if v, err := a.Fetch(bg, "k", load); err != nil || v != "unencodable" {
					t.Fatalf("Fetch = %q, %v", v, err)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("the loader ran %d times for 3 Fetches, want 1", n)
			}
			if n := a.Stats().EncodeErrors; n != 1 {
				t.Errorf("Stats.EncodeErrors = %d, want 1", n)
			}
			if ev := rec.of(tiered.EventEncode); len(ev) != 1 || ev[0].Op != "Fetch" || ev[0].Keys != 1 || ev[0].Err == nil {
				t.Errorf("encode events %+v, want one of Fetch with its error", ev)
			}
			if recs := log.records(t, "tiered: could not encode a loaded value; not stored in Redis"); len(recs) != 1 || recs[0]["op"] != "Fetch" {
				t.Errorf("log records %v, want one, op Fetch", recs)
			}
			if n, _ := s.Client.Exists(bg, s.Namespace+":k").Result(); n != 0 {
				if v, _ := s.Client.Get(bg, s.Namespace+":k").Result(); v == "unencodable" {
					t.Errorf("Redis holds the value that did not encode")
				}
			}
			// Another instance's write reaches a's local tier.
			if err := b.Set(bg, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "b's write invalidates a's value", func() bool {
				v, err := a.Get(bg, "k")
				return err == nil && v == "v2"
			})
		})
	}
}
