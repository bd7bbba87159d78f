package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A router that reads a change and dies before answering may have carried
// it out. net/http then sends the request again on a new connection (it
// carries an Idempotency-Key); when that cannot connect, the error must
// not say the router was unreachable, which would mean "not applied".
func TestRouterDyingAfterTheRequestIsNotUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		r := bufio.NewReader(c)
		// First request: answer, keeping the connection for reuse.
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		// Second: read it whole, then die without answering.
		if req, err = http.ReadRequest(r); err == nil {
			io.Copy(io.Discard, req.Body)
		}
		l.Close()
		c.Close()
	}()
	cl, err := New(Config{Router: "http://" + l.Addr().String(), Timeout: 5 * time.Second, Retry503: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.Delete(ctx, "/a", false); err != nil {
		t.Fatalf("first request: %v", err)
	}
	err = cl.Delete(ctx, "/b", false)
	if err == nil {
		t.Fatal("second request succeeded against a dead router")
	}
	if errors.Is(err, ErrUnreachable) {
		t.Fatalf("error %v says unreachable, but the router had read the request", err)
	}
}
