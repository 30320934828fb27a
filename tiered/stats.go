package tiered

import "sync/atomic"

// counters are touched only off the local-hit path.
type counters struct {
	remoteHits, misses, bypassed    atomic.Uint64
	loads, loadErrors, decodeErrors atomic.Uint64
	invalidations, breaks, gaps     atomic.Uint64
	fallbacks, unproven             atomic.Uint64
	leaseWaits, staleServed         atomic.Uint64
	refreshes, refreshErrors        atomic.Uint64
	discarded, tracked, repairs     atomic.Uint64
	encodeErrors                    atomic.Uint64
}

// Stats are counts since New.
type Stats struct {
	LocalHits      uint64 // reads answered by the local tier
	RemoteHits     uint64 // reads answered by Redis
	Misses         uint64 // reads of keys Redis did not hold
	Bypassed       uint64 // Redis reads made while the subscription was not confirmed
	Loads          uint64 // loader calls (Fetch, FetchMany, refreshes)
	LoadErrors     uint64 // loader calls that failed
	LoadsDiscarded uint64 // loaded values not stored: the key was written, or its lease lost, during the load
	DecodeErrors   uint64 // Redis values that did not decode
	EncodeErrors   uint64 // loaded values the Codec could not encode: returned, and held in the local tier alone, not in Redis
	Invalidations  uint64 // invalidation messages applied from other instances
	Tracked        uint64 // invalidations Redis reported of the namespace's keys (HubOptions.Tracking)
	Malformed      uint64 // invalidation messages that did not decode, or were missed and not read back (each purged the local tier)
	Unproven       uint64 // reads sent to Redis because the Hub could not prove the local tier fresh (MaxStaleness)
	Fallbacks      uint64 // keys loaded without storing because Redis could not be read
	LeaseWaits     uint64 // times a Fetch waited for another instance's load of a key (its lease)
	Breaks         uint64 // times the subscription was lost (the local tier bypassed until it is back)
	Repairs        uint64 // times it came back with every invalidation missed read back (the local tier kept)
	StaleServed    uint64 // values served stale in place of a Redis error (StaleIfError)
	Refreshes      uint64 // loader calls of refreshes ahead of expiry (RefreshAhead; counted in Loads too)
	RefreshErrors  uint64 // refreshes that failed: a loader error or panic (counted in LoadErrors too), a Redis error

	LocalEntries     int    // entries in the local tier now
	LocalBytes       int64  // bytes the local tier holds now (see Options.LocalMaxBytes)
	LocalEvictions   uint64 // local entries evicted for room
	LocalExpirations uint64 // local entries found expired
}

// Stats returns the cache's counters.
func (c *Cache[V]) Stats() Stats {
	ls := c.local.Stats()
	return Stats{
		LocalHits:        ls.Hits,
		RemoteHits:       c.stats.remoteHits.Load(),
		Misses:           c.stats.misses.Load(),
		Bypassed:         c.stats.bypassed.Load(),
		Loads:            c.stats.loads.Load(),
		LoadErrors:       c.stats.loadErrors.Load(),
		LoadsDiscarded:   c.stats.discarded.Load(),
		DecodeErrors:     c.stats.decodeErrors.Load(),
		EncodeErrors:     c.stats.encodeErrors.Load(),
		Invalidations:    c.stats.invalidations.Load(),
		Tracked:          c.stats.tracked.Load(),
		Repairs:          c.stats.repairs.Load(),
		Malformed:        c.stats.gaps.Load(),
		Unproven:         c.stats.unproven.Load(),
		Fallbacks:        c.stats.fallbacks.Load(),
		LeaseWaits:       c.stats.leaseWaits.Load(),
		Breaks:           c.stats.breaks.Load(),
		StaleServed:      c.stats.staleServed.Load(),
		Refreshes:        c.stats.refreshes.Load(),
		RefreshErrors:    c.stats.refreshErrors.Load(),
		LocalEntries:     c.local.Len(),
		LocalBytes:       ls.Bytes,
		LocalEvictions:   ls.Evictions,
		LocalExpirations: ls.Expirations,
	}
}
