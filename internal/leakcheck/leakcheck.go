// Package leakcheck fails a test binary that leaves goroutines running after
// its tests end. Call it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Grace is how long Main waits for goroutines to finish exiting (a closed
// connection's reader, say) before it reports them.
const Grace = 5 * time.Second

// ignored lists frames of goroutines that the runtime or the testing package
// own and that outlive every test by design.
var ignored = []string{
	"testing.(*M).",
	"testing.runFuzzing",
	"testing.tRunner", // the main test goroutine while m.Run returns
	"runtime.goexit0",
	"os/signal.signal_recv",
	"runtime.ensureSigM",
}

// Main runs the tests, then fails the binary if any goroutine that a test
// started is still running after Grace.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := Wait(Grace); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) still running after the tests:\n\n%s\n",
				len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// Wait polls until no unexpected goroutine is left or d has passed, and
// returns the stacks of those still running.
func Wait(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		leaked := Running()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stacks returns the stack of every goroutine of the process, the caller's
// first, as runtime.Stack writes them.
func Stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// Running returns the stacks of every goroutine but the caller's and those
// the runtime and testing package own.
func Running() []string {
	stacks := Stacks()
	var out []string
	for _, s := range stacks[1:] { // stacks[0] is the caller
		if !isIgnored(s) {
			out = append(out, s)
		}
	}
	return out
}

func isIgnored(stack string) bool {
	for _, f := range ignored {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}
