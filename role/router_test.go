package role

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// A router stopping does not wait for a connection on which no request
// came (one a client's pool dialled and did not use): net/http alone
// would wait 5 seconds before closing it.
func TestShutdownClosesUnusedConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	closeUnused(srv)
	seen := make(chan struct{}, 1)
	track := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		track(c, s)
		if s == http.StateNew {
			seen <- struct{}{}
		}
	}
	go srv.Serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select { // the server has the connection; no byte of a request comes
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not report the connection within 5s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Shutdown took %v with one unused connection open; want it closed at once", took)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the unused connection is still open after Shutdown")
	}
}
