package tiercache_test

import (
	"os"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// The README's quick start is example_test.go, verbatim, so that what it
// shows compiles and its output is checked. (example_replicas_test.go and
// example_hub_test.go, which it links, are run as examples too.)
func TestReadmeQuotesTheExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example_test.go"} {
		example, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```go\n"+string(example)+"```\n") {
			t.Errorf("README.md does not quote %s verbatim in a ```go block", name)
		}
	}
}
