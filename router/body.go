package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// guardBody bounds how long r's body may stall, with the connection's read
// deadline: BodyTimeout from now, moved BodyTimeout ahead of every read of
// the body, and once more by the returned function, to be called when the
// handler returns. That last one and the first bound net/http's own reads:
// before it answers a request whose body the handler left unread, it
// reads up to 256 KiB of the rest, with no deadline of its own. A body
// read that times out fails with ErrBodyTimeout.
//
// Where the ResponseWriter cannot set deadlines (httptest), nothing is
// bounded.
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) (done func()) {
	rc := http.NewResponseController(w)
	g := &stallGuard{body: r.Body, rc: rc, limit: s.cfg.BodyTimeout}
	rc.SetReadDeadline(time.Now().Add(g.limit))
	r.Body = g
	return func() {
		// After the end of the body net/http reads the connection itself
		// (to see the client go) and owns its deadline.
		if !g.ended {
			rc.SetReadDeadline(time.Now().Add(g.limit))
		}
	}
}

// stallGuard is a request body that moves the read deadline before each
// read.
type stallGuard struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	limit time.Duration
	ended bool // a read returned an error (io.EOF included)
}

func (g *stallGuard) Read(p []byte) (int, error) {
	g.rc.SetReadDeadline(time.Now().Add(g.limit))
	n, err := g.body.Read(p)
	if err != nil {
		g.ended = true
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: no byte arrived for %v (the router's --body-timeout): send the body without long pauses: %w",
			ErrBodyTimeout, g.limit, err)
	}
	return n, err
}

func (g *stallGuard) Close() error { return g.body.Close() }
