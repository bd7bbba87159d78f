package wire

import (
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
// buffers in use at once are bounded by the calls in flight, and large
// Bulk contents are not copied into them at all (see Bulk). The zero
// value is ready to use.
type framePool struct{ p sync.Pool }

// encode returns m as one whole frame (the 4-byte length, the type byte,
// then msgpack) from the pool; give it back with put once it is written
// (outFrame.writeTo). Until then the frame refers to m's large Bulk
// contents, which must not change.
func (fp *framePool) encode(m Message) (*outFrame, error) {
	f, _ := fp.p.Get().(*outFrame)
	if f == nil {
		f = new(outFrame)
	}
	f.reset()
	if n := payloadSize(m); n < bulkRefMin {
		f.buf.Grow(5 + n + 256)
	}
	f.buf.Write([]byte{0, 0, 0, 0, byte(m.Type())})
	enc := msgpack.GetEncoder()
	enc.Reset(f)
	err := enc.Encode(m)
	msgpack.PutEncoder(enc)
	if err != nil {
		fp.put(f)
		return nil, fmt.Errorf("encode message type %d: %w", m.Type(), err)
	}
	binary.BigEndian.PutUint32(f.buf.Bytes()[:4], uint32(f.size()-4))
	return f, nil
}

func (fp *framePool) put(f *outFrame) {
	f.reset()
	fp.p.Put(f)
}

// payloadSize is the size of the bulk content m carries, so that a
// fresh buffer is made large enough at once when the content is copied
// into it.
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
