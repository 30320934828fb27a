package invalidate

import "time"

// warnLimiter spaces out Warn records about a trouble that can repeat fast
// (a message per write, an attempt per backoff): the first is let through
// at once, then at most one per interval, which carries the number held back
// since the one before. It is not safe for concurrent use; the Subscriber's
// goroutine owns its limiters.
type warnLimiter struct {
	every      time.Duration
	last       time.Time // when the last Warn was let through; zero before the first
	suppressed int       // held back since last
}

// allow reports whether a Warn may be logged at now and, if so, how many
// were held back since the last one. A false answer counts as held back.
func (w *warnLimiter) allow(now time.Time) (ok bool, suppressed int) {
	if !w.last.IsZero() && now.Sub(w.last) < w.every {
		w.suppressed++
		return false, 0
	}
	suppressed = w.suppressed
	w.last, w.suppressed = now, 0
	return true, suppressed
}
