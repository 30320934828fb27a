package invalidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// topology is what a Cluster Subscriber's connections follow: the master
// that owns the first slot of each group (and so holds the group's channel)
// and whether the servers have sharded pub/sub (Redis 7). Without it, one
// connection hears each namespace's classic channel, as on a single node.
type topology struct {
	groups  map[string][]int // every master's address -> the groups whose first slot it owns, sorted
	sharded bool
}

func (t topology) equal(u topology) bool {
	return t.sharded == u.sharded && maps.EqualFunc(t.groups, u.groups, slices.Equal[[]int])
}

// links returns one link per master of t. The first master (by address)
// also carries the classic channels: a writer that publishes there (a
// release before the group channels, or Redis 6) reaches it over the
// cluster bus.
//
// A master that owns no group's first slot needs no link, but with
// Tracking, where each master reports the changes to its own keys.
func (s *Subscriber) linksOf(t topology) []*link {
	addrs := slices.Sorted(maps.Keys(t.groups))
	links := make([]*link, 0, len(addrs))
	for i, addr := range addrs {
		var groups []int
		if t.sharded {
			groups = t.groups[addr]
		}
		if i > 0 && len(groups) == 0 && !s.opts.Tracking {
			continue
		}
		links = append(links, s.newLink(s.own.nodeClient(addr), addr, i == 0, groups))
	}
	return links
}

// keep is a Cluster Subscriber's goroutine: it reads the topology, keeps
// one link per master that owns a group's first slot, and reads the
// topology again whenever a link asks (a connection lost, a channel that
// the server dropped because its slot moved), rebuilding every link when
// it changed. A rebuild is a loss: the links it retires report Broken.
func (s *Subscriber) keep() {
	defer s.wg.Done()
	backoff := min(minBackoff, s.opts.MaxBackoff)
	warn := warnLimiter{every: s.warnEvery}
	var cur topology
	for {
		t, err := s.readTopology()
		if err == nil && len(t.groups) == 0 {
			err = errors.New("no master owns a slot")
		}
		switch {
		case err != nil:
			err = fmt.Errorf("invalidate: read the cluster's topology: %w", err)
			s.setLastError(err)
			if ok, suppressed := warn.allow(time.Now()); ok {
				s.log.Warn("invalidate: cannot read the cluster's topology; retrying",
					slog.Any("error", err), slog.Int("suppressed", suppressed))
			}
			if !s.sleep(backoff/2 + rand.N(backoff/2+1)) {
				return
			}
			backoff = min(2*backoff, s.opts.MaxBackoff)
			continue
		case !t.equal(cur):
			s.rebuild(t)
			cur = t
		}
		backoff = min(minBackoff, s.opts.MaxBackoff)
		select {
		case <-s.refresh:
		case <-s.ctx.Done():
			return
		}
	}
}

// staleTopology, when a test sets it, rewrites every topology the keeper
// reads, as a view the nodes no longer hold would be.
var staleTopology func(topology) topology

// readTopology reads which master owns each group's first slot
// (CLUSTER SLOTS) and whether the masters have sharded pub/sub.
func (s *Subscriber) readTopology() (topology, error) {
	t, err := s.readSlots()
	if err == nil && staleTopology != nil {
		t = staleTopology(t)
	}
	return t, err
}

func (s *Subscriber) readSlots() (topology, error) {
	ctx, cancel := context.WithTimeout(s.ctx, max(s.opts.HealthCheck, time.Second))
	defer cancel()
	slots, err := s.own.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return topology{}, err
	}
	t := topology{groups: make(map[string][]int)}
	for _, r := range slots {
		if len(r.Nodes) > 0 {
			t.groups[r.Nodes[0].Addr] = t.groups[r.Nodes[0].Addr][:0:0]
		}
	}
	for g := range Groups {
		first := int(GroupSlot(g))
		for _, r := range slots {
			if r.Start <= first && first <= r.End && len(r.Nodes) > 0 {
				t.groups[r.Nodes[0].Addr] = append(t.groups[r.Nodes[0].Addr], g)
				break
			}
		}
	}
	if len(t.groups) == 0 {
		return t, nil
	}
	// One master tells for the cluster.
	err = s.own.nodeClient(slices.Min(slices.Collect(maps.Keys(t.groups)))).Do(ctx, "PUBSUB", "SHARDNUMSUB").Err()
	var re redis.Error
	switch {
	case err == nil:
		t.sharded = true
	case !errors.As(err, &re): // not the server's answer: the topology is not known
		return topology{}, err
	}
	return t, nil
}

// rebuild retires the current links, waits for them (each reports Broken
// if its connection was confirmed), then starts those of t.
func (s *Subscriber) rebuild(t topology) {
	s.mu.Lock()
	old := s.links
	s.mu.Unlock()
	for _, l := range old {
		l.close()
	}
	for _, l := range old {
		<-l.done
		s.retiredPings.Add(l.fence.pings.Load())
		s.retiredHealth.Add(l.fence.healthPings.Load())
	}
	if len(old) > 0 {
		s.log.Info("invalidate: following the cluster's new topology", slog.Int("connections", len(t.groups)))
	}
	s.start(s.linksOf(t))
}

// askRefresh asks the keeper, if there is one, to read the topology again.
func (s *Subscriber) askRefresh() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// sleep waits d, and reports false if the Subscriber was closed first.
func (s *Subscriber) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// checkOwner asks the link's node, on a connection of its own, whether it
// owns the first slot of each of the link's groups, once the server has
// confirmed every channel of the link: a node that stops owning a slot
// after that unsubscribes the link from the slot's channels (and the link
// connects again), so a link confirmed by a master stays on a master. A
// replica accepts SSUBSCRIBE too, and hears its master's messages by
// replication, late, while it answers the fence's PINGs at once: a link
// on it must never prove freshness. A node that does not own them is an
// error; the keeper reads the topology again.
func (lp *loop) checkOwner() error {
	l, s := lp.l, lp.l.s
	ctx, cancel := context.WithTimeout(l.ctx, max(s.opts.HealthCheck, time.Second))
	defer cancel()
	slots, err := l.client.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("invalidate: ask %s which slots it serves: %w", l.addr, err)
	}
	for _, g := range l.groups {
		first := int(GroupSlot(g))
		owner := ""
		for _, r := range slots {
			if r.Start <= first && first <= r.End && len(r.Nodes) > 0 {
				owner = r.Nodes[0].Addr
				break
			}
		}
		if owner != l.addr {
			return fmt.Errorf("invalidate: %s no longer serves slot %d (%s does, it says)", l.addr, first, owner)
		}
	}
	return nil
}
