package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

func patch(t *testing.T, s *Server, p string, off int64, data []byte) api.Stat {
	t.Helper()
	w := do(s, "PATCH", fmt.Sprintf("/v1/fs%s?offset=%d", p, off), bytes.NewReader(data))
	if w.Code != http.StatusOK {
		t.Fatalf("PATCH %s at %d (%d bytes) = %d %s", p, off, len(data), w.Code, w.Body)
	}
	return statAnswer(t, w)
}

func truncate(t *testing.T, s *Server, p string, size int64) api.Stat {
	t.Helper()
	w := do(s, "POST", fmt.Sprintf("/v1/fs%s?op=setattr&size=%d", p, size), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("truncate %s to %d = %d %s", p, size, w.Code, w.Body)
	}
	return statAnswer(t, w)
}

func readAll(t *testing.T, s *Server, p string) []byte {
	t.Helper()
	w := do(s, "GET", "/v1/fs"+p, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", p, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

// Random writes at offsets and truncates, up and down, against a byte
// slice: the file reads back the same after every step, and no chunk is
// over the chunk size.
func TestSpliceMatchesAReference(t *testing.T) {
	for _, inline := range []int{0, 24} {
		t.Run(fmt.Sprintf("inline-%d", inline), func(t *testing.T) {
			c := newTestCluster(t)
			mg := c.group("g1", 1, 0) // one member: the test is of content, not of copies
			s := c.router(func(cfg *Config) { cfg.InlineMax = inline })
			if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(nil)); w.Code != http.StatusCreated {
				t.Fatalf("PUT = %d", w.Code)
			}
			seed := rand.Uint64()
			randomSplices(t, s, seed, 300, func(step int, ref []byte) {
				in, _ := mg[0].file("/f")
				for i, ch := range in.Chunks {
					hole := ch.Hole() && ch.Size%16 == 0 && ch.Group == "" && ch.Key == 0 && (i == 0 || !in.Chunks[i-1].Hole())
					if ch.Size <= 0 || !hole && (ch.Size > 16 || ch.Group == "") {
						t.Fatalf("seed %d step %d: chunk %d of %d: %+v", seed, step, i, len(in.Chunks), ch)
					}
				}
				if inline > 0 && (len(in.Chunks) == 0) != (len(ref) <= inline) {
					t.Fatalf("seed %d step %d: %d bytes kept with %d chunks, inline limit %d", seed, step, len(ref), len(in.Chunks), inline)
				}
			})
		})
	}
}

// randomSplices makes steps random writes at offsets and truncates of /f,
// checking after each that it reads as a byte slice changed the same way,
// then calls check with that slice.
func randomSplices(t *testing.T, s *Server, seed uint64, steps int, check func(step int, ref []byte)) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var ref []byte
	for step := range steps {
		var st api.Stat
		what := ""
		if r.IntN(4) == 0 {
			size := int64(r.IntN(200))
			what = fmt.Sprintf("truncate to %d", size)
			st = truncate(t, s, "/f", size)
			if size <= int64(len(ref)) {
				ref = ref[:size]
			} else {
				ref = append(ref, make([]byte, size-int64(len(ref)))...)
			}
		} else {
			off, n := int64(r.IntN(180)), 1+r.IntN(40)
			if r.IntN(3) == 0 {
				// Whole chunks at a chunk boundary: stored as they come.
				off, n = 16*int64(r.IntN(12)), 16*(1+r.IntN(3))
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			what = fmt.Sprintf("write %d bytes at %d", len(data), off)
			st = patch(t, s, "/f", off, data)
			if end := off + int64(len(data)); end > int64(len(ref)) {
				ref = append(ref, make([]byte, end-int64(len(ref)))...)
			}
			copy(ref[off:], data)
		}
		got := readAll(t, s, "/f")
		if !bytes.Equal(got, ref) || st.Size != int64(len(ref)) {
			t.Fatalf("seed %d step %d (%s): read %d bytes (stat %d), want %d\ngot  %x\nwant %x",
				seed, step, what, len(got), st.Size, len(ref), got, ref)
		}
		check(step, ref)
	}
}

// A write inside one chunk reads and rewrites that chunk only, and a
// write of whole chunks at a chunk boundary reads none.
func TestSpliceRewritesOnlyTheChunksItCuts(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(nil)
	data := content(10 * 16)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(data)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	before, _ := mg[0].file("/f")
	gets := len(received[*wire.GetChunk](mg[0]))

	touches := len(received[*wire.TouchChunks](mg[0]))
	patch(t, s, "/f", 5*16+3, []byte("xyz"))
	after, _ := mg[0].file("/f")
	if ts := received[*wire.TouchChunks](mg[0])[touches:]; len(ts) != 1 || len(ts[0].Hashes) != 1 {
		t.Errorf("the write touched %v, want one request for the one new chunk", ts)
	}
	if n := len(received[*wire.GetChunk](mg[0])) - gets; n != 1 {
		t.Errorf("a write inside chunk 5 fetched %d chunks, want 1", n)
	}
	for i := range before.Chunks {
		if same := before.Chunks[i].Hash == after.Chunks[i].Hash; same != (i != 5) {
			t.Errorf("chunk %d: unchanged %v", i, same)
		}
	}
	if after.Gen != before.Gen+1 || !strings.HasPrefix(after.Hash, "chunks:") {
		t.Errorf("after the write: gen %d (was %d), hash %q", after.Gen, before.Gen, after.Hash)
	}

	gets = len(received[*wire.GetChunk](mg[0]))
	patch(t, s, "/f", 2*16, bytes.Repeat([]byte{'a'}, 2*16))
	if n := len(received[*wire.GetChunk](mg[0])) - gets; n != 0 {
		t.Errorf("a write of whole chunks fetched %d chunks, want none", n)
	}
	copy(data[5*16+3:], "xyz")
	copy(data[2*16:], bytes.Repeat([]byte{'a'}, 2*16))
	if got := readAll(t, s, "/f"); !bytes.Equal(got, data) {
		t.Fatalf("content after the writes differs")
	}
}

// Growing a file by truncate or by a write far past its end stores one
// chunk of zeros, however many chunks the zeros span.
func TestSpliceZerosAreHoles(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("abc")))
	held := func() int { return len(mg[0].held()) }
	st := truncate(t, s, "/f", 1000*16+5)
	if st.Size != 1000*16+5 {
		t.Fatalf("size after truncate: %d", st.Size)
	}
	// The old chunk, the first chunk (abc and zeros) and the tail: the
	// 999 chunks of zeros between are a hole.
	if n := held(); n > 3 {
		t.Errorf("extending by 1000 chunks of zeros stored %d chunks", n)
	}
	patch(t, s, "/f", 3000*16, []byte("end"))
	if n := held(); n > 5 {
		t.Errorf("a write 2000 chunks past the end stored %d chunks in all", n)
	}
	want := make([]byte, 3000*16+3)
	copy(want, "abc")
	copy(want[3000*16:], "end")
	if got := readAll(t, s, "/f"); !bytes.Equal(got, want) {
		t.Fatalf("content differs: %d bytes, want %d", len(got), len(want))
	}
	in, _ := mg[0].file("/f")
	if len(in.Chunks) > 5 {
		t.Errorf("the file is %d references: %+v", len(in.Chunks), in.Chunks)
	}
}

// A sparse file of 900 GiB (56 billion chunks of 16 bytes) is a few
// references: truncated up, written in the middle, read anywhere, cut
// back down.
func TestSpliceHugeSparseFile(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("head")))
	const size = 900 << 30
	if st := truncate(t, s, "/f", size); st.Size != size {
		t.Fatalf("size after truncate: %d", st.Size)
	}
	mid := int64(400<<30 + 7)
	patch(t, s, "/f", mid, []byte("middle"))
	in, _ := mg[0].file("/f")
	if in.Size != size || len(in.Chunks) > 6 {
		t.Fatalf("900 GiB sparse file: size %d, %d references: %+v", in.Size, len(in.Chunks), in.Chunks)
	}
	for _, tc := range []struct {
		from, to int64
		want     string
	}{
		{0, 7, "head\x00\x00\x00\x00"},
		{mid - 2, mid + 8, "\x00\x00middle\x00\x00\x00"},
		{size - 3, size - 1, "\x00\x00\x00"},
		{700 << 30, 700<<30 + 4, "\x00\x00\x00\x00\x00"},
	} {
		w := do(s, "GET", "/v1/fs/f", nil, "Range", fmt.Sprintf("bytes=%d-%d", tc.from, tc.to))
		if w.Code != http.StatusPartialContent || w.Body.String() != tc.want {
			t.Errorf("bytes %d-%d: %d %q, want %q", tc.from, tc.to, w.Code, w.Body.Bytes(), tc.want)
		}
	}
	w := do(s, "GET", "/v1/fs/f?op=chunks", nil)
	var list api.ChunkList
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != http.StatusOK {
		t.Fatalf("op=chunks: %d %s", w.Code, w.Body)
	}
	holes := 0
	for _, ch := range list.Chunks {
		if ch.Hole {
			holes++
			if ch.Hash != "" || ch.Group != "" {
				t.Errorf("a hole with a hash or a group: %+v", ch)
			}
		}
	}
	if holes != 2 {
		t.Errorf("op=chunks shows %d holes, want 2 (before and after the middle): %+v", holes, list.Chunks)
	}
	if st := truncate(t, s, "/f", 2); st.Size != 2 || string(readAll(t, s, "/f")) != "he" {
		t.Fatalf("cut back to 2 bytes: %+v", st)
	}
}

// A write that loses a race with another change to the file is computed
// again from the new content, so neither change is lost.
func TestSpliceRetriesAfterAConflict(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 64 })
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("0123456789")))
	raced := false
	mg[0].setOnPropose(func(op meta.Op) {
		if op.Kind != meta.OpUpdate || raced {
			return
		}
		raced = true
		// Another writer changes the file between the router's read of it
		// and its update.
		f, _ := mg[0].file("/f")
		data := []byte("ABCDEFGHIJ")
		mg[0].commit(t, meta.Op{Kind: meta.OpUpdate, Path: "/f", Gen: f.Gen,
			File: &meta.Inode{Size: int64(len(data)), Data: data, Hash: meta.ChunkListHash(nil, data)}})
	})
	patch(t, s, "/f", 8, []byte("xyz"))
	if got := string(readAll(t, s, "/f")); got != "ABCDEFGHxyz" {
		t.Fatalf("after a raced write: %q, want the other change kept and the write applied", got)
	}
	ids := map[string]bool{}
	for _, p := range received[*wire.Propose](mg[0]) {
		if p.Op.Kind == meta.OpUpdate {
			ids[p.Op.ReqID] = true
		}
	}
	if len(ids) != 2 {
		t.Errorf("the write was proposed under %d request IDs, want 2 (one per try)", len(ids))
	}
}

func TestWriteAtRefusesBadRequests(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(func(cfg *Config) { cfg.MaxFileSize = 1000 })
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("abc")))
	do(s, "POST", "/v1/fs/d?op=mkdir", nil)
	for _, tc := range []struct {
		method, target string
		body           string
		status         int
	}{
		{"PATCH", "/v1/fs/f", "x", http.StatusBadRequest},
		{"PATCH", "/v1/fs/f?offset=-1", "x", http.StatusBadRequest},
		{"PATCH", "/v1/fs/f?offset=abc", "x", http.StatusBadRequest},
		{"PATCH", "/v1/fs/f?offset=999", "xy", http.StatusRequestEntityTooLarge},
		{"PATCH", "/v1/fs/missing?offset=0", "x", http.StatusNotFound},
		{"PATCH", "/v1/fs/f?offset=0&at=0", "x", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr&size=-4", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr&mode=999", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr&mode=70000", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr&mtime=yesterday", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=setattr&size=2000", "", http.StatusRequestEntityTooLarge},
		{"POST", "/v1/fs/g?op=symlink", "", http.StatusBadRequest},
		{"POST", "/v1/fs/g?op=create&uid=x", "", http.StatusBadRequest},
		{"POST", "/v1/fs/g?op=mknod", "", http.StatusBadRequest},
		{"POST", "/v1/fs/g?op=mknod&type=file", "", http.StatusBadRequest},
		{"POST", "/v1/fs/g?op=mknod&type=fifo&rdev=3", "", http.StatusBadRequest},
		{"POST", "/v1/fs/g?op=mknod&type=chardev&rdev=x", "", http.StatusBadRequest},
		{"POST", "/v1/fs/f?op=mknod&type=fifo", "", http.StatusConflict},
		{"DELETE", "/v1/fs/f?only=both", "", http.StatusBadRequest},
	} {
		w := do(s, tc.method, tc.target, strings.NewReader(tc.body))
		if w.Code != tc.status {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.target, w.Code, w.Body, tc.status)
		}
	}
	if got := string(readAll(t, s, "/f")); got != "abc" {
		t.Errorf("after the refused requests the file holds %q", got)
	}
	if w := do(s, "HEAD", "/v1/fs/g", nil); w.Code != http.StatusNotFound {
		t.Errorf("a refused op=mknod made /g: HEAD = %d", w.Code)
	}
	if w := do(s, "POST", "/v1/fs/p?op=mknod&type=fifo&mode=0600", nil); w.Code != http.StatusCreated || !strings.Contains(w.Body.String(), `"type": "fifo"`) {
		t.Fatalf("op=mknod&type=fifo = %d %s", w.Code, w.Body)
	}
	w := do(s, "GET", "/v1/fs/p", nil)
	wantCode(t, "GET of a FIFO", w, http.StatusBadRequest, api.CodeInvalidOp)
	held := len(mg[0].held())
	for _, tc := range []struct{ method, target, body string }{
		{"PATCH", "/v1/fs/p?offset=0", "xyz"},
		{"PATCH", "/v1/fs/p?offset=0", strings.Repeat("z", 64)},
		{"POST", "/v1/fs/p?op=setattr&size=100", ""},
	} {
		if w := do(s, tc.method, tc.target, strings.NewReader(tc.body)); w.Code != http.StatusBadRequest {
			t.Errorf("%s %s of a FIFO = %d %s, want 400", tc.method, tc.target, w.Code, w.Body)
		}
	}
	if got := len(mg[0].held()); got != held {
		t.Errorf("writes refused on a FIFO stored %d chunks", got-held)
	}
}

// A write of whole chunks at a chunk boundary is stored as it arrives and
// spliced in by reference; refused (a condition that does not hold), it
// stores nothing.
func TestStreamedWriteAt(t *testing.T) {
	c := newTestCluster(t)
	mg := c.group("g1", 1, 0)
	s := c.router(nil)
	old := content(64)
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(old)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d", w.Code)
	}
	before := len(mg[0].held())
	st := patch(t, s, "/f", 16, bytes.Repeat([]byte("n"), 32))
	want := append(append(bytes.Clone(old[:16]), bytes.Repeat([]byte("n"), 32)...), old[48:]...)
	if got := readAll(t, s, "/f"); !bytes.Equal(got, want) || st.Size != 64 {
		t.Fatalf("after a write of two chunks: %q (size %d)", got, st.Size)
	}
	if got := len(mg[0].held()); got != before+1 { // "nnnn..." twice: one chunk
		t.Fatalf("the write stored %d chunks, want 1", got-before)
	}
	w := do(s, "PATCH", "/v1/fs/f?offset=16", bytes.NewReader(bytes.Repeat([]byte("x"), 32)), "If-Match", `"`+st.Hash+`x"`)
	wantCode(t, "PATCH of whole chunks, If-Match stale", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	if got := len(mg[0].held()); got != before+1 {
		t.Fatalf("a refused write stored %d chunks", got-before-1)
	}
}
