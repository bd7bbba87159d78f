package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
	"shoal/secure"
)

// as returns a client of the cluster with token tok, as a user's program
// would have it: no mount host certificate.
func (c *cluster) as(tok string) *client.Client {
	c.t.Helper()
	creds := c.Creds
	creds.Token, creds.Cert, creds.Key = tok, "", ""
	cfg, err := creds.Config()
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Timeout, cfg.Retry503 = 10*time.Second, 15*time.Second
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// addUser adds a user through the CLI, as an admin would, and returns its
// token.
func (c *cluster) addUser(name string, flags ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(append([]string{"user", "add", name}, flags...)...)
	if code != 0 {
		c.t.Fatalf("shoal user add %s: exit %d: %s", name, code, errOut)
	}
	tok := strings.TrimSpace(out)
	if !secure.WellFormedToken(tok) {
		c.t.Fatalf("shoal user add printed %q, not a token", out)
	}
	return tok
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// TestTokenLifecycle: a user is added (with a home of its own), works with
// its token, gets a new one (the old one is refused), survives a failover
// of the meta group, and is removed (its token is refused); bad tokens are
// refused with 401 and WWW-Authenticate, and a flood of them does not stop
// a user the router knows.
func TestTokenLifecycle(t *testing.T) {
	c := newCluster(t, 3)
	tok := c.addUser("alice")
	alice := c.as(tok)
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	me, err := alice.WhoAmI(ctx)
	if err != nil || me.Name != "alice" || me.Uid != 1000 || me.Gid != 1000 || me.Admin {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	st, err := alice.Stat(ctx, "/home/alice")
	if err != nil || st.Uid != 1000 || st.Mode != 0o700 || st.Type != client.TypeDir {
		t.Fatalf("alice's home: %+v %v", st, err)
	}
	if _, err := alice.Put(ctx, "/home/alice/notes", strings.NewReader("mine"), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx, "/elsewhere", strings.NewReader("x"), 1); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("alice writing in / (root's, 0755): %v", err)
	}
	out, _, code := c.run("ls", "--owner", "alice")
	if code != 0 || !strings.Contains(out, "/home/alice/notes") || !strings.Contains(out, "/home/alice\n") {
		t.Fatalf("shoal ls --owner alice: %d\n%s", code, out)
	}

	// No token, a malformed one, one never issued.
	for _, h := range []string{"", "Bearer nope", "Bearer " + secure.NewToken()} {
		hdr := []string{"Authorization", h}
		st, head, body := c.do("GET", "/v1/fs/home/alice/notes", nil, hdr...)
		if st != 401 || !strings.HasPrefix(head.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(body), "unauthorized") {
			t.Errorf("Authorization %q: %d %q %s", h, st, head.Get("WWW-Authenticate"), body)
		}
	}

	// Rotate: the old token stops, the new one works.
	out, errOut, code := c.runAs(tok, "user", "token", "rotate")
	if code != 0 {
		t.Fatalf("rotate: %d %s", code, errOut)
	}
	tok2 := strings.TrimSpace(out)
	if _, err := alice.WhoAmI(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the rotated-out token: %v", err)
	}
	alice = c.as(tok2)
	if b, err := alice.ReadFile(ctx, "/home/alice/notes"); err != nil || string(b) != "mine" {
		t.Fatalf("with the new token: %q %v", b, err)
	}

	// A failover of the meta group keeps users and tokens.
	w := startWriter(c, "/w")
	victim, _ := killPrimary(t, c, w)
	w.Halt()
	if b, err := alice.ReadFile(ctx, "/home/alice/notes"); err != nil || string(b) != "mine" {
		t.Fatalf("after killing %s: %q %v", victim.Name, b, err)
	}
	c.start(victim)
	c.waitGroup(3, "")
	if _, err := alice.WhoAmI(ctx); err != nil {
		t.Fatal(err)
	}
	bob := c.as(c.addUser("bob", "--uid", "2000", "--gid", "100"))
	if me, err := bob.WhoAmI(ctx); err != nil || me.Uid != 2000 || me.Gid != 100 {
		t.Fatalf("bob: %+v %v", me, err)
	}

	// A flood of bad tokens from many goroutines does not stop alice.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 8 {
		wg.Go(func() {
			bad := c.as(secure.NewToken())
			for !stop.Load() {
				if _, err := bad.WhoAmI(ctx); err != nil {
					refused.Add(1)
				}
			}
		})
	}
	for i := range 50 {
		if _, err := alice.Put(ctx, fmt.Sprintf("/home/alice/f%d", i), strings.NewReader("x"), 1); err != nil {
			t.Fatalf("alice's write %d during a flood of bad tokens: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("the flood was not refused")
	}
	b, _ := os.ReadFile(c.Router.Log)
	if n := strings.Count(string(b), "refused a request"); n > 4 {
		t.Errorf("the router logged %d refusals for one address (want one per reason)", n)
	}

	// Removed: the token is refused at once on this router, the files stay.
	if _, _, code := c.run("user", "remove", "alice"); code != 0 {
		t.Fatal("user remove failed")
	}
	// (The flood above came from this address too: until its failure
	// budget refills, the answer is 429, a refusal as well.)
	harness.Await(t, 10*time.Second, "a removed user's token refused with 401", func() bool {
		_, err := alice.WhoAmI(ctx)
		if err == nil {
			t.Fatal("a removed user's token was accepted")
		}
		return errors.Is(err, client.ErrUnauthorized)
	})
	if _, err := c.client().Stat(ctx, "/home/alice/notes"); err != nil {
		t.Fatalf("a removed user's file: %v", err)
	}
	out, _, _ = c.run("user", "list")
	if strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}
}

// TestPermissionsOverAPI is the report's example and its relatives: a
// user cannot read, overwrite or delete a root-only file, reach into
// another user's home, chmod or chown what is not theirs, rename into a
// directory it may not write, act for others with a mount token from the
// API, or manage users; each is refused with 403 and changes nothing.
func TestPermissionsOverAPI(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := ctxT(time.Minute)
	defer cancel()
	root := c.rootOnlyFile("/secret", "root only")
	alice := c.as(c.addUser("alice"))
	bobTok := c.addUser("bob")
	bob := c.as(bobTok)
	host := c.as(c.addUser("host", "--mount"))
	if _, err := alice.Put(ctx, "/home/alice/private", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if err := alice.Mkdir(ctx, "/home/alice/shared", false); err != nil {
		t.Fatal(err)
	}
	before := c.state()

	refused := []struct {
		name string
		do   func() error
	}{
		{"cat a root-only file", func() error { _, err := bob.ReadFile(ctx, "/secret"); return err }},
		{"overwrite it", func() error { _, err := bob.Put(ctx, "/secret", strings.NewReader("x"), 1); return err }},
		{"delete it", func() error { return bob.Delete(ctx, "/secret", false) }},
		{"rm -r the root", func() error { return bob.Delete(ctx, "/home", true) }},
		{"list another's home", func() error { _, err := bob.List(ctx, "/home/alice"); return err }},
		{"stat inside it", func() error { _, err := bob.Stat(ctx, "/home/alice/private"); return err }},
		{"read inside it by inode", func() error {
			ino := mustIno(t, alice, "/home/alice/private")
			rc, err := bob.ReadIno(ctx, ino, 0, 1)
			if err == nil {
				rc.Close()
			}
			return err
		}},
		{"write inside it", func() error { _, err := bob.Put(ctx, "/home/alice/x", strings.NewReader("x"), 1); return err }},
		{"chmod another's file", func() error {
			_, err := bob.SetAttrIno(ctx, mustIno(t, root, "/secret"), client.SetAttr{Mode: ptrTo(uint32(0o666))})
			return err
		}},
		{"chown to oneself", func() error {
			_, err := alice.SetAttrIno(ctx, mustIno(t, alice, "/home/alice/private"), client.SetAttr{Uid: ptrTo(uint32(1001))})
			return err
		}},
		{"rename into a directory one may not write", func() error { return alice.Rename(ctx, "/home/alice/private", "/stolen") }},
		{"act for root with a mount token from the API", func() error {
			_, err := host.List(client.ActAs(ctx, client.Identity{Uid: 0, Gid: 0}), "/home/alice")
			return err
		}},
		{"act for alice with a user token", func() error {
			_, err := bob.List(client.ActAs(ctx, client.Identity{Uid: 1000, Gid: 1000}), "/home/alice")
			return err
		}},
		{"add a user", func() error { _, err := bob.AddUser(ctx, client.NewUser{Name: "mallory", Admin: true}); return err }},
		{"list users", func() error { _, err := bob.Users(ctx); return err }},
		{"rotate another's token", func() error { _, err := bob.RotateToken(ctx, "alice"); return err }},
		{"list another's files", func() error { _, _, err := bob.Owned(ctx, "alice", 0, 10); return err }},
		{"change the gossip keys", func() error { _, err := bob.Keyring(ctx, "install", secure.NewKey()); return err }},
	}
	for _, tc := range refused {
		err := tc.do()
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Errorf("%s: %v, want 403", tc.name, err)
		}
	}
	after := c.state()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("refused requests changed the cluster:\nbefore %v\nafter  %v", before, after)
	}
	b, _ := os.ReadFile(c.Router.Log)
	if n := strings.Count(string(b), "refused a request the user may not make"); n != 1 || !strings.Contains(string(b), "remote=127.0.0.1:") {
		t.Errorf("the router logged %d lines for the refused requests of one address, want one with the address", n)
	}
	// The same through the CLI, as the report tried it.
	for _, args := range [][]string{{"cat", "/secret"}, {"rm", "-r", "/secret"}} {
		if _, errOut, code := c.runAs(bobTok, args...); code == 0 || !strings.Contains(errOut, "permission") {
			t.Errorf("shoal %v as bob: %d %s", args, code, errOut)
		}
	}
	// What is allowed still works: a user's own files, and what modes grant.
	if b, err := alice.ReadFile(ctx, "/home/alice/private"); err != nil || string(b) != "a" {
		t.Fatalf("alice's own file: %q %v", b, err)
	}
	if _, err := alice.SetAttrIno(ctx, mustIno(t, alice, "/home/alice"), client.SetAttr{Mode: ptrTo(uint32(0o755))}); err != nil {
		t.Fatal(err)
	}
	if b, err := bob.ReadFile(ctx, "/home/alice/private"); err != nil || string(b) != "a" {
		t.Fatalf("bob reading a 0644 file in a 0755 home: %q %v", b, err)
	}
	if _, err := bob.Put(ctx, "/home/bob/mine", strings.NewReader("b"), 1); err != nil {
		t.Fatal(err)
	}
	if st, err := bob.Stat(ctx, "/home/bob/mine"); err != nil || st.Uid != 1001 || st.Gid != 1001 {
		t.Fatalf("bob's new file: %+v %v", st, err)
	}
}

// rootOnlyFile writes a file of root's with mode 0600 and returns the
// admin's client.
func (c *cluster) rootOnlyFile(p, content string) *client.Client {
	c.t.Helper()
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	root := c.client()
	if _, err := root.Put(ctx, p, strings.NewReader(content), int64(len(content))); err != nil {
		c.t.Fatal(err)
	}
	if _, err := root.SetAttrIno(ctx, mustIno(c.t, root, p), client.SetAttr{Mode: ptrTo(uint32(0o600))}); err != nil {
		c.t.Fatal(err)
	}
	return root
}

func mustIno(t *testing.T, cl *client.Client, p string) uint64 {
	t.Helper()
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	st, err := cl.Stat(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func ptrTo[T any](v T) *T { return &v }

// TestOwnerListing checks GET /v1/users/NAME/files (paged) against a
// brute-force walk of the whole tree.
func TestOwnerListing(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := ctxT(2 * time.Minute)
	defer cancel()
	root := c.client()
	alice := c.as(c.addUser("alice"))
	c.addUser("bob")
	for i := range 40 {
		p := fmt.Sprintf("/home/alice/d%d/f%d", i%5, i)
		if _, err := alice.Put(ctx, p, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Mkdir(ctx, "/shared", false); err != nil {
		t.Fatal(err)
	}
	if _, err := root.SetAttrIno(ctx, mustIno(t, root, "/shared"), client.SetAttr{Mode: ptrTo(uint32(0o1777))}); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := alice.Put(ctx, fmt.Sprintf("/shared/a%d", i), strings.NewReader("y"), 1); err != nil {
			t.Fatal(err)
		}
	}
	// Renamed, copied, chowned by root, deleted: the index follows.
	if err := alice.Rename(ctx, "/home/alice/d0", "/home/alice/moved"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Copy(ctx, "/home/alice/d1", "/home/alice/copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.SetAttrIno(ctx, mustIno(t, root, "/shared/a0"), client.SetAttr{Uid: ptrTo(uint32(1001))}); err != nil {
		t.Fatal(err)
	}
	if err := alice.Delete(ctx, "/home/alice/d2", true); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		uid  uint32
	}{{"alice", 1000}, {"bob", 1001}} {
		var walked []string
		var walk func(dir string)
		walk = func(dir string) {
			es, err := root.List(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				p := path.Join(dir, e.Name)
				if e.Uid == u.uid {
					walked = append(walked, p)
				}
				if e.Type == client.TypeDir {
					walk(p)
				}
			}
		}
		walk("/")
		var listed []string
		var after uint64
		for pages := 0; ; pages++ {
			files, next, err := root.Owned(ctx, u.name, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				listed = append(listed, f.Path)
			}
			if next == 0 {
				break
			}
			after = next
		}
		sort.Strings(walked)
		sort.Strings(listed)
		if !slices.Equal(walked, listed) {
			t.Errorf("%s: listed %d %v\nwalked %d %v", u.name, len(listed), listed, len(walked), walked)
		}
	}
}
