package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"shoal/meta"
	"shoal/store"
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
		&FetchSnapResp{Name: "serve-1.db", Size: 8192, Data: []byte{0, 1, 2, 255}},
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
		&DigestResp{Buckets: []store.BucketDigest{{Count: 2, Xor: h}, {}}, Used: 1 << 40},
		&ListChunks{Group: "g", Buckets: []uint8{0, 7, 255}},
		&ChunkList{Hashes: []meta.Hash{h}},
		&Claim{Group: "g2", Boot: true, By: "n1"},
		&GroupStatus{Group: "g"},
		&GroupInfo{Ballot: b1, Commit: 9, Chunks: 3,
			Members: []MemberInfo{{ID: 1, Name: "n1", Addr: "h:1", Voter: true, Live: true, Synced: true, Match: 9, Chunks: 3, Used: 99}},
			Repair:  RepairProgress{UnderReplicated: 1, Copied: 2, CopiedBytes: 3, Collected: 4, LastRound: 5}},
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
		// A handler's sentinel error and leader hint survive the wire.
		ctx, cancel := ctxT(2 * time.Second)
		_, err := tr.Call(ctx, addr, &Propose{Group: "g"})
		cancel()
		var re *RemoteError
		if !errors.Is(err, ErrNotPrimary) || !errors.As(err, &re) || re.Leader != "elsewhere:1" {
			t.Fatalf("remote error = %v, want ErrNotPrimary with leader hint", err)
		}
	}
}

// openNode starts a replication node over a fresh on-disk store.
func openNode(t *testing.T, id uint64, addr string, tr Transport, edit func(*Config)) *Node {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.Name, cfg.Addr, cfg.Group = id, addr, addr, "g"
	cfg.Store, cfg.Transport, cfg.Logger = db, tr, quietLogger()
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Run(context.Background())
	t.Cleanup(func() {
		n.Close()
		db.Close()
	})
	return n
}

func TestTCPAppendRoundTrip(t *testing.T) {
	tr := NewTCPTransport()
	defer tr.Close()
	n := openNode(t, 2, "replica", tr, nil)
	addr := startServer(t, n, quietLogger())
	b := meta.Ballot{Term: 1, Node: 1}
	app := &Append{Group: "g", Ballot: b, Leader: "127.0.0.1:1", Commit: 1, Entries: []meta.Entry{
		{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1, Addr: "127.0.0.1:1"}, {ID: 2, Addr: addr}}}},
		{Index: 2, Ballot: b, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d", Time: 5}},
	}}
	ctx, cancel := ctxT(2 * time.Second)
	defer cancel()
	resp, err := tr.Call(ctx, addr, app)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resp.(*AppendResp)
	if !ok || !r.OK || r.LastIndex != 2 || r.Promised != b {
		t.Fatalf("append answer %T %+v, want OK through 2 at %s", resp, resp, b)
	}
	if s := n.Status(); s.LastIndex != 2 || len(s.Voters) != 2 || s.Ballot != b {
		t.Fatalf("replica status after append: %+v", s)
	}
	// The connection is pooled and reused; a second call commits entry 2.
	app.Entries, app.PrevIndex, app.PrevBallot, app.Commit = nil, 2, b, 2
	if _, err := tr.Call(ctx, addr, app); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, "replica to apply entry 2", func() bool { return n.Status().Applied == 2 }); err != nil {
		t.Fatal(err)
	}
	// A lower ballot over the wire is refused with the promise.
	resp, err = tr.Call(ctx, addr, &Append{Group: "g", Ballot: meta.Ballot{Term: 0, Node: 9}, PrevIndex: 2, PrevBallot: b})
	if r, ok := resp.(*AppendResp); err != nil || !ok || r.OK || r.Promised != b {
		t.Fatalf("stale append answer %+v, %v; want a refusal naming %s", resp, err, b)
	}
	// A response sent as a request is refused as malformed.
	if _, err := tr.Call(ctx, addr, &AppendResp{OK: true}); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("response sent as a request: %v, want ErrBadMessage", err)
	}
	// The wrong group is an error that survives the wire.
	if _, err := tr.Call(ctx, addr, &Append{Group: "other", Ballot: b}); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("append for another group: %v, want ErrWrongGroup", err)
	}
}

// silentListener accepts connections and reads from them, never answering.
func silentListener(t *testing.T) string {
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
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
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

// A frame header announcing a large body does not make the reader
// allocate it before the bytes arrive, and a short body is an error.
func TestReadFrameGrowsWithData(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 3*frameStart+5)
	h := frameHeader(len(body))
	got, err := readFrame(io.MultiReader(bytes.NewReader(h[:]), iotest.OneByteReader(bytes.NewReader(body[:10])), bytes.NewReader(body[10:])))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("readFrame: %d bytes, err %v", len(got), err)
	}
	h = frameHeader(MaxFrame)
	_, err = readFrame(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader(body)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: err %v, want unexpected EOF", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h = frameHeader(MaxFrame)
	readFrame(io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader([]byte{1})))
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 2*frameStart {
		t.Fatalf("a frame announcing %d bytes but sending 1 made the reader allocate %d bytes", MaxFrame, n)
	}
}
