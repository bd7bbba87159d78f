package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/secure"
)

// sampleMessages returns one message of every type, with every field set.
func sampleMessages() []Message {
	b1 := meta.Ballot{Term: 3, Node: 2}
	b0 := meta.Ballot{Term: 2, Node: 7}
	h := meta.HashOf([]byte("chunk"))
	ino := meta.Inode{Ino: 9, Type: meta.TypeFile, Size: 5, Mode: 0o640, MTime: 77, Nlink: 1, Hash: h.String(),
		Chunks: []meta.ChunkRef{{Hash: h, Size: 5, Group: "g2"}}}
	entries := []meta.Entry{
		{Index: 4, Ballot: b0, Op: meta.Op{Kind: meta.OpPut, Path: "/a", Time: 12, Mode: 0o600, File: &ino}},
		{Index: 5, Ballot: b1, Op: meta.Op{Kind: meta.OpRename, Path: "/a", To: "/b"}},
		{Index: 6, Ballot: b1, Op: meta.Op{Kind: meta.OpDelete, Path: "/d", Recursive: true}},
		{Index: 7, Ballot: b1, Op: meta.Op{Kind: meta.OpMkdir, Path: "/x/y", Parents: true}},
		{Index: 8, Ballot: b1, Op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1, Name: "n1", Addr: "h:1"}}}},
	}
	return []Message{
		&ErrorMsg{Code: "not_primary", Message: "n2: not the primary", Leader: "h:3"},
		&OKMsg{},
		&Append{Group: "g", Ballot: b1, Leader: "h:2", PrevIndex: 3, PrevBallot: b0, Entries: entries, Commit: 3, Probe: true, Snapshot: true},
		&AppendResp{OK: true, Promised: b1, LastIndex: 8, Installing: true},
		&Promise{Group: "g", Ballot: b1},
		&PromiseResp{OK: true, Promised: b1, LastIndex: 8, LastBallot: b0},
		&FetchLog{Group: "g", Ballot: b1, From: 4, MaxBytes: 1 << 20},
		&FetchLogResp{Entries: entries, LastIndex: 8},
		&FetchSnap{Group: "g", Name: "serve-1.db", Offset: 4096},
		&FetchSnapResp{Name: "serve-1.db", Size: 8192, Data: []byte{0, 1, 2, 255}, Sum: bytes.Repeat([]byte{7}, 32)},
		&StoreChunk{Hash: h, Data: []byte("chunk")},
		&GetChunk{Hash: h},
		&ChunkMsg{Data: []byte("chunk")},
		&WriteChunk{Group: "g", Hash: h, Data: []byte("chunk")},
		&Propose{Group: "g", Op: entries[0].Op},
		&ProposeResp{Result: meta.Result{Code: meta.CodeExists, Created: true}},
		&Read{Group: "g", Kind: ReadReadDir, Path: "/x"},
		&ReadResp{Code: meta.CodeNotDir, Inode: ino, Entries: []meta.DirEntry{{Name: "y", Inode: meta.Inode{Type: meta.TypeDir, MTime: 3}}}},
		&Read{Group: "g", Kind: ReadChunkRefs, Hashes: []meta.Hash{h}, Groups: []string{"g", ""}},
		&ReadResp{Referenced: []bool{true, false}},
		&Read{Group: "g", Kind: ReadChunkGroups, Hashes: []meta.Hash{h}},
		&ReadResp{Located: []string{"g2", ""}},
		&TouchChunks{Group: "g", Hashes: []meta.Hash{h, h}, Local: true},
		&TouchResp{Missing: []meta.Hash{h}},
		&DeleteChunks{Group: "g", Hashes: []meta.Hash{h}, Idle: time.Hour},
		&ChunkDigest{Group: "g"},
		&DigestResp{Buckets: []meta.BucketDigest{{Count: 2, Xor: h}, {}}, Used: 1 << 40},
		&ListChunks{Group: "g", Buckets: []uint8{0, 7, 255}},
		&ChunkList{Hashes: []meta.Hash{h}},
		&Claim{Group: "g2", Boot: true, By: "n1"},
		&Release{Group: "g2", By: "n1"},
		&GroupStatus{Group: "g"},
		&GroupInfo{Ballot: b1, Commit: 9, Chunks: 3,
			Members: []MemberInfo{{ID: 1, Name: "n1", Addr: "h:1", Voter: true, Live: true, Synced: true, Match: 9, Chunks: 3, Used: 99}},
			Repair:  RepairProgress{UnderReplicated: 1, Copied: 2, CopiedBytes: 3, Collected: 4, LastRound: 5}},
		&ReadBatch{Group: "g", Reads: []Read{{Kind: ReadLookup, Path: "/x", Want: 4}, {Kind: ReadUser, Token: [32]byte{9}}}},
		&ReadBatchResp{Resps: []ReadResp{{Inode: ino}, {Code: meta.CodeNotFound}},
			Errs: []*ErrorMsg{nil, {Code: "invalid", Message: "bad path"}}},
		&ProposeBatch{Group: "g", Ops: []meta.Op{entries[0].Op, entries[0].Op}},
		&ProposeBatchResp{Results: []meta.Result{{Created: true}, {}},
			Errs: []*ErrorMsg{nil, {Code: "no_space", Message: "full"}}},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		if MsgType(b[0]) != m.Type() {
			t.Fatalf("%T: frame type %d, want %d", m, b[0], m.Type())
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T round trip:\n got %+v\nwant %+v", m, got, m)
		}
		seen[m.Type()] = true
	}
	// Every type the decoder knows is covered above.
	for ty := MsgType(0); ty < 255; ty++ {
		if _, err := newMessage(ty); err == nil && !seen[ty] {
			t.Errorf("message type %d has no round-trip sample", ty)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{},
		{0},
		{200, 0x80},
		{byte(MsgAppend), 0xc1},              // a reserved msgpack byte
		{byte(MsgAppend), 0x81, 0xa1, 'b'},   // a map cut short
		{byte(MsgGetChunk), 0x81, 0xa1, 'h'}, // a key without its value
		// An array announcing 2^32-1 entries in 9 bytes: decoding it
		// naively allocates hundreds of gigabytes.
		{byte(MsgFetchLogResp), 0x81, 0xa1, 'e', 0xdd, 0xff, 0xff, 0xff, 0xff},
		{byte(MsgReadResp), 0x81, 0xa1, 'e', 0xdc, 0xff, 0xff, 0x80},
		{byte(MsgFetchLogResp), 0xdf, 0xff, 0xff, 0xff, 0xff},
		{byte(MsgChunk), 0x81, 0xa1, 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff},
		append([]byte{byte(MsgOK)}, bytes.Repeat([]byte{0x91}, 10000)...), // nested too deep
		{byte(MsgOK), 0x80, 0x80},                                         // trailing bytes
	} {
		if m, err := Decode(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("Decode(%x) = %v, %v; want ErrBadMessage", b, m, err)
		}
	}
}

// normalize makes empty slices nil, recursively, so that values that
// encode identically (an omitted empty field) compare equal.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{byte(MsgFetchLogResp), 0x81, 0xa1, 'e', 0x90})
	f.Add([]byte{byte(MsgChunk), 0x81, 0xa1, 'd', 0xc4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("Decode error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("re-encode %T: %v", m, err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %T: %v", m, err)
		}
		normalize(reflect.ValueOf(m))
		normalize(reflect.ValueOf(m2))
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("%T changed across a round trip:\n%+v\n%+v", m, m, m2)
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves h on a fresh 127.0.0.1 port until the test ends.
func startServer(t *testing.T, h Handler, logger *slog.Logger) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Handler: h, Logger: logger, IdleTimeout: 5 * time.Second, HandleTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

func echoHandler() Handler {
	return HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		switch m := req.(type) {
		case *GetChunk:
			return &ChunkMsg{Data: m.Hash[:]}, nil
		case *Propose:
			return nil, &leaderError{err: ErrNotPrimary, leader: "elsewhere:1"}
		}
		return &OKMsg{}, nil
	})
}

// rawExchange writes raw bytes on a new connection and returns the frame
// answered, if any, or nil when the server closed the connection first.
func rawExchange(t *testing.T, addr string, raw []byte) Message {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return nil // the server already hung up
	}
	// Half-close so that a frame cut short ends in EOF instead of waiting
	// for the server's idle timeout.
	c.(*net.TCPConn).CloseWrite()
	b, err := readFrame(c)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isConnReset(err) {
			return nil
		}
		t.Fatalf("reading the answer to garbage %x: %v (the server neither answered nor closed)", raw[:min(len(raw), 16)], err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("server answered garbage with an undecodable frame: %v", err)
	}
	// After an answer to garbage the server must drop the connection.
	if _, err := readFrame(c); err == nil {
		t.Fatalf("server sent a second frame after answering garbage")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server kept the connection open after answering garbage")
	}
	return m
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func frame(body []byte) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(body)))
	return append(h[:], body...)
}

func TestServerSurvivesGarbage(t *testing.T) {
	for _, logger := range []*slog.Logger{quietLogger(), nil} {
		addr := startServer(t, echoHandler(), logger)
		tr := NewTCPTransport()
		defer tr.Close()
		garbage := [][]byte{
			frame([]byte{250, 1, 2, 3}),                // unknown message type
			frame([]byte{byte(MsgAppend), 0xc1, 0xc1}), // undecodable body
			{0, 0, 0, 0},                                // empty frame
			{0xff, 0xff, 0xff, 0xff, 1, 2, 3},           // announces 4 GiB
			[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), // the wrong protocol
			frame([]byte{byte(MsgOK), 0x80})[:3],        // a header cut short
			frame([]byte{byte(MsgGetChunk), 0x81})[:6],  // a body cut short
			bytes.Repeat([]byte{0x42}, 1000),            // noise
		}
		for i, raw := range garbage {
			m := rawExchange(t, addr, raw)
			if m != nil {
				em, ok := m.(*ErrorMsg)
				if !ok {
					t.Errorf("garbage %d: answered with %T, want an error or a closed connection", i, m)
				} else if !errors.Is(remoteError(em), ErrBadMessage) {
					t.Errorf("garbage %d: answered %q (%s), want bad_message", i, em.Message, em.Code)
				}
			}
			// The server still serves a well-behaved peer.
			ctx, cancel := ctxT(2 * time.Second)
			resp, err := tr.Call(ctx, addr, &GetChunk{Hash: meta.HashOf([]byte{byte(i)})})
			cancel()
			if err != nil {
				t.Fatalf("after garbage %d: call failed: %v", i, err)
			}
			if _, ok := resp.(*ChunkMsg); !ok {
				t.Fatalf("after garbage %d: answer %T", i, resp)
			}
		}
		// A handler's sentinel error and leader hint survive the
		ctx, cancel := ctxT(2 * time.Second)
		_, err := tr.Call(ctx, addr, &Propose{Group: "g"})
		cancel()
		var re *RemoteError
		if !errors.Is(err, ErrNotPrimary) || !errors.As(err, &re) || re.Leader != "elsewhere:1" {
			t.Fatalf("remote error = %v, want ErrNotPrimary with leader hint", err)
		}
	}
}

// A frame header announcing a large body does not make a server allocate
// it before the bytes arrive, and a short body is an error.
func TestReadFrameGrowsWithData(t *testing.T) {
	serverRead := func(r io.Reader) ([]byte, error) {
		b, _, err := readFrameBudget(r, nil, frameStart)
		return b, err
	}
	body := bytes.Repeat([]byte{7}, 3*frameStart+5)
	h := frameHeader(len(body))
	got, err := serverRead(io.MultiReader(bytes.NewReader(h[:]), iotest.OneByteReader(bytes.NewReader(body[:10])), bytes.NewReader(body[10:])))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("readFrame: %d bytes, err %v", len(got), err)
	}
	h = frameHeader(MaxFrame)
	_, err = serverRead(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader(body)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: err %v, want unexpected EOF", err)
	}
	allocated := func(read func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		read()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	h = frameHeader(MaxFrame)
	if n := allocated(func() { serverRead(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader([]byte{1}))) }); n > 2*frameStart {
		t.Fatalf("a frame announcing %d bytes but sending 1 made the server allocate %d bytes", MaxFrame, n)
	}
	// Past the first MiB the buffer grows with what arrives: a peer that
	// announces the largest frame and sends one MiB and a byte makes the
	// server hold a few MiB, not the whole frame.
	part := make([]byte, frameStart+1)
	if n := allocated(func() { serverRead(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader(part))) }); n > 4*frameStart {
		t.Fatalf("a frame announcing %d bytes but sending %d made the server allocate %d bytes", MaxFrame, frameStart+1, n)
	}
	// A chunk's frame is read in buffers that double up to its size
	// exactly: under twice its size allocated, not 2.75 times.
	chunk := bytes.Repeat([]byte{9}, 4<<20+100)
	hc := frameHeader(len(chunk))
	var back []byte
	if n := allocated(func() { back, err = serverRead(io.MultiReader(bytes.NewReader(hc[:]), bytes.NewReader(chunk))) }); err != nil || !bytes.Equal(back, chunk) || n > 2*uint64(len(chunk)) {
		t.Fatalf("a server read a frame of %d bytes: err %v, allocated %d bytes; want under twice its size", len(chunk), err, n)
	}

	// A caller reads an answer carrying a chunk into one buffer of its
	// size, and a peer that lies about an answer's size makes it hold
	// answerStart at most.
	if n := allocated(func() { back, err = readFrame(io.MultiReader(bytes.NewReader(hc[:]), bytes.NewReader(chunk))) }); err != nil || !bytes.Equal(back, chunk) || n > uint64(len(chunk))+len64k {
		t.Fatalf("an answer of %d bytes: err %v, allocated %d bytes; want one buffer of its size", len(chunk), err, n)
	}
	if n := allocated(func() { readFrame(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader([]byte{1}))) }); n > answerStart+len64k {
		t.Fatalf("an answer announcing %d bytes but sending 1 made the caller allocate %d bytes, want at most %d", MaxFrame, n, answerStart)
	}
}

// len64k is the slack allowed over a buffer's size in allocation counts.
const len64k = 64 << 10

// serveWith serves echoHandler with s's limits on a fresh port.
func serveWith(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Handler, s.Logger = echoHandler(), quietLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l.Addr().String()
}

// A connection beyond MaxConns is closed at once, so idle connections
// cannot use up a node's descriptors; the ones open keep being served,
// and a slot freed is taken again.
func TestServerLimitsConnections(t *testing.T) {
	addr := serveWith(t, &Server{MaxConns: 3, IdleTimeout: time.Minute})
	var open []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	// Wait until the server has taken all three: each answers a request.
	for _, c := range open {
		if m := exchangeOn(t, c, &GetChunk{}); m == nil {
			t.Fatal("an open connection was not served")
		}
	}
	extra, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if m := exchangeOn(t, extra, &GetChunk{}); m != nil {
		t.Fatalf("a fourth connection was served (%T) with MaxConns 3", m)
	}
	open[0].Close()
	waitServed(t, addr, "a freed slot to be served")
}

// A peer that connects and then sends nothing is dropped after
// IdleTimeout, and its slot goes to the next connection: idle
// connections cannot hold a node's peer port.
func TestServerDropsIdlePeers(t *testing.T) {
	addr := serveWith(t, &Server{MaxConns: 1, IdleTimeout: 300 * time.Millisecond})
	idle, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if m := exchangeOn(t, idle, &GetChunk{}); m == nil {
		t.Fatal("the first connection was not served")
	}
	start := time.Now()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatalf("an idle connection got %d bytes instead of being closed", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("an idle connection was still open after 10 s, with IdleTimeout 300ms")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("an idle connection was closed after %v, before its IdleTimeout of 300ms", took)
	}
	waitServed(t, addr, "the slot of the dropped idle connection to serve another (MaxConns 1)")
}

// waitServed waits up to 10 s until a new connection to addr is served.
func waitServed(t *testing.T, addr, what string) {
	t.Helper()
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, what, func() bool {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return exchangeOn(t, c, &GetChunk{}) != nil
	}); err != nil {
		t.Fatal(err)
	}
}

// exchangeOn sends m on c and returns the answer, or nil when the server
// closed the connection instead.
func exchangeOn(t *testing.T, c net.Conn, m Message) Message {
	t.Helper()
	body, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(frame(body)); err != nil {
		return nil
	}
	b, err := readFrame(c)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server neither answered nor closed the connection")
		}
		return nil
	}
	resp, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Large frames arriving at once share MaxFrameMemory: one that cannot get
// its share within FrameWait has its connection dropped, while the frame
// holding the memory is still received whole and answered.
func TestServerBoundsFrameMemory(t *testing.T) {
	srv := &Server{MaxFrameMemory: 4 << 20, FrameWait: 300 * time.Millisecond, IdleTimeout: time.Minute}
	addr := serveWith(t, srv)
	free := func() int64 {
		srv.mu.Lock()
		b := srv.budget
		srv.mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.free
	}
	big, err := Encode(&StoreChunk{Data: bytes.Repeat([]byte{1}, 7<<20)})
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// A sends 3 MiB of its frame: the server holds 3 of its 4 MiB.
	a := dial()
	fa := frame(big)
	if _, err := a.Write(fa[:3<<20]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, "the server to hold 3 MiB of A's frame", func() bool { return free() < 2<<20 }); err != nil {
		t.Fatal(err)
	}
	// B sends 3 MiB too: past its first MiB it needs 2 more, which only
	// A can free, and A is stalled: B is dropped after FrameWait.
	b := dial()
	fb := frame(big)
	if _, err := b.Write(fb[:3<<20]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := readFrame(b); err == nil {
		t.Fatal("the server answered a frame it had no memory for")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection of a frame it had no memory for")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("dropping the frame without memory took %v, want about FrameWait", took)
	}
	// A finishes and is answered.
	if _, err := a.Write(fa[3<<20:]); err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(a)
	if err != nil {
		t.Fatalf("the frame holding the memory was not answered: %v", err)
	}
	if m, err := Decode(got); err != nil || m.Type() != MsgOK {
		t.Fatalf("answer %v, %v; want OK", m, err)
	}
}

// pki makes a CA and loads certificates of any role signed by it.
type pki struct {
	dir          string
	caPEM, caKey []byte
}

func newTestPKI(t *testing.T) *pki {
	t.Helper()
	c, k, err := secure.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{dir: t.TempDir(), caPEM: c, caKey: k}
}

func (p *pki) bundle(t *testing.T, name string, r secure.Role) *secure.Bundle {
	t.Helper()
	c, k, err := secure.IssueCert(p.caPEM, p.caKey, secure.CertRequest{Name: name, Role: r, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := secure.TLSFiles{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")}
	for path, b := range map[string][]byte{f.CA: p.caPEM, f.Cert: c, f.Key: k} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := secure.LoadBundle(f, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTLSPeerPort: on a TLS peer port, storage nodes may send anything,
// routers only the data path, and nobody else gets a message decoded: not
// a mount host's certificate, not another CA's, not plain TCP.
func TestTLSPeerPort(t *testing.T) {
	p := newTestPKI(t)
	server := p.bundle(t, "n1", secure.RoleNode)
	var handled sync.Map
	h := HandlerFunc(func(ctx context.Context, req Message) (Message, error) {
		handled.Store(req.Type(), true)
		return &OKMsg{}, nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &harness.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Handler: h, Logger: slog.New(slog.NewTextHandler(logs, nil)), TLS: server.PeerServer()}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	addr := l.Addr().String()

	call := func(tr *TCPTransport, m Message) error {
		ctx, cancel := ctxT(3 * time.Second)
		defer cancel()
		_, err := tr.Call(ctx, addr, m)
		return err
	}
	transport := func(b *secure.Bundle) *TCPTransport {
		tr := NewTCPTransport()
		tr.TLS = b.PeerClient()
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	node := transport(p.bundle(t, "n2", secure.RoleNode))
	if err := call(node, &DeleteChunks{Group: "g"}); err != nil {
		t.Fatalf("a node's DeleteChunks: %v", err)
	}
	router := transport(p.bundle(t, "r", secure.RoleRouter))
	if err := call(router, &GetChunk{}); err != nil {
		t.Fatalf("a router's GetChunk: %v", err)
	}
	handled.Delete(MsgDeleteChunks)
	for _, m := range []Message{&DeleteChunks{Group: "g"}, &Claim{Group: "g2"}, &Release{Group: "g2"}, &Append{Group: "g"}, &Promise{Group: "g"}} {
		if err := call(router, m); !errors.Is(err, ErrForbidden) {
			t.Errorf("a router's message type %d: %v, want forbidden", m.Type(), err)
		}
		if _, ok := handled.Load(m.Type()); ok {
			t.Errorf("a router's message type %d reached the handler", m.Type())
		}
	}
	client := transport(p.bundle(t, "host", secure.RoleClient))
	other := transport(newTestPKI(t).bundle(t, "intruder", secure.RoleNode))
	for name, tr := range map[string]*TCPTransport{"a mount host's certificate": client, "another CA's certificate": other, "plain TCP": NewTCPTransport()} {
		if err := call(tr, &Claim{Group: "evil"}); err == nil {
			t.Errorf("%s: the call succeeded", name)
		}
	}
	if _, ok := handled.Load(MsgClaim); ok {
		t.Fatal("a refused peer's Claim reached the handler")
	}
	// Raw msgpack on the TLS port is never decoded.
	if m := rawExchange(t, addr, frame([]byte{byte(MsgDeleteChunks), 0x80})); m != nil {
		t.Fatalf("plain frames were answered: %T", m)
	}
	if _, ok := handled.Load(MsgDeleteChunks); ok {
		t.Fatal("a plain-TCP frame reached the handler")
	}
	if got := strings.Count(logs.String(), "TLS handshake failed"); got < 1 || got > 2 {
		// All refused peers dial from 127.0.0.1: one line for them all.
		t.Errorf("%d log lines of refused handshakes from one address, want 1:\n%s", got, logs.String())
	}
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
