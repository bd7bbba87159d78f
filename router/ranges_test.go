package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

// patchRanges sends one PATCH with ranges= (and truncate= and size= when
// not negative) and returns its stat answer.
func patchRanges(t *testing.T, s *Server, p string, truncate int64, writes []byteRangeData, size int64) api.Stat {
	t.Helper()
	q := url.Values{}
	var list []string
	var body []byte
	for _, w := range writes {
		list = append(list, fmt.Sprintf("%d:%d", w.off, len(w.data)))
		body = append(body, w.data...)
	}
	q.Set("ranges", strings.Join(list, ","))
	if truncate >= 0 {
		q.Set("truncate", fmt.Sprint(truncate))
	}
	if size >= 0 {
		q.Set("size", fmt.Sprint(size))
	}
	w := do(s, "PATCH", "/v1/fs"+p+"?"+q.Encode(), bytes.NewReader(body))
	if w.Code != http.StatusOK {
		t.Fatalf("PATCH %s %s = %d %s", p, q.Encode(), w.Code, w.Body)
	}
	return statAnswer(t, w)
}

type byteRangeData struct {
	off  int64
	data []byte
}

// resize cuts ref or extends it with zeros to size.
func resize(ref []byte, size int64) []byte {
	if size <= int64(len(ref)) {
		return ref[:size]
	}
	return append(ref, make([]byte, size-int64(len(ref)))...)
}

// TestWriteRangesMatchesAReference: a PATCH with a truncate, several
// writes and a final size, each part optional, leaves the file as those
// steps would one by one, and is one change of its generation.
func TestWriteRangesMatchesAReference(t *testing.T) {
	for _, inline := range []int{0, 24} {
		t.Run(fmt.Sprintf("inline-%d", inline), func(t *testing.T) {
			c := newTestCluster(t)
			c.group("g1", 1, 0)
			s := c.router(func(cfg *Config) { cfg.InlineMax = inline })
			if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(nil)); w.Code != http.StatusCreated {
				t.Fatalf("PUT = %d", w.Code)
			}
			seed := rand.Uint64()
			r := rand.New(rand.NewPCG(seed, 2))
			var ref []byte
			gen := uint64(0)
			for step := range 150 {
				truncate, size := int64(-1), int64(-1)
				if r.IntN(3) == 0 {
					truncate = int64(r.IntN(200))
					ref = resize(ref, truncate)
				}
				var writes []byteRangeData
				for range r.IntN(5) {
					off, n := int64(r.IntN(180)), 1+r.IntN(40)
					data := make([]byte, n)
					for i := range data {
						data[i] = byte(r.Uint32())
					}
					writes = append(writes, byteRangeData{off, data})
					ref = resize(ref, max(int64(len(ref)), off+int64(n)))
					copy(ref[off:], data)
				}
				if r.IntN(3) == 0 || truncate < 0 && len(writes) == 0 {
					size = int64(r.IntN(200))
					ref = resize(ref, size)
				}
				st := patchRanges(t, s, "/f", truncate, writes, size)
				got := readAll(t, s, "/f")
				if !bytes.Equal(got, ref) || st.Size != int64(len(ref)) {
					t.Fatalf("seed %d step %d (truncate %d, %d writes, size %d): read %d bytes (stat %d), want %d\ngot  %x\nwant %x",
						seed, step, truncate, len(writes), size, len(got), st.Size, len(ref), got, ref)
				}
				if gen != 0 && st.Gen != gen+1 {
					t.Fatalf("seed %d step %d: generation %d after %d: one PATCH is one change", seed, step, st.Gen, gen)
				}
				gen = st.Gen
			}
		})
	}
}

func TestWriteRangesRefusesBadRequests(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 1, 0)
	s := c.router(func(cfg *Config) { cfg.MaxFileSize = 1000 })
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("abc")))
	for _, tc := range []struct {
		target string
		body   string
		status int
	}{
		{"/v1/fs/f?ranges=", "", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:1&offset=0", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:0", "", http.StatusBadRequest},
		{"/v1/fs/f?ranges=-1:1", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:x", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:1,", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:2", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:1,5:1", "xyz", http.StatusBadRequest},
		{"/v1/fs/f?ranges=999:2", "xy", http.StatusRequestEntityTooLarge},
		{"/v1/fs/f?ranges=0:1&truncate=-1", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:1&size=x", "x", http.StatusBadRequest},
		{"/v1/fs/f?ranges=0:1&size=2000", "x", http.StatusRequestEntityTooLarge},
		{"/v1/fs/f?ranges=0:1&truncate=2000", "x", http.StatusRequestEntityTooLarge},
		{"/v1/fs/f?ranges=" + strings.Repeat("0:1,", MaxRanges) + "0:1", strings.Repeat("x", MaxRanges+1), http.StatusBadRequest},
		{"/v1/fs/missing?ranges=0:1", "x", http.StatusNotFound},
	} {
		w := do(s, "PATCH", tc.target, strings.NewReader(tc.body))
		if w.Code != tc.status {
			t.Errorf("PATCH %s = %d %s, want %d", tc.target, w.Code, w.Body, tc.status)
		}
	}
	if got := string(readAll(t, s, "/f")); got != "abc" {
		t.Errorf("after the refused requests the file holds %q", got)
	}
}

// TestWriteRangesSetsAttributesAfter: the attributes a PATCH with ranges
// names are set after its writes, in the same commit: an explicit mtime
// is kept, not the write's.
func TestWriteRangesSetsAttributesAfter(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 1, 0)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("abc")))
	before := readStat(t, s, "/f")
	mtime := int64(1_000_000_000_000_000_000)
	w := do(s, "PATCH", fmt.Sprintf("/v1/fs/f?ranges=0:1,4:1&mode=600&mtime=%d", mtime), strings.NewReader("XY"))
	if w.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", w.Code, w.Body)
	}
	st := readStat(t, s, "/f")
	if st.Mode != 0o600 || st.MTime.UnixNano() != mtime || st.Gen != before.Gen+1 {
		t.Fatalf("after the PATCH: mode %o mtime %v gen %d (gen was %d): want 600, the given mtime and one change", st.Mode, st.MTime, st.Gen, before.Gen)
	}
	if got := string(readAll(t, s, "/f")); got != "Xbc\x00Y" {
		t.Fatalf("the file holds %q", got)
	}
	if w := do(s, "PATCH", "/v1/fs/f?ranges=0:1&mode=99999", strings.NewReader("Z")); w.Code != http.StatusBadRequest {
		t.Fatalf("PATCH with a bad mode = %d %s, want 400", w.Code, w.Body)
	}
	if got := string(readAll(t, s, "/f")); got != "Xbc\x00Y" {
		t.Fatalf("a refused PATCH changed the file: %q", got)
	}
}

func readStat(t *testing.T, s *Server, p string) api.Stat {
	t.Helper()
	w := do(s, "GET", "/v1/fs"+p+"?op=stat", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("stat %s = %d %s", p, w.Code, w.Body)
	}
	return statAnswer(t, w)
}

// statAnswer decodes the stat answer w carries.
func statAnswer(t *testing.T, w *httptest.ResponseRecorder) api.Stat {
	t.Helper()
	var st api.Stat
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("decode the stat answer %s: %v", w.Body, err)
	}
	return st
}

// TestWriteRangesEmptyAt: a PATCH that says the file is empty at a
// generation (empty_at=, a mount's first flush into a file it created)
// writes into it as into an empty file while it is at that generation,
// and otherwise into the file as it is: a stale claim loses nothing.
// A bad value is refused, and a condition is checked against the file
// as it is.
func TestWriteRangesEmptyAt(t *testing.T) {
	for _, inline := range []int{0, 24} {
		t.Run(fmt.Sprintf("inline-%d", inline), func(t *testing.T) {
			c := newTestCluster(t)
			c.group("g1", 1, 0)
			s := c.router(func(cfg *Config) { cfg.ChunkSize, cfg.InlineMax = 16, inline })
			patch := func(p, q, body string, want int) *httptest.ResponseRecorder {
				t.Helper()
				w := do(s, "PATCH", "/v1/fs"+p+"?"+q, strings.NewReader(body))
				if w.Code != want {
					t.Fatalf("PATCH %s?%s = %d %s, want %d", p, q, w.Code, w.Body, want)
				}
				return w
			}
			if w := do(s, "POST", "/v1/fs/new?op=create", nil); w.Code != http.StatusCreated {
				t.Fatalf("create = %d %s", w.Code, w.Body)
			}
			g := readStat(t, s, "/new").Gen
			patch("/new", fmt.Sprintf("ranges=2:5&empty_at=%d", g), "hello", http.StatusOK)
			if got := string(readAll(t, s, "/new")); got != "\x00\x00hello" {
				t.Fatalf("a write into a file empty at its generation: %q", got)
			}

			// Stale: the file has content at a later generation.
			do(s, "PUT", "/v1/fs/f", strings.NewReader("0123456789abcdefghij"))
			stale := readStat(t, s, "/f").Gen
			patch("/f", "ranges=0:1", "X", http.StatusOK)
			st := statAnswer(t, patch("/f", fmt.Sprintf("ranges=18:4&empty_at=%d", stale), "WXYZ", http.StatusOK))
			if got := string(readAll(t, s, "/f")); got != "X123456789abcdefghWXYZ" || st.Gen != stale+2 {
				t.Fatalf("a write saying the file is empty at an older generation: %q at gen %d, want the file's content kept at gen %d", got, st.Gen, stale+2)
			}

			patch("/f", "ranges=0:1&empty_at=x", "Q", http.StatusBadRequest)
			if got := string(readAll(t, s, "/f")); got != "X123456789abcdefghWXYZ" {
				t.Fatalf("a refused PATCH changed the file: %q", got)
			}
			// A condition is checked against the file as it is, whatever
			// empty_at says (its hash is not an empty file's).
			w := do(s, "PATCH", fmt.Sprintf("/v1/fs/f?ranges=0:1&empty_at=%d", st.Gen), strings.NewReader("Q"), "If-Match", `"`+st.Hash+`"`)
			if w.Code != http.StatusOK {
				t.Fatalf("If-Match with the file's own hash and empty_at = %d %s, want 200", w.Code, w.Body)
			}
			if got := string(readAll(t, s, "/f")); got != "Q123456789abcdefghWXYZ" {
				t.Fatalf("after a conditional PATCH the file holds %q", got)
			}
		})
	}
}

// TestWriteRangesStoreOneVersion: the writes of one PATCH that fall in one
// chunk store that chunk once, with all of them in it, not once per
// write (a mount's flush of scattered writes paid a chunk store, on a
// majority, for each).
func TestWriteRangesStoreOneVersion(t *testing.T) {
	c := newTestCluster(t)
	nodes := c.group("g1", 1, 0)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 0 })
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN") // 50 bytes: chunks of 16, 16, 16, 2
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	before := len(nodes[0].held())
	writes := []byteRangeData{{17, []byte("..")}, {21, []byte("-")}, {25, []byte("__")}, {30, []byte("+")}}
	want := append([]byte(nil), content...)
	for _, w := range writes {
		copy(want[w.off:], w.data)
	}
	st := patchRanges(t, s, "/f", -1, writes, -1)
	if got := readAll(t, s, "/f"); !bytes.Equal(got, want) || st.Size != int64(len(want)) {
		t.Fatalf("after 4 writes into the second chunk: %q (stat %d bytes), want %q", got, st.Size, want)
	}
	if stored := len(nodes[0].held()) - before; stored != 1 {
		t.Errorf("4 writes into one chunk stored %d chunks, want 1: the chunk with all of them", stored)
	}
}

// TestChangesByNumberStartFromTheLast: a change of a file by its number
// after another through this router is computed from what that one
// committed, without reading the file first; a file changed meanwhile by
// other means fails the commit's generation check and is read and
// computed again, so its content is always right.
func TestChangesByNumberStartFromTheLast(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	s := c.router(func(cfg *Config) { cfg.InlineMax = 0 })
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	f, _ := mn.file("/f")
	want := append([]byte(nil), content...)
	lookups := func() int {
		n := 0
		for _, r := range received[*wire.Read](mn) {
			if r.Kind == wire.ReadLookup {
				n++
			}
		}
		return n
	}
	patch := func(target string, off int64, data string) {
		t.Helper()
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		w := do(s, "PATCH", fmt.Sprintf("%s%sranges=%d:%d", target, sep, off, len(data)), strings.NewReader(data))
		if w.Code != http.StatusOK {
			t.Fatalf("PATCH %s = %d %s", target, w.Code, w.Body)
		}
		copy(want[off:], data)
	}
	byNumber := fmt.Sprintf("/v1/fs/?at=%d", f.Ino)
	patch(byNumber, 17, "!")
	before := lookups()
	patch(byNumber, 40, "?!")
	if n := lookups() - before; n != 0 {
		t.Errorf("a change by number after one through this router read the file %d times, want 0", n)
	}
	patch("/v1/fs/f", 3, "path") // by path: this router's note of the file is now stale
	patch(byNumber, 20, "#")
	if got := readAll(t, s, "/f"); !bytes.Equal(got, want) {
		t.Fatalf("after changes by number and by path: %q, want %q", got, want)
	}
}

// TestStaleNoteOfAFile: a change by number computed from this router's
// note of a file whose chunks are gone (the file was rewritten by path
// and its old chunks collected), or whose note names a copy in another
// group than the one committed, is computed again from a read, and
// commits the right content and references.
func TestStaleNoteOfAFile(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	a := c.addNode("a", "g2", "primary", 10, 0)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 0 })
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN")
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	f, _ := mn.file("/f")
	byNumber := fmt.Sprintf("/v1/fs/?at=%d&ranges=", f.Ino)
	patch := func(off int, data string) {
		t.Helper()
		w := do(s, "PATCH", fmt.Sprintf("%s%d:%d", byNumber, off, len(data)), strings.NewReader(data))
		if w.Code != http.StatusOK {
			t.Fatalf("PATCH by number at %d = %d %s", off, w.Code, w.Body)
		}
		copy(content[off:], data)
	}
	check := func(what string) {
		t.Helper()
		if got := readAll(t, s, "/f"); !bytes.Equal(got, content) {
			t.Fatalf("%s: %q, want %q", what, got, content)
		}
	}
	patch(17, "!")

	// Rewritten by path, the old chunks collected: the note's are gone.
	content = []byte("ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedc")
	rewriteAndCollect(t, s, content, mn, a)
	patch(20, "#")
	check("after a change from a note whose chunks are gone")

	// A note naming a copy of a kept chunk in a group that has none.
	patch(1, "1")
	in := *s.edits.get(t.Context(), target{at: f.Ino, path: "/"})
	in.Chunks = append([]meta.ChunkRef(nil), in.Chunks...)
	where, elsewhere := in.Chunks[2].Group, "g1" // chunks go to either group
	if where == "g1" {
		elsewhere = "g2"
	}
	in.Chunks[2].Group = elsewhere
	s.edits.put(t.Context(), target{at: f.Ino, path: "/"}, in.Gen, &in)
	patch(3, "3")
	check("after a change from a note naming another group's copy")
	now, _ := mn.file("/f")
	if now.Chunks[2].Group != where {
		t.Fatalf("the kept chunk is committed in group %q, want %s where it is", now.Chunks[2].Group, where)
	}
}

// rewriteAndCollect rewrites /f by path with content and drops the chunks
// it had from every holder, as a collection after the rewrite would: a
// note this router kept of /f is stale, and names chunks that are gone.
func rewriteAndCollect(t *testing.T, s *Server, content []byte, holders ...*testNode) {
	t.Helper()
	old, _ := holders[0].file("/f")
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content)); w.Code != http.StatusOK {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	for _, ch := range old.Chunks {
		for _, holder := range holders { // chunks go to any group
			if holder.has(ch.Hash) {
				holder.drop(ch.Hash)
			}
		}
	}
}

// TestRetryAfterAStaleNote: a request whose change from a stale note was
// computed again from a read is still recorded under its own ID, so its
// retry, after another write to the same bytes, is answered from that
// record and not applied again over the other write.
func TestRetryAfterAStaleNote(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	a := c.addNode("a", "g2", "primary", 10, 0)
	s := c.router(func(cfg *Config) { cfg.InlineMax = 0 })
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"))); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	f, _ := mn.file("/f")
	byNumber := fmt.Sprintf("/v1/fs/?at=%d&ranges=20:1", f.Ino)
	if w := do(s, "PATCH", byNumber, strings.NewReader("!")); w.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", w.Code, w.Body)
	}
	// The note goes stale: the file rewritten by path, its chunks gone.
	content := []byte("ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedc")
	rewriteAndCollect(t, s, content, mn, a)
	keyed := func() {
		t.Helper()
		if w := do(s, "PATCH", byNumber, strings.NewReader("A"), "Idempotency-Key", "retry-1"); w.Code != http.StatusOK {
			t.Fatalf("keyed PATCH = %d %s", w.Code, w.Body)
		}
	}
	keyed()
	if w := do(s, "PATCH", byNumber, strings.NewReader("B")); w.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", w.Code, w.Body)
	}
	keyed() // the client did not see the first answer
	content[20] = 'B'
	if got := readAll(t, s, "/f"); !bytes.Equal(got, content) {
		t.Fatalf("after a keyed write, another, and the keyed one's retry: %q, want %q (the retry applied again)", got, content)
	}
}
