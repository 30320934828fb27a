package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress writes one status line to a terminal, rewritten in place, or (to
// a file or pipe) a line every few seconds at most. A nil *progress is
// silent.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	last time.Time // guarded by mu
	dirt bool      // guarded by mu: a line is shown on a terminal
}

// newProgress reports to f.
func newProgress(f *os.File) *progress {
	p := &progress{w: f}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		p.tty = true
	}
	return p
}

// update shows a new status.
func (p *progress) update(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	line := clip(fmt.Sprintf(format, args...), reportWidth)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.dirt = true
		return
	}
	if now.Sub(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = now
	}
}

// done clears the status line.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.dirt {
		fmt.Fprint(p.w, "\r\033[K")
		p.dirt = false
	}
}

// ticker calls show every 250ms until the returned stop is called; stop
// waits for it.
func (p *progress) ticker(show func()) (stop func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				show()
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			p.done()
		})
	}
}

// clip cuts s to at most n columns, ending it with "…" when it cuts.
func clip(s string, n int) string {
	if width(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
