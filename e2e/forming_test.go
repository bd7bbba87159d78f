package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"shoal/harness"
)

// TestKillPrimaryAtFirstWrite: a group of three started together takes
// its first write only once it can lose a member and keep a majority.
// A writer starts with the cluster; the moment its first write is
// acknowledged, the group's primary is killed -9, and writes go on with
// the other two members while the killed node stays down. Had the group
// acknowledged that write with one or two voters, the two left could not
// elect a primary, and writes would stall until the node returned.
func TestKillPrimaryAtFirstWrite(t *testing.T) {
	sp := harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}}
	sp.Binary, sp.Dir, sp.Ports = binary(t), t.TempDir(), &ports
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hc, err := harness.Start(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{Cluster: hc, t: t, spec: sp}
	c.StopAtEnd(t)
	// Not waiting for the group to be healthy is the point: writes begin
	// as soon as the router serves.
	hcl := c.httpClient()
	harness.Await(t, 30*time.Second, "the router to serve /healthz", func() bool {
		resp, err := hcl.Get(c.API + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	w := startWriter(c, "/first")
	waited := harness.Await(t, 45*time.Second, "the first acknowledged write", func() bool { return acked(w) > 0 })
	// A new group's primary is the node started as primary: no other
	// member may promote itself before the group had a primary.
	victim := c.node("g1-n0")
	killed := time.Now()
	victim.Kill()
	_, failed := w.Counts()
	t.Logf("first write acknowledged %v after the router served (%d attempts failed before); killed %s", waited.Round(time.Millisecond), failed, victim.Name)

	harness.Await(t, 30*time.Second, "a write acknowledged after the primary was killed, with the node still down", func() bool {
		_, ok := w.FirstAckAfter(killed)
		return ok
	})
	first, _ := w.FirstAckAfter(killed)
	t.Logf("first write acknowledged %v after the kill", first.Sub(killed).Round(time.Millisecond))
	acks := w.Halt()
	verifyAcked(t, c, acks)
}
