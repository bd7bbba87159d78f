package e2e

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/secure"
	"shoal/wire"
)

// TestForgedTermRefused: a peer holding a valid node certificate (a
// node with a bug, or a stolen key) sends every storage node a Promise and
// an Append naming term 2^64-1. Each is refused as malformed and promises
// nothing: the group keeps its term, and when its primary is killed it
// still elects a new one, which takes writes. Accepted, such a ballot
// would leave no higher term to promote with.
func TestForgedTermRefused(t *testing.T) {
	c := newCluster(t, 3)
	c.expect("PUT", "/v1/fs/before.txt", strings.NewReader("before"), 201)
	g := c.waitGroup(3, "")

	b, err := secure.LoadBundle(secure.Dir(c.Secrets).TLS(secure.RoleNode), secure.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	tr := wire.NewTCPTransport()
	tr.TLS = b.PeerClient()
	defer tr.Close()
	forged := meta.Ballot{Term: math.MaxUint64, Node: 999}
	for _, p := range c.Nodes {
		addr := p.Arg("--listen")
		for _, m := range []wire.Message{
			&wire.Promise{Group: "g1", Ballot: forged},
			&wire.Append{Group: "g1", Ballot: forged, Leader: "127.0.0.1:1"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := tr.Call(ctx, addr, m)
			cancel()
			if !errors.Is(err, wire.ErrBadMessage) {
				t.Errorf("%s answered a forged ballot's type %d with %v, %v; want a malformed-message error", p.Name, m.Type(), resp, err)
			}
		}
	}
	cs, ok := c.clusterView()
	if !ok {
		t.Fatal("no cluster view")
	}
	for _, n := range cs.Nodes {
		if n.Term > g.Term {
			t.Errorf("after the forged messages the router sees %s at term %d, above the group's %d", n.Name, n.Term, g.Term)
		}
	}

	c.node(g.Primary).Kill()
	c.waitGroup(2, g.Primary)
	var term uint64
	harness.Await(t, 30*time.Second, "the router to see the new primary's term", func() bool {
		cs, ok := c.clusterView()
		for _, n := range cs.Nodes {
			if ok && n.Role == "primary" && n.Name != g.Primary && n.Term > g.Term {
				term = n.Term
				return true
			}
		}
		return false
	})
	if term > g.Term+10 {
		t.Errorf("the new primary has term %d; want a little above %d", term, g.Term)
	}
	harness.Await(t, 30*time.Second, "a write through the new primary", func() bool {
		code, _, _ := c.do("PUT", "/v1/fs/after.txt", strings.NewReader("after"))
		return code == 201
	})
	if got := string(c.expect("GET", "/v1/fs/before.txt", nil, 200)); got != "before" {
		t.Errorf("before.txt reads %q", got)
	}
}
