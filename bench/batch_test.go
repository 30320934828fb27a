package main

import (
	"context"
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// ------------------------------------------------------------- benchmarks
//
// One op is one call on 100 keys (or 100 Gets), so that
//
//	go test -bench '100' -count 10 ./bench | tee new.txt; benchstat new.txt
//
// sets GetMany beside 100 Gets and MGET, and SetMany beside the pipeline.

// loopGroups calls op on groups 0 … n-1 in turn, as many times as b asks,
// failing on the first error.
func loopGroups(b *testing.B, n int, op func(g int) error) {
	b.ReportAllocs()
	g := 0
	for b.Loop() {
		if err := op(g); err != nil {
			b.Fatal(err)
		}
		if g++; g == n {
			g = 0
		}
	}
}

// benchColdReads runs the read op that newOp makes on an instance with a
// LocalSize of 1 over 10 groups of 100 keys stored in Redis, and reports
// its round trips and the share of keys Redis answered.
func benchColdReads(b *testing.B, newOp func(context.Context, *Instance[string], [][]string) func(int) error) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(BatchKeys(ctx, e, "batch:cold:", true))
	in := must[*Instance[string]](b)(NewInstance(ctx, e, tiered.Options[string]{LocalSize: 1}))
	op := newOp(ctx, in, groups)
	s0, c0 := in.Stats(), in.Calls.Snapshot()
	n := 0
	loopGroups(b, len(groups), func(g int) error { n++; return op(g) })
	s1, c1 := in.Stats(), in.Calls.Snapshot()
	b.ReportMetric(float64(c1.Sub(c0).Trips)/float64(n), "round-trips/op")
	b.ReportMetric(float64(s1.RemoteHits-s0.RemoteHits)/float64(n*batchSize), "redis-share")
}

func BenchmarkGetMany100Cold(b *testing.B) { benchColdReads(b, GetManyOp) }

func BenchmarkSequentialGets100Cold(b *testing.B) { benchColdReads(b, GetsOp) }

func BenchmarkMGet100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(BatchKeys(ctx, e, "batch:cold:", true))
	loopGroups(b, len(groups), MGetOp(ctx, e, e.NewClient(nil), groups))
}

func BenchmarkSetMany100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(BatchKeys(ctx, e, "batch:w:", false))
	w := must[*Instance[string]](b)(NewInstance(ctx, e, tiered.Options[string]{}))
	op := SetManyOp(ctx, w, groups)
	c0 := w.Calls.Snapshot()
	n := 0
	loopGroups(b, len(groups), func(g int) error { n++; return op(g) })
	b.ReportMetric(float64(w.Calls.Snapshot().Sub(c0).Trips)/float64(n), "round-trips/op")
}

func BenchmarkPipelineSet100(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	groups := must[[][]string](b)(BatchKeys(ctx, e, "batch:w:", false))
	loopGroups(b, len(groups), PipelineSetOp(ctx, e, e.NewClient(nil), groups))
}

// ------------------------------------------------------------------ checks
//
// Called by TestScenariosRun on the results of tinyConfig.

func checkStampede(t *testing.T, st *StampedeResult) {
	t.Helper()
	if len(st.Cases) != 3 {
		t.Fatalf("stampede: %d cases, want 3", len(st.Cases))
	}
	for _, c := range st.Cases {
		t.Logf("stampede %s: %d loads %v, %d values, %d lease waits, %v round trips, %v",
			c.Name, c.Total, c.Loads, c.Values, c.LeaseWaits, c.Calls, c.Wall)
		if c.Leases {
			// One load in all, whose value every caller gets.
			if c.Total != 1 || c.Values != 1 {
				t.Errorf("stampede %s: %d loader calls, %d distinct values, want 1 and 1", c.Name, c.Total, c.Values)
			}
			continue
		}
		// Each instance loads once, unless (on a very slow machine) its read
		// came after another instance had stored the value.
		for i, l := range c.Loads {
			if l > 1 {
				t.Errorf("stampede %s: instance %d called the loader %d times, want 1", c.Name, i, l)
			}
		}
		if c.Total < 1 {
			t.Errorf("stampede %s: %d loader calls", c.Name, c.Total)
		}
		// One read per instance, and one write per load, but for the loads
		// that another instance's write overtook (not stored: SET NX could
		// land over a Delete).
		if lo, hi := uint64(c.Instances)+1, uint64(c.Instances)+c.Total; c.Calls.Trips < lo || c.Calls.Trips > hi {
			t.Errorf("stampede %s: %v round trips, want %d to %d", c.Name, c.Calls, lo, hi)
		}
	}
	// On one instance with leases: the read, the lease, the write.
	if a := st.Cases[0]; a.Instances != 1 || a.Calls.Trips != 3 {
		t.Errorf("stampede %s: %v round trips on %d instances, want 3 on 1", a.Name, a.Calls, a.Instances)
	}
	if b := st.Cases[1]; b.Instances != stampedeInstances || !b.Leases {
		t.Errorf("stampede %s: %d instances, leases %v, want %d and on", b.Name, b.Instances, b.Leases, stampedeInstances)
	}
}

func checkBatch(t *testing.T, r *BatchResult) {
	t.Helper()
	if r.RemoteShare != 1 || r.GetsShare != 1 {
		t.Errorf("batch: Redis answered %.3f of GetMany's keys and %.3f of the Gets', want all", r.RemoteShare, r.GetsShare)
	}
	if r.TripsPerMany != 1 || r.TripsPerSet != 1 {
		t.Errorf("batch: %.3f round trips per GetMany (%s), %.3f per SetMany (%s), want 1 and 1",
			r.TripsPerMany, r.GetCommands, r.TripsPerSet, r.SetCommands)
	}
	if !(r.GetManyNs > 0 && r.GetsNs > 0 && r.MGetNs > 0 && r.SetManyNs > 0 && r.PipelineNs > 0) {
		t.Errorf("batch: figures missing: %+v", r)
	}
	for i, f := range r.Fetch {
		if f.Trips > 3 || f.Loads != 1 || f.Asked != batchSize/2 || f.Wrong != 0 || f.Stored != batchSize/2 {
			t.Errorf("batch: FetchMany round %d: %+v; want <= 3 round trips, 1 load of %d keys, no wrong value, all stored",
				i, f, batchSize/2)
		}
	}
	t.Logf("batch: GetMany %.0fns, 100 Gets %.0fns, MGET %.0fns; SetMany %.0fns, pipeline %.0fns; FetchMany %+v",
		r.GetManyNs, r.GetsNs, r.MGetNs, r.SetManyNs, r.PipelineNs, r.Fetch)
}

func checkLease(t *testing.T, cfg Config, r *LeaseResult) {
	t.Helper()
	if len(r.Takeovers) != cfg.LeaseTrials {
		t.Errorf("lease: %d dead-holder trials, want %d", len(r.Takeovers), cfg.LeaseTrials)
	}
	for _, d := range r.Takeovers {
		// Never before the dead holder's lease expired (Redis expires keys
		// to the millisecond).
		if d < cfg.LeaseTTL-2*time.Millisecond {
			t.Errorf("lease: the waiter loaded %v after the dead holder's lease of %v was taken", d, cfg.LeaseTTL)
		}
	}
	x := r.Expired
	if x.Trials != cfg.ExpiredTrials || x.Gone != x.Trials {
		t.Errorf("lease: %d expired-holder trials, %d leases gone when B wrote, want %d and all", x.Trials, x.Gone, cfg.ExpiredTrials)
	}
	if x.StaleInRedis != 0 || x.OtherInRedis != 0 || x.StaleOnA != 0 {
		t.Errorf("lease: after the expired holders: %+v, want no stale and no other value", x)
	}
	t.Logf("lease: takeovers %v; expired holder %+v", r.Takeovers, x)
}
