package wire

import (
	"bytes"
	"net"
	"reflect"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"shoal/meta"
)

// bulkMessages are the messages that carry content, each with content
// large enough to be referred to rather than copied, and one with none.
func bulkMessages() []Message {
	big := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	h := meta.HashOf([]byte("x"))
	return []Message{
		&ChunkMsg{Data: big(4<<20, 1)},
		&ChunkMsg{Data: big(bulkRefMin, 2)},
		&ChunkMsg{Data: big(bulkRefMin-1, 3)},
		&ChunkMsg{},
		&StoreChunk{Hash: h, Data: big(1<<20+3, 4), Replace: true},
		&WriteChunk{Group: "g2", Hash: h, Data: big(70000, 5)},
		&FetchSnapResp{Name: "serve-1.db", Size: 1 << 30, Data: big(1<<20, 6), Sum: bytes.Repeat([]byte{9}, 32)},
	}
}

// frameBytes returns f as one slice, with the content it refers to.
func frameBytes(f *outFrame) []byte {
	var out bytes.Buffer
	f.writeTo(&out)
	return out.Bytes()
}

// viaTCP writes f to a loopback TCP connection and returns what arrived.
func viaTCP(t *testing.T, f *outFrame) []byte {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		var b bytes.Buffer
		b.ReadFrom(c)
		got <- b.Bytes()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.writeTo(c); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return <-got
}

// Decoded from a frame, content is the frame's own bytes, not a copy,
// and every other field comes out as it went in.
func TestDecodeSharesTheFrame(t *testing.T) {
	for _, m := range bulkMessages() {
		body, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(body)
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: decoded message differs from the one encoded", m)
		}
		data := reflect.ValueOf(got).Elem().FieldByName("Data").Bytes()
		if len(data) == 0 {
			continue
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		if at < start || at+uintptr(len(data)) > start+uintptr(len(body)) {
			t.Errorf("%T: content was copied out of the frame", m)
		}
		if cap(data) != len(data) {
			t.Errorf("%T: content has capacity %d past its %d bytes: an append would write over the frame", m, cap(data), len(data))
		}
	}
}

// Anywhere but Decode, Bulk is plain msgpack bin, decoded into a copy.
func TestBulkElsewhereIsBin(t *testing.T) {
	in := []byte("some content")
	b, err := msgpack.Marshal(Bulk(in))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := msgpack.Marshal(in)
	if !bytes.Equal(b, plain) {
		t.Fatalf("Bulk encodes as %x, []byte as %x", b, plain)
	}
	var out Bulk
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("decoded %q, want %q", out, in)
	}
	b[len(b)-1] = 'X'
	if out[len(out)-1] == 'X' {
		t.Fatal("decoded content shares memory with the encoded bytes")
	}
}
