package router

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/wire"
)

// putFileOn commits a file of data cut into 16-byte chunks, each kept by
// the nodes given for its index, bypassing the upload path: the chunks are
// put on the holders and the file is proposed to the meta group's
// primary mn. It returns the inode as committed.
func putFileOn(t testEnv, mn *testNode, p string, data []byte, group string, holders []*testNode) meta.Inode {
	t.Helper()
	in := meta.Inode{Type: meta.TypeFile, Size: int64(len(data)), Hash: "h"}
	for off := 0; off < len(data); off += 16 {
		chunk := data[off:min(off+16, len(data))]
		h := meta.HashOf(chunk)
		for _, n := range holders {
			n.put(h, chunk)
		}
		in.Chunks = append(in.Chunks, meta.ChunkRef{Hash: h, Size: int64(len(chunk)), Group: group})
	}
	return commitFile(t, mn, p, in)
}

// commitFile writes in's content to the file p through the meta group's
// primary mn, and returns the inode as committed.
func commitFile(t testEnv, mn *testNode, p string, in meta.Inode) meta.Inode {
	t.Helper()
	mn.commit(t, meta.Op{Kind: meta.OpPut, Path: p, File: &in})
	got, ok := mn.file(p)
	if !ok {
		t.Fatalf("%s was committed but cannot be found", p)
	}
	return got
}

func TestDownloadFallsBackAndRepairs(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	good := c.addNode("good", "g2", "primary", 10, 0)
	corrupt := c.addNode("corrupt", "g2", "replica", 11, 0)
	garbled := c.addNode("garbled", "g2", "replica", 12, 0)
	lost := c.addNode("lost", "g2", "replica", 13, 0) // lost its disk: holds nothing
	slow := c.addNode("slow", "g2", "replica", 14, 0)
	rotted := c.addNode("rotted", "g2", "replica", 16, 0)
	// Right bytes, wrong checksum: refused, so the router checks the
	// checksum and not the hash.
	misnamed := c.addNode("misnamed", "g2", "replica", 17, 0)
	c.addDead("dead", "g2", 15)
	corrupt.corrupt.Store(true)
	garbled.garble.Store(true)
	rotted.rot.Store(true)
	misnamed.misname.Store(true)
	slow.hang.Store(true)
	data := content(12 * 16)
	in := putFileOn(t, mn, "/f", data, "g2", []*testNode{good, corrupt, garbled, slow, rotted, misnamed})
	s := c.router(nil)

	w := do(s, "GET", "/v1/fs/f", nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("GET = %d, %d bytes, want the file's %d bytes", w.Code, w.Body.Len(), len(data))
	}
	// Every member that answered not-found, corrupt or wrong bytes before
	// the good copy was found gets that copy back.
	for _, bad := range []*testNode{corrupt, garbled, rotted, misnamed, lost} {
		asked := received[*wire.GetChunk](bad)
		if len(asked) == 0 {
			t.Errorf("%s was never asked: the read order is not spread", bad.name)
		}
		for _, q := range asked {
			harness.Await(t, 5*time.Second, fmt.Sprintf("the repair of chunk %s on %s", q.Hash, bad.name), func() bool {
				for _, sc := range received[*wire.StoreChunk](bad) {
					if sc.Hash == q.Hash && meta.HashOf(sc.Data) == q.Hash {
						return true
					}
				}
				return false
			})
		}
	}
	// A member that only timed out is not sent data it may well hold.
	if got := received[*wire.StoreChunk](slow); len(got) != 0 {
		t.Errorf("the slow member got %d repairs, want none", len(got))
	}
	if len(received[*wire.GetChunk](slow)) == 0 {
		t.Error("the slow member was never tried")
	}
	// Reads spread: the good member did not serve every chunk first.
	if n := len(received[*wire.GetChunk](good)); n != len(in.Chunks) {
		t.Errorf("good member asked %d times, want once per chunk (%d)", n, len(in.Chunks))
	}
}

func TestDownloadLegacyChunksInMetaGroup(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 2, 0)
	data := content(40)
	putFileOn(t, g1[0], "/old", data, "", g1) // written before groups were recorded
	s := c.router(nil)
	if w := do(s, "GET", "/v1/fs/old", nil); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("GET = %d, %q", w.Code, w.Body.Bytes())
	}
}

func TestDownloadRanges(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 2, 0)
	g2 := c.group("g2", 2, 0)
	data := content(72) // chunks [0,16) [16,32) [32,48) [48,64) [64,72)
	in := putFileOn(t, g1[0], "/f", data, "g2", g2)
	in.Chunks[1].Group = "g1" // chunks of one file in two groups
	for _, n := range g1 {
		n.put(in.Chunks[1].Hash, data[16:32])
	}
	commitFile(t, g1[0], "/f", in)
	s := c.router(nil)
	tests := []struct {
		rng        string
		start, end int
	}{
		{"bytes=0-15", 0, 16},   // exactly the first chunk
		{"bytes=16-31", 16, 32}, // exactly a middle chunk
		{"bytes=15-16", 15, 17}, // one byte each side of a boundary
		{"bytes=16-16", 16, 17},
		{"bytes=10-50", 10, 51}, // across three boundaries
		{"bytes=64-", 64, 72},   // the short last chunk
		{"bytes=-8", 64, 72},
		{"bytes=-20", 52, 72},
		{"bytes=71-71", 71, 72},
		{"bytes=30-1000", 30, 72}, // an end past the file
	}
	for _, tt := range tests {
		w := do(s, "GET", "/v1/fs/f", nil, "Range", tt.rng)
		wantCR := fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end-1, len(data))
		if w.Code != http.StatusPartialContent || w.Header().Get("Content-Range") != wantCR ||
			!bytes.Equal(w.Body.Bytes(), data[tt.start:tt.end]) {
			t.Errorf("%s: %d %s %q, want 206 %s %q", tt.rng, w.Code, w.Header().Get("Content-Range"), w.Body.Bytes(), wantCR, data[tt.start:tt.end])
		}
	}
	if w := do(s, "GET", "/v1/fs/f", nil, "Range", "bytes=72-"); w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end = %d, want 416", w.Code)
	}
}

func TestDownloadFailsWhenNoCopyIsLeft(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 2, 0)
	data := content(64)
	in := putFileOn(t, g1[0], "/f", data, "g1", g1)
	for _, n := range g1 { // the third chunk is lost everywhere
		n.drop(in.Chunks[2].Hash)
	}
	hs := httptest.NewServer(c.router(nil))
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/v1/fs/f")
	if err != nil {
		return // cut before the headers went out: as good a signal
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %d bytes and no error, want the connection cut", len(got))
	}
	if len(got) > 32 {
		t.Errorf("read %d bytes, want at most the two chunks before the lost one", len(got))
	}
}
