package bench

import (
	"bytes"
	"io"
	"testing"
)

// TestStreamIndependentOfReads checks that a stream's bytes depend only
// on its seed and offset, whatever sizes it is read in.
func TestStreamIndependentOfReads(t *testing.T) {
	const size = 1000
	whole := content(42, size)
	for _, step := range []int{1, 3, 7, 8, 13, 64, 999, 4096} {
		s := newStream(42, size)
		var got bytes.Buffer
		buf := make([]byte, step)
		for {
			n, err := s.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got.Bytes(), whole) {
			t.Errorf("reading %d bytes at a time gives other content", step)
		}
	}
	if bytes.Equal(content(43, size), whole) {
		t.Error("seeds 42 and 43 give the same content")
	}
	if n, err := newStream(1, 0).Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("empty stream: Read = %d, %v; want 0, EOF", n, err)
	}
}

func BenchmarkStream(b *testing.B) {
	buf := make([]byte, 1<<20)
	s := newStream(1, 1<<62)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		_, _ = s.Read(buf)
	}
}
