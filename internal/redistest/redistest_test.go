package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestNamespaceIsSafeAndUnique(t *testing.T) {
	a, b := New(t), New(t)
	if a.Namespace == b.Namespace {
		t.Fatalf("two servers share namespace %q", a.Namespace)
	}
	if strings.ContainsAny(a.Namespace, `*?[]\:/ `) {
		t.Fatalf("namespace %q has a character that needs escaping", a.Namespace)
	}
}

func TestServerAnswers(t *testing.T) {
	s := New(t)
	if s.Real() != (os.Getenv(EnvAddr) != "") {
		t.Fatalf("Real() = %v with %s=%q", s.Real(), EnvAddr, os.Getenv(EnvAddr))
	}
	if err := s.Client.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupDeletesOnlyTheNamespace(t *testing.T) {
	ctx := context.Background()
	s := New(t)
	other := s.Namespace + "x" // starts with the namespace: cleaned too
	for _, k := range []string{s.Namespace + ":a", s.Namespace + ":b:c", other + ":d"} {
		if err := s.Client.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	outside := New(t) // a namespace that does not start with s.Namespace
	if err := outside.Client.Set(ctx, outside.Namespace+":keep", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.deleteNamespace()
	if n := s.Client.Exists(ctx, s.Namespace+":a", s.Namespace+":b:c", other+":d").Val(); n != 0 {
		t.Fatalf("%d key(s) of the namespace survived its cleanup", n)
	}
	if n := outside.Client.Exists(ctx, outside.Namespace+":keep").Val(); n != 1 {
		t.Fatal("cleanup deleted a key of another namespace")
	}
}

// fatalRecorder stands in for a test to see New fail without ending this one.
type fatalRecorder struct {
	*testing.T
	failed string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }
func (r *fatalRecorder) Fatal(args ...any)                 { r.failed = fmt.Sprint(args...) }

func TestUnreachableServerFails(t *testing.T) {
	t.Setenv(EnvAddr, "127.0.0.1:1") // nothing listens on port 1
	r := &fatalRecorder{T: t}
	New(r)
	if !strings.Contains(r.failed, "does not answer") {
		t.Fatalf("New with an unreachable %s did not fail the test (got %q)", EnvAddr, r.failed)
	}
}
