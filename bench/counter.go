package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// counter counts a client's round trips, through a tripHook: each command
// or pipeline sent is one. The commands go-redis sends to set up a new
// connection (HELLO, CLIENT SETINFO, AUTH, SELECT) are counted apart, as
// Setup.
type counter struct {
	trips, setup atomic.Uint64

	mu    sync.Mutex
	names map[string]uint64 // guarded by mu: commands by name, setup excluded
}

// calls is a snapshot of a counter.
type calls struct {
	Trips uint64            `json:"round_trips"`
	Setup uint64            `json:"setup_round_trips"`
	Names map[string]uint64 `json:"commands"`
}

// snapshot returns the counts so far.
func (c *counter) snapshot() calls {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make(map[string]uint64, len(c.names))
	for k, v := range c.names {
		names[k] = v
	}
	return calls{Trips: c.trips.Load(), Setup: c.setup.Load(), Names: names}
}

// sub returns the counts of c since prev.
func (c calls) sub(prev calls) calls {
	out := calls{Trips: c.Trips - prev.Trips, Setup: c.Setup - prev.Setup, Names: map[string]uint64{}}
	for k, v := range c.Names {
		if d := v - prev.Names[k]; d > 0 {
			out.Names[k] = d
		}
	}
	return out
}

// add returns the sum of c and d.
func (c calls) add(d calls) calls {
	out := calls{Trips: c.Trips + d.Trips, Setup: c.Setup + d.Setup, Names: map[string]uint64{}}
	for k, v := range c.Names {
		out.Names[k] += v
	}
	for k, v := range d.Names {
		out.Names[k] += v
	}
	return out
}

// text is the number of round trips and the commands, e.g. "2 (evalsha×2)".
func (c calls) text() string {
	var parts []string
	for _, k := range sortedKeys(c.Names) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c.Names[k]))
	}
	return fmt.Sprintf("%d (%s)", c.Trips, strings.Join(parts, " "))
}

func isSetup(name string) bool {
	switch name {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}

// count counts one round trip that carries cmd, or cmds when cmd is nil
// (a tripHook).
func (c *counter) count(cmd redis.Cmder, cmds []redis.Cmder, _ error) {
	setup := true
	if cmd != nil {
		setup = isSetup(cmd.Name())
	}
	for _, cmd := range cmds {
		setup = setup && isSetup(cmd.Name())
	}
	if setup {
		c.setup.Add(1)
		return
	}
	c.trips.Add(1)
	c.mu.Lock()
	if c.names == nil {
		c.names = map[string]uint64{}
	}
	if cmd != nil {
		c.names[cmd.Name()]++
	}
	for _, cmd := range cmds {
		c.names[cmd.Name()]++
	}
	c.mu.Unlock()
}
