package wire

// The caller's side of the TCP transport: deadlines, answer types, and the
// pool of connections to a peer that died or restarted.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawListener accepts connections on 127.0.0.1 until the test ends and
// hands each to serve, which speaks to it byte by byte, no Server
// between; it returns the address.
func rawListener(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// silentListener accepts connections and reads from them, never answering.
func silentListener(t *testing.T) string {
	return rawListener(t, func(c net.Conn) { io.Copy(io.Discard, c) })
}

func TestTCPCallHonoursContext(t *testing.T) {
	addr := silentListener(t)
	tr := NewTCPTransport()
	defer tr.Close()

	const deadline = 150 * time.Millisecond
	ctx, cancel := ctxT(deadline)
	defer cancel()
	start := time.Now()
	_, err := tr.Call(ctx, addr, &GetChunk{})
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > deadline+time.Second {
		t.Fatalf("call to a silent server: err %v after %v, want DeadlineExceeded near %v", err, took, deadline)
	}

	// A cancel without a deadline interrupts the blocked read too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start = time.Now()
	_, err = tr.Call(ctx2, addr, &GetChunk{})
	if took := time.Since(start); !errors.Is(err, context.Canceled) || took > time.Second+100*time.Millisecond {
		t.Fatalf("cancelled call: err %v after %v, want context.Canceled promptly", err, took)
	}
}

// TestCallChecksTheAnswerType: Call returns the answer as the type asked
// for, and an answer of another type as ErrBadMessage naming both.
func TestCallChecksTheAnswerType(t *testing.T) {
	net := NewMemNetwork(1)
	net.Register("n1", HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		if _, ok := req.(*Propose); ok {
			return nil, WithLeader(ErrNotPrimary, "n2")
		}
		return &OKMsg{}, nil
	}))
	tr := net.Transport("r")
	ctx, cancel := ctxT(2 * time.Second)
	defer cancel()
	if _, err := Call[*OKMsg](ctx, tr, "n1", &GetChunk{}); err != nil {
		t.Fatalf("Call for the type answered: %v", err)
	}
	_, err := Call[*ChunkMsg](ctx, tr, "n1", &GetChunk{})
	if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "*wire.ChunkMsg") {
		t.Fatalf("Call for another type: %v, want ErrBadMessage naming *wire.ChunkMsg", err)
	}
	var re *RemoteError
	if _, err := Call[*ProposeResp](ctx, tr, "n1", &Propose{}); !errors.Is(err, ErrNotPrimary) || !errors.As(err, &re) || re.Leader != "n2" {
		t.Fatalf("a handler's error through Call: %v, want ErrNotPrimary with the leader hint", err)
	}
	if _, err := As[*OKMsg](nil, ErrNoQuorum); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("As passes the call's error on: got %v", err)
	}
	if _, err := As[*OKMsg](nil, nil); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("As of no answer: %v, want ErrBadMessage", err)
	}
}

// After a peer restarts, the connections pooled for its old process are
// all dead: one failed call must drop them, so the next call dials the new
// process instead of failing on the next stale connection.
func TestTCPPoolDroppedWhenPeerRestarts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	const conns = 8
	var arrived sync.WaitGroup
	arrived.Add(conns)
	release := make(chan struct{})
	first := &Server{Logger: quietLogger(), IdleTimeout: 5 * time.Second, HandleTimeout: 5 * time.Second,
		Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
			arrived.Done()
			<-release
			return &OKMsg{}, nil
		})}
	ctx, stopFirst := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Serve(ctx, l) }()

	tr := NewTCPTransport()
	defer tr.Close()
	// Concurrent calls that all wait in the handler open one connection
	// each; once answered, all of them are pooled.
	var calls sync.WaitGroup
	for range conns {
		calls.Add(1)
		go func() {
			defer calls.Done()
			cctx, cancel := ctxT(5 * time.Second)
			defer cancel()
			if _, err := tr.Call(cctx, addr, &OKMsg{}); err != nil {
				t.Errorf("call before the restart: %v", err)
			}
		}()
	}
	arrived.Wait()
	close(release)
	calls.Wait()
	if n := len(tr.idle[addr]); n != conns {
		t.Fatalf("%d connections pooled after %d concurrent calls, want %d", n, conns, conns)
	}

	stopFirst() // closes every connection the first server had
	<-done
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	second := &Server{Logger: quietLogger(), IdleTimeout: 5 * time.Second, HandleTimeout: 5 * time.Second,
		Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) { return &OKMsg{}, nil })}
	ctx2, stopSecond := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- second.Serve(ctx2, l2) }()
	defer func() { stopSecond(); <-done2 }()

	failed := 0
	for {
		cctx, cancel := ctxT(5 * time.Second)
		_, err := tr.Call(cctx, addr, &OKMsg{})
		cancel()
		if err == nil {
			break
		}
		if failed++; failed > conns {
			t.Fatalf("%d calls failed after the peer restarted (last: %v)", failed, err)
		}
	}
	if failed > 1 {
		t.Fatalf("%d calls failed on stale pooled connections after the peer restarted, want at most 1", failed)
	}
}

// TestBytesPastAnAnswerAreNoAnswer: a peer that sends more than the answer
// (a second frame in the same write) must not have the extra taken for
// the answer to the next call: a connection is not pooled with bytes read
// past the answer. (Bytes that come later are not seen; a peer that sends
// them misbehaves in a way no check at pooling time can catch.)
func TestBytesPastAnAnswerAreNoAnswer(t *testing.T) {
	var fp framePool
	both := func(m ...Message) []byte {
		var out bytes.Buffer
		for _, m := range m {
			f, err := fp.encode(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.writeTo(&out); err != nil {
				t.Fatal(err)
			}
			fp.put(f)
		}
		return out.Bytes()
	}(&OKMsg{}, &ChunkMsg{Data: []byte("stale")})
	addr := rawListener(t, func(c net.Conn) {
		for {
			if _, err := readFrame(c); err != nil {
				return
			}
			c.Write(both) // the answer and a frame nobody asked for, in one write
		}
	})
	tr := NewTCPTransport()
	defer tr.Close()
	for i := range 3 {
		ctx, cancel := ctxT(5 * time.Second)
		resp, err := tr.Call(ctx, addr, &GetChunk{})
		cancel()
		if _, ok := resp.(*OKMsg); err != nil || !ok {
			t.Fatalf("call %d: %T, %v; want the OKMsg the peer sent first", i, resp, err)
		}
	}
}

// BenchmarkTCPCall measures calls over loopback TCP, each answered with
// 1 KiB (the size of a small file's read): what a call costs the caller
// and the server in system calls, encoding and scheduling. "16" is 8
// callers per CPU at once (16 on two cores), "1" one caller, whose time
// per call is the latency of a call. Compare builds with go test -bench
// TCPCall -count 6.
func BenchmarkTCPCall(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1024)
	s := &Server{Logger: quietLogger(), Handler: HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		return &ChunkMsg{Data: data}, nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	tr := NewTCPTransport()
	defer tr.Close()
	addr := l.Addr().String()
	call := func(b *testing.B) bool {
		cctx, ccancel := ctxT(5 * time.Second)
		resp, err := tr.Call(cctx, addr, &GetChunk{})
		ccancel()
		if err != nil {
			b.Error(err)
			return false
		}
		if m, ok := resp.(*ChunkMsg); !ok || len(m.Data) != len(data) {
			b.Errorf("answer %T, want a ChunkMsg of %d bytes", resp, len(data))
			return false
		}
		return true
	}
	b.Run("16", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && call(b) {
			}
		})
	})
	b.Run("1", func(b *testing.B) {
		for range b.N {
			if !call(b) {
				return
			}
		}
	})
}
