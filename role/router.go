package role

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"shoal/gossip"
	"shoal/router"
	"shoal/secure"
	"shoal/wire"
)

// RouterConfig configures a router process.
type RouterConfig struct {
	// HTTP is the address the API listens on (default 0.0.0.0:8080).
	HTTP string
	// Advertise is the API address published in gossip (default HTTP).
	Advertise string
	// Name is the router's unique gossip name ("" derives one).
	Name string
	// ID is published for status displays; 0 derives one per process.
	ID     uint64
	Gossip gossip.Config
	Router router.Config
	// Security holds the router's certificate, the gossip key, the data
	// key and the first admin's token.
	Security Security
	Logger   *slog.Logger
	// Metrics, if set, is the process's metrics endpoint: the router
	// registers its Prometheus metrics there, each labelled with its name
	// (node="..."), and its readiness.
	Metrics *MetricsEndpoint
	// Ready, if set, is called once the API is listening; url is its
	// base URL (https:// unless Security.Insecure).
	Ready func(url string)
	// S3, when set, is the address the S3 API listens on (--s3), over
	// TLS like the HTTP API unless Security.Insecure; S3Config its
	// region and virtual-host domain.
	S3       string
	S3Config router.S3Config
	// S3Ready, if set, is called once the S3 API is listening, with its
	// endpoint URL.
	S3Ready func(url string)
}

// DefaultRouterConfig returns a RouterConfig with the tunables set.
func DefaultRouterConfig() RouterConfig {
	return RouterConfig{
		HTTP:   "0.0.0.0:8080",
		Gossip: gossip.DefaultConfig(),
		Router: router.DefaultConfig(),
		Logger: slog.Default(),
	}
}

// Validate reports the first invalid field, wrapped in ErrBadConfig. The
// gossip and router settings are checked when they are complete, as the
// router starts them.
func (c RouterConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("%w: --http %q: want HOST:PORT: %w", ErrBadConfig, c.HTTP, err)
	}
	if c.Logger == nil {
		return fmt.Errorf("%w: Logger is nil", ErrBadConfig)
	}
	if c.S3 != "" {
		if _, _, err := net.SplitHostPort(c.S3); err != nil {
			return fmt.Errorf("%w: --s3 %q: want HOST:PORT: %w", ErrBadConfig, c.S3, err)
		}
	}
	return nil
}

// RunRouter serves the HTTP API until ctx ends.
func RunRouter(ctx context.Context, cfg RouterConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
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
	sec, err := cfg.Security.load(secure.RoleRouter)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", cfg.HTTP, err)
	}
	gc := cfg.Gossip
	gc.Name, gc.Logger = cfg.Name, log
	gc.Tags = gossip.Tags{ID: cfg.ID, Role: gossip.RoleRouter, HTTP: cfg.Advertise}
	gc.Keys = sec.gossipKeys // none with --insecure
	sec.warn(ctx, log, "this router serves plain HTTP to anyone, without users or encryption at rest, and gossips in clear:")
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
	tr := wire.NewTCPTransport()
	defer tr.Close()
	tr.TLS, tr.AsRouter = sec.peerClient(), true
	rc := cfg.Router
	rc.Members, rc.NextChange, rc.Transport, rc.Logger = g.Members, g.NextChange, tr, log
	rc.Insecure, rc.AdminToken, rc.Keyring, rc.Sealer = sec.insecure, sec.adminToken, g.Keyring, sec.sealer
	if cfg.Metrics != nil {
		reg := nodeRegisterer(cfg.Metrics.Registry, cfg.Name)
		view := gossipCollector{g}
		if err := registerAll(reg, view); err != nil {
			l.Close()
			return err
		}
		defer reg.Unregister(view)
		rc.Metrics = reg
	}
	api, err := router.New(rc)
	if err != nil {
		l.Close()
		return err
	}
	if cfg.Metrics != nil {
		defer cfg.Metrics.AddCheck(cfg.Name, api.Ready)()
	}
	defer api.Close() // after the HTTP server: waits for background read repairs
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          httpErrorLog(log),
	}
	closeUnused(srv)
	scheme := "http"
	if srv.TLSConfig = sec.httpServer(); srv.TLSConfig != nil {
		scheme = "https"
	}
	url := scheme + "://" + l.Addr().String()
	errc := make(chan error, 2)
	servers := []*http.Server{srv}
	if cfg.S3 != "" {
		s3l, err := net.Listen("tcp", cfg.S3)
		if err != nil {
			l.Close()
			return fmt.Errorf("listen for S3 on %s: %w", cfg.S3, err)
		}
		s3srv := &http.Server{
			Handler:           api.S3(cfg.S3Config),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          httpErrorLog(log),
			TLSConfig:         srv.TLSConfig,
		}
		closeUnused(s3srv)
		servers = append(servers, s3srv)
		s3url := scheme + "://" + s3l.Addr().String()
		log.Info("S3 API started", "url", s3url)
		if cfg.S3Ready != nil {
			cfg.S3Ready(s3url)
		}
		go func() { errc <- fmt.Errorf("serve S3: %w", serve(s3srv, s3l)) }()
	}
	log.Info("router started", "url", url, "gossip", gc.BindAddr)
	if cfg.Ready != nil {
		cfg.Ready(url)
	}
	go api.Bootstrap(ctx)
	go func() { errc <- fmt.Errorf("serve HTTP: %w", serve(srv, l)) }()
	select {
	case err := <-errc:
		for _, s := range servers {
			s.Close()
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	log.Info("router stopped")
	return nil
}

// serve serves srv on l, over TLS when srv has a TLS configuration.
func serve(srv *http.Server, l net.Listener) error {
	if srv.TLSConfig != nil {
		// HTTP/1.1 only: each client connection is served on its own
		// core, large bodies are not held to one stream's window, and
		// TLS records go out in batches (secure.BatchWrites), which
		// HTTP/2's concurrent reader and writer would stall.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		return srv.ServeTLS(secure.BatchListener(l), "", "")
	}
	return srv.Serve(l)
}

// closeUnused makes srv's Shutdown close at once the connections on
// which no request has arrived yet. Shutdown closes idle connections at
// once, but counts a new one as idle only after 5 seconds, and an HTTP
// client's pool often holds one it dialled and then did not need: the
// router would take that long to stop, past a supervisor's grace.
// Nothing is in flight on such a connection.
func closeUnused(srv *http.Server) {
	var unused sync.Map // net.Conn → struct{}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			unused.Store(c, struct{}{})
		} else {
			unused.Delete(c)
		}
	}
	srv.RegisterOnShutdown(func() {
		unused.Range(func(c, _ any) bool {
			c.(net.Conn).Close()
			return true
		})
	})
}

// httpErrorLog is the HTTP server's log: its lines go to Debug, except a
// failed TLS handshake (a client without the CA, a foreign certificate,
// plain HTTP to the HTTPS port), logged at Warn once per address and hour.
func httpErrorLog(l *slog.Logger) *stdlog.Logger {
	return stdlog.New(&httpLogWriter{l: l}, "", 0)
}

type httpLogWriter struct {
	l        *slog.Logger
	refusals secure.Throttle
}

func (w *httpLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	// "http: TLS handshake error from 10.0.0.1:5678: ..."
	if rest, ok := strings.CutPrefix(line, "http: TLS handshake error from "); ok {
		addr, _, _ := strings.Cut(rest, ": ")
		host, _, _ := net.SplitHostPort(addr)
		if w.refusals.Allow(host, time.Now()) {
			w.l.Warn("refused a client in the TLS handshake; further refusals of this address are not logged for an hour", "remote", addr, "err", line)
		}
		return len(p), nil
	}
	w.l.Debug(line)
	return len(p), nil
}
