package wire

// Calls to a server of the same process (local.go); the conformance suite
// in transport_test.go runs them as the "local" transport too.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"shoal/harness"
)

// serveAt serves s on a fresh 127.0.0.1 port until the test ends, and
// returns a function that stops it and waits for Serve to return.
func serveAt(t *testing.T, s *Server) (stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	// Serve registers s before it accepts: wait until it has.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := harness.WaitFor(wctx, "the server to take calls at "+s.Addr, func() bool { return localServer(s.Addr) == s }); err != nil {
		t.Fatal(err)
	}
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestLocalCallsAreCheckedAsARouters: a server that checks its peers'
// certificates refuses a router's request for what only storage nodes
// may ask, from a router in its own process as from one across the
// network, and takes a storage node's.
func TestLocalCallsAreCheckedAsARouters(t *testing.T) {
	addr := closedPort(t)
	serveAt(t, &Server{Handler: echoHandler(), Logger: quietLogger(), Addr: addr, TLS: &tls.Config{}})
	router, node := NewTCPTransport(), NewTCPTransport()
	router.AsRouter = true
	defer router.Close()
	defer node.Close()
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	if _, err := router.Call(ctx, addr, &Append{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a router's Append: %v, want ErrForbidden", err)
	}
	if _, err := Call[*ChunkMsg](ctx, router, addr, &GetChunk{}); err != nil {
		t.Errorf("a router's GetChunk: %v", err)
	}
	if _, err := node.Call(ctx, addr, &Append{}); err != nil {
		t.Errorf("a storage node's Append: %v", err)
	}
}

// TestLocalHandlerHasACopy: the handler gets a request of its own and the
// caller an answer of its own, as across a socket: neither changes what
// the other holds.
func TestLocalHandlerHasACopy(t *testing.T) {
	addr := closedPort(t)
	sent := &WriteChunk{Group: "g1", Data: make([]byte, 64<<10)}
	answer := &ChunkMsg{Data: make([]byte, 64<<10)}
	serveAt(t, &Server{Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		w := req.(*WriteChunk)
		if &w.Data[0] == &sent.Data[0] {
			t.Error("the handler got the caller's chunk, not a copy")
		}
		clear(w.Data)
		w.Group = "changed"
		return answer, nil
	}), Logger: quietLogger(), Addr: addr})
	for i := range sent.Data {
		sent.Data[i] = byte(i)
	}
	tr := NewTCPTransport()
	defer tr.Close()
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	got, err := Call[*ChunkMsg](ctx, tr, addr, sent)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Group != "g1" || sent.Data[1] != 1 || sent.Data[len(sent.Data)-1] != byte(len(sent.Data)-1) {
		t.Error("the handler's changes reached the caller's request")
	}
	if &got.Data[0] == &answer.Data[0] {
		t.Error("the caller got the handler's answer, not a copy")
	}
}

// TestLocalHandlerOutlivesItsCaller: a caller that gives up gets its
// context's error at once, and the handler goes on under the server's
// context, as a peer's would: only the server's end or its handling
// timeout ends it.
func TestLocalHandlerOutlivesItsCaller(t *testing.T) {
	addr := closedPort(t)
	started, release := make(chan struct{}), make(chan struct{})
	handled := make(chan error, 1)
	serveAt(t, &Server{Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		close(started)
		<-release
		handled <- ctx.Err()
		return &OKMsg{}, nil
	}), Logger: quietLogger(), Addr: addr, HandleTimeout: time.Minute})
	tr := NewTCPTransport()
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	start := time.Now()
	if _, err := tr.Call(ctx, addr, &OKMsg{}); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("a call cancelled while handled: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
	close(release)
	select {
	case err := <-handled:
		if err != nil {
			t.Errorf("the handler's context ended with its caller's: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waited 5s for the handler to finish after its caller gave up")
	}
}

// TestLocalCallsEndWithTheServer: once the server has stopped, a call to
// its address is a call across the network, and where nothing listens it
// fails as unreachable; the server waited for the calls it was handling.
func TestLocalCallsEndWithTheServer(t *testing.T) {
	addr := closedPort(t)
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	stop := serveAt(t, &Server{Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		if _, ok := req.(*GetChunk); ok {
			close(started)
			<-release
			finished.Store(true)
		}
		return &OKMsg{}, nil
	}), Logger: quietLogger(), Addr: addr})
	tr := NewTCPTransport()
	defer tr.Close()
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	if _, err := tr.Call(ctx, addr, &OKMsg{}); err != nil {
		t.Fatalf("a call while it serves: %v", err)
	}
	inFlight := make(chan error, 1)
	go func() { _, err := tr.Call(ctx, addr, &GetChunk{}); inFlight <- err }()
	<-started
	// Stopping must wait for the handler, which ends a little later.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	stop()
	if !finished.Load() {
		t.Error("Serve returned before the call it was handling had finished")
	}
	if err := <-inFlight; err != nil {
		t.Errorf("the call in flight as the server stopped: %v, want its answer", err)
	}
	if _, err := tr.Call(ctx, addr, &OKMsg{}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a call after the server stopped: %v, want ErrUnreachable", err)
	}
}

// TestLocalCallOutOfTimeSendsNothing: a caller whose context has ended
// gets its error and the handler never sees the request, as a socket's
// caller would send nothing.
func TestLocalCallOutOfTimeSendsNothing(t *testing.T) {
	addr := closedPort(t)
	var handled atomic.Int32
	serveAt(t, &Server{Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		handled.Add(1)
		return &OKMsg{}, nil
	}), Logger: quietLogger(), Addr: addr})
	tr := NewTCPTransport()
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Call(ctx, addr, &OKMsg{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a call with its context ended: %v, want context.Canceled", err)
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("the handler got %d requests from a caller out of time, want none", n)
	}
}

// TestLocalServerRestarted: a server started at the address of one that
// is still stopping takes the calls to it, and keeps them once the old
// one has stopped.
func TestLocalServerRestarted(t *testing.T) {
	addr := closedPort(t)
	answer := func(name string) Handler {
		return HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
			return nil, errors.New(name)
		})
	}
	stopOld := serveAt(t, &Server{Handler: answer("old"), Logger: quietLogger(), Addr: addr})
	serveAt(t, &Server{Handler: answer("new"), Logger: quietLogger(), Addr: addr})
	stopOld()
	tr := NewTCPTransport()
	defer tr.Close()
	ctx, cancel := ctxT(5 * time.Second)
	defer cancel()
	if _, err := tr.Call(ctx, addr, &OKMsg{}); err == nil || err.Error() != "new" {
		t.Fatalf("a call after the restart: %v, want the new server's answer", err)
	}
}
