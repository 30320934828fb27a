package faults

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// phases runs the faults, one phase after another, on the test's goroutine.
type phases struct {
	t   *testing.T
	g   target
	f   *fixture
	dry bool // run the schedule but inject nothing

	names      []string
	breaks     []uint64 // per phase: subscriptions lost, all instances
	restarts   []span
	killed     int
	failedOver int
}

// run runs one phase: fn injects its faults; then run lets the last of them
// be noticed (a subscription dropped by the storm's last Delete, say) and
// waits until every subscription is back, which counts as part of the phase.
func (p *phases) run(name string, fn func()) {
	before := p.breaksNow()
	p.f.phase.Store(int32(len(p.names)))
	p.names = append(p.names, name)
	fn()
	time.Sleep(3 * healthCheck)
	p.f.waitSubscribed(p.t, "after phase "+name)
	p.breaks = append(p.breaks, p.breaksNow()-before)
}

func (p *phases) breaksNow() (n uint64) {
	for _, c := range p.f.insts {
		n += c.Stats().Breaks
	}
	return n
}

// kills kills pub/sub connections 100 times, 20 to 50 ms apart: one
// instance's (by client name) nine times in ten, every instance's the tenth.
func (p *phases) kills() {
	for i := range 100 {
		time.Sleep(time.Duration(20+rand.IntN(31)) * time.Millisecond)
		name := p.f.names[i%nInstances]
		if i%10 == 9 {
			name = ""
		}
		if !p.dry {
			p.killed += p.g.killPubSub(name)
		}
	}
}

// restartServer restarts the server 10 times, each once the instances have
// subscribed again and served some traffic. The server loses its data in
// each.
func (p *phases) restartServer() {
	for range 10 {
		time.Sleep(150 * time.Millisecond)
		if p.dry {
			continue
		}
		begin := p.f.now()
		p.g.s.Restart()
		p.restarts = append(p.restarts, span{begin: begin, done: p.f.now()})
		p.f.waitSubscribed(p.t, "after a restart")
	}
}

// pauses pauses the server's clients 3 times in mode, 500 ms each, with
// 500 ms of normal traffic (after the subscriptions are back) in between.
func (p *phases) pauses(mode string) {
	for range 3 {
		if !p.dry {
			p.g.s.Pause(mode, 500*time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		p.f.waitSubscribed(p.t, "after CLIENT PAUSE "+mode)
		time.Sleep(500 * time.Millisecond)
	}
}

// bufferLimit sets a pub/sub output-buffer limit of 1 KB (512 B for 1 s) and
// runs a write storm on every instance for 1.5 s, so that Redis disconnects
// the subscribers; then restores the limit.
func (p *phases) bufferLimit() {
	const param = "client-output-buffer-limit"
	restore := "pubsub 32mb 8mb 60" // Redis's default
	// CONFIG GET answers "normal 0 0 0 slave … pubsub <hard> <soft> <seconds>".
	fields := strings.Fields(p.g.s.Client.ConfigGet(context.Background(), param).Val()[param])
	for i, f := range fields {
		if f == "pubsub" && i+3 < len(fields) {
			restore = strings.Join(fields[i:i+4], " ")
		}
	}
	if !p.dry {
		p.g.s.ConfigSet(param, "pubsub 1kb 512b 1")
	}
	var stop atomic.Bool
	var done []<-chan struct{}
	for i := range p.f.insts {
		done = append(done, p.f.goLog(func(log *[]sample) { p.f.storm(i, &stop, log) }))
	}
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	for _, d := range done {
		<-d
	}
	if !p.dry {
		p.g.s.ConfigSet(param, restore)
	}
}

// failovers fails over, gracefully, the master of the first key and then
// that of a key on another master, each once the instances have subscribed
// again and served some traffic.
func (p *phases) failovers() {
	c, ns := p.g.c, p.g.namespace()
	done := map[string]bool{}
	for k := range nKeys {
		time.Sleep(300 * time.Millisecond)
		key := ns + ":" + keyName(k)
		if m := c.MasterOf(key); done[m] || len(done) == 2 {
			continue
		}
		if p.dry {
			done[c.MasterOf(key)] = true
			continue
		}
		_, now := c.Failover(key)
		done[now] = true
		p.failedOver++
		p.f.waitSubscribed(p.t, "after a failover")
	}
}
