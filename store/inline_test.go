package store

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// Inline content is kept by put and copy, and dropped when the file is
// replaced by chunked content.
func TestInlineContent(t *testing.T) {
	d := crOpen(t, t.TempDir())
	data := []byte("small file")
	crApply(t, d, meta.Op{Kind: meta.OpPut, Path: "/a", Time: 1, File: &meta.Inode{Type: meta.TypeFile, Size: int64(len(data)), Data: data}}, meta.CodeOK)
	crApply(t, d, meta.Op{Kind: meta.OpCopy, Path: "/a", To: "/b", Time: 2}, meta.CodeOK)
	for _, p := range []string{"/a", "/b"} {
		if in := lookupT(t, d, p); !bytes.Equal(in.Data, data) || len(in.Chunks) != 0 {
			t.Fatalf("%s: data %q chunks %d", p, in.Data, len(in.Chunks))
		}
	}
	h := meta.HashOf([]byte("chunk"))
	crApply(t, d, meta.Op{Kind: meta.OpPut, Path: "/a", Time: 3, File: &meta.Inode{Type: meta.TypeFile, Size: 5, Chunks: []meta.ChunkRef{{Hash: h, Size: 5}}}}, meta.CodeOK)
	if in := lookupT(t, d, "/a"); in.Data != nil || len(in.Chunks) != 1 {
		t.Fatalf("replaced file keeps inline data %q", in.Data)
	}
	// Overwriting a chunked file by copy brings the source's inline data.
	crApply(t, d, meta.Op{Kind: meta.OpCopy, Path: "/b", To: "/a", Time: 4}, meta.CodeOK)
	if in := lookupT(t, d, "/a"); !bytes.Equal(in.Data, data) || len(in.Chunks) != 0 {
		t.Fatalf("copy over a chunked file: data %q chunks %d", in.Data, len(in.Chunks))
	}
}

func lookupT(t *testing.T, d *DB, p string) meta.Inode {
	t.Helper()
	var in meta.Inode
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		in, err = lookupPath(tx, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}
