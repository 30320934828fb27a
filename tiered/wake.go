package tiered

import (
	"sync"
	"sync/atomic"
)

// wakers lets a Fetch that waits for another instance's load of some keys
// sleep until something happens to one of them: an invalidation of the key
// (the message of the write that stored the loaded value, or released the
// lease), a purge, or a write of this instance. A waiter registers before
// the Redis read that shows it the lease, so the message of a write made
// just after that read cannot be missed.
type wakers struct {
	n  atomic.Int64 // registrations; the invalidation path skips the lock at 0
	mu sync.Mutex
	by map[string][]chan struct{} // guarded by mu
}

// newWaiter returns a channel for watch: it receives (without blocking its
// sender) once a watched key is woken.
func newWaiter() chan struct{} { return make(chan struct{}, 1) }

// watch registers w for keys until it is woken for one of them or
// unwatched.
func (ws *wakers) watch(w chan struct{}, keys []string) {
	ws.mu.Lock()
	if ws.by == nil {
		ws.by = make(map[string][]chan struct{})
	}
	for _, k := range keys {
		ws.by[k] = append(ws.by[k], w)
	}
	ws.n.Add(int64(len(keys)))
	ws.mu.Unlock()
}

// unwatch removes every registration of w for keys.
func (ws *wakers) unwatch(w chan struct{}, keys []string) {
	ws.mu.Lock()
	for _, k := range keys {
		list := ws.by[k]
		for i := 0; i < len(list); i++ {
			if list[i] == w {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				ws.n.Add(-1)
				i--
			}
		}
		if len(list) == 0 {
			delete(ws.by, k)
		} else {
			ws.by[k] = list
		}
	}
	ws.mu.Unlock()
}

// wake signals the waiters of keys.
func (ws *wakers) wake(keys ...string) {
	if ws.n.Load() == 0 {
		return
	}
	ws.mu.Lock()
	for _, k := range keys {
		for _, w := range ws.by[k] {
			signal(w)
		}
	}
	ws.mu.Unlock()
}

// wakeAll signals every waiter.
func (ws *wakers) wakeAll() {
	if ws.n.Load() == 0 {
		return
	}
	ws.mu.Lock()
	for _, list := range ws.by {
		for _, w := range list {
			signal(w)
		}
	}
	ws.mu.Unlock()
}

func signal(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}
