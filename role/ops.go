package role

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shoal/api"
	"shoal/gossip"
)

// MetricsEndpoint is a process's metrics endpoint: the registry its
// routers and storage nodes register with, served at URL + "/metrics",
// and their readiness checks, served at URL + "/readyz".
type MetricsEndpoint struct {
	Registry *prometheus.Registry
	// URL is where it is served, e.g. http://127.0.0.1:8081.
	URL string

	mu     sync.Mutex
	checks map[string]readiness
}

// readiness reports whether a router or storage node is ready, and why.
type readiness func(context.Context) (bool, string)

// AddCheck adds name's readiness to /readyz until remove is called: a
// router, a storage node, a mount. ready says whether it is, and why.
func (m *MetricsEndpoint) AddCheck(name string, ready func(context.Context) (bool, string)) (remove func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checks == nil {
		m.checks = map[string]readiness{}
	}
	m.checks[name] = ready
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.checks, name)
	}
}

// serveReady answers /readyz: every check of the process, each with why;
// 200 when all are ready, 503 when one is not or there is none yet.
func (m *MetricsEndpoint) serveReady(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	names := slices.Sorted(maps.Keys(m.checks))
	checks := maps.Clone(m.checks)
	m.mu.Unlock()
	results := make([]api.HealthCheck, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ready, why := checks[name](r.Context())
			results[i] = api.HealthCheck{Name: name, Ready: ready, Why: why}
		})
	}
	wg.Wait()
	h := api.HealthOf(results)
	status := http.StatusOK
	if !h.Ready {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h)
}

// ServeMetrics serves, in plain HTTP on addr until ctx ends, the
// process's Prometheus metrics at /metrics (with the Go runtime's and the
// process's own), its liveness at /healthz and its readiness at /readyz
// (every router and storage node it runs ready; see api.Health). It is
// meant for a network only the operators' Prometheus reaches: it shows
// counts and states, never a file's name or content.
func ServeMetrics(ctx context.Context, addr string, log *slog.Logger) (*MetricsEndpoint, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(gossip.Events()...)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --metrics %s: %w (pass another address, or \"\" for none)", ErrBadConfig, addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	m := &MetricsEndpoint{Registry: reg, URL: "http://" + l.Addr().String()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", m.serveReady)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		WriteTimeout: 30 * time.Second, ErrorLog: httpErrorLog(log)}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("serving metrics", "url", m.URL+"/metrics")
	return m, nil
}
