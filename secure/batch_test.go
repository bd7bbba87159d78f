package secure

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the network.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBatchWrites: a large write over TLS reaches the network in a few
// writes, not one per record, and everything TLS meant to send arrives
// without waiting: the end of a write, a write that ends on a record
// boundary (once the writer reads), and the close.
func TestBatchWrites(t *testing.T) {
	p := newPKI(t)
	node := p.bundle(t, "n1", RoleNode)
	node2 := p.bundle(t, "n2", RoleNode)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The server first reads a 4 MiB upload, then answers every 4-byte
	// request with its length in bytes, and closes after the last.
	const upload = 4 << 20
	sizes := []int{4 << 20, 3 * 16 << 10, 100}
	go func() {
		raw, err := l.Accept()
		if err != nil {
			return
		}
		c := tls.Server(BatchWrites(raw), node.PeerServer())
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, upload)); err != nil {
			return
		}
		for _, n := range sizes {
			var req [4]byte
			if _, err := io.ReadFull(c, req[:]); err != nil {
				return
			}
			c.Write(bytes.Repeat([]byte{byte(n)}, n))
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: raw}
	c := tls.Client(BatchWrites(counted), node2.PeerClient())
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	// A large write reaches the network in batches, not a write per
	// record (the server reads all of it, so every write succeeds).
	before := counted.writes.Load()
	if _, err := c.Write(make([]byte, upload)); err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load() - before; n > upload/RecordBatch+2 {
		t.Fatalf("a 4 MiB write took %d writes, want about %d", n, upload/RecordBatch)
	}
	for _, n := range sizes {
		before := counted.writes.Load()
		if _, err := c.Write([]byte("size")); err != nil {
			t.Fatal(err)
		}
		if counted.writes.Load() == before {
			t.Fatal("a small write waited in the buffer")
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("answer of %d bytes: %v (a batch was held back)", n, err)
		}
	}
	// The server's close reaches the client, close_notify included.
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the last answer: %v, want EOF from close_notify", err)
	}
}
