package remote

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Detach returns when ctx ends, calls abandoned then, and lets work run
// to its end under a ctx that its caller's cancellation does not reach.
func TestDetachAbandons(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release, ended := make(chan struct{}), make(chan error, 1)
	started := make(chan struct{})
	abandoned := false
	go func() { <-started; cancel() }()
	err := Detach(ctx, func(wctx context.Context) error {
		close(started)
		<-release
		ended <- wctx.Err() // the caller's ctx ended long ago
		return errors.New("late")
	}, func() { abandoned = true })
	if !errors.Is(err, context.Canceled) || !abandoned {
		t.Fatalf("Detach = %v, abandoned %v; want context.Canceled, and abandoned called", err, abandoned)
	}
	close(release)
	if werr := <-ended; werr != nil {
		t.Fatalf("work's ctx ended with its caller's: %v", werr)
	}
}

// Detach returns work's outcome when work ends first, without calling
// abandoned; a ctx that cannot end runs work inline; a ctx already ended
// runs nothing; a panic in work reaches the caller that still waits.
func TestDetachOutcome(t *testing.T) {
	boom := errors.New("boom")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	never := func() { t.Error("abandoned called, though work ended first") }
	for name, c := range map[string]context.Context{"deadline": ctx, "Background": context.Background()} {
		if err := Detach(c, func(context.Context) error { return boom }, never); err != boom {
			t.Errorf("%s: Detach = %v, want work's error", name, err)
		}
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	ran := false
	if err := Detach(done, func(context.Context) error { ran = true; return nil }, nil); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Detach under an ended ctx = %v, ran %v; want context.Canceled and nothing run", err, ran)
	}
	defer func() {
		if r := recover(); r != "work panicked" {
			t.Fatalf("recovered %v, want work's panic", r)
		}
	}()
	_ = Detach(ctx, func(context.Context) error { panic("work panicked") }, never)
	t.Fatal("Detach returned after work panicked")
}
