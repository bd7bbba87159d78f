package router

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"shoal/api"
	"shoal/wire"
)

// readyTimeout bounds the read a readiness check sends the meta group.
const readyTimeout = 2 * time.Second

// Ready reports whether the router can serve: the meta group's primary
// answered a linearizable read within readyTimeout (names can be looked
// up and changed), and some group has a primary and room (content can
// be written). Why says what was found either way.
func (s *Server) Ready(ctx context.Context) (ready bool, why string) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	start := time.Now()
	if _, err := s.metaRead(ctx, &wire.Read{Kind: wire.ReadLookup, Path: "/"}); err != nil {
		return false, fmt.Sprintf("the meta group %s did not answer a read within %v: %v", s.be.metaGroup(), readyTimeout, err)
	}
	took := time.Since(start).Round(time.Microsecond)
	var writable, without, full []string
	for _, g := range GroupSpaces(s.cfg.Members()) {
		switch {
		case g.Primary == "":
			without = append(without, g.Name)
		case g.Free <= 0:
			full = append(full, g.Name)
		default:
			writable = append(writable, g.Name)
		}
	}
	if len(writable) == 0 {
		return false, fmt.Sprintf("the meta group answered a read in %v, but no group can take writes (without a primary: %s; full: %s)",
			took, orNone(without), orNone(full))
	}
	return true, fmt.Sprintf("the meta group answered a read in %v; groups taking writes: %s", took, strings.Join(writable, ", "))
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// serveReady answers GET /readyz: 200 when the router is ready, 503 when
// not, with an api.Health saying why.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ready, why := s.Ready(r.Context())
	h := api.HealthOf([]api.HealthCheck{{Name: "router", Ready: ready, Why: why}})
	status := http.StatusOK
	if !h.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}
