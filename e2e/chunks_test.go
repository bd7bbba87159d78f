package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
)

// chunkFiles returns the chunk files a node holds: hash → content is
// intact (re-hashed from disk, and checked against the checksum its name
// carries).
func (c *cluster) chunkFiles(p *harness.Proc) map[string]bool {
	c.t.Helper()
	out := map[string]bool{}
	root := filepath.Join(c.DataDir(p), "chunks")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		h, ok := store.ChunkFileHash(d.Name())
		if !ok {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // removed while walking
		}
		x := h.String()
		out[x] = meta.HashOf(b) == h && (d.Name() == x || d.Name() == fmt.Sprintf("%s-%08x", x, meta.ChunkCRC(b)))
		return nil
	})
	return out
}

// chunkFile is the path of chunk h's file on p.
func (c *cluster) chunkFile(p *harness.Proc, h string) (string, error) {
	mh, err := meta.ParseHash(h)
	if err != nil {
		return "", err
	}
	return store.ChunkFile(filepath.Join(c.DataDir(p), "chunks"), mh)
}

// groupNodes lists the started nodes whose names say they belong to group.
func (c *cluster) groupNodes(group string) []*harness.Proc {
	var out []*harness.Proc
	for _, p := range c.Nodes {
		if len(p.Name) > len(group) && p.Name[:len(group)+1] == group+"-" {
			out = append(out, p)
		}
	}
	return out
}

// fileChunks returns the names of the chunks of the file at p, as the
// cluster stores them (sealed, so not the hashes of the content), from
// the admin's op=chunks.
func (c *cluster) fileChunks(p string) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.client().Chunks(ctx, p)
	if err != nil {
		c.t.Fatalf("chunks of %s: %v", p, err)
	}
	out := make([]string, len(cs))
	for i, ch := range cs {
		out[i] = ch.Hash
	}
	return out
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

const testChunk = 64 << 10

// TestFileAcrossGroups: a file of many chunks is spread over two groups,
// round-trips byte for byte, reads at chunk boundaries work, every member
// of a group ends with the group's chunks, and copy, rename and identical
// content add no chunk files.
func TestFileAcrossGroups(t *testing.T) {
	c := startCluster(t, harness.Spec{
		Groups:      []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}},
		RouterFlags: []string{"--chunk-size", fmt.Sprint(testChunk)},
	})
	cl := c.client()
	ctx := context.Background()
	data := randomBytes(1, 40*testChunk+123)
	if _, err := cl.Put(ctx, "/big.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, err := cl.ReadFile(ctx, "/big.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (err %v), want the %d bytes written", len(got), err, len(data))
	}
	for _, off := range []int64{0, testChunk - 1, testChunk, testChunk + 1, 7*testChunk - 3, int64(len(data)) - 5} {
		n := min(int64(testChunk+2), int64(len(data))-off)
		rc, err := cl.GetRange(ctx, "/big.bin", off, n)
		if err != nil {
			t.Fatalf("range %d+%d: %v", off, n, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, data[off:off+n]) {
			t.Fatalf("range %d+%d: got %d bytes (err %v), not the file's", off, n, len(b), err)
		}
	}
	want := map[string]bool{}
	for _, h := range c.fileChunks("/big.bin") {
		want[h] = true
	}
	// Each chunk is in one group, on every member of it once repair ran.
	perGroup := map[string]map[string]bool{}
	for _, g := range []string{"g1", "g2"} {
		nodes := c.groupNodes(g)
		harness.Await(t, 20*time.Second, "every member of "+g+" holding the same intact chunks", func() bool {
			first := c.chunkFiles(nodes[0])
			for _, p := range nodes[1:] {
				if !sameSet(first, c.chunkFiles(p)) {
					return false
				}
			}
			for h, ok := range first {
				if !ok {
					t.Fatalf("%s holds a corrupt chunk %s", nodes[0].Name, h)
				}
			}
			perGroup[g] = first
			return true
		})
	}
	if len(perGroup["g1"]) == 0 || len(perGroup["g2"]) == 0 {
		t.Fatalf("chunks not spread over both groups: g1 holds %d, g2 %d", len(perGroup["g1"]), len(perGroup["g2"]))
	}
	union := map[string]bool{}
	for _, g := range perGroup {
		for h := range g {
			union[h] = true
		}
	}
	if !sameSet(union, want) {
		t.Fatalf("groups hold %d distinct chunks, the file has %d", len(union), len(want))
	}
	t.Logf("%d chunks: %d in g1, %d in g2", len(want), len(perGroup["g1"]), len(perGroup["g2"]))

	// Copy, rename and a second file with the same content add no chunk.
	if err := cl.Copy(ctx, "/big.bin", "/copy.bin"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rename(ctx, "/copy.bin", "/moved.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(ctx, "/same.bin", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(c.groupNodes("g1"), c.groupNodes("g2")...) {
		files := c.chunkFiles(p)
		for h := range files {
			if !want[h] {
				t.Fatalf("%s holds chunk %s that no file has", p.Name, h)
			}
		}
	}
	// The second upload went where the content already was: each chunk
	// is kept by one group only.
	g1, g2 := c.chunkUnion(c.groupNodes("g1")), c.chunkUnion(c.groupNodes("g2"))
	for h := range g1 {
		if g2[h] {
			t.Fatalf("chunk %s is stored in both groups", h)
		}
	}
	got, err = cl.ReadFile(ctx, "/moved.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("moved copy: %d bytes, err %v", len(got), err)
	}
}

// TestHugeFile round-trips a 1 GiB file with the default chunk size, in
// the long mode only (SHOAL_LONG=1).
func TestHugeFile(t *testing.T) {
	if os.Getenv("SHOAL_LONG") == "" {
		t.Skip("set SHOAL_LONG=1 to upload and download 1 GiB")
	}
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}}})
	cl := c.client()
	ctx := context.Background()
	const size = 1 << 30
	src := func() io.Reader { return io.LimitReader(newPattern(7), size) }
	start := time.Now()
	if _, err := cl.Put(ctx, "/huge.bin", src(), size); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	rc, _, err := cl.Get(ctx, "/huge.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h1, h2 := sha256.New(), sha256.New()
	start = time.Now()
	n, err := io.Copy(h1, rc)
	down := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, err %v", n, err)
	}
	io.Copy(h2, src())
	if !bytes.Equal(h1.Sum(nil), h2.Sum(nil)) {
		t.Fatal("1 GiB file read back with different content")
	}
	t.Logf("1 GiB: upload %.0f MB/s, download %.0f MB/s", size/1e6/up.Seconds(), size/1e6/down.Seconds())
}

// pattern is an endless, cheap, reproducible byte stream whose 4 MiB
// chunks all differ.
type pattern struct {
	r *rand.Rand
}

func newPattern(seed uint64) *pattern { return &pattern{rand.New(rand.NewPCG(seed, 0))} }

func (p *pattern) Read(b []byte) (int, error) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := p.r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}
