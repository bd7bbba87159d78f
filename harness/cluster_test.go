package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	good := Spec{Binary: "shoal", Dir: "/tmp/x", Groups: []Group{{"g1", 3}, {"g2", 1}}, Standbys: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%+v): %v", good, err)
	}
	hosts := good
	hosts.Hosts = make([]Host, 6)
	if err := hosts.Validate(); err != nil {
		t.Fatalf("Validate with a host per process: %v", err)
	}
	for name, s := range map[string]Spec{
		"Binary":   {Dir: "/tmp/x", Groups: good.Groups},
		"Dir":      {Binary: "shoal", Groups: good.Groups},
		"Groups":   {Binary: "shoal", Dir: "/tmp/x"},
		"Standbys": {Binary: "shoal", Dir: "/tmp/x", Groups: good.Groups, Standbys: -1},
		"group":    {Binary: "shoal", Dir: "/tmp/x", Groups: []Group{{"g1", 0}}},
		"Hosts":    {Binary: "shoal", Dir: "/tmp/x", Groups: good.Groups, Hosts: make([]Host, 4)},
	} {
		err := s.Validate()
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate without a good %s: %v, want ErrBadSpec naming it", name, err)
		}
	}
}

var build Build

// TestCluster starts a group of three and a router, kills the primary
// under a writer, and brings it back: what every user of the package
// does.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds shoal and starts a cluster of processes; skipped with -short")
	}
	bin := build.For(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Spec{Binary: bin, Dir: t.TempDir(), Groups: []Group{{"g1", 3}}})
	if err != nil {
		t.Fatal(err)
	}
	c.StopAtEnd(t)
	if !strings.HasPrefix(c.API, "https://127.0.0.1:") || c.Secrets == "" || c.Creds.Token == "" {
		t.Fatalf("a secure cluster: API %s, secrets %q, token %q", c.API, c.Secrets, c.Creds.Token)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.WaitHealthy(wctx); err != nil {
		t.Fatal(err)
	}
	primary, err := c.Primary(ctx, "g1")
	if err != nil || primary != c.Nodes[0] {
		t.Fatalf("primary %v, %v; want the first node", primary, err)
	}

	cl, err := c.Client(10*time.Second, -1)
	if err != nil {
		t.Fatal(err)
	}
	w := StartWriter(ctx, cl, "/h", nil)
	defer w.Halt()
	Await(t, 10*time.Second, "writes before the kill", func() bool { n, _ := w.Counts(); return n >= 5 })
	killed := time.Now()
	primary.Kill()
	kctx, kcancel := context.WithTimeout(ctx, 30*time.Second)
	defer kcancel()
	g, err := c.WaitGroup(kctx, "g1", 2, primary.Name)
	if err != nil || g.Primary == primary.Name {
		t.Fatalf("after the kill: %+v, %v", g, err)
	}
	Await(t, 30*time.Second, "a write acknowledged after the kill", func() bool { _, ok := w.FirstAckAfter(killed); return ok })
	acks := w.Halt()
	if err := primary.Start(); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if _, err := c.WaitGroup(rctx, "g1", 3, ""); err != nil {
		t.Fatal(err)
	}
	if lost, err := Lost(ctx, cl, acks); err != nil || len(lost) != 0 {
		t.Fatalf("%d acknowledged writes lost (%v): %v", len(lost), err, lost)
	}
	if err := c.Stop(10 * time.Second); err != nil {
		t.Fatalf("a graceful stop: %v", err)
	}
	for _, p := range c.Procs() {
		if p.Running() {
			t.Errorf("%s still runs after Stop", p.Name)
		}
	}
}
