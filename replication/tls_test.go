package replication

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/meta"
	"shoal/secure"
)

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

// syncBuffer is a log sink tests read while servers write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	logs := &syncBuffer{}
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
	for _, m := range []Message{&DeleteChunks{Group: "g"}, &Claim{Group: "g2"}, &Append{Group: "g"}, &Promise{Group: "g"}} {
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

// TestProposeRefusesMembershipChange: no peer can propose a change of a
// group's voters or a no-op; only the primary makes those.
func TestProposeRefusesMembershipChange(t *testing.T) {
	tr := NewTCPTransport()
	defer tr.Close()
	n := openNode(t, 2, "replica", tr, nil)
	for _, k := range []meta.OpKind{meta.OpConfig, meta.OpNoop} {
		_, err := n.Handle(context.Background(), &Propose{Group: "g", Op: meta.Op{Kind: k, Members: []meta.Member{{ID: 9}}}})
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("op kind %d: %v, want forbidden", k, err)
		}
	}
}
