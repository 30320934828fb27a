package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// options is what the command line sets.
type options struct {
	cfg       config
	redis     string
	scenarios string
	jsonPath  string
	check     bool
	shared    bool // -shared-scheduler: cfg.separate off
}

func defaultOptions() options {
	return options{cfg: defaultConfig()}
}

// config is the scenarios' configuration the options make.
func (o options) config() config {
	c := o.cfg
	c.separate = !o.shared
	return c
}

// newFlags returns the command's flags, which set o; errors and the usage
// text go to out.
func newFlags(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &o.cfg
	fs.StringVar(&o.redis, "redis", o.redis, "the Redis server: host:port, as REDIS_ADDR takes it "+
		"(127.0.0.1:6379), or a URL, as redis.ParseURL takes it (redis://[user:password@]host:port/db, "+
		"rediss://… for TLS); empty: an embedded miniredis")
	fs.StringVar(&o.scenarios, "scenarios", o.scenarios, "comma-separated scenarios to run; empty: all, in "+
		"this order: "+strings.Join(scenarioNames, ", "))
	fs.IntVar(&c.instances, "instances", c.instances, "tiered.Cache instances, each with its own Redis client")
	fs.DurationVar(&c.duration, "duration", c.duration, "time per timed measurement (localhit, remotehit, "+
		"write, batch: per job; zipf, stalehunt: per phase; lag: its WireVersion 2 run)")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds each timed measurement is split into (the report quotes medians)")
	fs.IntVar(&c.trials, "n", c.trials, "invalidation trials")
	fs.IntVar(&c.stampedeCallers, "callers", c.stampedeCallers, "stampede: goroutines that Fetch the cold key")
	fs.StringVar(&o.jsonPath, "json", o.jsonPath, "also write every result as JSON to this file")
	fs.DurationVar(&c.maxStaleness, "max-staleness", c.maxStaleness, "HubOptions.MaxStaleness in stalehunt, "+
		"nanosleep and frozen (each also runs with it off)")
	fs.DurationVar(&c.idleFor, "idle", c.idleFor, "hub: how long the process idles for each CPU figure")
	fs.DurationVar(&c.outageFor, "outage", c.outageFor, "outage: how long its own server stays stopped")
	fs.BoolVar(&o.shared, "shared-scheduler", o.shared, "keep GOMAXPROCS in zipf and stalehunt, instead of "+
		"giving the runtime GOMAXPROCS × instances Ps, as that many processes would have")
	fs.BoolVar(&o.check, "check", o.check, "exit with code 1 if any target is missed, after printing the "+
		"report (for CI); without it, missed targets exit 0")
	fs.Usage = func() { printUsage(fs.Output(), fs) }
	return fs
}

// printUsage writes the usage text, no line wider than reportWidth.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: go run ./bench [flags]")
	fmt.Fprintln(w)
	printWrapped(w, "Runs tiercache's benchmark scenarios against an embedded miniredis, or the server -redis "+
		"names, and prints a report: each figure beside its baseline and target, then a summary line of the "+
		"targets passed and missed.", "", "")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "flags:")
	fs.VisitAll(func(f *flag.Flag) {
		kind, help := flag.UnquoteUsage(f)
		head := "  -" + f.Name
		if kind != "" {
			head += " " + kind
		}
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			if kind == "string" {
				d = fmt.Sprintf("%q", d)
			}
			help += " (default " + d + ")"
		}
		fmt.Fprintln(w, head)
		printWrapped(w, help, "        ", "        ")
	})
}
