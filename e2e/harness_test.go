// Package e2e tests the shoal binary as users run it: separate processes
// on 127.0.0.1, real sockets, real fsync, kill -9.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/client"
	"shoal/secure"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the shoal binary once per test run; SHOAL_E2E_BINARY
// names one to test instead (a build with -race, say).
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SHOAL_E2E_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		cmd := exec.Command("go", "build", "-o", binPath, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// handedOut holds the ports freePort returned: the kernel may offer a
// closed port again before the process it was meant for binds it.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePort returns a port that was free for both TCP and UDP a moment ago
// and that no earlier call returned.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if handedOut[p] {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u.Close()
		handedOut[p] = true
		return p
	}
	t.Fatal("no free port")
	return 0
}

// proc is one shoal process with fixed arguments, so it can be killed and
// started again as the same node.
type proc struct {
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// cluster is a router and groups of storage nodes, maybe standbys.
type cluster struct {
	t      *testing.T
	dir    string
	nodes  []*proc
	router *proc
	mounts []*proc // shoal mount processes (mount_harness_test.go)
	api    string  // router base URL
	seeds  string
	spec   spec
	// secrets is the directory 'shoal secrets init' made for the cluster
	// ("" with spec.insecure); creds are the admin's credentials.
	secrets string
	creds   client.Credentials
}

// spec describes a cluster to start. The first group is the meta group.
type spec struct {
	groups   []groupSpec
	standbys int
	// node and router are extra flags for every storage node / the router.
	node, router []string
	// insecure runs every process with --insecure instead of the secrets.
	insecure bool
}

type groupSpec struct {
	name string
	size int
}

// newCluster starts n storage nodes of group g1 (the first as primary)
// and a router, and waits until the group has a primary and all members.
func newCluster(t *testing.T, n int) *cluster {
	return startCluster(t, spec{groups: []groupSpec{{"g1", n}}})
}

// startCluster starts the storage nodes and standbys of sp and a router,
// and waits until every group has a primary and all members in sync.
// Nodes get fixed IDs (group i, member j: 100*(i+1)+j), so a node whose
// data directory is wiped comes back as the same member.
func startCluster(t *testing.T, sp spec) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), spec: sp}
	c.makeSecrets()
	c.seeds = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	first := true
	for gi, g := range sp.groups {
		for j := range g.size {
			role := "replica"
			if j == 0 {
				role = "primary"
			}
			c.nodes = append(c.nodes, c.newNode(fmt.Sprintf("%s-n%d", g.name, j), role, g.name, uint64(100*(gi+1)+j), first))
			first = false
		}
	}
	for j := range sp.standbys {
		c.nodes = append(c.nodes, c.newNode(fmt.Sprintf("standby%d", j), "standby", "", uint64(900+j), false))
	}
	httpPort := freePort(t)
	c.api = fmt.Sprintf("https://127.0.0.1:%d", httpPort)
	if sp.insecure {
		c.api = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	}
	c.creds.Router = c.api
	c.router = &proc{name: "router", log: filepath.Join(c.dir, "router.log"), args: append(append([]string{
		binary(t), "router", "--name", "router", "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--meta-group", sp.groups[0].name,
		"--gossip", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--join", c.seeds,
	}, c.securityFlags()...), sp.router...)}
	t.Cleanup(func() {
		for _, p := range append(c.nodes, c.router) {
			c.kill(p)
		}
		if t.Failed() {
			for _, p := range append(append(c.nodes, c.router), c.mounts...) {
				b, _ := os.ReadFile(p.log)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("--- last lines of %s ---\n%s", p.name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	for _, p := range c.nodes {
		c.start(p)
	}
	c.start(c.router)
	for _, g := range sp.groups {
		c.waitGroupNamed(g.name, g.size, "")
	}
	return c
}

// newNode describes a storage node; the first one's gossip port is the
// cluster's seed.
func (c *cluster) newNode(name, role, group string, id uint64, seed bool) *proc {
	gossipAddr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	if seed {
		gossipAddr = c.seeds
	}
	args := []string{binary(c.t), role, "--name", name, "--id", strconv.FormatUint(id, 10),
		"--data", filepath.Join(c.dir, name),
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
		"--gossip", gossipAddr, "--join", c.seeds, "--meta-group", c.spec.groups[0].name,
	}
	if group != "" {
		args = append(args, "--group", group)
	}
	args = append(args, c.securityFlags()...)
	return &proc{name: name, log: filepath.Join(c.dir, name+".log"), args: append(args, c.spec.node...)}
}

// makeSecrets makes the cluster's secrets with the binary under test, as
// a user would, and keeps the admin's credentials.
func (c *cluster) makeSecrets() {
	c.t.Helper()
	if c.spec.insecure {
		return
	}
	c.secrets = filepath.Join(c.dir, "secrets")
	if out, err := exec.Command(binary(c.t), "secrets", "init", c.secrets).CombinedOutput(); err != nil {
		c.t.Fatalf("shoal secrets init: %v\n%s", err, out)
	}
	d := secure.Dir(c.secrets)
	tok, err := secure.LoadToken(d.AdminToken())
	if err != nil {
		c.t.Fatal(err)
	}
	c.creds = client.Credentials{CA: d.CA(), Token: tok, Cert: d.Cert(secure.RoleClient), Key: d.Key(secure.RoleClient)}
}

// securityFlags are the flags every server of the cluster takes.
func (c *cluster) securityFlags() []string {
	if c.spec.insecure {
		return []string{"--insecure"}
	}
	return []string{"--secrets", c.secrets}
}

// clientConfig is the admin's client configuration, with the harness's
// timeouts.
func (c *cluster) clientConfig(timeout, retry503 time.Duration) client.Config {
	c.t.Helper()
	cfg, err := c.creds.Config()
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
func (c *cluster) addStandby(name string, extra ...string) *proc {
	p := c.newNode(name, "standby", "", uint64(950+len(c.nodes)), false)
	p.args = append(p.args, extra...)
	c.nodes = append(c.nodes, p)
	c.start(p)
	return p
}

// dataDir is where node p keeps its state.
func (c *cluster) dataDir(p *proc) string { return filepath.Join(c.dir, p.name) }

func (c *cluster) start(p *proc) {
	c.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "SHOAL_CREDENTIALS="+os.DevNull)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(p *proc) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

func (c *cluster) client() *client.Client {
	c.t.Helper()
	cl, err := client.New(c.clientConfig(10*time.Second, 15*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// waitGroup waits until the router sees a primary of the meta group
// (other than notName, if given) and n in-sync members.
func (c *cluster) waitGroup(n int, notName string) client.Group {
	return c.waitGroupNamed(c.spec.groups[0].name, n, notName)
}

// waitGroupNamed waits until the router sees a primary of group (other
// than notName, if given) and n in-sync members.
func (c *cluster) waitGroupNamed(group string, n int, notName string) client.Group {
	c.t.Helper()
	var g client.Group
	waitFor(c.t, 30*time.Second, fmt.Sprintf("group %s with a primary and %d in-sync members", group, n), func() bool {
		cs, ok := c.clusterView()
		if !ok {
			return false
		}
		insync := 0
		for _, nd := range cs.Nodes {
			if nd.Group == group && nd.InSync && nd.Status == "alive" {
				insync++
			}
		}
		for _, gr := range cs.Groups {
			if gr.Name == group && gr.Primary != "" && gr.Primary != notName && insync >= n {
				g = gr
				return true
			}
		}
		return false
	})
	return g
}

// clusterView asks the router for /v1/cluster.
func (c *cluster) clusterView() (client.Cluster, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs, err := c.client().Cluster(ctx)
	return cs, err == nil
}

func (c *cluster) node(name string) *proc {
	for _, p := range c.nodes {
		if p.name == name {
			return p
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// run executes the CLI against the cluster's router, as its admin.
func (c *cluster) run(args ...string) (string, string, int) {
	return c.runAs(c.creds.Token, args...)
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
	return []string{"SHOAL_ROUTER=" + c.api, "SHOAL_CA=" + c.creds.CA, "SHOAL_TOKEN=" + c.creds.Token,
		"SHOAL_CREDENTIALS=" + os.DevNull}
}

func itoa(i int) string { return strconv.Itoa(i) }
