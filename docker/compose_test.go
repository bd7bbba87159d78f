package docker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/secure"
)

// swarm is one docker-compose project started from ../docker-compose.yml
// with an image built for this test run.
type swarm struct {
	t       *testing.T
	compose []string // the compose command and its project flags
	env     []string // environment of compose: the file's ${...} settings
	image   string
	network string
	api     string // the router's published API, https://127.0.0.1:PORT
	cl      *client.Client
	project string
	// creds are the admin's, with the secrets copied out of the
	// project's secrets volume.
	creds client.Credentials
}

// cmdTimeout bounds one docker command; building the image (a go build)
// and bringing the project up or down get longer.
const (
	cmdTimeout   = time.Minute
	buildTimeout = 5 * time.Minute
	upTimeout    = 3 * time.Minute
)

// run runs a command and returns its standard output, trimmed; the error
// carries its standard error.
func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// docker runs one docker command and fails the test if it fails.
func (s *swarm) docker(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := run(ctx, nil, "docker", args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// composeRun runs one compose command of the project.
func (s *swarm) composeRun(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	all := append(append([]string{}, s.compose[1:]...), args...)
	return run(ctx, s.env, s.compose[0], all...)
}

// findCompose returns the compose command: the docker CLI plugin if it is
// installed, else the standalone docker-compose.
func findCompose(t *testing.T) []string {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := run(ctx, nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	if _, err := run(ctx, nil, "docker-compose", "version"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("neither 'docker compose' nor 'docker-compose' runs: install one (Debian: apt-get install docker-compose)")
	return nil
}

// startSwarm builds the image, brings the compose project up with the
// router published on a free port of 127.0.0.1, and registers its
// teardown (volumes included) and the removal of the image.
func startSwarm(t *testing.T) *swarm {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := run(ctx, nil, "docker", "version"); err != nil {
		t.Fatalf("SHOAL_DOCKER=1 but no Docker engine answers: %v", err)
	}
	file, err := filepath.Abs(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().Unix())
	project := "shoaldockertest" + strings.ReplaceAll(tag, "-", "")
	s := &swarm{t: t, image: "shoal-dockertest:" + tag, project: project}
	s.compose = append(findCompose(t), "--project-name", project, "--file", file)
	s.env = []string{"SHOAL_IMAGE=" + s.image, "SHOAL_PUBLISH=127.0.0.1:", "SHOAL_NODE_CAPACITY=1G"}

	began := time.Now()
	bctx, bcancel := context.WithTimeout(context.Background(), buildTimeout)
	defer bcancel()
	if _, err := run(bctx, []string{"IMAGE=" + s.image}, filepath.Join("..", "scripts", "image")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := run(context.Background(), nil, "docker", "image", "rm", s.image); err != nil {
			t.Errorf("remove the test image: %v", err)
		}
	})
	size := s.docker("image", "inspect", "--format", "{{.Size}}", s.image)
	t.Logf("built image %s (%s bytes) in %v", s.image, size, time.Since(began).Round(time.Millisecond))

	t.Cleanup(s.down)
	began = time.Now()
	if _, err := s.composeRun(upTimeout, "up", "--detach"); err != nil {
		t.Fatal(err)
	}
	addr, err := s.composeRun(cmdTimeout, "port", "router", "8080")
	if err != nil || addr == "" {
		t.Fatalf("the router's published port: %q, %v", addr, err)
	}
	s.api = "https://" + addr
	s.copySecrets()
	s.cl, err = client.New(s.clientConfig(10*time.Second, 15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s.network = s.docker("inspect", "--format",
		"{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}", s.container("router"))
	t.Logf("compose project %s up in %v: router API at %s, network %s",
		project, time.Since(began).Round(time.Millisecond), s.api, s.network)
	return s
}

// copySecrets copies the CA and the admin's token out of the secrets
// volume, from the one-shot container that made them, as the comment at
// the top of docker-compose.yml tells users to.
func (s *swarm) copySecrets() {
	s.t.Helper()
	dir := s.t.TempDir()
	s.docker("cp", s.container("secrets")+":/secrets/.", dir)
	d := secure.Dir(dir)
	tok, err := secure.LoadToken(d.AdminToken())
	if err != nil {
		s.t.Fatal(err)
	}
	s.creds = client.Credentials{Router: s.api, CA: d.CA(), Token: tok}
}

// clientConfig is the admin's client configuration.
func (s *swarm) clientConfig(timeout, retry503 time.Duration) client.Config {
	s.t.Helper()
	cfg, err := s.creds.Config()
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.Timeout, cfg.Retry503 = timeout, retry503
	return cfg
}

// down shows the last log lines of every container if the test failed,
// then removes the project's containers, network and volumes.
func (s *swarm) down() {
	if s.t.Failed() {
		if out, err := s.composeRun(cmdTimeout, "logs", "--no-color", "--tail", "30"); err == nil {
			s.t.Logf("--- last log lines of every container ---\n%s", out)
		}
	}
	if _, err := s.composeRun(upTimeout, "down", "--volumes", "--timeout", "3"); err != nil {
		s.t.Errorf("tear down: %v", err)
	}
}

// container returns the ID of a service's container. Node names are
// service names in docker-compose.yml.
func (s *swarm) container(service string) string {
	s.t.Helper()
	id, err := s.composeRun(cmdTimeout, "ps", "--quiet", service)
	if err != nil || id == "" {
		s.t.Fatalf("container of service %s: %q, %v", service, id, err)
	}
	return id
}

// ip is a container's address on the project's network.
func (s *swarm) ip(id string) string {
	s.t.Helper()
	return s.docker("inspect", "--format",
		fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", s.network), id)
}

// view asks the router for the cluster.
func (s *swarm) view() (client.Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.cl.Cluster(ctx)
}

// groupsReady reports whether each named group has a primary that
// answers and three voting members that are live and hold every chunk,
// and describes what it saw otherwise.
func groupsReady(cs client.Cluster, groups ...string) (bool, string) {
	var state []string
	ready := true
	for _, name := range groups {
		i := indexGroup(cs, name)
		if i < 0 {
			ready = false
			state = append(state, name+": not seen")
			continue
		}
		g := cs.Groups[i]
		var good []string
		for _, m := range g.MemberDetails {
			if m.Voter && m.Live && m.Synced {
				good = append(good, m.Name)
			}
		}
		if g.Primary == "" || g.Error != "" || len(good) != 3 {
			ready = false
		}
		state = append(state, fmt.Sprintf("%s: primary %q, live synced voters %v, error %q", name, g.Primary, good, g.Error))
	}
	return ready, strings.Join(state, "; ")
}

func indexGroup(cs client.Cluster, name string) int {
	for i, g := range cs.Groups {
		if g.Name == name {
			return i
		}
	}
	return -1
}

// member reports whether node is a live, synced voter of its group as the
// group's primary sees it, and alive in the router's gossip view.
func member(cs client.Cluster, node string) bool {
	alive := false
	for _, n := range cs.Nodes {
		alive = alive || (n.Name == node && n.Status == "alive")
	}
	m, ok := memberDetail(cs, node)
	return ok && alive && m.Voter && m.Live && m.Synced
}

// memberDetail is what node's group's primary reports of it, if any.
func memberDetail(cs client.Cluster, node string) (client.GroupMember, bool) {
	for _, g := range cs.Groups {
		for _, m := range g.MemberDetails {
			if m.Name == node {
				return m, true
			}
		}
	}
	return client.GroupMember{}, false
}

// gossipStatus is node's status in the router's gossip view.
func gossipStatus(cs client.Cluster, node string) string {
	for _, n := range cs.Nodes {
		if n.Name == node {
			return n.Status
		}
	}
	return "absent"
}
