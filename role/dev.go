package role

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"shoal/gossip"
	"shoal/replication"
	"shoal/router"
)

// DevConfig configures `shoal dev`: in this process, on 127.0.0.1, one
// router, groups g1 (the meta group) and g2 of a primary and two replicas
// each, and two standbys.
type DevConfig struct {
	// HTTP is the router's API address.
	HTTP string
	// DataDir holds one subdirectory per node.
	DataDir string
	// PortBase is the first of the ports the nodes use: node i listens
	// for peers on PortBase+i and gossips on PortBase+10+i.
	PortBase int
	Logger   *slog.Logger
	// Out receives the banner that says where the cluster listens.
	Out io.Writer
}

// RunDev runs a whole local cluster until ctx ends.
func RunDev(ctx context.Context, cfg DevConfig) error {
	host := "127.0.0.1"
	gossipAddr := func(i int) string { return net.JoinHostPort(host, strconv.Itoa(cfg.PortBase+10+i)) }
	seeds := []string{gossipAddr(0)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	type devNode struct {
		role  gossip.Role
		group string
	}
	nodes := []devNode{
		{gossip.RolePrimary, "g1"}, {gossip.RoleReplica, "g1"}, {gossip.RoleReplica, "g1"},
		{gossip.RolePrimary, "g2"}, {gossip.RoleReplica, "g2"}, {gossip.RoleReplica, "g2"},
		{gossip.RoleStandby, ""}, {gossip.RoleStandby, ""},
	}
	for i, d := range nodes {
		gc := gossip.DefaultConfig()
		gc.BindAddr, gc.Join = gossipAddr(i), seeds
		nc := NodeConfig{
			Start:       d.role,
			Group:       d.group,
			DataDir:     filepath.Join(cfg.DataDir, fmt.Sprintf("node%d", i)),
			Listen:      net.JoinHostPort(host, strconv.Itoa(cfg.PortBase+i)),
			Name:        fmt.Sprintf("node%d", i),
			Gossip:      gc,
			Replication: replication.DefaultConfig(),
			Logger:      cfg.Logger,
		}
		run(func() error { return RunNode(ctx, nc) })
	}
	gc := gossip.DefaultConfig()
	gc.BindAddr, gc.Join = gossipAddr(9), seeds
	ready := make(chan string, 1)
	rc := RouterConfig{HTTP: cfg.HTTP, Name: "router", Gossip: gc, Router: router.DefaultConfig(), Logger: cfg.Logger,
		Ready: func(a string) { ready <- a }}
	run(func() error { return RunRouter(ctx, rc) })
	select {
	case a := <-ready:
		fmt.Fprintf(cfg.Out, `Shoal dev cluster: 1 router, groups g1 (meta) and g2 of 3 nodes each, 2 standbys (data in %s)
  API:     http://%s
  Try:     shoal put ./README.md /docs/readme.md && shoal ls /docs && shoal status
  Or curl: curl -T README.md http://%s/v1/fs/docs/readme.md
Press Ctrl-C to stop; starting again finds the data again.
`, cfg.DataDir, a, a)
	case <-ctx.Done():
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
