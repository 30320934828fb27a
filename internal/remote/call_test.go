package remote

import (
	"context"
	"testing"
	"time"
)

func addOne(_ *Store, _ context.Context, in int) (int, error) { return in + 1, nil }

// call adds no allocation when it runs op inline.
func TestCallInlineAllocatesNothing(t *testing.T) {
	s := &Store{enforcesDeadlines: true}
	bg := context.Background()
	withDeadline, cancel := context.WithTimeout(bg, time.Hour)
	defer cancel()
	for name, ctx := range map[string]context.Context{"Background": bg, "enforced deadline": withDeadline} {
		if n := testing.AllocsPerRun(1000, func() {
			if out, err := call(ctx, s, 1, addOne); out != 2 || err != nil {
				t.Fatal(out, err)
			}
		}); n != 0 {
			t.Errorf("call inline (%s) allocates %v times", name, n)
		}
	}
}

// The helper alone, without Redis: what each path costs over calling op.
func BenchmarkCall(b *testing.B) {
	bg := context.Background()
	withDeadline, cancel := context.WithTimeout(bg, time.Hour)
	defer cancel()
	enforcing, plain := &Store{enforcesDeadlines: true}, &Store{}
	for _, bc := range []struct {
		name string
		run  func() (int, error)
	}{
		{"direct", func() (int, error) { return addOne(plain, bg, 1) }},
		{"inline/Background", func() (int, error) { return call(bg, plain, 1, addOne) }},
		{"inline/enforced-deadline", func() (int, error) { return call(withDeadline, enforcing, 1, addOne) }},
		{"goroutine/deadline", func() (int, error) { return call(withDeadline, plain, 1, addOne) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
