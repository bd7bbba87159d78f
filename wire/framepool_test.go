package wire

import (
	"bytes"
	"testing"
)

// A frame from the pool is the length and Encode's body, byte for byte,
// whatever the buffer held before.
func TestPooledFrameIsEncode(t *testing.T) {
	var fp framePool
	for range 2 { // the second time round every buffer is a reused one
		for _, m := range sampleMessages() {
			body, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			h := frameHeader(len(body))
			want := append(h[:], body...)
			buf, err := fp.encode(m)
			if err != nil {
				t.Fatalf("encode %T: %v", m, err)
			}
			if !bytes.Equal(frameBytes(buf), want) {
				t.Errorf("%T: pooled frame differs from the length and Encode's body", m)
			}
			fp.put(buf)
		}
	}
}
