// Command bench measures tiercache beside what it stands in for, in the
// same run: a plain go-redis call (GET, SET, MGET, a pipeline, PUBLISH) or
// a bare LRU (golang-lru's simplelru under a mutex). It prints one table:
// each figure, its baseline, a target that compares them, and whether the
// target was met.
//
//	go run ./bench                                   # embedded miniredis, under 30s
//	go run ./bench -redis 127.0.0.1:6379             # a real server
//	go run ./bench -long                             # longer measurements, steadier figures
//	go run ./bench -scenarios localhit,zipf -duration 2s
//	go run ./bench -check                            # exit 1 if a target is missed
//	go run ./bench -redis 127.0.0.1:6379 -markdown   # the README's table; writes bench/results.json
//
// Every key the run writes starts with a fresh "tcbench-<random hex>" and
// expires in 10 minutes; the run deletes them (SCAN MATCH, UNLINK) before
// it exits, an interrupted one too. README.md, Performance, says how each
// row is measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"
)

// config holds the lengths of the measurements.
type config struct {
	duration time.Duration // per timed job (localhit, remote, write, batch), and per side of zipf
	rounds   int           // a job's time is split into this many rounds, alternating with the others
	idle     time.Duration // hub: each idle window, and the window of local hits
	paced    time.Duration // paced: how long each rate is read
	lag      time.Duration // lag: how long the instances write
	zipfKeys int           // zipf: keys drawn
	zipfSize int           // zipf: entries of the local tier and of the bare LRU
}

func defaultConfig() config {
	return config{duration: 400 * time.Millisecond, rounds: 5, idle: 2 * time.Second,
		paced: 3 * time.Second, lag: 2 * time.Second, zipfKeys: 100_000, zipfSize: 10_000}
}

// longConfig is -long: a run about five times as long, in ten rounds.
func longConfig() config {
	return config{duration: 3 * time.Second, rounds: 10, idle: 10 * time.Second,
		paced: 15 * time.Second, lag: 10 * time.Second, zipfKeys: 100_000, zipfSize: 10_000}
}

// scenario is one part of the run: it adds rows to the table.
type scenario struct {
	name string
	run  func(context.Context, *env, config) ([]row, error)
}

// scenarios run in this order.
var scenarios = []scenario{
	{"localhit", localHit}, {"remote", remoteHit}, {"write", write}, {"batch", batch}, {"zipf", zipf},
	{"stampede", stampede}, {"paced", pacedReads}, {"hub", hub}, {"lag", lag},
}

// options is what the command line sets.
type options struct {
	cfg      config
	redis    string
	names    []string
	markdown bool
	results  string
	check    bool
	command  string // the command line, for the results
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs the bench with args and returns the exit code: 0, 1 on an error
// (or, with -check, a missed target), 2 on a bad flag.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, err := execute(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.markdown {
		if err := r.save(o.results); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprint(stdout, r.markdown())
	} else {
		r.printText(stdout, o.redis == "")
	}
	if o.check && slices.ContainsFunc(r.Rows, func(x row) bool { return x.Status == "missed" }) {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{command: strings.Join(append([]string{"go run ./bench"}, args...), " ")}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.redis, "redis", "", "the server: host:port, or a redis:// URL; empty: an embedded miniredis")
	names := fs.String("scenarios", "", "comma-separated scenarios to run (default all: "+scenarioList()+")")
	duration := fs.Duration("duration", 0, "time of each timed job, split into rounds (default 400ms; -long 3s)")
	long := fs.Bool("long", false, "measure about five times as long, for steadier figures")
	fs.BoolVar(&o.markdown, "markdown", false, "print the README's table instead of the report, and write the results to -results")
	fs.StringVar(&o.results, "results", "bench/results.json", "where -markdown writes the results, which the README's table renders")
	fs.BoolVar(&o.check, "check", false, "exit 1 if a target is missed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.cfg = defaultConfig()
	if *long {
		o.cfg = longConfig()
	}
	if *duration < 0 {
		return o, fmt.Errorf("-duration must be > 0, got %v", *duration)
	} else if *duration > 0 {
		o.cfg.duration = *duration
	}
	if _, _, err := parseRedis(o.redis); err != nil {
		return o, err
	}
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n == "" || slices.Contains(o.names, n) {
			continue
		}
		if !slices.ContainsFunc(scenarios, func(s scenario) bool { return s.name == n }) {
			return o, fmt.Errorf("-scenarios: no scenario %q (have %s)", n, scenarioList())
		}
		o.names = append(o.names, n)
	}
	return o, nil
}

func scenarioList() string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// execute runs the scenarios o selects (every one if none) and returns the
// results; progress goes to progress.
func execute(ctx context.Context, o options, progress io.Writer) (*results, error) {
	start := time.Now()
	e, err := openEnv(ctx, o.redis)
	if err != nil {
		return nil, err
	}
	r := &results{Date: start.Format(time.DateOnly), Command: o.command, Server: e.server,
		Machine: fmt.Sprintf("GOMAXPROCS %d on %d CPUs, %s %s/%s%s", runtime.GOMAXPROCS(0), runtime.NumCPU(),
			runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAvg())}
	for _, s := range scenarios {
		if len(o.names) > 0 && !slices.Contains(o.names, s.name) {
			continue
		}
		fmt.Fprintf(progress, "bench: %s…\n", s.name)
		rows, err := s.run(ctx, e, o.cfg)
		if cerr := e.closeAll(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			_ = e.close()
			return nil, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		r.Rows = append(r.Rows, rows...)
	}
	if err := e.close(); err != nil {
		return nil, err
	}
	r.Took = time.Since(start).Round(100 * time.Millisecond).String()
	return r, nil
}

// loadAvg returns ", load average X" from /proc/loadavg, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return ", load " + f[0]
	}
	return ""
}
