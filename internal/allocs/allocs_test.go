package allocs_test

import (
	"sync"
	"testing"

	"github.com/tiercache/tiercache/internal/allocs"
	"github.com/tiercache/tiercache/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var sink []*[64]byte

//go:noinline
func allocThree() {
	for range 3 {
		sink = append(sink[:0], new([64]byte))
	}
}

//go:noinline
func allocViaHelper() { allocThree() }

const pkg = "github.com/tiercache/tiercache/internal/allocs_test."

// PerRun counts what the selected stacks allocate, and nothing that another
// goroutine allocates meanwhile.
func TestPerRunCountsTheSelectedStacksOnly(t *testing.T) {
	sink = make([]*[64]byte, 0, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // allocates all the while, on a stack that is not selected
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = make([]byte, 128)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	for _, tc := range []struct {
		name string
		st   allocs.Stacks
		f    func()
		want float64
	}{
		{"direct", allocs.Stacks{In: []string{pkg + "allocThree"}}, allocThree, 3},
		{"through a caller", allocs.Stacks{In: []string{pkg + "allocViaHelper"}}, allocViaHelper, 3},
		{"left out", allocs.Stacks{In: []string{pkg + "allocViaHelper"}, Out: []string{pkg + "allocThree"}}, allocViaHelper, 0},
		{"nothing selected", allocs.Stacks{In: []string{"no/such/package."}}, allocThree, 0},
	} {
		got, err := allocs.PerRun(50, tc.st, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: %v allocations per run, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := allocs.PerRun(0, allocs.Stacks{}, allocThree); err == nil {
		t.Error("PerRun(0, …) = nil error")
	}
}
