package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// scenarioNames lists every scenario, in the order they run.
var scenarioNames = []string{"localhit", "remotehit", "write", "batch", "zipf", "stampede", "lease", "invalidation",
	"stalehunt", "hub", "nanosleep", "frozen", "lag", "outage"}

// runScenario runs one scenario by name. Every cache it opens is closed
// before it returns.
func runScenario(ctx context.Context, e *env, cfg config, name string) (result, error) {
	if (name == "invalidation" || name == "stalehunt" || name == "lag") && cfg.instances < 2 {
		return skipped{Scenario: name, Reason: "needs -instances >= 2"}, nil
	}
	defer e.closeCaches()
	switch name {
	case "localhit":
		return localHit(ctx, e, cfg)
	case "remotehit":
		return remoteHit(ctx, e, cfg)
	case "write":
		return write(ctx, e, cfg)
	case "batch":
		return batch(ctx, e, cfg)
	case "zipf":
		return zipf(ctx, e, cfg)
	case "stampede":
		return stampede(ctx, e, cfg)
	case "lease":
		return lease(ctx, e, cfg)
	case "invalidation":
		return invalidation(ctx, e, cfg)
	case "stalehunt":
		return staleHunt(ctx, e, cfg)
	case "hub":
		return hub(ctx, e, cfg)
	case "nanosleep":
		return nanosleepScenario(ctx, e, cfg)
	case "frozen":
		return frozen(ctx, e, cfg)
	case "lag":
		return lag(ctx, e, cfg)
	case "outage":
		return outage(ctx, e, cfg)
	}
	return nil, fmt.Errorf("bench: unknown scenario %q (have %s)", name, strings.Join(scenarioNames, ", "))
}

// result is what a scenario reports: a table of figures, each with its
// baseline and target where it has them.
type result interface {
	name() string
	title() string
	rows() []row
	notes() []string
}

// skipped is the result of a scenario that could not run.
type skipped struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"skipped"`
}

func (s skipped) name() string    { return s.Scenario }
func (s skipped) title() string   { return s.Scenario + ": skipped, " + s.Reason }
func (s skipped) rows() []row     { return nil }
func (s skipped) notes() []string { return nil }

// keys returns prefix0 … prefix(n-1).
func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// value returns a 64-byte value for key i.
func value(i int) string {
	s := "value-" + strconv.Itoa(i) + "-"
	return s + strings.Repeat("x", 64-len(s))
}
