package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// proxy forwards TCP connections to the Redis server and can freeze the
// pub/sub ones: a frozen connection stays open but passes nothing either
// way, like a peer behind a dead NAT entry. A connection is pub/sub once the
// client has sent SUBSCRIBE on it. (internal/redistest has a fuller proxy,
// for tests only.) Plain-text connections only: through TLS it cannot see
// SUBSCRIBE.
type proxy struct {
	ln       net.Listener
	network  string
	upstream string
	wg       sync.WaitGroup // the accept loop and every copier

	mu     sync.Mutex
	links  map[*link]struct{} // guarded by mu: open links
	closed bool               // guarded by mu
}

type link struct {
	down, up  net.Conn
	frozen    atomic.Bool
	pubsub    atomic.Bool // the client sent SUBSCRIBE on it
	closeOnce sync.Once
}

// newProxy listens on a free loopback port and forwards each connection to
// upstream (dialled with network, "tcp" if empty) until Close.
func newProxy(network, upstream string) (*proxy, error) {
	if network == "" {
		network = "tcp"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: proxy: %w", err)
	}
	p := &proxy{ln: ln, network: network, upstream: upstream, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// addr is the address clients dial.
func (p *proxy) addr() string { return p.ln.Addr().String() }

// freezePubSub freezes every open pub/sub connection and returns how many it
// froze. Other connections, and later ones, keep working.
func (p *proxy) freezePubSub() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for l := range p.links {
		if l.pubsub.Load() && !l.frozen.Swap(true) {
			n++
		}
	}
	return n
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial(p.network, p.upstream)
		if err != nil {
			_ = down.Close()
			continue
		}
		l := &link{down: down, up: up}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(l, up, down, true)
		go p.pipe(l, down, up, false)
	}
}

var (
	subscribeLower = []byte("subscribe")
	subscribeUpper = []byte("SUBSCRIBE")
)

// sentSubscribe reports whether b, written by a client, holds a SUBSCRIBE.
func sentSubscribe(b []byte) bool {
	return bytes.Contains(b, subscribeLower) || bytes.Contains(b, subscribeUpper)
}

// pipe copies src to dst, dropping what it reads while the link is frozen;
// in the client-to-server direction it watches for SUBSCRIBE. The first
// side to end closes both, and the link is forgotten.
func (p *proxy) pipe(l *link, dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if l.frozen.Load() {
			continue
		}
		chunk := buf[:n]
		if fromClient && !l.pubsub.Load() && sentSubscribe(chunk) {
			l.pubsub.Store(true)
		}
		if _, err := dst.Write(chunk); err != nil {
			return
		}
	}
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		_ = l.down.Close()
		_ = l.up.Close()
	})
}

// close stops listening, closes every connection and waits for the copiers.
// It is idempotent.
func (p *proxy) close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
