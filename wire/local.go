package wire

import (
	"context"
	"fmt"
	"sync"
)

// Calls within one process. A router and storage nodes may share a
// process: `shoal dev` runs a whole cluster in one, and a storage node
// may serve the API itself. A call from a TCPTransport to a Server of the
// same process is answered without the socket: no write, read and poll
// at either end, no wake-up of another thread, where a namespace read
// through the router spent about a third of its CPU on the loopback hop.
//
// Nothing else changes. The request and the answer are still encoded and
// decoded as on the wire, so the handler has a copy of its own and the
// caller gets a RemoteError exactly as from a peer; a router's requests
// are checked as a router's; the handler runs under the server's context
// and timeout, not the caller's, and goes on when the caller gives up, as
// it would on a peer.

// locals are the servers of this process that are serving, by the address
// their peers call them at (Server.Addr).
var locals struct {
	mu sync.RWMutex
	m  map[string]*Server
}

// register makes s answer this process's calls to s.Addr, until
// unregister. A server registered at the same address before (one that
// is stopping, as a node restarts) gives way to s.
func (s *Server) register() {
	if s.Addr == "" {
		return
	}
	locals.mu.Lock()
	defer locals.mu.Unlock()
	if locals.m == nil {
		locals.m = map[string]*Server{}
	}
	locals.m[s.Addr] = s
}

func (s *Server) unregister() {
	if s.Addr == "" {
		return
	}
	locals.mu.Lock()
	defer locals.mu.Unlock()
	if locals.m[s.Addr] == s {
		delete(locals.m, s.Addr)
	}
}

// localServer returns the server of this process called at addr, if any.
func localServer(addr string) *Server {
	locals.mu.RLock()
	defer locals.mu.RUnlock()
	return locals.m[addr]
}

// callLocal is Call to s, a server of this process: req as s would read
// it from a socket, handled by s, its answer as the caller would read it.
// router says the request comes from a router (TCPTransport.AsRouter).
func (s *Server) callLocal(ctx context.Context, req Message, router bool) (Message, error) {
	if err := ctx.Err(); err != nil {
		// A caller out of time sends nothing over a socket either.
		return nil, fmt.Errorf("call %s: %w", s.Addr, err)
	}
	b, err := s.frames.flatten(req)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("call %s: %w: frame of %d bytes", s.Addr, ErrBadMessage, len(b))
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil, fmt.Errorf("call %s: %w: the server is stopping", s.Addr, ErrUnreachable)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	answer := make(chan []byte, 1)
	go func() {
		defer s.wg.Done()
		answer <- s.serveLocal(router && s.TLS != nil, b)
	}()
	select {
	case out := <-answer:
		switch {
		case out == nil:
			// Handled, maybe carried out: not ErrUnreachable.
			return nil, fmt.Errorf("call %s: the server could not encode its answer", s.Addr)
		case len(out) > MaxFrame:
			return nil, fmt.Errorf("call %s: %w: frame of %d bytes", s.Addr, ErrBadMessage, len(out))
		}
		resp, err := Decode(out)
		if err != nil {
			return nil, fmt.Errorf("call %s: %w", s.Addr, err)
		}
		if em, ok := resp.(*ErrorMsg); ok {
			return nil, remoteError(em)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("call %s: %w", s.Addr, ctx.Err())
	}
}

// serveLocal handles one request from this process and returns its answer
// as the frame's body (nil if the answer cannot be encoded, where a peer
// would see its connection closed).
func (s *Server) serveLocal(router bool, b []byte) []byte {
	resp, _, _ := s.handle(s.ctx, router, b)
	defer released(resp)
	out, err := s.frames.flatten(resp)
	if err != nil {
		out, _ = s.frames.flatten(errorMessage(err, ""))
	}
	return out
}

// flatten encodes m and returns the frame as the reader of a socket sees
// it once it has its length: the type byte and the body, in a buffer of
// its own (a Bulk decoded from it shares it, as one decoded from a read
// frame does).
func (fp *framePool) flatten(m Message) ([]byte, error) {
	f, err := fp.encode(m)
	if err != nil {
		return nil, err
	}
	defer fp.put(f)
	out := make([]byte, 0, f.size()-4)
	b := f.buf.Bytes()
	prev := 4
	for _, r := range f.refs {
		out = append(out, b[prev:r.at]...)
		out = append(out, r.data...)
		prev = r.at
	}
	return append(out, b[prev:]...), nil
}
