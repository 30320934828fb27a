package faults

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/tiered"
)

// huntStaleness is the MaxStaleness of the hunt, and the age that makes a
// read stale in both hunts (the control's too).
const huntStaleness = 5 * time.Millisecond

// ledger is the writer's acknowledgements: acks[v] is when the Set of
// version v returned (ns since base); acked is the newest v written.
type ledger struct {
	base  time.Time
	acks  []int64
	acked atomic.Int64
}

func (l *ledger) now() int64 { return int64(time.Since(l.base)) }

// hunted is what the hunters found.
type hunted struct {
	reads, local, stale, staleLocal uint64
	worst                           time.Duration // the oldest read: how long before it began the next version was acknowledged
	writes                          int64
}

// hunter Gets key on n until stop, and counts in h the reads that returned
// a version older than one acknowledged more than huntStaleness before the
// read began (and sets found): a read begins before tiered reads its clock
// and an ack is taken after Set returned, so a read counted stale is stale.
func (l *ledger) hunter(ctx context.Context, n *node, key string, stop, found *atomic.Bool, h *hunted) error {
	var graced, newest int64 // the newest versions acknowledged huntStaleness before the read began, and before it
	for !stop.Load() {
		start, hits := l.now(), n.hits.Load()
		v, err := n.Get(ctx, key)
		if err != nil {
			return err
		}
		local := n.hits.Load() != hits
		h.reads++
		if local {
			h.local++
		}
		lim := l.acked.Load()
		for graced < lim && l.acks[graced+1] < start-int64(huntStaleness) {
			graced++
		}
		for newest < lim && l.acks[newest+1] < start {
			newest++
		}
		ver := version(v)
		if ver < newest {
			h.worst = max(h.worst, time.Duration(start-l.acks[ver+1]))
		}
		if ver < graced {
			h.stale++
			found.Store(true)
			if local {
				h.staleLocal++
			}
		}
	}
	return nil
}

// hunt has a writer Set key to 1, 2, 3, … as fast as it can for d (and,
// with untilFound, on for up to 3d until a stale read is found) while
// readers, one goroutine each, Get it in tight loops; every instance has
// MaxStaleness maxStaleness. It then checks that every reader returns the
// last version once it is huntStaleness old.
func hunt(t *testing.T, s *redistest.Server, key string, maxStaleness, d time.Duration, untilFound bool) hunted {
	ctx := context.Background()
	hopts := tiered.HubOptions{MaxStaleness: maxStaleness}
	copts := &redis.Options{Addr: s.Addr}
	w := newNode(t, copts, s.Namespace, hopts, tiered.Options[string]{})
	readers := make([]*node, 4)
	for i := range readers {
		readers[i] = newNode(t, copts, s.Namespace, hopts, tiered.Options[string]{})
	}
	l := &ledger{base: time.Now(), acks: make([]int64, 1<<20)}
	if err := w.Set(ctx, key, "0"); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		if err := r.holds(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	var (
		stop, found atomic.Bool
		wg          sync.WaitGroup
		tals        = make([]hunted, len(readers))
		errs        = make([]error, len(readers))
	)
	for i, r := range readers {
		wg.Go(func() { errs[i] = l.hunter(ctx, r, key, &stop, &found, &tals[i]) })
	}
	for end := time.Now().Add(d); time.Now().Before(end) || (untilFound && time.Now().Before(end.Add(2*d)) && !found.Load()); {
		v := l.acked.Load() + 1
		if int(v) == len(l.acks) {
			break
		}
		if err := w.Set(ctx, key, strconv.FormatInt(v, 10)); err != nil {
			t.Fatal(err)
		}
		l.acks[v] = l.now()
		l.acked.Store(v)
	}
	stop.Store(true)
	wg.Wait()
	var h hunted
	for i, x := range tals {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		h.reads, h.local, h.stale, h.staleLocal = h.reads+x.reads, h.local+x.local, h.stale+x.stale, h.staleLocal+x.staleLocal
		h.worst = max(h.worst, x.worst)
	}
	h.writes = l.acked.Load()
	if maxStaleness > 0 {
		settleHunt(t, l, readers, key)
	}
	return h
}

// settleHunt checks that every reader returns the last version once it is
// huntStaleness old: by then no local hit may return an older one.
func settleHunt(t *testing.T, l *ledger, readers []*node, key string) {
	t.Helper()
	last := l.acked.Load()
	time.Sleep(time.Until(l.base.Add(time.Duration(l.acks[last]) + huntStaleness)))
	for i, r := range readers {
		if v, err := r.Get(context.Background(), key); err != nil || version(v) != last {
			t.Errorf("reader %d: Get = %q, %v, %v after version %d was acknowledged", i, v, err, huntStaleness, last)
		}
	}
}

// TestStaleHunt: four readers, each an instance of its own with one
// goroutine, spin on local hits of one key while a writer Sets it as fast
// as it can. With MaxStaleness on, no read returns a version older than
// one acknowledged more than MaxStaleness before the read began (the bound
// is exact: see hunter); with it off, the control, the same hunt must find
// such reads, or it could not have found them with it on.
func TestStaleHunt(t *testing.T) {
	needRealServer(t)
	s := redistest.New(t)
	began := time.Now()
	on := hunt(t, s, "hunt-on", huntStaleness, 2*time.Second, false)
	off := hunt(t, s, "hunt-off", -1, 2*time.Second, true)
	for _, c := range []struct {
		name string
		h    hunted
	}{{"MaxStaleness " + huntStaleness.String(), on}, {"MaxStaleness off", off}} {
		t.Logf("%s: %d writes; %d reads, %d local hits; older than %v: %d reads, %d local hits; oldest %s",
			c.name, c.h.writes, c.h.reads, c.h.local, huntStaleness, c.h.stale, c.h.staleLocal, ms(c.h.worst))
	}
	if on.local == 0 || on.writes == 0 {
		t.Errorf("MaxStaleness on: %d local hits during %d writes: nothing was hunted", on.local, on.writes)
	}
	if on.stale > 0 {
		t.Errorf("MaxStaleness %v: %d reads (%d local hits) returned a version older than one acknowledged %v "+
			"before they began (the oldest by %s)", huntStaleness, on.stale, on.staleLocal, huntStaleness, ms(on.worst))
	}
	if off.stale == 0 {
		t.Errorf("MaxStaleness off: the hunt found no read older than %v in %d reads: it cannot tell", huntStaleness, off.reads)
	}
	t.Logf("took %v", time.Since(began).Round(10*time.Millisecond))
}
