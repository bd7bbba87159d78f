package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"shoal/secure"
)

// TCPTransport sends framed msgpack messages over pooled TCP connections:
// each frame is a 4-byte big-endian length, a type byte and a msgpack body.
// A connection carries one request at a time, so responses need no IDs.
type TCPTransport struct {
	DialTimeout time.Duration
	// TLS, when set, wraps every connection in TLS with this client
	// configuration (secure.Bundle.PeerClient: mutual TLS, the peer must
	// prove the node role). Nil sends plain TCP (--insecure).
	TLS *tls.Config
	// AsRouter says the calls are a router's: a server in this process
	// answers them as it answers a router's certificate (see local.go).
	AsRouter bool

	frames framePool

	mu     sync.Mutex
	idle   map[string][]idleConn
	closed bool
}

// peerConn is a connection to a peer with a buffered reader for its
// answers: an answer's length and body then come in one read where they
// arrived together, not two. A connection carries one request at a time
// and the peer sends nothing but the answer, so nothing is left in the
// buffer between calls.
type peerConn struct {
	net.Conn
	r *bufio.Reader
}

// answerBuffer is the size of a peerConn's buffer: an answer of a few KiB
// (attributes, a small file, an ack) fits it whole; a larger one (a page
// of a listing, log entries) is read through it, and a chunk's bytes
// bypass it (bufio reads a request larger than its buffer straight into
// the caller's slice).
const answerBuffer = 4 << 10

func newPeerConn(c net.Conn) peerConn { return peerConn{c, bufio.NewReaderSize(c, answerBuffer)} }

// idleConn is a pooled connection and when it was last used.
type idleConn struct {
	peerConn
	since time.Time
}

// maxIdleAge is how long a pooled connection may rest before it is
// dropped rather than reused: well under the servers' idle timeout, so a
// call never goes out on a connection the peer is about to close.
const maxIdleAge = time.Minute

var _ Transport = (*TCPTransport)(nil)

// maxIdlePerAddr bounds the pooled connections kept for one peer.
const maxIdlePerAddr = 16

// NewTCPTransport returns a transport with an empty pool.
func NewTCPTransport() *TCPTransport {
	return &TCPTransport{DialTimeout: 2 * time.Second, idle: map[string][]idleConn{}}
}

// get returns a pooled connection to addr, or dials a new one.
func (t *TCPTransport) get(ctx context.Context, addr string) (peerConn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return peerConn{}, errors.New("transport closed")
	}
	for cs := t.idle[addr]; len(cs) > 0; cs = t.idle[addr] {
		c := cs[len(cs)-1]
		t.idle[addr] = cs[:len(cs)-1]
		if time.Since(c.since) < maxIdleAge {
			t.mu.Unlock()
			return c.peerConn, nil
		}
		c.Close()
	}
	t.mu.Unlock()
	d := net.Dialer{Timeout: t.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return peerConn{}, err
	}
	if t.TLS == nil {
		return newPeerConn(c), nil
	}
	tc := tls.Client(secure.BatchWrites(c), t.TLS)
	hctx, cancel := context.WithTimeout(ctx, t.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return peerConn{}, fmt.Errorf("TLS handshake: %w", err)
	}
	return newPeerConn(tc), nil
}

func (t *TCPTransport) put(addr string, c peerConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Bytes past the answer are no answer to anything this side asked:
	// the next call would read them as its own.
	if t.closed || len(t.idle[addr]) >= maxIdlePerAddr || c.r.Buffered() > 0 {
		c.Close()
		return
	}
	t.idle[addr] = append(t.idle[addr], idleConn{c, time.Now()})
}

// dropIdle closes the connections pooled for addr.
func (t *TCPTransport) dropIdle(addr string) {
	t.mu.Lock()
	cs := t.idle[addr]
	delete(t.idle, addr)
	t.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// Call sends req to addr and waits for the answer until ctx ends.
func (t *TCPTransport) Call(ctx context.Context, addr string, req Message) (Message, error) {
	if s := localServer(addr); s != nil {
		t.mu.Lock()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("connect to %s: %w: transport closed", addr, ErrUnreachable)
		}
		return s.callLocal(ctx, req, t.AsRouter)
	}
	frame, err := t.frames.encode(req)
	if err != nil {
		return nil, err
	}
	defer t.frames.put(frame)
	c, err := t.get(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w: %w", addr, ErrUnreachable, err)
	}
	dl, hasDeadline := ctx.Deadline()
	c.SetDeadline(dl) // the zero time when there is none
	// Moving the deadline is the only way to interrupt a blocked read
	// when ctx is cancelled before its deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	resp, err := roundTrip(c.Conn, c.r, frame)
	if !stop() || err != nil {
		c.Close()
		if err != nil && ctx.Err() == nil {
			// The peer closed or reset the connection: it restarted or
			// died, and the other connections pooled for it went with
			// it. Without this, each retry would take one and fail the
			// same way, where a new connection would be refused at once
			// (the request certainly not carried out) or would reach
			// the restarted peer.
			t.dropIdle(addr)
		}
		if hasDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
			<-ctx.Done() // the socket's deadline is ctx's: it ends now
		}
		if cerr := ctx.Err(); cerr != nil {
			// Report the context's error, so callers can tell a timeout
			// or a cancel from a failure of the peer.
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				err = cerr
			} else {
				err = fmt.Errorf("%w: %v", cerr, err)
			}
		}
		return nil, fmt.Errorf("call %s: %w", addr, err)
	}
	t.put(addr, c)
	if em, ok := resp.(*ErrorMsg); ok {
		return nil, remoteError(em)
	}
	return resp, nil
}

// roundTrip writes a whole frame (as framePool.encode makes it) to c and
// reads the answer from r, which reads c.
func roundTrip(c net.Conn, r io.Reader, f *outFrame) (Message, error) {
	if err := f.writeTo(c); err != nil {
		return nil, err
	}
	b, err := readFrame(r)
	if err != nil {
		return nil, err
	}
	return Decode(b)
}

// frameStart is the most a server allocates for a frame before any of
// its body has arrived. Past it the buffer at most doubles with what has
// arrived, so a peer that announces a large frame and sends part of it
// makes this node hold at most twice what it sent, and a real chunk is
// copied about once (see readFrameBudget).
const frameStart = 1 << 20

// answerStart is what a caller allocates at once for an answer: the
// answers it waits for come from the peer it chose to call, and one that
// carries a chunk (4 MiB by default) is then read into a buffer of its
// size, not grown into one through copies that are garbage at once. A
// peer announcing more than it sends makes the caller hold this much at
// most before the doubling rule applies.
const answerStart = 9 << 20

func readFrame(r io.Reader) ([]byte, error) {
	b, _, err := readFrameBudget(r, nil, answerStart)
	return b, err
}

// readFrameBudget reads a frame into a buffer of at most start bytes at
// first (the frame's size halved until it fits), taking the memory it
// holds beyond that from budget, if given, before it grows the buffer
// (it waits while other frames hold the budget). It returns how much it
// took, which the caller gives back once done with the frame.
func readFrameBudget(r io.Reader, budget *frameBudget, start int) (b []byte, held int64, err error) {
	defer func() {
		if err != nil && held > 0 {
			budget.give(held)
			held = 0
		}
	}()
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, 0, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n == 0 || n > MaxFrame {
		return nil, 0, fmt.Errorf("%w: frame of %d bytes", ErrBadMessage, n)
	}
	// The first buffer is n halved until it fits in start, so that the
	// doublings end on n itself: a 4 MiB chunk read from 1 MiB grew
	// through 2, 4 and then 4 MiB and a few bytes, allocating 2.75 times
	// its size and copying 1.75 times; from n/8 it is 1.9 and 0.9.
	first := n
	for first > start {
		first = (first + 1) / 2
	}
	b = make([]byte, 0, first)
	for len(b) < n {
		if len(b) == cap(b) {
			grow := min(n, 2*cap(b)) - cap(b)
			if budget != nil {
				if err := budget.take(int64(grow), held); err != nil {
					return nil, held, err
				}
				held += int64(grow)
			}
			// Not slices.Grow: append's growth rounds a large slice up
			// by a quarter more than asked.
			nb := make([]byte, len(b), cap(b)+grow)
			copy(nb, b)
			b = nb
		}
		k, err := r.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+k]
		if err != nil && len(b) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, held, err
		}
	}
	return b, held, nil
}

// frameBudget bounds the memory the frames being read on a server's
// connections hold beyond frameStart each: a reader past it waits for
// others to finish, so many peers announcing large frames at once slow
// down rather than exhaust the node's memory.
type frameBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int64 // may go below 0 while a lone frame exceeds the limit
	limit int64
	wait  time.Duration
}

func newFrameBudget(limit int64, wait time.Duration) *frameBudget {
	b := &frameBudget{free: limit, limit: limit, wait: wait}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// errBusy is returned when a frame waited too long for memory.
var errBusy = errors.New("peer port: too many large frames being received at once")

// take reserves n more bytes for a frame that holds own already,
// waiting up to the budget's wait while others hold what it needs. A
// frame that holds all that is taken goes on even past the limit: alone,
// it waits for nobody, and the frame size is bounded by MaxFrame.
func (b *frameBudget) take(n, own int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	deadline := time.Now().Add(b.wait)
	timer := time.AfterFunc(b.wait, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer timer.Stop()
	for b.free < n && b.free+own < b.limit {
		if !time.Now().Before(deadline) {
			return errBusy
		}
		b.cond.Wait()
	}
	b.free -= n
	return nil
}

// give returns n bytes.
func (b *frameBudget) give(n int64) {
	b.mu.Lock()
	b.free += n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Close drops the pooled connections.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, cs := range t.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	t.idle = nil
	return nil
}

// Server accepts framed requests on a listener and answers them with a
// Handler.
type Server struct {
	Handler Handler
	// Logger receives connection errors; nil discards them.
	Logger *slog.Logger
	// IdleTimeout closes a connection that sends no request for this long.
	IdleTimeout time.Duration
	// HandleTimeout bounds the handling of one request.
	HandleTimeout time.Duration
	// Addr is the address peers call this server at. Set, a
	// TCPTransport of this process calling it there is answered without
	// the socket (see local.go).
	Addr string
	// TLS, when set, makes every connection TLS with this server
	// configuration (secure.Bundle.PeerServer): a peer without a
	// certificate from the cluster's CA is refused in the handshake,
	// before one frame is read, and a router's certificate may send the
	// requests of the data path only (RouterMayCall). Nil serves plain
	// TCP to anyone (--insecure).
	TLS *tls.Config

	// MaxConns bounds the open connections; one beyond it is closed at
	// once (default 1024).
	MaxConns int
	// MaxFrameMemory bounds the memory held by the frames being received
	// beyond the first MiB of each (default 256 MiB): past it, readers
	// wait up to FrameWait (default 10s) for others to finish, then drop
	// their connection.
	MaxFrameMemory int64
	FrameWait      time.Duration

	refusals secure.Throttle // one log line per refused address and hour
	budget   *frameBudget
	frames   framePool

	ctx context.Context // Serve's, which handlers run under

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	stopping bool // Serve is returning: no more local calls
	wg       sync.WaitGroup
}

// Serve accepts connections until l is closed or ctx ends, then closes
// every open connection and waits for their handlers.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	maxConns, mem, wait := s.MaxConns, s.MaxFrameMemory, s.FrameWait
	if maxConns <= 0 {
		maxConns = 1024
	}
	if mem <= 0 {
		mem = 256 << 20
	}
	if wait <= 0 {
		wait = 10 * time.Second
	}
	s.mu.Lock()
	s.conns = map[net.Conn]struct{}{}
	s.budget = newFrameBudget(mem, wait)
	s.ctx, s.stopping = ctx, false
	s.mu.Unlock()
	s.register()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = l.Accept()
		if err != nil {
			break
		}
		s.mu.Lock()
		full := len(s.conns) >= maxConns
		if !full {
			s.conns[c] = struct{}{}
		}
		s.mu.Unlock()
		if full {
			// Closing at once keeps the descriptors bounded; a peer that
			// needs this node retries, as after any dropped connection.
			s.refuse(c, "too many connections", fmt.Errorf("%d connections open, the most this node takes", maxConns))
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveConn(ctx, c)
	}
	s.unregister()
	s.mu.Lock()
	s.stopping = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	var conn net.Conn = c
	router := false
	if s.TLS != nil {
		tc := tls.Server(secure.BatchWrites(c), s.TLS)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Closed before a hello: a caller that gave up (its
				// context ended while dialling), not a stranger.
				s.logger().Debug("peer port: connection closed before the TLS handshake", "remote", c.RemoteAddr())
			} else {
				s.refuse(c, "TLS handshake failed", err)
			}
			return
		}
		role, _ := secure.PeerRole(tc.ConnectionState())
		router, conn = role == secure.RoleRouter, tc
		defer tc.Close() // before c's: sends what is still batched
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		idle := s.IdleTimeout
		if idle <= 0 {
			idle = 5 * time.Minute
		}
		c.SetReadDeadline(time.Now().Add(idle))
		b, held, err := readFrameBudget(r, s.budget, frameStart)
		if err != nil {
			if errors.Is(err, errBusy) {
				s.refuse(c, "dropped a connection", err)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger().Debug("closing connection", "remote", c.RemoteAddr(), "err", err)
			}
			return
		}
		ok := s.serveFrame(ctx, c, conn, router, b)
		s.budget.give(held) // the frame's memory counts until it is answered
		if !ok {
			return
		}
	}
}

// serveFrame decodes, checks, handles and answers one request; false
// means the connection is to be closed.
func (s *Server) serveFrame(ctx context.Context, c, conn net.Conn, router bool, b []byte) bool {
	resp, refused, garbage := s.handle(ctx, router, b)
	if refused != nil {
		s.refuse(c, "refused a request", refused)
	}
	return s.reply(conn, resp) && !garbage
}

// handle decodes, checks and handles the request in frame b (its type
// byte and body) from a router or a storage node, and returns the answer:
// an ErrorMsg when the request is refused (refused says why, to log) or
// is garbage, after which nothing on its connection can be trusted to be
// aligned.
func (s *Server) handle(ctx context.Context, router bool, b []byte) (resp Message, refused error, garbage bool) {
	req, err := Decode(b)
	if err != nil {
		return errorMessage(err, ""), nil, true
	}
	if router && !RouterMayCall(req) {
		err := fmt.Errorf("%w: a router may not send message type %d; only storage nodes may", ErrForbidden, req.Type())
		return errorMessage(err, ""), err, false
	}
	hctx, cancel := s.handleContext(ctx)
	resp, err = s.Handler.Handle(hctx, req)
	cancel()
	if err != nil {
		resp = asErrorMsg(err)
	}
	return resp, nil, false
}

// handshakeTimeout bounds a TLS handshake on the peer port: a peer that
// connects and says nothing holds no goroutine for longer.
const handshakeTimeout = 10 * time.Second

// refuse logs why a peer was turned away, once per address and hour.
func (s *Server) refuse(c net.Conn, what string, err error) {
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	if s.refusals.Allow(host+" "+what, time.Now()) {
		s.logger().Warn("peer port: "+what+"; further refusals of this address are not logged for an hour",
			"remote", c.RemoteAddr().String(), "err", err)
	}
}

// logger keeps a Server without a Logger from crashing on the first bad
// connection.
func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) handleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.HandleTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

func (s *Server) reply(c net.Conn, m Message) bool {
	defer released(m)
	frame, err := s.frames.encode(m)
	if err != nil {
		frame, err = s.frames.encode(errorMessage(err, ""))
		if err != nil {
			return false
		}
	}
	defer s.frames.put(frame)
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return frame.writeTo(c) == nil
}

// asErrorMsg encodes err, keeping the primary's address when the error
// carries one.
func asErrorMsg(err error) *ErrorMsg {
	var le *leaderError
	if errors.As(err, &le) {
		return errorMessage(err, le.leader)
	}
	return errorMessage(err, "")
}

// WithLeader attaches the address of the group's primary, when known, to
// an error a handler returns: it travels in the ErrorMsg, and the caller's
// RemoteError carries it so the caller can retry there.
func WithLeader(err error, leader string) error {
	return &leaderError{err: err, leader: leader}
}

// leaderError attaches the known primary's address to an error.
type leaderError struct {
	err    error
	leader string
}

func (e *leaderError) Error() string { return e.err.Error() }
func (e *leaderError) Unwrap() error { return e.err }
