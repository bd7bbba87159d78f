package secure

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// RecordBatch is how many bytes of TLS records BatchWrites gathers into
// one write: TLS cuts a large write into 16 KiB records and writes each on
// its own, so a 4 MiB chunk would cost 256 system calls where plain TCP
// makes one.
const RecordBatch = 256 << 10

// BatchWrites wraps the connection under a TLS layer so that the full
// records of a large write go out in batches of RecordBatch bytes. TLS
// cuts a write into records of 16 KiB and a last, shorter one: a shorter
// record (the end of a write, a handshake message, an alert) sends what
// has gathered at once, so nothing waits that TLS meant to send. What
// full records a write ending exactly at a record boundary leaves behind
// go out before the next read and on close. (Dynamic record sizing, which
// starts a connection with small records, is off in this package's TLS
// configurations.) It suits protocols that read after they write: request
// and answer (the peer protocol) and HTTP/1.1; not HTTP/2, whose reader
// waits while its writer sends.
func BatchWrites(c net.Conn) net.Conn {
	return &batchedConn{Conn: c, w: bufio.NewWriterSize(c, RecordBatch)}
}

type batchedConn struct {
	net.Conn
	mu sync.Mutex // an HTTP server reads in the background while it writes
	w  *bufio.Writer
}

// fullRecord is the smallest write that can be a full TLS record: 16 KiB
// of plaintext plus the record's header and tag.
const fullRecord = 16 << 10

func (b *batchedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	if err == nil && len(p) < fullRecord {
		err = b.w.Flush()
	}
	return n, err
}

func (b *batchedConn) Read(p []byte) (int, error) {
	b.mu.Lock()
	var err error
	if b.w.Buffered() > 0 {
		err = b.w.Flush()
	}
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return b.Conn.Read(p)
}

// closeFlush bounds the last flush of a connection being closed.
const closeFlush = 5 * time.Second

func (b *batchedConn) Close() error {
	b.mu.Lock()
	if b.w.Buffered() > 0 {
		// TLS sends its close_notify and then sets a write deadline in
		// the past, expecting the alert out already; it is still here,
		// with the end of the last answer.
		b.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
		b.w.Flush()
	}
	b.mu.Unlock()
	return b.Conn.Close()
}

// BatchListener makes every connection l accepts a BatchWrites one.
func BatchListener(l net.Listener) net.Listener { return batchListener{l} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return BatchWrites(c), nil
}
