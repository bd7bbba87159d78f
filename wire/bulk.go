package wire

import (
	"bytes"
	"fmt"
	"io"
	"net"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Bulk is the content a message carries (a chunk, a piece of a snapshot):
// msgpack bin on the wire, like any []byte, so the bytes of a frame do
// not change. What changes is how often they are copied. Encoded into a
// pooled frame, a large Bulk is referred to rather than copied, and the
// frame is written with one vectored write (outFrame.writeTo); decoded from
// a frame (Decode), a Bulk is the frame's own bytes rather than a copy:
// every frame is read into a buffer of its own that nothing reuses. A
// 4 MiB chunk used to be copied into the frame on its way out and out of
// the frame on its way in, each copy into memory just allocated (and so
// zeroed first).
//
// A decoded Bulk shares memory with the frame it came in: whoever
// changes it in place changes nothing else, since the frame is garbage
// once decoded.
type Bulk []byte

// bulkRefMin is the smallest Bulk a frame refers to instead of holding a
// copy: below it, a copy costs less than a vector element.
const bulkRefMin = 16 << 10

// EncodeMsgpack writes b as bin, leaving its bytes out of the frame being
// encoded when it is large enough (see outFrame.ref).
func (b Bulk) EncodeMsgpack(enc *msgpack.Encoder) error {
	if b == nil {
		return enc.EncodeNil()
	}
	f, ok := enc.Writer().(*outFrame)
	if !ok || len(b) < bulkRefMin {
		return enc.EncodeBytes(b)
	}
	if err := enc.EncodeBytesLen(len(b)); err != nil {
		return err
	}
	f.ref(b)
	return nil
}

// DecodeMsgpack reads bin, sharing the frame's bytes when it is decoding
// from one (see Decode), else copying them.
func (b *Bulk) DecodeMsgpack(dec *msgpack.Decoder) error {
	fr, ok := dec.Buffered().(*frameReader)
	if !ok {
		v, err := dec.DecodeBytes()
		*b = v
		return err
	}
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		*b = nil
		return dec.DecodeNil()
	}
	n, err := dec.DecodeBytesLen()
	if err != nil {
		return err
	}
	at := len(fr.b) - fr.Len()
	if n < 0 || n > fr.Len() {
		return fmt.Errorf("bin of %d bytes with %d left in the frame", n, fr.Len())
	}
	*b = Bulk(fr.b[at : at+n : at+n])
	_, err = fr.Seek(int64(n), io.SeekCurrent)
	return err
}

// frameReader is a frame body being decoded: the decoder reads it
// through the bytes.Reader (which it does not buffer, being an
// io.ByteScanner), and a Bulk takes its bytes from b.
type frameReader struct {
	bytes.Reader
	b []byte
}

// Unread and Discard lend the decoder's codecs the bytes not read yet,
// so that an inode is read from them directly (meta's decodeLent).
func (fr *frameReader) Unread() []byte { return fr.b[len(fr.b)-fr.Len():] }
func (fr *frameReader) Discard(n int)  { fr.Seek(int64(n), io.SeekCurrent) }

// outFrame is a whole frame being encoded (the 4-byte length, the type
// byte, then msgpack): its bytes are in buf, except the large Bulk
// contents, which stay where they are and are written from there.
type outFrame struct {
	buf  bytes.Buffer
	refs []bulkRef
}

// bulkRef is content that belongs in the frame after buf's first at
// bytes (and after the refs before it).
type bulkRef struct {
	at   int
	data []byte
}

func (f *outFrame) Write(p []byte) (int, error) { return f.buf.Write(p) }
func (f *outFrame) WriteByte(c byte) error      { return f.buf.WriteByte(c) }

func (f *outFrame) reset() {
	f.buf.Reset()
	clear(f.refs) // drop the references to the content sent
	f.refs = f.refs[:0]
}

// ref places data in the frame at the current end of buf.
func (f *outFrame) ref(data []byte) { f.refs = append(f.refs, bulkRef{f.buf.Len(), data}) }

// size is the frame's length in bytes.
func (f *outFrame) size() int {
	n := f.buf.Len()
	for _, r := range f.refs {
		n += len(r.data)
	}
	return n
}

// writeTo writes the frame to w: with one writev on a TCP connection,
// in pieces elsewhere.
func (f *outFrame) writeTo(w io.Writer) error {
	b := f.buf.Bytes()
	if len(f.refs) == 0 {
		_, err := w.Write(b)
		return err
	}
	v := make(net.Buffers, 0, 2*len(f.refs)+1)
	prev := 0
	for _, r := range f.refs {
		if r.at > prev {
			v = append(v, b[prev:r.at])
		}
		v = append(v, r.data)
		prev = r.at
	}
	if prev < len(b) {
		v = append(v, b[prev:])
	}
	_, err := v.WriteTo(w)
	return err
}
