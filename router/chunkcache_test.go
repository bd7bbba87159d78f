package router

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"shoal/harness"
	"shoal/wire"
)

func getChunks(nodes ...*testNode) int {
	n := 0
	for _, node := range nodes {
		n += len(received[*wire.GetChunk](node))
	}
	return n
}

// A file read again is served from the router's cache without asking its
// group; a copy that does not match its hash never enters the cache, and
// a cached chunk stays right whatever the members hold later.
func TestChunkCache(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	a := c.addNode("a", "g2", "primary", 10, 0)
	b := c.addNode("b", "g2", "replica", 11, 0)
	data := content(8 * 16)
	in := putFileOn(t, mn, "/hot", data, "g2", []*testNode{a, b})
	s := c.router(func(cfg *Config) { cfg.CacheSize = 1 << 20 })
	read := func(what string) {
		t.Helper()
		w := do(s, "GET", "/v1/fs/hot", nil)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
			t.Fatalf("%s: GET = %d, %d bytes, want the file's %d bytes", what, w.Code, w.Body.Len(), len(data))
		}
	}

	// Every member sends garbage: the read fails, and nothing is kept.
	a.garble.Store(true)
	b.garble.Store(true)
	for range 2 {
		if w := do(s, "GET", "/v1/fs/hot", nil); w.Code == http.StatusOK {
			t.Fatalf("GET with every copy garbled: %d", w.Code)
		}
	}
	for _, ch := range in.Chunks {
		if s.hot.has(ch.Hash) {
			t.Fatalf("chunk %s that no member sent intact is in the cache", ch.Hash)
		}
	}
	// The failed reads fetched chunks ahead, and those fetches run on
	// for any read that joins them: a read after the fix that joined one
	// would fail as it does. Wait for them to end first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := harness.WaitFor(ctx, "the garbled reads' chunk fetches to end", func() bool {
		s.hot.mu.Lock()
		defer s.hot.mu.Unlock()
		return len(s.hot.inflight) == 0
	}); err != nil {
		t.Fatal(err)
	}
	// One member is fixed: reads find the good copy, and from the
	// second read on keep it.
	a.garble.Store(false)
	read("first read")
	read("second read")
	before := getChunks(a, b)
	b.garble.Store(false)
	a.garble.Store(true) // what the members hold now does not matter
	b.garble.Store(true)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); read("a read from the cache") }()
	}
	wg.Wait()
	if got := getChunks(a, b) - before; got != 0 {
		t.Fatalf("8 reads of a cached file asked the group for %d chunks, want none", got)
	}
	if hits, misses := s.hot.hits.Load(), s.hot.misses.Load(); hits < 8*int64(len(in.Chunks)) || misses == 0 {
		t.Fatalf("cache hits %d, misses %d", hits, misses)
	}
}

// Reads that miss one chunk at once make one fetch between them.
func TestChunkCacheSharesFetches(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	a := c.addNode("a", "g2", "primary", 10, 0)
	data := content(16)
	putFileOn(t, mn, "/one", data, "g2", []*testNode{a})
	s := c.router(func(cfg *Config) { cfg.CacheSize = 1 << 20 })
	a.getDelay.Store(int64(50e6)) // 50 ms: the reads overlap
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := do(s, "GET", "/v1/fs/one", nil); w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
				t.Errorf("GET = %d", w.Code)
			}
		}()
	}
	wg.Wait()
	if n := getChunks(a); n > 2 {
		t.Fatalf("16 reads at once of one chunk made %d fetches", n)
	}
}

// TestEditedChunkIsKept: a chunk an in-place edit stored is kept in the
// cache, so the next edit of the same chunk (a mount's next flush) reads
// it from there, not from a member; an upload's chunks, and those of a
// file written whole by PATCH, are not kept.
func TestEditedChunkIsKept(t *testing.T) {
	c := newTestCluster(t)
	mn := c.group("g1", 1, 0)[0]
	a := c.addNode("a", "g2", "primary", 10, 0)
	s := c.router(func(cfg *Config) { cfg.CacheSize = 1 << 20 })
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN") // chunks of 16, 16, 16, 2
	if w := do(s, "PUT", "/v1/fs/f", bytes.NewReader(content)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	in, _ := mn.file("/f")
	for _, ch := range in.Chunks {
		if s.hot.has(ch.Hash) {
			t.Fatalf("chunk %s of an upload is in the cache", ch.Hash)
		}
	}
	want := append([]byte(nil), content...)
	for i, off := range []int64{17, 20} {
		data := []byte{'!' + byte(i)}
		copy(want[off:], data)
		before := getChunks(a, mn) // chunks go to either group
		patchRanges(t, s, "/f", -1, []byteRangeData{{off, data}}, -1)
		if got := getChunks(a, mn) - before; i > 0 && got != 0 {
			t.Errorf("the second edit of a chunk read %d chunks from its group, want 0: the first edit's is cached", got)
		}
	}
	if got := readAll(t, s, "/f"); !bytes.Equal(got, want) {
		t.Fatalf("after two edits: %q, want %q", got, want)
	}

	// A file written whole through PATCH reads no old chunk: its chunks
	// are not kept.
	if w := do(s, "PUT", "/v1/fs/g", bytes.NewReader(nil)); w.Code != http.StatusCreated {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	patchRanges(t, s, "/g", -1, []byteRangeData{{0, content[:40]}}, -1)
	g, _ := mn.file("/g")
	for _, ch := range g.Chunks {
		if s.hot.has(ch.Hash) {
			t.Errorf("chunk %s of a file written whole by PATCH is in the cache", ch.Hash)
		}
	}
}
