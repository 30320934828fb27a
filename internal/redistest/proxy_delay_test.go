package redistest

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// echoServer accepts connections on a loopback port and writes back what it
// reads, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dialProxy connects to p, closed when the test ends.
func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readWithin reads n bytes from c within d, or returns what came.
func readWithin(c net.Conn, n int, d time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	got, _ := io.ReadFull(c, buf)
	_ = c.SetReadDeadline(time.Time{})
	return string(buf[:got])
}

// TestProxyDelayHoldsAndKeepsOrder: a delayed round trip through an echo
// server takes at least twice the delay (each direction holds the bytes),
// and bytes sent under a long delay are not overtaken by bytes sent after
// the delay was lowered.
func TestProxyDelayHoldsAndKeepsOrder(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c := dialProxy(t, p)
	const d = 40 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if got := readWithin(c, 1, 10*time.Second); got != "a" {
		t.Fatalf("echo through the delayed proxy: %q", got)
	}
	if rt := time.Since(start); rt < 2*d {
		t.Fatalf("a round trip took %v through a proxy delaying each direction by %v", rt, d)
	}

	p.SetDelay(300 * time.Millisecond)
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // "b" is read and held by now, in any but a starved run
	p.SetDelay(0)
	if _, err := c.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if got := readWithin(c, 2, 10*time.Second); got != "bc" {
		t.Fatalf("after lowering the delay the echo is %q, want \"bc\"", got)
	}
}

// TestProxyStall: nothing crosses a stalled proxy, on an old connection or
// a new one, and what was held arrives once the stall ends; nested stalls
// end with the last Stall(false).
func TestProxyStall(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	old := dialProxy(t, p)
	if _, err := old.Write([]byte("0")); err != nil {
		t.Fatal(err)
	}
	if got := readWithin(old, 1, 10*time.Second); got != "0" {
		t.Fatalf("echo before the stall: %q", got)
	}
	p.Stall(true)
	p.Stall(true)
	fresh := dialProxy(t, p)
	for _, c := range []net.Conn{old, fresh} {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	p.Stall(false) // one stall is still in force
	for i, c := range []net.Conn{old, fresh} {
		if got := readWithin(c, 1, 200*time.Millisecond); got != "" {
			t.Fatalf("connection %d: %q crossed a stalled proxy", i, got)
		}
	}
	p.Stall(false)
	for i, c := range []net.Conn{old, fresh} {
		if got := readWithin(c, 1, 10*time.Second); got != "x" {
			t.Fatalf("connection %d after the stall: %q, want the held \"x\"", i, got)
		}
	}
}

// TestProxyDelayThroughRedis: a delayed proxy in front of a server still
// speaks RESP correctly, pipelines included.
func TestProxyDelayThroughRedis(t *testing.T) {
	s := New(t)
	p := NewProxy(t, s.Addr)
	p.SetDelay(5 * time.Millisecond)
	ctx := context.Background()
	pc := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer pc.Close()
	pipe := pc.Pipeline()
	for i := range 200 {
		pipe.Set(ctx, s.Namespace+":k", i, 0)
	}
	get := pipe.Get(ctx, s.Namespace+":k")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v := get.Val(); v != "199" {
		t.Fatalf("after 200 pipelined SETs through a delayed proxy: %q, want \"199\"", v)
	}
}
