package remote_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/remote"
)

func TestReplaceIf(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := st.Set(ctx, "k", []byte("bad bytes"), 0); err != nil {
		t.Fatal(err)
	}
	// Someone wrote k since the bad bytes were read: nothing is replaced.
	if err := st.Set(ctx, "k", []byte("newer"), 0); err != nil {
		t.Fatal(err)
	}
	stored, err := st.ReplaceIf(ctx, "k", []byte("bad bytes"), []byte("loaded"), time.Second)
	if err != nil || stored {
		t.Fatalf("ReplaceIf over a newer value = %v, %v; want false, nil", stored, err)
	}
	if got, _ := st.Get(ctx, "k"); string(got) != "newer" {
		t.Fatalf("ReplaceIf overwrote a newer value: %q", got)
	}
	// k still holds what was read: it is replaced, with the TTL.
	stored, err = st.ReplaceIf(ctx, "k", []byte("newer"), []byte("loaded"), 5*time.Second)
	if err != nil || !stored {
		t.Fatalf("ReplaceIf over the expected value = %v, %v; want true, nil", stored, err)
	}
	if got, _ := st.Get(ctx, "k"); string(got) != "loaded" {
		t.Fatalf("value = %q, want loaded", got)
	}
	if pttl := s.Client.PTTL(ctx, st.RedisKey("k")).Val(); pttl <= 4*time.Second || pttl > 5*time.Second {
		t.Fatalf("ttl 5s gave PTTL %v", pttl)
	}
	// An absent key holds nothing to compare: nothing is stored.
	stored, err = st.ReplaceIf(ctx, "gone", []byte("x"), []byte("loaded"), 0)
	if err != nil || stored {
		t.Fatalf("ReplaceIf of an absent key = %v, %v; want false, nil", stored, err)
	}
	var re *remote.Error
	if _, err := st.ReplaceIf(ctx, "k", nil, nil, -1); !errors.As(err, &re) || re.Op != "replace" {
		t.Fatalf("bad TTL: err = %v; want a *remote.Error for replace", err)
	}
}
