package router

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"shoal/wire"
)

// Small files live in their metadata: no chunk is written, no chunk is
// touched, and reads (whole and ranged) come from the inode.
func TestSmallFilesInline(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 64 })
	small := content(64)
	if w := do(s, "PUT", "/v1/fs/small", bytes.NewReader(small)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	// A body of unknown length (chunked encoding) that turns out small.
	if w := do(s, "PUT", "/v1/fs/streamed", io.MultiReader(bytes.NewReader(small[:10]))); w.Code != http.StatusCreated {
		t.Fatalf("PUT without length = %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/small", "/streamed"} {
		in, ok := g1[0].file(p)
		if !ok || len(in.Chunks) != 0 || int64(len(in.Data)) != in.Size || in.Hash == "" {
			t.Fatalf("%s: inode %+v, want inline content", p, in)
		}
	}
	for _, n := range c.groupNodes("g1") {
		if k := len(received[*wire.WriteChunk](n)) + len(received[*wire.TouchChunks](n)); k != 0 {
			t.Fatalf("%s got %d chunk writes or touches for inline files", n.name, k)
		}
	}
	if w := do(s, "GET", "/v1/fs/small", nil); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), small) {
		t.Fatalf("GET = %d %q", w.Code, w.Body)
	}
	w := do(s, "GET", "/v1/fs/small", nil, "Range", "bytes=60-")
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), small[60:]) {
		t.Fatalf("range GET = %d %q", w.Code, w.Body)
	}
	// One byte over the limit goes to chunks.
	if w := do(s, "PUT", "/v1/fs/big", bytes.NewReader(content(65))); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	if in, _ := g1[0].file("/big"); len(in.Chunks) == 0 || in.Data != nil {
		t.Fatalf("65-byte file: %d chunks, %d inline bytes; want chunks only", len(in.Chunks), len(in.Data))
	}
}

// Every proposal carries its request's ID: the client's Idempotency-Key
// when given (so the client's retries apply once), else a random one.
func TestProposalsCarryRequestIDs(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 64 })
	do(s, "PUT", "/v1/fs/a", bytes.NewReader([]byte("x")), "Idempotency-Key", "abc-1")
	do(s, "PUT", "/v1/fs/b", bytes.NewReader([]byte("y")))
	props := received[*wire.Propose](g1[0])
	if len(props) != 2 || props[0].Op.ReqID != "k:abc-1" || !strings.HasPrefix(props[1].Op.ReqID, "r:") {
		t.Fatalf("request IDs of the proposals: %+v", props)
	}
	w := do(s, "PUT", "/v1/fs/c", bytes.NewReader([]byte("z")), "Idempotency-Key", "has space")
	if w.Code != http.StatusBadRequest {
		t.Fatalf("bad Idempotency-Key: %d, want 400", w.Code)
	}
}
