package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// framePool recycles the buffers whole frames are encoded into. Encoding
// a chunk into a fresh buffer for every call left several times the
// chunk's size of garbage per chunk sent (the buffer grows by doubling,
// then the body was copied behind its type byte), and a garbage-collected
// heap grows to about twice what it holds: a router sending chunks for
// many uploads spent more memory on that garbage than on the chunks. The
// buffers in use at once are bounded by the calls in flight. The zero
// value is ready to use.
type framePool struct{ p sync.Pool }

// encode returns m as one whole frame (the 4-byte length, the type byte,
// then msgpack) in a buffer of the pool; give it back with put once it
// is written.
func (fp *framePool) encode(m Message) (*bytes.Buffer, error) {
	buf, _ := fp.p.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	buf.Grow(5 + payloadSize(m) + 256)
	buf.Write([]byte{0, 0, 0, 0, byte(m.Type())})
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	err := enc.Encode(m)
	msgpack.PutEncoder(enc)
	if err != nil {
		fp.put(buf)
		return nil, fmt.Errorf("encode message type %d: %w", m.Type(), err)
	}
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[:4], uint32(len(b)-4))
	return buf, nil
}

func (fp *framePool) put(buf *bytes.Buffer) { fp.p.Put(buf) }

// payloadSize is the size of the bulk content m carries, so that a
// fresh buffer is made large enough at once.
func payloadSize(m Message) int {
	switch m := m.(type) {
	case *WriteChunk:
		return len(m.Data)
	case *StoreChunk:
		return len(m.Data)
	case *ChunkMsg:
		return len(m.Data)
	case *FetchSnapResp:
		return len(m.Data)
	}
	return 0
}
