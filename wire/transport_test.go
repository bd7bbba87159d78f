package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/meta"
)

// transportImpl is a Transport the conformance suite runs on: setup
// serves h at addr and returns a transport that reaches it, and an address
// where nothing answers.
type transportImpl struct {
	name  string
	setup func(t *testing.T, h Handler) (tr Transport, addr, nobody string)
}

// transports are the one nodes use, over a socket and to a server of the
// same process, and the one protocol tests stand in for it with.
var transports = []transportImpl{
	{"tcp", func(t *testing.T, h Handler) (Transport, string, string) {
		tr := NewTCPTransport()
		t.Cleanup(func() { tr.Close() })
		return tr, startServer(t, h, quietLogger()), closedPort(t)
	}},
	{"local", func(t *testing.T, h Handler) (Transport, string, string) {
		// The server's Addr is one where nothing listens: only a call
		// answered in the process reaches it.
		tr := NewTCPTransport()
		t.Cleanup(func() { tr.Close() })
		addr := closedPort(t)
		serveAt(t, &Server{Handler: h, Logger: quietLogger(), Addr: addr, HandleTimeout: 5 * time.Second})
		return tr, addr, closedPort(t)
	}},
	{"mem", func(t *testing.T, h Handler) (Transport, string, string) {
		n := NewMemNetwork(1)
		n.Register("n1", h)
		return n.Transport("caller"), "n1", "n2"
	}},
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestTransports runs the behaviour callers rely on against every
// Transport.
func TestTransports(t *testing.T) {
	for _, impl := range transports {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("messages arrive and return whole", func(t *testing.T) { testRoundTrip(t, impl) })
			t.Run("errors keep their sentinel and leader", func(t *testing.T) { testRemoteErrors(t, impl) })
			t.Run("calls end with their context", func(t *testing.T) { testCallContext(t, impl) })
			t.Run("nobody at the address", func(t *testing.T) { testUnreachable(t, impl) })
			t.Run("concurrent calls get their own answers", func(t *testing.T) { testConcurrentCalls(t, impl) })
			t.Run("a chunk's memory is given back once it is sent", func(t *testing.T) { testReleased(t, impl) })
		})
	}
}

// testRoundTrip sends every message and gets it back from a handler that
// answers with what it received.
func testRoundTrip(t *testing.T, impl transportImpl) {
	tr, addr, _ := impl.setup(t, HandlerFunc(func(ctx context.Context, req Message) (Message, error) { return req, nil }))
	for _, m := range sampleMessages() {
		if _, ok := m.(*ErrorMsg); ok {
			continue // an answer of this type is an error: see testRemoteErrors
		}
		ctx, cancel := ctxT(2 * time.Second)
		got, err := tr.Call(ctx, addr, m)
		cancel()
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T came back changed:\n got %+v\nwant %+v", m, got, m)
		}
	}
}

// testRemoteErrors: a handler's error reaches the caller as a
// *RemoteError with the handler's message, matching the sentinel it
// wrapped, and with the leader hint it carried.
func testRemoteErrors(t *testing.T, impl transportImpl) {
	var mu sync.Mutex
	var next error
	tr, addr, _ := impl.setup(t, HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		mu.Lock()
		defer mu.Unlock()
		return nil, next
	}))
	call := func(err error) error {
		mu.Lock()
		next = err
		mu.Unlock()
		ctx, cancel := ctxT(2 * time.Second)
		defer cancel()
		_, got := tr.Call(ctx, addr, &OKMsg{})
		return got
	}
	for code, sentinel := range wireErrors {
		err := call(fmt.Errorf("node 3: %w", sentinel))
		var re *RemoteError
		if !errors.Is(err, sentinel) || !errors.As(err, &re) || re.Error() != "node 3: "+sentinel.Error() {
			t.Errorf("%s: caller got %v, want a RemoteError matching %v", code, err, sentinel)
		}
	}
	var re *RemoteError
	err := call(WithLeader(fmt.Errorf("n2: %w", ErrNotPrimary), "n3:7000"))
	if !errors.Is(err, ErrNotPrimary) || !errors.As(err, &re) || re.Leader != "n3:7000" {
		t.Errorf("an error with a leader hint: caller got %v (%+v), want ErrNotPrimary with leader n3:7000", err, re)
	}
	err = call(errors.New("disk on fire"))
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "disk on fire") || errors.Is(err, ErrNotPrimary) {
		t.Errorf("an error of no known kind: caller got %v, want a RemoteError saying what it was", err)
	}
}

// testCallContext: a call whose handler never answers ends when the
// caller's context does, with the context's error.
func testCallContext(t *testing.T, impl transportImpl) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tr, addr, _ := impl.setup(t, HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return &OKMsg{}, nil
	}))
	const deadline = 100 * time.Millisecond
	ctx, cancel := ctxT(deadline)
	defer cancel()
	start := time.Now()
	_, err := tr.Call(ctx, addr, &GetChunk{})
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > deadline+time.Second {
		t.Fatalf("call to a handler that never answers: %v after %v, want DeadlineExceeded near %v", err, took, deadline)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(deadline, cancel2)
	start = time.Now()
	_, err = tr.Call(ctx2, addr, &GetChunk{})
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > deadline+time.Second {
		t.Fatalf("cancelled call: %v after %v, want context.Canceled promptly", err, took)
	}
}

// testUnreachable: a call to an address nothing serves fails with
// ErrUnreachable, which callers take as proof it was not carried out.
func testUnreachable(t *testing.T, impl transportImpl) {
	tr, _, nobody := impl.setup(t, HandlerFunc(func(ctx context.Context, req Message) (Message, error) { return &OKMsg{}, nil }))
	ctx, cancel := ctxT(2 * time.Second)
	defer cancel()
	if _, err := tr.Call(ctx, nobody, &OKMsg{}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to %s, where nothing listens: %v, want ErrUnreachable", nobody, err)
	}
}

// testConcurrentCalls: calls in flight at once each get the answer to
// their own request.
func testConcurrentCalls(t *testing.T, impl transportImpl) {
	tr, addr, _ := impl.setup(t, echoHandler())
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 10 {
				h := meta.HashOf([]byte{byte(i), byte(j)})
				ctx, cancel := ctxT(2 * time.Second)
				got, err := Call[*ChunkMsg](ctx, tr, addr, &GetChunk{Hash: h})
				cancel()
				if err != nil || string(got.Data) != string(h[:]) {
					t.Errorf("call %d.%d: %v, %v; want the answer to its own request", i, j, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// testReleased answers with a chunk whose memory the handler lends: the
// caller gets the content whole, and the handler gets its memory back
// once, after it was sent, to reuse (here: to scribble over).
func testReleased(t *testing.T, impl transportImpl) {
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i * 13)
	}
	var releases sync.WaitGroup
	var count atomic.Int32
	tr, addr, _ := impl.setup(t, HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		lent := append([]byte(nil), want...)
		releases.Add(1)
		return &ChunkMsg{Data: lent, Release: func() {
			defer releases.Done()
			count.Add(1)
			clear(lent)
		}}, nil
	}))
	for range 3 {
		c, err := Call[*ChunkMsg](context.Background(), tr, addr, &GetChunk{Hash: meta.HashOf(want), CallerChecks: true})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Data, want) {
			t.Fatal("the chunk arrived changed: its memory was given back before it was sent")
		}
	}
	done := make(chan struct{})
	go func() { releases.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for the handler's memory to be given back after each of 3 answers: %d of 3", count.Load())
	}
	if n := count.Load(); n != 3 {
		t.Fatalf("memory given back %d times for 3 answers", n)
	}
}
