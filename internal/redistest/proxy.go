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
type Proxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup // accept loop and copiers

	split  atomic.Pointer[splitSpec] // one-shot: stall the next reply containing marker
	cutSub atomic.Bool               // close connections that subscribe
	refuse atomic.Bool               // close every new connection at once
	small  atomic.Bool               // give new connections small socket buffers

	mu     sync.Mutex
	links  []*link // guarded by mu: every link accepted so far
	closed bool    // guarded by mu
}

// splitSpec makes the proxy pass a reply from the server up to marker, wait
// gap, then pass the rest.
type splitSpec struct {
	marker []byte
	gap    time.Duration
}

type link struct {
	down, up net.Conn
	frozen   atomic.Bool
	stalled  atomic.Bool   // the proxy no longer reads what the client sends
	pubsub   atomic.Bool   // the client sent SUBSCRIBE on it
	done     chan struct{} // closed by close
	once     sync.Once
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
	p := &Proxy{ln: ln, upstream: upstream}
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
		l := &link{down: down, up: up, done: make(chan struct{})}
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
// watched for; the other direction applies a pending split.
func (p *Proxy) pipe(l *link, dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer l.close()
	buf := make([]byte, 64<<10)
	for {
		if fromClient && l.stalled.Load() {
			<-l.done
			return
		}
		n, err := src.Read(buf)
		if err != nil {
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
		if _, err := dst.Write(chunk); err != nil {
			return
		}
	}
}

func (l *link) close() {
	l.once.Do(func() { close(l.done) })
	_ = l.down.Close()
	_ = l.up.Close()
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	links := p.links
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
}
