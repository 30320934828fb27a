// Command bench measures tiercache against its baselines and checks its
// consistency under load, then prints a report with a target beside each
// figure.
//
//	go run ./bench                                   # embedded miniredis, no setup
//	go run ./bench -redis redis://127.0.0.1:6379/0   # a real server
//	go run ./bench -scenarios localhit,zipf -duration 5s -json out.json
//
// Scenarios: localhit, remotehit, write, batch, zipf, stampede, lease,
// invalidation, stalehunt, hub, nanosleep, frozen, lag, outage (see
// scenarios.go). The outage scenario stops a Redis server: never the run's,
// but one of its own (a miniredis, or with -redis a redis-server process on
// a free loopback port; skipped without the binary). Each
// run works in a fresh namespace "tiercache-bench-<random hex>" and, at the
// end, on an error or on SIGINT, deletes every key under it (SCAN MATCH and
// UNLINK; never KEYS or FLUSH*), closes every cache and client and stops the
// embedded server. Every key it writes also expires in 10 minutes, in case
// the process is killed.
//
// All instances live in this one process. So that goroutines spinning on
// local hits in every instance do not hold every P and delay the network
// wake-ups of all of them (separate processes each have their own
// scheduler), zipf and stalehunt give the runtime GOMAXPROCS × instances Ps;
// -shared-scheduler turns that off.
//
// The same measurements run as Go benchmarks with `go test -bench . ./bench`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run()) }

func run() int {
	def := DefaultConfig()
	var (
		redisURL  = flag.String("redis", "", "Redis URL (as redis.ParseURL takes, e.g. redis://127.0.0.1:6379/0); empty: an embedded miniredis")
		instances = flag.Int("instances", def.Instances, "tiered.Cache instances, each with its own Redis client")
		scenarios = flag.String("scenarios", strings.Join(ScenarioNames, ","), "comma-separated scenarios to run")
		duration  = flag.Duration("duration", def.Duration, "time per timed measurement (localhit, remotehit, write: per job; zipf, stalehunt: per phase; lag: its WireVersion 2 run)")
		rounds    = flag.Int("rounds", def.Rounds, "rounds each timed measurement is split into (the report quotes medians)")
		trials    = flag.Int("n", def.Trials, "invalidation trials")
		callers   = flag.Int("callers", def.StampedeCallers, "stampede: goroutines that Fetch the cold key")
		jsonPath  = flag.String("json", "", "also write every result as JSON to this file")
		maxStale  = flag.Duration("max-staleness", def.MaxStaleness, "HubOptions.MaxStaleness in stalehunt, nanosleep and frozen (each also runs with it off)")
		idle      = flag.Duration("idle", def.IdleFor, "hub: how long the process idles for each CPU figure")
		outage    = flag.Duration("outage", def.OutageFor, "outage: how long its own server stays stopped")
		shared    = flag.Bool("shared-scheduler", false, "keep GOMAXPROCS in zipf and stalehunt, instead of giving the runtime GOMAXPROCS × instances Ps as that many processes would have")
	)
	flag.Parse()
	installGoRedisLog()
	cfg := def
	cfg.Instances, cfg.Duration, cfg.Rounds, cfg.Trials, cfg.StampedeCallers = *instances, *duration, *rounds, *trials, *callers
	cfg.MaxStaleness, cfg.IdleFor, cfg.OutageFor = *maxStale, *idle, *outage
	cfg.Separate = !*shared
	cfg.Progress = NewProgress(os.Stderr)
	names, err := parseScenarios(*scenarios)
	if err == nil {
		err = validate(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		flag.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := NewEnv(ctx, *redisURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep := NewReport(env, cfg)
	rep.PrintHeader(os.Stdout)
	code := 0
	for _, name := range names {
		t0 := time.Now()
		res, err := RunScenario(ctx, env, cfg, name)
		cfg.Progress.Done()
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "bench: interrupted during %s; cleaning up\n", name)
				code = 130
			} else {
				fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
				code = 1
			}
			break
		}
		PrintScenario(os.Stdout, rep.Add(res, time.Since(t0)))
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadEnd = loadAvg()
	if cerr := env.Close(); cerr != nil {
		fmt.Fprintln(os.Stderr, cerr)
		rep.Cleanup = cerr.Error()
		code = max(code, 1)
	} else {
		rep.Cleanup = "every key of " + env.Namespace + " deleted; caches, clients and server closed"
	}
	if code == 0 {
		rep.PrintSummary(os.Stdout)
		fmt.Printf("cleanup: %s\n", rep.Cleanup)
	}
	if *jsonPath != "" && len(rep.Scenarios) > 0 {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	return code
}

func parseScenarios(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" || slices.Contains(out, name) {
			continue
		}
		if !slices.Contains(ScenarioNames, name) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(ScenarioNames, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("-scenarios names none")
	}
	return out, nil
}

func validate(cfg Config) error {
	switch {
	case cfg.Instances < 1:
		return fmt.Errorf("-instances must be >= 1, got %d", cfg.Instances)
	case cfg.Duration <= 0:
		return fmt.Errorf("-duration must be > 0, got %v", cfg.Duration)
	case cfg.Rounds < 1:
		return fmt.Errorf("-rounds must be >= 1, got %d", cfg.Rounds)
	case cfg.Trials < 1:
		return fmt.Errorf("-n must be >= 1, got %d", cfg.Trials)
	case cfg.StampedeCallers < 1:
		return fmt.Errorf("-callers must be >= 1, got %d", cfg.StampedeCallers)
	case cfg.MaxStaleness < time.Millisecond:
		return fmt.Errorf("-max-staleness must be >= 1ms, got %v", cfg.MaxStaleness)
	case cfg.IdleFor <= 0:
		return fmt.Errorf("-idle must be > 0, got %v", cfg.IdleFor)
	case cfg.OutageFor <= 0:
		return fmt.Errorf("-outage must be > 0, got %v", cfg.OutageFor)
	}
	return nil
}
