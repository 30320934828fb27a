package tiered

import (
	"sync"
	"time"
)

// logEvery is the least time between two Warn records of one condition of a
// cache (a message text): a condition that every call can meet, as every
// call does while Redis is down, logs once and then at most once per
// logEvery, each record with the number held back since the one before
// ("suppressed").
var logEvery = 10 * time.Second

// logLimiter spaces out a cache's Warn records, per condition.
type logLimiter struct {
	mu   sync.Mutex
	seen map[string]*logSlot // guarded by mu: by message
}

type logSlot struct {
	last       time.Time // when the last record was let through
	suppressed int       // held back since
}

// allow reports whether a record of msg may be logged at now and, if so,
// how many were held back since the last one.
func (l *logLimiter) allow(msg string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[msg]
	if s == nil {
		if l.seen == nil {
			l.seen = make(map[string]*logSlot)
		}
		l.seen[msg] = &logSlot{last: now}
		return true, 0
	}
	if now.Sub(s.last) < logEvery {
		s.suppressed++
		return false, 0
	}
	suppressed = s.suppressed
	s.last, s.suppressed = now, 0
	return true, suppressed
}

// warnLimited logs msg at Warn unless a record of it was let through less
// than logEvery ago, with the number held back since as "suppressed".
func (c *Cache[V]) warnLimited(msg string, args ...any) {
	ok, n := c.logs.allow(msg, time.Now())
	if !ok {
		return
	}
	c.log.Warn(msg, append(args, "suppressed", n)...)
}
