// Package e2e tests the shoal binary as users run it: separate processes
// on 127.0.0.1, real sockets, real fsync, kill -9. The processes are
// started and watched with package harness; this file adapts it to
// testing.T.
package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

var (
	// build builds the binary under test once per run (SHOAL_E2E_BINARY
	// names one instead); ports hands out ports to every test's cluster.
	build harness.Build
	ports harness.Ports
)

// binary returns the shoal binary under test.
func binary(t *testing.T) string {
	t.Helper()
	return build.For(t)
}

// freePort returns a port of 127.0.0.1 no other test got.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cluster is a harness cluster that fails its test instead of returning
// errors.
type cluster struct {
	*harness.Cluster
	t    *testing.T
	spec harness.Spec
}

// newCluster starts n storage nodes of group g1 (the first as primary)
// and a router, and waits until the group has a primary and all members.
func newCluster(t *testing.T, n int) *cluster {
	return startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: n}}})
}

// startCluster starts the storage nodes and standbys of sp and a router,
// and waits until every group has a primary and all members in sync.
// The harness fills in the binary, a directory unless sp names one (a
// node's data directory in it may be a mount point) and the ports.
func startCluster(t *testing.T, sp harness.Spec) *cluster {
	t.Helper()
	sp.Binary, sp.Ports = binary(t), &ports
	if sp.Dir == "" {
		sp.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hc, err := harness.Start(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{Cluster: hc, t: t, spec: sp}
	c.StopAtEnd(t)
	for _, g := range sp.Groups {
		c.waitGroupNamed(g.Name, g.Size, "")
	}
	return c
}

// clientConfig is the admin's client configuration, with the harness's
// timeouts.
func (c *cluster) clientConfig(timeout, retry503 time.Duration) client.Config {
	c.t.Helper()
	cfg, err := c.Creds.Config()
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.Timeout, cfg.Retry503 = timeout, retry503
	return cfg
}

// httpClient sends raw requests to the router over TLS that trusts the
// cluster's CA (requests still need the token: see do).
func (c *cluster) httpClient() *http.Client {
	cfg := c.clientConfig(0, 0)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.TLS}}
}

// addStandby starts one more standby with extra flags.
func (c *cluster) addStandby(name string, extra ...string) *harness.Proc {
	c.t.Helper()
	p, err := c.AddNode("standby", name, "", uint64(950+len(c.Nodes)), extra...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.start(p)
	return p
}

// start starts p (again).
func (c *cluster) start(p *harness.Proc) {
	c.t.Helper()
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// client is the admin's client. It waits for an answer longer than the
// router's own deadline for a request (10 s), so that what the router
// answers then, a 503 the client retries or the data, arrives before the
// client gives up; a router that does not answer at all still fails the
// request, after 30 s.
func (c *cluster) client() *client.Client {
	c.t.Helper()
	cl, err := c.Client(30*time.Second, 15*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitGroup waits until the router sees a primary of the meta group
// (other than notName, if given) and n in-sync members.
func (c *cluster) waitGroup(n int, notName string) client.Group {
	return c.waitGroupNamed(c.spec.Groups[0].Name, n, notName)
}

// waitGroupNamed waits until the router sees a primary of group (other
// than notName, if given) and n in-sync members.
func (c *cluster) waitGroupNamed(group string, n int, notName string) client.Group {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := c.WaitGroup(ctx, group, n, notName)
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

// clusterView asks the router for /v1/cluster.
func (c *cluster) clusterView() (client.Cluster, bool) {
	cs, err := c.View(context.Background())
	return cs, err == nil
}

// node returns the storage node named name.
func (c *cluster) node(name string) *harness.Proc {
	c.t.Helper()
	p := c.Node(name)
	if p == nil {
		c.t.Fatalf("no node %s", name)
	}
	return p
}

// run executes the CLI against the cluster's router, as its admin.
func (c *cluster) run(args ...string) (string, string, int) {
	return c.runAs(c.Creds.Token, args...)
}

// runAs executes the CLI with the token tok.
func (c *cluster) runAs(tok string, args ...string) (string, string, int) {
	cmd := exec.Command(binary(c.t), args...)
	cmd.Env = append(append(os.Environ(), c.cliEnv()...), "SHOAL_TOKEN="+tok)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// cliEnv is the environment that points the CLI at the cluster as its
// admin, and keeps it from reading the credentials file of whoever runs
// the tests.
func (c *cluster) cliEnv() []string {
	return []string{"SHOAL_ROUTER=" + c.API, "SHOAL_CA=" + c.Creds.CA, "SHOAL_TOKEN=" + c.Creds.Token,
		"SHOAL_CREDENTIALS=" + os.DevNull}
}

func itoa(i int) string { return strconv.Itoa(i) }
