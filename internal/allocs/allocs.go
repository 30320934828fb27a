// Package allocs counts the heap allocations that a function makes on the
// stacks of chosen packages, leaving out those of every other goroutine:
// an embedded Redis server, a subscriber receiving messages, a clock. So a
// test can assert what a call of the library allocates, against the
// embedded server as against a real one.
//
// It samples every allocation while it counts (runtime.MemProfileRate 1)
// and reads the allocation profile before and after, so each record comes
// with its full stack.
package allocs

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// Stacks selects the allocations to count by the functions on their stack:
// a stack counts if one of its functions starts with a prefix in In, and
// none with a prefix in Out. A prefix is a package path followed by a dot
// ("github.com/redis/go-redis/v9."), or more of a function's name.
type Stacks struct {
	In, Out []string
}

// PerRun calls f once (so that pools and connections are warm), then runs
// times more, and returns the heap allocations per run made on stacks that
// st selects. Not for tests that run in parallel with others: it changes
// runtime.MemProfileRate while it counts.
func PerRun(runs int, st Stacks, f func()) (float64, error) {
	if runs <= 0 {
		return 0, fmt.Errorf("allocs: runs must be > 0, got %d", runs)
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	f()
	before, err := profile()
	if err != nil {
		return 0, err
	}
	for range runs {
		f()
	}
	after, err := profile()
	if err != nil {
		return 0, err
	}
	var n int64
	for stack, r := range after {
		if st.selects(r.frames) {
			n += r.allocs - before[stack].allocs
		}
	}
	return float64(n) / float64(runs), nil
}

func (st Stacks) selects(frames []string) bool {
	in := false
	for _, f := range frames {
		for _, p := range st.Out {
			if strings.HasPrefix(f, p) {
				return false
			}
		}
		for _, p := range st.In {
			in = in || strings.HasPrefix(f, p)
		}
	}
	return in
}

// record is one stack's line of the allocation profile.
type record struct {
	allocs int64    // objects allocated since the program began
	frames []string // function names, innermost first
}

// profile returns the allocation profile by stack (its program counters),
// complete up to now: the runtime publishes a profile's records at the end
// of a garbage collection cycle, up to two cycles late.
func profile() (map[string]record, error) {
	for range 3 {
		runtime.GC()
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 1); err != nil {
		return nil, fmt.Errorf("allocs: %w", err)
	}
	return parse(&buf)
}

// parse reads the text form (debug=1) of the allocation profile: a line
// "inuse: bytes [allocs: bytes] @ pc pc …" per stack, then a line
// "#\tpc\tfunction+offset\tfile:line" per frame.
func parse(buf *bytes.Buffer) (map[string]record, error) {
	out := make(map[string]record)
	var cur string
	sc := bufio.NewScanner(buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#\t"):
			if cur == "" {
				continue
			}
			f := strings.Split(line, "\t")
			if len(f) < 3 {
				continue
			}
			name, _, _ := strings.Cut(f[2], "+0x")
			r := out[cur]
			r.frames = append(r.frames, name)
			out[cur] = r
		case strings.Contains(line, " @ ") && !strings.HasPrefix(line, "heap profile:"):
			counts, stack, _ := strings.Cut(line, " @ ")
			_, bracket, ok := strings.Cut(counts, "[")
			objs, _, ok2 := strings.Cut(bracket, ":")
			n, err := strconv.ParseInt(strings.TrimSpace(objs), 10, 64)
			if !ok || !ok2 || err != nil {
				return nil, fmt.Errorf("allocs: cannot read profile line %q", line)
			}
			cur = stack
			r := out[cur]
			r.allocs += n // a stack may repeat: records are per stack and size
			r.frames = r.frames[:0]
			out[cur] = r
		default:
			cur = ""
		}
	}
	return out, sc.Err()
}
