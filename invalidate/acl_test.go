package invalidate_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/redistest"
	"github.com/tiercache/tiercache/invalidate"
	"github.com/tiercache/tiercache/remote"
)

// docACL returns the ACL SETUSER command of the package doc, as arguments.
func docACL(t *testing.T) []string {
	t.Helper()
	var args []string
	in := false
	for line := range strings.Lines(docComment(t)) {
		switch {
		case strings.HasPrefix(line, "\tACL SETUSER "):
			in = true
		case in && !strings.HasPrefix(line, "\t  "):
			return args
		}
		if in {
			args = append(args, strings.Fields(line)...)
		}
	}
	t.Fatal("no ACL SETUSER in the package doc")
	return nil
}

// docs/redis.md shows the doc's ACL, line for line.
func TestDocsShowTheACL(t *testing.T) {
	readme, err := os.ReadFile("../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	var block strings.Builder
	in := false
	for line := range strings.Lines(docComment(t)) {
		if strings.HasPrefix(line, "\tACL SETUSER ") {
			in = true
		} else if in && !strings.HasPrefix(line, "\t  ") {
			break
		}
		if in {
			block.WriteString(strings.TrimPrefix(line, "\t"))
		}
	}
	if !strings.Contains(string(readme), "```\n"+block.String()+"```\n") {
		t.Fatalf("docs/redis.md does not show the package doc's ACL in a ``` block:\n%s", block.String())
	}
}

// setUser runs ACL SETUSER with args on the server.
func setUser(t *testing.T, s *redistest.Server, args ...string) {
	t.Helper()
	cmd := []any{}
	for _, a := range args {
		cmd = append(cmd, a)
	}
	if err := s.Client.Do(context.Background(), cmd...).Err(); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// userClient returns a client of the server that logs in as user.
func userClient(t *testing.T, s *redistest.Server, user, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Username: user, Password: password})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func isNoPerm(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOPERM") }

// Under the doc's ACL, a client of another user cannot publish on the
// namespace's channel (NOPERM), by PUBLISH or by script, and the
// namespace's own user can, and cannot reach another namespace.
func TestACLConfinesTheChannel(t *testing.T) {
	ctx := context.Background()
	s := redistest.NewReal(t) // ACL SETUSER: on a server of the test's own
	setUser(t, s, docACL(t)...)
	setUser(t, s, "ACL", "SETUSER", "other", "on", ">pw", "resetchannels", "~*", "+@all")
	svc, other := userClient(t, s, "users-svc", "secret"), userClient(t, s, "other", "pw")
	channel := "tiercache:invalidate:users"

	if err := other.Publish(ctx, channel, "x").Err(); !isNoPerm(err) {
		t.Fatalf("another user's PUBLISH on %s: %v; want NOPERM", channel, err)
	}
	err := other.Eval(ctx, invalidate.WriteScript(), []string{"users:k"}, "users", "x", "", "c", 10, "S", "v", 0, "").Err()
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "publish") {
		t.Fatalf("another user's WriteScript on %s: %v; want a refusal", channel, err)
	}
	p, err := invalidate.NewPublisher(other, "users")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Invalidate(ctx, "k"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "publish") {
		t.Fatalf("another user's Publisher: %v; want a refusal to publish", err)
	}

	if err := svc.Publish(ctx, channel, "x").Err(); err != nil {
		t.Fatalf("the namespace's user's PUBLISH on %s: %v", channel, err)
	}
	if err := svc.Publish(ctx, "tiercache:invalidate:orders", "x").Err(); !isNoPerm(err) {
		t.Fatalf("the namespace's user's PUBLISH on another namespace's channel: %v; want NOPERM", err)
	}
	if err := svc.Set(ctx, "orders:1", "x", 0).Err(); !isNoPerm(err) {
		t.Fatalf("the namespace's user's SET of another namespace's key: %v; want NOPERM", err)
	}
}

// The doc's read-only user reads through package remote, and may neither
// write nor publish.
func TestACLReadOnly(t *testing.T) {
	ctx := context.Background()
	doc := docComment(t)
	const rights = "~users:* with +get +mget +pttl +scan"
	if !strings.Contains(strings.Join(strings.Fields(doc), " "), rights) {
		t.Fatalf("the doc no longer gives the read-only user %q", rights)
	}
	s := redistest.NewReal(t)
	setUser(t, s, "ACL", "SETUSER", "reader", "on", ">pw", "resetkeys", "resetchannels", "-@all",
		"~users:*", "+get", "+mget", "+pttl", "+scan")
	if err := s.Client.Set(ctx, "users:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	st, err := remote.New(userClient(t, s, "reader", "pw"), remote.Options{Namespace: "users"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("reader's Get = %q, %v", v, err)
	}
	if _, err := st.GetMany(ctx, []string{"k"}); err != nil {
		t.Fatalf("reader's GetMany: %v", err)
	}
	if _, err := st.Keys(ctx); err != nil {
		t.Fatalf("reader's Keys: %v", err)
	}
	if err := st.Set(ctx, "k", []byte("w"), 0); !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("reader's Set: %v; want NOPERM", err)
	}
}
