// Command bench measures tiercache against its baselines and checks its
// consistency under load, then prints a report with a target beside each
// figure, and a summary line: how many targets passed, and which missed.
//
//	go run ./bench                                   # embedded miniredis, no setup
//	go run ./bench -redis 127.0.0.1:6379             # a real server (or a redis:// URL)
//	go run ./bench -scenarios localhit,zipf -duration 5s -json out.json
//	go run ./bench -check                            # exit 1 if a target is missed
//
// Flags:
//
//	-redis SERVER        host:port (as REDIS_ADDR takes) or a URL as redis.ParseURL
//	                     takes (redis://…, rediss://… for TLS); empty: an embedded miniredis
//	-scenarios LIST      comma-separated scenarios to run (default: all, in the order below)
//	-instances N         tiered.Cache instances, each with its own Redis client (3)
//	-duration D          time per timed measurement (2s)
//	-rounds N            rounds each timed measurement is split into; medians are quoted (5)
//	-n N                 invalidation trials (500)
//	-callers N           stampede: goroutines that Fetch the cold key (200)
//	-max-staleness D     HubOptions.MaxStaleness in stalehunt, nanosleep, frozen (5ms)
//	-idle D              hub: how long the process idles for each CPU figure (10s)
//	-outage D            outage: how long its own server stays stopped (2s)
//	-shared-scheduler    keep GOMAXPROCS in zipf and stalehunt (see below)
//	-json FILE           also write every result as JSON to FILE
//	-check               exit 1 if any target is missed (for CI); else misses exit 0
//
// The report ends with one summary line:
//
//	== N of M targets pass[, K missed: scenario "measure", …][ (J more n/a on the embedded server)]
//
// (wrapped at 100 columns, as every line the bench prints, when the misses
// make it longer): a miss is named by its scenario and its measure, after
// the short label of its section if it has one.
//
// Exit codes: 0 when the run completed (targets missed or not, unless
// -check), 1 on an error or, with -check, a missed target, 2 on a bad flag,
// 130 on an interrupt.
//
// Scenarios: localhit, remotehit, write, batch, zipf, stampede, lease,
// invalidation, stalehunt, hub, nanosleep, frozen, lag, outage (see
// runScenario). The outage scenario stops a Redis server: never the run's,
// but one of its own (a miniredis, or with -redis a redis-server process on
// a free loopback port; skipped without the binary). Each run works in a
// fresh namespace "tiercache-bench-<random hex>" and, at the end, on an
// error or on SIGINT, deletes every key under it (SCAN MATCH and UNLINK;
// never KEYS or FLUSH*), closes every cache and client and stops the
// embedded server. Every key it writes also expires in 10 minutes, in case
// the process is killed.
//
// On the embedded server, miniredis runs in this process: per-op figures
// that involve it count its allocations and CPU time too, and the report
// marks them with *.
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
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs the bench with args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	o := defaultOptions()
	fs := newFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	installGoRedisLog()
	cfg := o.config()
	cfg.progress = newProgress(os.Stderr)
	names, err := parseScenarios(o.scenarios)
	if err == nil {
		err = validate(cfg)
	}
	if err == nil {
		_, _, err = parseRedis(o.redis)
	}
	if err != nil {
		printWrapped(stderr, "bench: "+err.Error(), "", "  ")
		fs.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := openEnv(ctx, o.redis)
	if err != nil {
		printWrapped(stderr, err.Error(), "", "  ")
		return 1
	}
	rep := newReport(env, cfg)
	rep.printHeader(stdout)
	code := 0
	for _, name := range names {
		t0 := time.Now()
		res, err := runScenario(ctx, env, cfg, name)
		cfg.progress.done()
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(stderr, "bench: interrupted during %s; cleaning up\n", name)
				code = 130
			} else {
				printWrapped(stderr, fmt.Sprintf("bench: %s: %v", name, err), "", "  ")
				code = 1
			}
			break
		}
		printScenario(stdout, rep.add(res, time.Since(t0)))
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadEnd = loadAvg()
	if cerr := env.close(); cerr != nil {
		printWrapped(stderr, cerr.Error(), "", "  ")
		rep.Cleanup = cerr.Error()
		code = max(code, 1)
	} else {
		rep.Cleanup = "every key of " + env.namespace + " deleted; caches, clients and server closed"
	}
	if code == 0 {
		rep.printSummary(stdout)
		printWrapped(stdout, "cleanup: "+rep.Cleanup, "", "  ")
	}
	if o.jsonPath != "" && len(rep.Scenarios) > 0 {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			printWrapped(stderr, err.Error(), "", "  ")
			code = max(code, 1)
		}
	}
	return exitCode(code, len(rep.verdict().missed), o.check)
}

// exitCode is the process's exit code: code when the run failed (non-zero),
// else 1 when check is set and targets were missed, else 0.
func exitCode(code, missed int, check bool) int {
	if code == 0 && check && missed > 0 {
		return 1
	}
	return code
}

// parseScenarios parses -scenarios: names, comma-separated, or empty for
// every scenario.
func parseScenarios(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return scenarioNames, nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" || slices.Contains(out, name) {
			continue
		}
		if !slices.Contains(scenarioNames, name) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(scenarioNames, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("-scenarios names none")
	}
	return out, nil
}

func validate(cfg config) error {
	switch {
	case cfg.instances < 1:
		return fmt.Errorf("-instances must be >= 1, got %d", cfg.instances)
	case cfg.duration <= 0:
		return fmt.Errorf("-duration must be > 0, got %v", cfg.duration)
	case cfg.rounds < 1:
		return fmt.Errorf("-rounds must be >= 1, got %d", cfg.rounds)
	case cfg.trials < 1:
		return fmt.Errorf("-n must be >= 1, got %d", cfg.trials)
	case cfg.stampedeCallers < 1:
		return fmt.Errorf("-callers must be >= 1, got %d", cfg.stampedeCallers)
	case cfg.maxStaleness < time.Millisecond:
		return fmt.Errorf("-max-staleness must be >= 1ms, got %v", cfg.maxStaleness)
	case cfg.idleFor <= 0:
		return fmt.Errorf("-idle must be > 0, got %v", cfg.idleFor)
	case cfg.outageFor <= 0:
		return fmt.Errorf("-outage must be > 0, got %v", cfg.outageFor)
	}
	return nil
}
