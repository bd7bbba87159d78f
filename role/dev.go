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

// DevConfig configures `shoal dev`: one router and one group of a primary
// and two replicas in this process, on 127.0.0.1.
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
	errs := make(chan error, 4)
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
	roles := []gossip.Role{gossip.RolePrimary, gossip.RoleReplica, gossip.RoleReplica}
	for i, r := range roles {
		gc := gossip.DefaultConfig()
		gc.BindAddr, gc.Join = gossipAddr(i), seeds
		nc := NodeConfig{
			Start:       r,
			Group:       "g1",
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
		fmt.Fprintf(cfg.Out, `Shoal dev cluster: 1 router, group g1 = 1 primary + 2 replicas (data in %s)
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
