package store

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// writeNew leaves a file holding exactly the bytes given, whatever their
// size against the alignment, and writes large ones past the page cache
// where the file system allows it; readFile reads them back the same.
func TestWriteNewKeepsTheBytes(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	anyDirect := false
	type file struct {
		name string
		data []byte
	}
	var written []file
	for _, n := range []int{0, 1, directMin - 1, directMin, directMin + 1, directAlign*100 + 7, 4 << 20, 4<<20 + 4095} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		f, err := os.CreateTemp(dir, "chunk-*")
		if err != nil {
			t.Fatal(err)
		}
		direct, err := writeNew(f, data)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if direct && n < directMin {
			t.Errorf("%d bytes written with O_DIRECT; want a plain write under %d", n, directMin)
		}
		anyDirect = anyDirect || direct
		got, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes written (direct %v): read back %d bytes, different", n, direct, len(got))
		}
		// And read as the store reads a chunk (O_DIRECT from directMin).
		if got, err = readFile(OSFS{}, f.Name()); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes written: readFile gave %d bytes (equal %v), %v", n, len(got), bytes.Equal(got, data), err)
		}
		recycle(got)
		written = append(written, file{f.Name(), data})
	}
	// Read again in the other order, giving each buffer back: a reused
	// buffer, larger or smaller than the last file read, holds the file.
	for i := len(written) - 1; i >= 0; i-- {
		w := written[i]
		got, err := readFile(OSFS{}, w.name)
		if err != nil || !bytes.Equal(got, w.data) {
			t.Fatalf("%d bytes read again into a recycled buffer: %d bytes (equal %v), %v", len(w.data), len(got), bytes.Equal(got, w.data), err)
		}
		recycle(got)
	}
	if !anyDirect {
		t.Logf("NOTE: the file system of %s refused O_DIRECT; only the plain writes were checked", filepath.Dir(dir))
	}
}

// A file not of the operating system (a test's FS) is written plainly.
func TestWriteNewOnOtherFiles(t *testing.T) {
	m := NewMemFS()
	f, err := m.Create("/c", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, directMin*2)
	if direct, err := writeNew(f, data); err != nil || direct {
		t.Fatalf("writeNew on a MemFS file: direct %v, %v; want a plain write", direct, err)
	}
}
