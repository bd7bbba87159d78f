package wire

import (
	"bytes"
	"testing"
)

// A frame from the pool is the length and Encode's body, byte for byte,
// whatever the buffer held before, also when it refers to large content
// instead of copying it; such a frame is written with a vectored write to
// a TCP connection, in pieces to anything else, the same bytes either way.
func TestPooledFrameIsEncode(t *testing.T) {
	var fp framePool
	samples := sampleMessages()
	for round := range 2 { // the second time round every buffer is a reused one
		for i, m := range append(samples, bulkMessages()...) {
			body, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			h := frameHeader(len(body))
			want := append(h[:], body...)
			f, err := fp.encode(m)
			if err != nil {
				t.Fatalf("encode %T: %v", m, err)
			}
			if f.size() != len(want) {
				t.Errorf("%T: frame size %d, want %d", m, f.size(), len(want))
			}
			if !bytes.Equal(frameBytes(f), want) {
				t.Errorf("%T: pooled frame differs from the length and Encode's body", m)
			}
			if round == 0 && i >= len(samples) && !bytes.Equal(viaTCP(t, f), want) {
				t.Errorf("%T: frame written to a TCP connection differs from the length and Encode's body", m)
			}
			fp.put(f)
		}
	}
}
