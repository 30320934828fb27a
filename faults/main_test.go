package faults

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/tiercache/tiercache/internal/leakcheck"
	"github.com/tiercache/tiercache/internal/redistest"
)

// TestMain runs nothing without a real server (REDIS_ADDR), so that go test
// reports "[no tests to run]" rather than an ok of skipped tests: the
// suite breaks servers of its own (restarts, pauses, buffer limits,
// failovers), which the embedded one cannot imitate.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(redistest.EnvAddr) == "" {
		fmt.Fprintf(os.Stderr, "faults: not run: the fault suite needs a real Redis (%s=host:port)\n", redistest.EnvAddr)
		if err := flag.Set("test.run", "^$"); err != nil {
			panic(err)
		}
	}
	leakcheck.Main(m)
}
