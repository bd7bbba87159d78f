package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"shoal/harness"
	"shoal/meta"
)

// The local cluster: one group of three storage nodes, the meta group
// (its processes keep the default --meta-group).
const (
	localGroup = meta.DefaultMetaGroup
	localNodes = 3
	stopGrace  = 5 * time.Second // from SIGTERM to SIGKILL
)

// localCluster is a cluster of shoal processes on 127.0.0.1, each with
// its data on disk and its log in the cluster's directory, Dir.
type localCluster struct {
	*harness.Cluster
	groups []harness.Group
	remove bool // Dir is ours to remove when done
	log    *slog.Logger
	stderr io.Writer // told where the data is when it is kept
	// mountProc serves mountDir for the mount workload (mount.go).
	mountProc *harness.Proc
	mountDir  string
	// s3 is the router's S3 endpoint (https://127.0.0.1:PORT).
	s3 string
}

// startLocal starts the processes of a local cluster; waitReady says
// when it can serve.
func startLocal(ctx context.Context, cfg Config, log *slog.Logger) (*localCluster, error) {
	return startLocalGroups(ctx, cfg, log, 1)
}

// startLocalGroups starts a local cluster with groups groups of three
// storage processes each (the first is the meta group; every group
// stores chunks).
func startLocalGroups(ctx context.Context, cfg Config, log *slog.Logger, groups int) (*localCluster, error) {
	gs := []harness.Group{{Name: localGroup, Size: localNodes}}
	for i := 2; i <= groups; i++ {
		gs = append(gs, harness.Group{Name: fmt.Sprintf("g%d", i), Size: localNodes})
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = osExecutable(); err != nil {
			return nil, err
		}
	}
	parent := cfg.DataDir
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("local cluster: data directory: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "shoal-bench-")
	if err != nil {
		return nil, fmt.Errorf("local cluster: data directory: %w", err)
	}
	spec := harness.Spec{Binary: bin, Dir: dir, Insecure: cfg.Insecure, Logger: log, Groups: gs}
	if !cfg.NoMetrics {
		// As a cluster runs in production: every process collects its
		// metrics, each on a port of its own that nothing scrapes here.
		spec.NodeFlags = []string{"--metrics", "127.0.0.1:0"}
		spec.RouterFlags = spec.NodeFlags
	}
	// The router serves S3 too, for the s3 workload.
	s3Port, err := freeLocalPort()
	if err != nil {
		return nil, fmt.Errorf("local cluster: a port for S3: %w", err)
	}
	s3Addr := fmt.Sprintf("127.0.0.1:%d", s3Port)
	spec.RouterFlags = append(slices.Clone(spec.RouterFlags), "--s3", s3Addr)
	hc, err := harness.Start(ctx, spec)
	if err != nil {
		fmt.Fprintf(cfg.Stderr, "shoal bench: the local cluster's data and logs are in %s (remove it when done)\n", dir)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	log.Debug("local cluster started", "dir", dir, "api", hc.API)
	scheme := "https://"
	if cfg.Insecure {
		scheme = "http://"
	}
	return &localCluster{Cluster: hc, groups: gs, remove: !cfg.Keep, log: log, stderr: cfg.Stderr, s3: scheme + s3Addr}, nil
}

// pause stops every process of the cluster (SIGSTOP) and resume lets
// them go on (SIGCONT), so that a cluster kept for later takes no CPU
// while another one is measured.
func (c *localCluster) pause() {
	for _, p := range c.Servers() {
		_ = p.Pause()
	}
}

func (c *localCluster) resume() {
	for _, p := range c.Servers() {
		_ = p.Resume()
	}
}

// waitReady waits up to limit until every group has a primary and every
// member alive and in sync.
func (c *localCluster) waitReady(ctx context.Context, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, g := range c.groups {
		if _, err := c.WaitGroup(wctx, g.Name, g.Size, ""); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %v; see the logs in %s", ErrNotReady, err, c.Dir)
		}
	}
	return nil
}

// beside starts a second local cluster with cfg and groups groups next
// to e's, for a workload that compares the two (see sideBySide), and
// returns its env and what stops it.
func (e *env) beside(ctx context.Context, cfg Config, groups int) (x *env, stop func(failed bool) error, err error) {
	x = &env{cfg: cfg, prog: e.prog, log: e.log, root: e.root}
	if x.local, err = startLocalGroups(ctx, cfg, e.log, groups); err != nil {
		return nil, nil, err
	}
	stop = func(failed bool) error {
		e.local.resume()
		return x.local.close(failed)
	}
	x.api, x.creds = x.local.API, x.local.Creds
	if x.cl, err = x.client(time.Minute, 0); err == nil {
		x.fs = shoalFS{x.cl}
		err = x.local.waitReady(ctx, 90*time.Second)
	}
	if err != nil {
		stop(ctx.Err() == nil)
		return nil, nil, err
	}
	return x, stop, nil
}

// sideBySide measures a and b in one rep, in an order that alternates
// from rep to rep (so that neither always runs on a machine the other
// just warmed or tired), each while the other is stopped (SIGSTOP), so
// that its background work (gossip, heartbeats, repair rounds) takes no
// CPU from the one measured. name says which is which in errors.
func sideBySide(ctx context.Context, rep int, a, b *env, name func(*env) string, measure func(x *env) error) error {
	order := []*env{b, a}
	if rep%2 == 1 {
		order = []*env{a, b}
	}
	for i, x := range order {
		order[1-i].local.pause()
		x.local.resume()
		if err := x.local.waitReady(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("%s after the other ran: %w", name(x), err)
		}
		if err := measure(x); err != nil {
			return fmt.Errorf("%s: %w", name(x), err)
		}
	}
	return nil
}

// close stops every process: SIGTERM, then SIGKILL for any still running
// after stopGrace. It removes the cluster's directory unless told to keep
// it or the run failed, in which case it says where the logs are.
func (c *localCluster) close(failed bool) error {
	c.unmount()
	if err := c.Stop(stopGrace); err != nil {
		c.log.Warn("processes did not stop in time; killed them", "err", err)
	}
	if failed || !c.remove {
		fmt.Fprintf(c.stderr, "shoal bench: the local cluster's data and logs are in %s (remove it when done)\n", c.Dir)
		return nil
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove the local cluster's data %s: %w", c.Dir, err)
	}
	return nil
}

// freeLocalPort returns a TCP port of 127.0.0.1 free a moment ago.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
