package main

import (
	"flag"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios(" zipf,localhit,,zipf ")
	if err != nil || !slices.Equal(got, []string{"zipf", "localhit"}) {
		t.Errorf("parseScenarios = %q, %v", got, err)
	}
	if _, err := parseScenarios("zipf,nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := parseScenarios(","); err == nil {
		t.Error("no scenario accepted")
	}
	if got, err := parseScenarios(" "); err != nil || !slices.Equal(got, scenarioNames) {
		t.Errorf("parseScenarios(empty) = %q, %v; want every scenario", got, err)
	}
}

// TestParseRedis: -redis takes a URL, as redis.ParseURL does, or host:port,
// as REDIS_ADDR does; anything else is an error that names the flag.
func TestParseRedis(t *testing.T) {
	for _, c := range []struct {
		in, addr, server string
		db               int
		tls              bool
	}{
		{"redis://127.0.0.1:6379/0", "127.0.0.1:6379", "Redis at redis://127.0.0.1:6379/0", 0, false},
		{"redis://:secret@10.0.0.1:6380/2", "10.0.0.1:6380", "Redis at redis://:xxxxx@10.0.0.1:6380/2", 2, false},
		{"rediss://cache.example:6390", "cache.example:6390", "Redis at rediss://cache.example:6390", 0, true},
		{"127.0.0.1:6379", "127.0.0.1:6379", "Redis at 127.0.0.1:6379", 0, false},
		{"localhost:6380", "localhost:6380", "Redis at localhost:6380", 0, false},
		{"[::1]:6379", "[::1]:6379", "Redis at [::1]:6379", 0, false},
	} {
		o, server, err := parseRedis(c.in)
		if err != nil {
			t.Errorf("parseRedis(%q): %v", c.in, err)
			continue
		}
		if o.Addr != c.addr || o.DB != c.db || (o.TLSConfig != nil) != c.tls || server != c.server {
			t.Errorf("parseRedis(%q) = addr %q db %d tls %v, %q; want %q %d %v, %q",
				c.in, o.Addr, o.DB, o.TLSConfig != nil, server, c.addr, c.db, c.tls, c.server)
		}
	}
	if o, server, err := parseRedis(""); o != nil || server != "" || err != nil {
		t.Errorf(`parseRedis("") = %v, %q, %v; want the embedded server`, o, server, err)
	}
	for _, bad := range []string{"127.0.0.1", "localhost", "host:port", "127.0.0.1:0", "127.0.0.1:65536",
		"http://127.0.0.1:6379", "redis://127.0.0.1:6379/x"} {
		_, _, err := parseRedis(bad)
		if err == nil || !strings.HasPrefix(err.Error(), "-redis ") || !strings.Contains(err.Error(), bad) {
			t.Errorf("parseRedis(%q) = %v, want an error naming -redis and the value", bad, err)
		}
	}
}

// TestExitCode: a run that completed exits 0 with missed targets, unless
// -check; a failed run keeps its code.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		code, missed int
		check        bool
		want         int
	}{
		{0, 0, false, 0}, {0, 3, false, 0}, {0, 0, true, 0}, {0, 3, true, 1},
		{1, 0, true, 1}, {1, 3, false, 1}, {130, 3, true, 130},
	} {
		if got := exitCode(c.code, c.missed, c.check); got != c.want {
			t.Errorf("exitCode(%d, %d missed, check %v) = %d, want %d", c.code, c.missed, c.check, got, c.want)
		}
	}
	// The misses a -check run counts are the summary line's.
	if n := len(fixedReport(true).verdict().missed); exitCode(0, n, true) != 1 || exitCode(0, n, false) != 0 {
		t.Errorf("the fixed report's %d misses do not fail -check alone", n)
	}
}

// TestFlags parses the command line as run does, and checks the usage text
// is no wider than the report.
func TestFlags(t *testing.T) {
	o := defaultOptions()
	var out strings.Builder
	fs := newFlags(&o, &out)
	if err := fs.Parse([]string{"-check", "-redis", "127.0.0.1:6379", "-shared-scheduler", "-n", "7"}); err != nil {
		t.Fatal(err)
	}
	cfg := o.config()
	if !o.check || o.redis != "127.0.0.1:6379" || cfg.separate || cfg.trials != 7 || cfg.instances != 3 {
		t.Errorf("parsed %+v, config %+v", o, cfg)
	}
	if d := defaultOptions(); d.check || !d.config().separate {
		t.Errorf("defaults: check %v, separate %v", d.check, d.config().separate)
	}
	fs.Usage()
	usage := out.String()
	checkLines(t, usage)
	for _, want := range []string{"  -check\n", "  -redis string\n", "REDIS_ADDR", "rediss://", "exit with code 1"} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
}

// TestRunRejectsBadFlags: run exits 2 on a bad flag, before it starts any
// server, and 0 on -h.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-redis", "6379"}, {"-instances", "0"}, {"-scenarios", "nope"}, {"-nope"}} {
		var stdout, stderr strings.Builder
		if code := run(args, &stdout, &stderr); code != 2 || stdout.Len() != 0 {
			t.Errorf("run(%q) = %d (stdout %q), want 2", args, code, stdout.String())
		}
		if args[0] == "-redis" && !strings.Contains(stderr.String(), `bench: -redis "6379"`) {
			t.Errorf("run(%q) said %q", args, stderr.String())
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "usage: go run ./bench") {
		t.Errorf("run(-h) = %d, %q", code, stderr.String())
	}
}

// TestDocListsFlagsAndScenarios: the package comment names every flag and
// every scenario.
func TestDocListsFlagsAndScenarios(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	o := defaultOptions()
	newFlags(&o, &strings.Builder{}).VisitAll(func(fl *flag.Flag) {
		if !strings.Contains(doc, "\t-"+fl.Name+" ") {
			t.Errorf("the package comment does not list -%s", fl.Name)
		}
	})
	for _, name := range scenarioNames {
		if !strings.Contains(doc, name) {
			t.Errorf("the package comment does not name the scenario %s", name)
		}
	}
}
