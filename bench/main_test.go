package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// tinyConfig runs every scenario in a few seconds, under -race too.
func tinyConfig() config {
	return config{duration: 20 * time.Millisecond, rounds: 2, idle: 300 * time.Millisecond,
		paced: 300 * time.Millisecond, lag: 200 * time.Millisecond, zipfKeys: 2000, zipfSize: 200}
}

// servers are what the scenario tests run on: the embedded server, and
// the one at REDIS_ADDR when it is set.
func servers() []string {
	if addr := os.Getenv(redistest.EnvAddr); addr != "" {
		return []string{"", addr}
	}
	return []string{""}
}

// rowOf returns the row whose measure is m.
func rowOf(t *testing.T, r *results, m string) row {
	t.Helper()
	i := slices.IndexFunc(r.Rows, func(x row) bool { return x.Measure == m })
	if i < 0 {
		t.Fatalf("no row %q", m)
	}
	return r.Rows[i]
}

// TestScenarios runs every scenario briefly and checks what does not
// depend on the machine's speed: every row is filled in, the targets that
// count calls, connections and goroutines are met, the report fits in
// reportWidth, and the run left no key behind.
func TestScenarios(t *testing.T) {
	for _, server := range servers() {
		t.Run("server="+server, func(t *testing.T) {
			o := options{cfg: tinyConfig(), redis: server, command: "go run ./bench"}
			r, err := execute(context.Background(), o, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range r.Rows {
				if x.Measure == "" || x.Tiered == "" || x.Baseline == "" || (x.Target == "") != (x.Status == "") {
					t.Errorf("row not filled in: %+v", x)
				}
			}
			if n := len(r.Rows); n < 20 {
				t.Errorf("%d rows, want every scenario's", n)
			}
			for _, m := range []string{"stampede: loader calls", "Hub, 30 caches: pub/sub conns",
				"Hub, 30 caches: goroutines", "Hub idle: PINGs/s", "Hub serving hits: PINGs/s"} {
				if x := rowOf(t, r, m); x.Status != "met" {
					t.Errorf("%+v: target missed", x)
				}
			}
			var out bytes.Buffer
			r.printText(&out, server == "")
			for l := range strings.Lines(out.String()) {
				if width(strings.TrimRight(l, "\n")) > reportWidth {
					t.Errorf("line wider than %d: %q", reportWidth, l)
				}
			}
			t.Logf("\n%s", out.String())
		})
	}
}

// TestCloseDeletesKeys: close deletes every key of the run and nothing
// else.
func TestCloseDeletesKeys(t *testing.T) {
	ctx := context.Background()
	s := redistest.New(t)
	e, err := openEnv(ctx, s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	other := s.Namespace + ":stays"
	if err := s.Client.Set(ctx, other, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.populate(ctx, e.ns("x"), keys("k", 2500), value); err != nil {
		t.Fatal(err)
	}
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
	iter, left := s.Client.Scan(ctx, 0, e.prefix+"*", 1000).Iterator(), 0
	for iter.Next(ctx) {
		left++
	}
	if err := iter.Err(); err != nil || left != 0 {
		t.Errorf("keys left after close: %d (%v)", left, err)
	}
	if err := s.Client.Get(ctx, other).Err(); err != nil {
		t.Errorf("close deleted another key: %v", err)
	}
}

// TestMarkdown: -markdown prints what the results file it writes renders.
func TestMarkdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	var out, errs bytes.Buffer
	code := run([]string{"-scenarios", "stampede", "-markdown", "-results", path}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	r, err := loadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.markdown(); got != out.String() || !strings.HasPrefix(got, beginMarker) {
		t.Errorf("-markdown printed\n%s\nits results render\n%s", out.String(), got)
	}
	if r.Command != "go run ./bench -scenarios stampede -markdown -results "+path || len(r.Rows) != 1 {
		t.Errorf("results: %+v", r)
	}
}

// TestREADME: the README's performance table is the rendering of
// results.json, byte for byte (regenerate both with go run ./bench
// -redis 127.0.0.1:6379 -markdown, and paste its output).
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, beginMarker), strings.Index(readme, endMarker)
	if i < 0 || j < i {
		t.Fatalf("README.md has no section between %q and %q", beginMarker, endMarker)
	}
	r, err := loadResults("results.json")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readme[i:j+len(endMarker)+1], r.markdown(); got != want {
		t.Errorf("README.md's performance table is not results.json's; want\n%s", want)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-long", "-duration", "1s", "-scenarios", "zipf, hub,zipf"}, &bytes.Buffer{})
	if err != nil || o.cfg.duration != time.Second || o.cfg.idle != longConfig().idle || !slices.Equal(o.names, []string{"zipf", "hub"}) {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"-scenarios", "nope"}, {"-redis", "127.0.0.1"}, {"-duration", "-1s"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
		if code := run(bad, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("run(%q) = %d, want 2", bad, code)
		}
	}
	for in, want := range map[string]string{"127.0.0.1:6379": "127.0.0.1:6379",
		"redis://:secret@10.0.0.1:6380/2": "10.0.0.1:6380"} {
		if o, _, err := parseRedis(in); err != nil || o.Addr != want {
			t.Errorf("parseRedis(%q) = %v, %v", in, o, err)
		}
	}
	if _, name, _ := parseRedis("redis://:secret@h:1"); strings.Contains(name, "secret") {
		t.Errorf("the report would show the password: %q", name)
	}
}
