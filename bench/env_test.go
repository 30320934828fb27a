package main

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// TestCleanup runs scenarios that leave keys behind in Redis, then checks
// that closing the env deleted every key of its namespace and nothing else.
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	// A key of the test's own namespace, which the env must not touch.
	other := s.Namespace + ":keep"
	if err := s.Client.Set(ctx, other, "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	e, err := openEnv(ctx, "redis://"+s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// A key of a subNamespace, which close must delete too.
	sub := e.subNamespace("sub")
	if err := s.Client.Set(ctx, sub+":x", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	for _, name := range []string{"remotehit", "write", "stampede"} {
		if _, err := runScenario(ctx, e, cfg, name); err != nil {
			_ = e.close()
			t.Fatal(err)
		}
	}
	n, err := e.countKeys(ctx)
	if err != nil || n == 0 {
		t.Fatalf("before cleanup: %d keys of %s (%v), want some", n, e.namespace, err)
	}
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
	if err := e.close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var left []string
	iter := s.Client.Scan(ctx, 0, e.namespace+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d keys of %s left after Close, e.g. %q", len(left), e.namespace, left[0])
	}
	if n, err := s.Client.Exists(ctx, other).Result(); err != nil || n != 1 {
		t.Errorf("Close deleted a key of another namespace (exists=%d, %v)", n, err)
	}
	if _, err := newCacheInstance(ctx, e, tiered.Options[string]{}); err == nil {
		t.Error("NewInstance after Close succeeded")
	}
	for _, k := range []string{sub + ":x"} {
		if n, err := s.Client.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s still exists after Close (exists=%d, %v)", k, n, err)
		}
	}
}

// TestInterruptCleansUp cancels a long scenario part way, as SIGINT does,
// and checks that it returns promptly and that Close still cleans up.
func TestInterruptCleansUp(t *testing.T) {
	e := newEnv(t)
	cfg := tinyConfig()
	cfg.duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := runScenario(ctx, e, cfg, "zipf")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("zipf after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("zipf took %v to notice the cancel", d)
	}
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
}

func TestCounterSkipsConnectionSetup(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var c counter
	client := e.newClient(&c)
	for i := range 5 {
		if err := client.Set(ctx, e.key("count:"+strconv.Itoa(i)), i, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := c.snapshot()
	if got.Trips != 5 || got.Names["set"] != 5 {
		t.Errorf("counted %s, want 5 (set×5)", got.text())
	}
}
