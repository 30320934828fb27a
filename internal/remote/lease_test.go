package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/internal/remote"
)

func TestAcquire(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	other := remote.LeaseMarker(remote.NewLeaseToken())
	for _, kv := range []struct {
		key   string
		value []byte
		ttl   time.Duration
	}{
		{"value", []byte("v"), 10 * time.Second},
		{"forever", []byte("w"), 0},
		{"absent", remote.AbsentMarker(), 10 * time.Second},
		{"leased", other, 10 * time.Second},
	} {
		put(t, st, kv.key, kv.value, kv.ttl)
	}
	tok := remote.NewLeaseToken()
	if _, err := st.Acquire(ctx, []string{"warm-up"}, tok, time.Second); err != nil {
		t.Fatal(err) // loads the script, opens the connections
	}
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	keys := []string{"new", "value", "forever", "absent", "leased", "new", "other-new"}
	claims, err := st.Acquire(ctx, keys, tok, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Count() != 1 {
		t.Fatalf("Acquire took %d round trips, want 1", calls.Count())
	}
	mine := remote.LeaseMarker(tok)
	for i, k := range keys {
		c := claims[i]
		var want remote.Claim
		switch {
		case k == "new" && i == 0, k == "other-new":
			want = remote.Claim{Acquired: true}
		case k == "new": // the second time: our own lease
			want = remote.Claim{Value: mine, TTL: 5 * time.Second}
		case k == "value":
			want = remote.Claim{Value: []byte("v"), TTL: 10 * time.Second}
		case k == "forever":
			want = remote.Claim{Value: []byte("w"), TTL: remote.NoExpiry}
		case k == "absent":
			want = remote.Claim{Value: remote.AbsentMarker(), TTL: 10 * time.Second}
		case k == "leased":
			want = remote.Claim{Value: other, TTL: 10 * time.Second}
		}
		ttlOK := c.TTL == want.TTL || (want.TTL > 0 && c.TTL > want.TTL-time.Second && c.TTL <= want.TTL)
		if c.Err != nil || c.Acquired != want.Acquired || string(c.Value) != string(want.Value) || !ttlOK {
			t.Errorf("claim %d (%s) = %+v, want %+v", i, k, c, want)
		}
	}
	for _, k := range []string{"new", "other-new"} {
		v, ttl, err := st.GetWithTTL(ctx, k)
		if err != nil || string(v) != string(mine) || ttl <= 4*time.Second || ttl > 5*time.Second {
			t.Fatalf("%s holds %q, %v, %v; want the lease marker for ~5s", k, v, ttl, err)
		}
	}
	if got, _ := get(ctx, st, "value"); string(got) != "v" {
		t.Fatalf("Acquire changed a held key: %q", got)
	}
	if claims, err := st.Acquire(ctx, nil, tok, time.Second); err != nil || len(claims) != 0 {
		t.Fatalf("Acquire(nil) = %v, %v", claims, err)
	}
}

// The lease is released by its holder with an IfEqual write, and only by
// its holder.
func TestLeaseRelease(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	tok := remote.NewLeaseToken()
	if c, err := st.Acquire(ctx, []string{"k", "j"}, tok, time.Minute); err != nil || !c[0].Acquired || !c[1].Acquired {
		t.Fatalf("Acquire = %+v, %v", c, err)
	}
	res, err := st.WriteMany(ctx, []remote.Write{
		{Key: "k", Value: []byte("loaded"), Cond: remote.IfEqual, Expect: remote.LeaseMarker(tok)},
		{Key: "j", Delete: true, Cond: remote.IfEqual, Expect: remote.LeaseMarker("not-ours")},
		{Key: "j", Delete: true, Cond: remote.IfEqual, Expect: remote.LeaseMarker(tok)},
	}, nil)
	if err != nil || !res[0].Applied || res[1].Applied || !res[2].Applied {
		t.Fatalf("releases = %+v, %v; want applied, not, applied", res, err)
	}
	if got, _ := get(ctx, st, "k"); string(got) != "loaded" {
		t.Fatalf("k = %q after its holder stored it", got)
	}
	if c, err := st.Acquire(ctx, []string{"j"}, remote.NewLeaseToken(), time.Minute); err != nil || !c[0].Acquired {
		t.Fatalf("Acquire of a released key = %+v, %v", c, err)
	}
}

func TestLeaseExpires(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if c, err := st.Acquire(ctx, []string{"k"}, remote.NewLeaseToken(), 100*time.Millisecond); err != nil || !c[0].Acquired {
		t.Fatalf("Acquire = %+v, %v", c, err)
	}
	c, err := st.Acquire(ctx, []string{"k"}, remote.NewLeaseToken(), 100*time.Millisecond)
	if err != nil || c[0].Acquired || !remote.IsLeaseMarker(c[0].Value) || c[0].TTL <= 0 || c[0].TTL > 100*time.Millisecond {
		t.Fatalf("Acquire of a leased key = %+v, %v", c, err)
	}
	s.Advance(150 * time.Millisecond)
	if _, err := get(ctx, st, "k"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("the lease outlived its ttl: err = %v", err)
	}
	if c, err := st.Acquire(ctx, []string{"k"}, remote.NewLeaseToken(), time.Second); err != nil || !c[0].Acquired {
		t.Fatalf("Acquire once the lease expired = %+v, %v", c, err)
	}
}

// Of instances that race for the same keys, exactly one takes each.
func TestAcquireRace(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	const racers = 8
	tokens := make([]string, racers)
	claims := make([][]remote.Claim, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for r := range racers {
		tokens[r] = remote.NewLeaseToken()
		st := mustNew(t, s.NewClient(""), remote.Options{Namespace: s.Namespace})
		wg.Go(func() {
			<-start
			ks := slices.Clone(keys)
			if r%2 == 1 {
				slices.Reverse(ks)
			}
			c, err := st.Acquire(ctx, ks, tokens[r], time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if r%2 == 1 {
				slices.Reverse(c)
			}
			claims[r] = c
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, k := range keys {
		winner := -1
		for r := range racers {
			if claims[r][i].Acquired {
				if winner >= 0 {
					t.Fatalf("%s acquired by racers %d and %d", k, winner, r)
				}
				winner = r
			}
		}
		if winner < 0 {
			t.Fatalf("nobody acquired %s", k)
		}
		for r := range racers {
			if c := claims[r][i]; r != winner && string(c.Value) != string(remote.LeaseMarker(tokens[winner])) {
				t.Fatalf("racer %d saw %s holding %q, not the winner's lease", r, k, c.Value)
			}
		}
	}
}

func TestAcquireRejectsBadTTL(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	calls := &redistest.RoundTrips{}
	s.Client.AddHook(calls)
	for _, ttl := range []time.Duration{0, -time.Millisecond, 500 * time.Microsecond} {
		c, err := st.Acquire(ctx, []string{"k"}, "tok", ttl)
		var re *remote.Error
		if c != nil || !errors.As(err, &re) || re.Op != "acquire" || !strings.Contains(err.Error(), `"k"`) || !strings.Contains(err.Error(), "ttl") {
			t.Fatalf("Acquire with ttl %v = %v, %v; want a ttl error naming the key", ttl, c, err)
		}
	}
	if calls.Count() != 0 {
		t.Fatalf("Acquire with a bad ttl sent %d round trips", calls.Count())
	}
}

// A key that holds another type than a string fails alone.
func TestAcquireWrongType(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	if err := s.Client.RPush(ctx, st.RedisKey("list"), "x").Err(); err != nil {
		t.Fatal(err)
	}
	c, err := st.Acquire(ctx, []string{"list", "k"}, "tok", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c[0].Err == nil || errors.Is(c[0].Err, remote.ErrNotFound) || c[0].Acquired || !strings.Contains(c[0].Err.Error(), `"list"`) {
		t.Fatalf("claim of a list = %+v, want an error naming it", c[0])
	}
	if !c[1].Acquired || c[1].Err != nil {
		t.Fatalf("claim of k = %+v", c[1])
	}
}

func TestAcquireOnCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	st := mustNew(t, cl.NewClient(), remote.Options{Namespace: cl.Namespace})
	var keys []string
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("k:%03d", i))
		if i%2 == 1 {
			put(t, st, keys[i], []byte("held"), time.Minute)
		}
	}
	tok := remote.NewLeaseToken()
	claims, err := st.Acquire(ctx, keys, tok, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range claims {
		switch {
		case c.Err != nil:
			t.Fatalf("%s: %v", keys[i], c.Err)
		case i%2 == 0 && !c.Acquired:
			t.Fatalf("%s not acquired: %+v", keys[i], c)
		case i%2 == 1 && (c.Acquired || string(c.Value) != "held" || c.TTL <= 0):
			t.Fatalf("%s = %+v, want held with its TTL", keys[i], c)
		}
	}
	items, err := st.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if i%2 == 0 && string(it.Value) != string(remote.LeaseMarker(tok)) {
			t.Fatalf("%s holds %q, %v; want the lease", keys[i], it.Value, it.Err)
		}
	}
}

// A lease's outcome (a DoneMarker) counts as nothing: Acquire takes a lease
// over it.
func TestAcquireOverADoneMarker(t *testing.T) {
	ctx := context.Background()
	st, s := newStore(t)
	old := remote.NewLeaseToken()
	put(t, st, "k", remote.DoneMarker(old, false), time.Minute)
	tok := remote.NewLeaseToken()
	claims, err := st.Acquire(ctx, []string{"k"}, tok, 5*time.Second)
	if err != nil || !claims[0].Acquired {
		t.Fatalf("Acquire over a DoneMarker = %+v, %v; want acquired", claims, err)
	}
	got, err := s.Client.Get(ctx, st.RedisKey("k")).Bytes()
	if err != nil || string(got) != string(remote.LeaseMarker(tok)) {
		t.Fatalf("the key holds %q, %v; want the new lease", got, err)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("k")).Val(); ttl <= 0 || ttl > 5*time.Second {
		t.Fatalf("the new lease's TTL = %v, want <= 5s", ttl)
	}
}

// Renew extends the leases the token holds, and only those.
func TestRenew(t *testing.T) {
	st, s := newStore(t)
	ctx := context.Background()
	claims, err := st.Acquire(ctx, []string{"a", "b"}, "tok", 50*time.Millisecond)
	if err != nil || !claims[0].Acquired || !claims[1].Acquired {
		t.Fatalf("Acquire = %+v, %v", claims, err)
	}
	// b is written meanwhile: its lease is gone.
	if err := s.Client.Set(ctx, st.RedisKey("b"), "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	renewed, err := st.Renew(ctx, []string{"a", "b", "c"}, "tok", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false}; !slices.Equal(renewed, want) {
		t.Errorf("Renew = %v, want %v", renewed, want)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("a")).Val(); ttl < 5*time.Second {
		t.Errorf("a's lease TTL = %v after Renew, want about 10s", ttl)
	}
	if ttl := s.Client.PTTL(ctx, st.RedisKey("b")).Val(); ttl != -1 {
		t.Errorf("b's TTL = %v, want none: Renew must leave what is no longer a lease alone", ttl)
	}
	if _, err := st.Renew(ctx, []string{"a"}, "tok", 0); err == nil {
		t.Error("Renew with ttl 0 succeeded")
	}
	if renewed, err := st.Renew(ctx, []string{"a"}, "other", time.Second); err != nil || renewed[0] {
		t.Errorf("Renew with another token = %v, %v; want not renewed", renewed, err)
	}
}

// DoneWrite lands only over its own token's lease, and leaves the outcome
// for DoneTTL, where the next Acquire takes a lease over it (step 2 and 4
// of the protocol in lease.go).
func TestDoneWrite(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	mine, theirs := remote.NewLeaseToken(), remote.NewLeaseToken()
	if c, err := st.Acquire(ctx, []string{"k"}, mine, 5*time.Second); err != nil || !c[0].Acquired {
		t.Fatalf("Acquire = %+v, %v", c, err)
	}
	res, err := st.WriteMany(ctx, []remote.Write{remote.DoneWrite("k", theirs, false)}, func([]string) []byte { return []byte("m") })
	if err != nil || res[0].Applied {
		t.Fatalf("another token's DoneWrite over my lease: %+v, %v; want it refused", res, err)
	}
	res, err = st.WriteMany(ctx, []remote.Write{remote.DoneWrite("k", mine, true)}, func([]string) []byte { return []byte("m") })
	if err != nil || !res[0].Applied {
		t.Fatalf("my DoneWrite over my lease: %+v, %v; want it applied", res, err)
	}
	v, ttl, err := st.GetWithTTL(ctx, "k")
	if tok, failed, ok := remote.ParseDoneMarker(v); err != nil || !ok || tok != mine || !failed || ttl <= 0 || ttl > remote.DoneTTL {
		t.Fatalf("after DoneWrite the key holds %q for %v (%v); want my failed outcome for at most %v", v, ttl, err, remote.DoneTTL)
	}
	if c, err := st.Acquire(ctx, []string{"k"}, theirs, 5*time.Second); err != nil || !c[0].Acquired {
		t.Fatalf("Acquire over a DoneMarker = %+v, %v; want a lease", c, err)
	}
}
