package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"shoal/gossip"
	"shoal/replication"
	"shoal/router"
)

// RouterConfig configures a router process.
type RouterConfig struct {
	// HTTP is the address the API listens on.
	HTTP string
	// Advertise is the API address published in gossip (default HTTP).
	Advertise string
	// Name is the router's unique gossip name ("" derives one).
	Name string
	// ID is published for status displays; 0 derives one per process.
	ID     uint64
	Gossip gossip.Config
	Router router.Config
	Logger *slog.Logger
	// Ready, if set, is called once the API is listening.
	Ready func(addr string)
}

// RunRouter serves the HTTP API until ctx ends.
func RunRouter(ctx context.Context, cfg RouterConfig) error {
	if cfg.ID == 0 {
		cfg.ID = uint64(time.Now().UnixNano()>>11) | 1
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-router-%x", host, cfg.ID&0xffffff)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.HTTP
	}
	log := cfg.Logger.With("node", cfg.Name)
	l, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", cfg.HTTP, err)
	}
	gc := cfg.Gossip
	gc.Name, gc.Logger = cfg.Name, log
	gc.Tags = gossip.Tags{ID: cfg.ID, Role: gossip.RoleRouter, HTTP: cfg.Advertise}
	g, err := gossip.New(gc)
	if err != nil {
		l.Close()
		return err
	}
	if err := g.Start(ctx); err != nil {
		l.Close()
		return err
	}
	defer g.Close()
	tr := replication.NewTCPTransport()
	defer tr.Close()
	rc := cfg.Router
	rc.Members, rc.Transport, rc.Logger = g.Members, tr, log
	api, err := router.New(rc)
	if err != nil {
		l.Close()
		return err
	}
	defer api.Close() // after the HTTP server: waits for background read repairs
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("router started", "http", l.Addr().String(), "gossip", gc.BindAddr)
	if cfg.Ready != nil {
		cfg.Ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("router stopped")
	return nil
}
