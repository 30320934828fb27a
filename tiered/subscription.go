package tiered

import (
	"time"

	"github.com/tiercache/tiercache/internal/invalidate"
)

// onMessage applies another instance's invalidation. Runs on the subscriber
// goroutine.
func (c *Cache[V]) onMessage(m invalidate.Message) {
	if m.Origin == c.origin && !m.Tracked {
		return // our own writes settled the local tier themselves (see settleWrite)
	}
	if m.All {
		c.purgeLocal()
	} else {
		c.invalidateLocal(m.Keys...)
	}
	if m.Tracked { // counted once applied: a reader of Stats sees its effect
		c.stats.tracked.Add(1)
	} else {
		c.stats.invalidations.Add(1)
	}
	if c.obs != nil {
		e := Event{Kind: EventInvalidation, Keys: len(m.Keys), Duration: -1}
		switch {
		case m.All:
			e.Op = "all"
		case m.Tracked:
			e.Op = "tracking"
		}
		if !m.Sent.IsZero() {
			e.Duration = max(time.Since(m.Sent), 0) // below 0 only by clock skew
		}
		c.observe(e)
	}
}

// onState follows the subscription. Messages may have been lost while it
// was down, so the local tier is bypassed from the loss until the
// namespace is confirmed again, and then purged, unless the Hub read back
// every message missed (Repaired): then it is used again as it was, the
// keys written meanwhile dropped. A purge bumps every generation, so no
// read or write that began before it can fill the local tier after it. A
// loss and a purge overtake every flight, so no call that begins after
// them joins one that began before. A message that did not decode may have
// carried invalidations (a newer release's wire version, say): that gap
// purges too, and the local tier stays in use.
func (c *Cache[V]) onState(s invalidate.State, err error) {
	if c.obs != nil {
		c.observe(Event{Kind: EventSubscription, State: stateOf(s), Err: err})
	}
	switch s {
	case invalidate.Subscribed:
		c.purgeLive()
		c.retainSuspect()
		c.goLive()
	case invalidate.Repaired:
		c.retainSuspect()
		c.stats.repairs.Add(1)
		c.goLive()
	case invalidate.Gap:
		c.purgeLocal()
		c.stats.gaps.Add(1)
		c.warnLimited("tiered: invalidations may have been missed; local tier purged",
			"namespace", c.namespace, "err", err)
	case invalidate.Broken:
		// StaleIfError: keep what the local tier holds as suspect, before
		// the switch to bypass, so that no read in between finds neither
		// (until the switch, a read that Redis fails is answered from the
		// local tier itself: the proof of freshness is gone already).
		if c.suspect != nil && c.state.Load() == stateLive {
			c.keepSuspect()
		}
		c.state.CompareAndSwap(stateLive, stateBypass)
		c.reads.overtakeAll()
		c.loads.overtakeAll()
		c.wakers.wakeAll()
		c.stats.breaks.Add(1)
		c.log.Warn("tiered: invalidation subscription lost; local tier bypassed until it is back",
			"namespace", c.namespace, "err", err)
	}
}
