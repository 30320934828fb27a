package leakcheck

import (
	"testing"
	"time"
)

func TestDetectsAndClears(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); <-stop }()
	if leaked := Running(); len(leaked) == 0 {
		t.Fatal("a parked goroutine was not reported")
	}
	close(stop)
	<-done
	if leaked := Wait(2 * time.Second); len(leaked) != 0 {
		t.Fatalf("goroutines reported after they exited: %v", leaked)
	}
}
