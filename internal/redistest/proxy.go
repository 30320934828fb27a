package redistest

import (
	"bytes"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a Redis server, and can break them in the
// ways networks do:
//
//   - Freeze: every connection made so far stays open but passes nothing, like
//     a peer that vanished without closing (a pulled cable, a dead NAT entry);
//     FreezePubSub does it to the pub/sub connections alone;
//   - Split: the next reply containing a marker stalls half way;
//   - CutPubSub: pub/sub connections are closed, and any new connection is
//     closed as soon as it sends SUBSCRIBE, while ordinary commands still
//     pass: a client that can read and write but cannot hear invalidations;
//   - CutData: the other way round, every connection but the pub/sub ones
//     is closed, and every new one too: a client that hears (or, frozen,
//     does not hear) invalidations but cannot read or write.
//   - SetDelay: every byte reaches the other side a given delay after the
//     proxy read it, in order, as over a long or congested path;
//   - Stall: nothing is read from either side until the stall ends, so
//     what the peers send piles up in their socket buffers (and then in
//     their own), as behind a link that stopped draining; nothing is lost.
type Proxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup // accept loop and copiers

	split  atomic.Pointer[splitSpec] // one-shot: stall the next reply containing marker
	cutSub atomic.Bool               // close connections that subscribe
	refuse atomic.Bool               // close every new connection at once
	small  atomic.Bool               // give new connections small socket buffers
	delay  atomic.Int64              // nanoseconds every chunk is held (SetDelay)
	done   chan struct{}             // closed when the proxy closes

	mu      sync.Mutex
	links   []*link       // guarded by mu: every link accepted so far
	closed  bool          // guarded by mu
	resume  chan struct{} // guarded by mu: non-nil while stalled, closed when the stall ends
	stalled int           // guarded by mu: how many Stall(true) are in force
}

// splitSpec makes the proxy pass a reply from the server up to marker, wait
// gap, then pass the rest.
type splitSpec struct {
	marker []byte
	gap    time.Duration
}

type link struct {
	down, up  net.Conn
	frozen    atomic.Bool
	stalled   atomic.Bool // the proxy no longer reads what the client sends
	pubsub    atomic.Bool // the client sent SUBSCRIBE on it
	closeOnce sync.Once
	closed    chan struct{} // closed by close
}

// NewProxy listens on a free loopback port and forwards to upstream until the
// test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startProxy(t, ln, upstream)
}

// NewUnixProxy is NewProxy listening on a unix socket in t.TempDir(): its
// Addr is the socket's path, for a client with Network "unix".
func NewUnixProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "redis.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return startProxy(t, ln, upstream)
}

func startProxy(t testing.TB, ln net.Listener, upstream string) *Proxy {
	p := &Proxy{ln: ln, upstream: upstream, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops every connection made so far; later ones work.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen.Store(true)
	}
}

// FreezePubSub is Freeze for the pub/sub connections made so far (those
// that have sent SUBSCRIBE) alone: other connections, and later ones, work.
func (p *Proxy) FreezePubSub() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		if l.pubsub.Load() {
			l.frozen.Store(true)
		}
	}
}

// StallPubSub makes the proxy stop reading what the pub/sub connections made
// so far send, as a peer that is alive but reads nothing: once the socket
// buffers are full, the client's writes block. Replies still pass. Call
// SmallBuffers first for the buffers to fill fast.
func (p *Proxy) StallPubSub() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		if l.pubsub.Load() {
			l.stalled.Store(true)
		}
	}
}

// SmallBuffers gives the connections accepted from now on a small receive
// buffer on the proxy's side, so that a stalled one fills up after a few
// kilobytes.
func (p *Proxy) SmallBuffers() { p.small.Store(true) }

// Split stalls the next server-to-client read that contains marker: the
// bytes before marker pass at once, the rest after gap.
func (p *Proxy) Split(marker []byte, gap time.Duration) {
	p.split.Store(&splitSpec{marker: marker, gap: gap})
}

// CutPubSub(true) closes every pub/sub connection and, until CutPubSub(false),
// closes each connection that sends SUBSCRIBE before the command reaches the
// server. Other connections are untouched.
func (p *Proxy) CutPubSub(on bool) {
	p.cutSub.Store(on)
	if !on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		if l.pubsub.Load() {
			l.close()
		}
	}
}

// CutData(true) closes every connection but the pub/sub ones and, until
// CutData(false), closes each new connection at once.
func (p *Proxy) CutData(on bool) {
	p.refuse.Store(on)
	if !on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		if !l.pubsub.Load() {
			l.close()
		}
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = down.Close()
			continue
		}
		if p.small.Load() {
			if rb, ok := down.(interface{ SetReadBuffer(int) error }); ok {
				_ = rb.SetReadBuffer(4096)
			}
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = down.Close()
			continue
		}
		l := &link{down: down, up: up, closed: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.links = append(p.links, l)
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(l, up, down, true)
		go p.pipe(l, down, up, false)
	}
}

var subscribeCmd = []byte("subscribe")

// pipe copies src to dst, dropping what it reads while the link is frozen.
// fromClient marks the client-to-server direction, where SUBSCRIBE is
// watched for; the other direction applies a pending split. Once a chunk has
// been delayed (SetDelay), every later chunk of the direction goes through
// the same queue, so that bytes keep their order when the delay changes.
func (p *Proxy) pipe(l *link, dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer l.close()
	var queue chan heldChunk // nil until the first delayed chunk
	defer func() {
		if queue != nil {
			close(queue)
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		if fromClient && l.stalled.Load() {
			<-l.closed
			return
		}
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if !p.waitStall(l) {
			return
		}
		if l.frozen.Load() {
			continue
		}
		chunk := buf[:n]
		if fromClient {
			if bytes.Contains(bytes.ToLower(chunk), subscribeCmd) {
				l.pubsub.Store(true)
			}
			if l.pubsub.Load() && p.cutSub.Load() {
				return
			}
		} else if sp := p.split.Load(); sp != nil {
			if i := bytes.Index(chunk, sp.marker); i >= 0 && p.split.CompareAndSwap(sp, nil) {
				if _, err := dst.Write(chunk[:i]); err != nil {
					return
				}
				time.Sleep(sp.gap)
				chunk = chunk[i:]
			}
		}
		if d := time.Duration(p.delay.Load()); d > 0 || queue != nil {
			if queue == nil {
				queue = make(chan heldChunk, 1024)
				p.wg.Add(1)
				go p.deliver(l, dst, queue)
			}
			select {
			case queue <- heldChunk{due: time.Now().Add(d), b: bytes.Clone(chunk)}:
			case <-l.closed:
				return
			}
			continue
		}
		if _, err := dst.Write(chunk); err != nil {
			return
		}
	}
}

// heldChunk is a chunk of a delayed direction and when it is due.
type heldChunk struct {
	due time.Time
	b   []byte
}

// deliver writes the chunks of queue to dst in order, each once it is due,
// until queue is closed or a write fails.
func (p *Proxy) deliver(l *link, dst net.Conn, queue <-chan heldChunk) {
	defer p.wg.Done()
	defer l.close()
	for c := range queue {
		if wait := time.Until(c.due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-l.closed:
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// SetDelay holds every chunk read from now on for d before passing it on,
// in both directions of every connection, keeping the order of the bytes
// (a later chunk never overtakes an earlier one, whatever the delays). 0
// ends the delay for chunks read from then on.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// Stall(true) stops the proxy reading from any connection, old or new, in
// either direction, until as many Stall(false) calls; a chunk read just
// before is held, not dropped. The peers see a link that accepts their
// bytes until their socket buffers fill, then none.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on:
		p.stalled++
		if p.resume == nil {
			p.resume = make(chan struct{})
		}
	case p.stalled > 0:
		p.stalled--
		if p.stalled == 0 {
			close(p.resume)
			p.resume = nil
		}
	}
}

// waitStall returns once the proxy is not stalled: true, or false if the
// link or the proxy closed meanwhile.
func (p *Proxy) waitStall(l *link) bool {
	p.mu.Lock()
	resume := p.resume
	p.mu.Unlock()
	if resume == nil {
		return true
	}
	select {
	case <-resume:
		return true
	case <-l.closed:
		return false
	case <-p.done:
		return false
	}
}

func (l *link) close() {
	l.closeOnce.Do(func() { close(l.closed) })
	_ = l.down.Close()
	_ = l.up.Close()
}

func (p *Proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	links := p.links
	p.mu.Unlock()
	close(p.done)
	_ = p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
}
