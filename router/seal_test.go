package router

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"shoal/meta"
	"shoal/secure"
)

func testSealer(t *testing.T, keys ...[]byte) *secure.Sealer {
	t.Helper()
	s, err := secure.NewSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newDataKey(t *testing.T) []byte {
	t.Helper()
	k, err := secure.ParseKey(secure.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// plainText is recognisable content: every chunk of it holds the marker.
func plainText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "secret line %06d|", i)
	}
	return b.Bytes()[:n]
}

// TestSealedAtRest: with a data key no storage node holds a byte of
// content in clear, chunks or inline, and everything reads back; the same
// content is still stored once.
func TestSealedAtRest(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 1<<30)
	key := newDataKey(t)
	s := c.router(func(cfg *Config) { cfg.Sealer = testSealer(t, key); cfg.InlineMax = 32 })
	big := plainText(40 * 16)
	for _, f := range []struct {
		path string
		data []byte
	}{{"/big", big}, {"/copy-of-big", big}, {"/small", []byte("secret line inline")}} {
		if w := do(s, "PUT", "/v1/fs"+f.path, bytes.NewReader(f.data)); w.Code != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s", f.path, w.Code, w.Body)
		}
		if got := readAll(t, s, f.path); !bytes.Equal(got, f.data) {
			t.Fatalf("%s reads back %q", f.path, got)
		}
	}
	a, _ := g1[0].file("/big")
	b, _ := g1[0].file("/copy-of-big")
	for i := range a.Chunks {
		if a.Chunks[i].Hash != b.Chunks[i].Hash || a.Chunks[i].Key == 0 || a.Chunks[i].Size != 16 {
			t.Fatalf("chunk %d: %+v and %+v: identical content must give one sealed chunk", i, a.Chunks[i], b.Chunks[i])
		}
	}
	small, _ := g1[0].file("/small")
	if small.DataKey == 0 || bytes.Contains(small.Data, []byte("secret")) || small.Size != 18 {
		t.Fatalf("inline content kept in clear: %+v", small)
	}
	for _, n := range g1 {
		for _, h := range n.held() {
			d, _ := n.chunk(h)
			if bytes.Contains(d, []byte("secret")) || bytes.Contains(d, []byte("line")) {
				t.Errorf("%s holds chunk %s in clear", n.name, h)
			}
			if meta.HashOf(d) != h {
				t.Errorf("%s: chunk %s is not named by the hash of what is stored", n.name, h)
			}
		}
	}
	if w := do(s, "GET", "/v1/fs/big", nil, "Range", "bytes=100-299"); w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), big[100:300]) {
		t.Fatalf("range read: %d %q", w.Code, w.Body)
	}

	// Another router with the old key second and a new one first reads
	// both and seals new content with the new key.
	next := newDataKey(t)
	rotated := c.router(func(cfg *Config) { cfg.Sealer = testSealer(t, next, key); cfg.InlineMax = 32 })
	if got := readAll(t, rotated, "/big"); !bytes.Equal(got, big) {
		t.Fatal("a router with the old key second cannot read old content")
	}
	if w := do(rotated, "PUT", "/v1/fs/new", bytes.NewReader(plainText(100))); w.Code != http.StatusCreated {
		t.Fatal(w.Code)
	}
	nw, _ := g1[0].file("/new")
	if nw.Chunks[0].Key != secure.KeyID(next) {
		t.Fatalf("new content sealed with key %08x, want the first of the file", nw.Chunks[0].Key)
	}
	// A router without that key says so rather than serve garbage.
	other := c.router(func(cfg *Config) { cfg.Sealer = testSealer(t, newDataKey(t)); cfg.InlineMax = 32 })
	for _, p := range []string{"/big", "/small"} {
		w := do(other, "GET", "/v1/fs"+p, nil)
		if e := decodeError(t, w.Body.Bytes()); w.Code != http.StatusInternalServerError || e.Code != "sealed" || !strings.Contains(e.Message, "--data-key-file") {
			t.Fatalf("%s through a router with another key: %d %s", p, w.Code, w.Body)
		}
	}
}

// TestSealedSplice runs random writes at offsets and truncates on sealed
// content against a reference, inline and chunked.
func TestSealedSplice(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 1, 0) // one member: the test is of content, not of copies
	s := c.router(func(cfg *Config) { cfg.Sealer = testSealer(t, newDataKey(t)); cfg.InlineMax = 24 })
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(nil)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	randomSplices(t, s, rand.Uint64(), 150, func(int, []byte) {})
}
