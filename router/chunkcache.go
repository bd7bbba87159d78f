package router

// The hot-chunk cache: chunks as their groups store them, kept after a
// read verified them (against the checksum their member sent, or their
// hash), in a least-recently-used list bounded by bytes
// (Config.CacheSize). A chunk is named by its content, so a cached copy
// never goes stale, and only a copy that passed its check ever enters: a
// member's bad copy is never served from here. Reads of
// one chunk that miss at once make one fetch between them, so a hot file
// read by many clients reaches its group once. A chunk is kept from its
// second read on: one pass over a large file (a backup, a copy) leaves
// the hot chunks where they are.

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"

	"shoal/meta"
)

type chunkCache struct {
	max int64

	mu       sync.Mutex
	used     int64
	lru      *list.List // of *cachedChunk, most recent first
	byHash   map[meta.Hash]*list.Element
	inflight map[meta.Hash]*chunkFetch
	// seen holds chunks read once and not kept (at most maxSeen).
	seen map[meta.Hash]struct{}

	hits, misses atomic.Int64
}

// maxSeen bounds the chunks remembered as read once.
const maxSeen = 1 << 16

type cachedChunk struct {
	hash meta.Hash
	data []byte
}

// chunkFetch is one fetch that the reads missing the same chunk share.
type chunkFetch struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(max int64) *chunkCache {
	if max <= 0 {
		return nil
	}
	return &chunkCache{max: max, lru: list.New(), byHash: map[meta.Hash]*list.Element{},
		inflight: map[meta.Hash]*chunkFetch{}, seen: map[meta.Hash]struct{}{}}
}

// get returns the stored bytes of the chunk h, from the cache or from
// fetch, which must return bytes verified against h. The bytes returned
// are shared: callers must not change them.
func (c *chunkCache) get(ctx context.Context, h meta.Hash, m *metrics, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.byHash[h]; ok {
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		c.hits.Add(1)
		m.chunkCache(true)
		return e.Value.(*cachedChunk).data, nil
	}
	f, joined := c.inflight[h]
	keep := false
	if !joined {
		f = &chunkFetch{done: make(chan struct{})}
		c.inflight[h] = f
		if _, keep = c.seen[h]; !keep {
			if len(c.seen) >= maxSeen {
				clear(c.seen)
			}
			c.seen[h] = struct{}{}
		}
	}
	c.mu.Unlock()
	c.misses.Add(1)
	m.chunkCache(false)
	if joined {
		select {
		case <-f.done:
			return f.data, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// The fetch is shared: one reader going away must not fail the
	// others, so it runs on for them (each member call has its deadline).
	f.data, f.err = fetch(context.WithoutCancel(ctx))
	c.mu.Lock()
	delete(c.inflight, h)
	if f.err == nil && keep {
		delete(c.seen, h)
		c.add(h, f.data, m)
	}
	c.mu.Unlock()
	close(f.done)
	return f.data, f.err
}

// keep keeps data, the stored bytes of chunk h known intact (this router
// just stored them), as if read twice.
func (c *chunkCache) keep(h meta.Hash, data []byte, m *metrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, h)
	c.add(h, data, m)
}

// add keeps data under h, dropping the least recently used past max.
// The caller holds c.mu.
func (c *chunkCache) add(h meta.Hash, data []byte, m *metrics) {
	if int64(len(data)) > c.max {
		return
	}
	if _, ok := c.byHash[h]; ok {
		return
	}
	c.byHash[h] = c.lru.PushFront(&cachedChunk{hash: h, data: data})
	c.used += int64(len(data))
	for c.used > c.max {
		last := c.lru.Back()
		old := last.Value.(*cachedChunk)
		c.lru.Remove(last)
		delete(c.byHash, old.hash)
		c.used -= int64(len(old.data))
	}
	m.chunkCacheBytes(c.used)
}

// has reports whether h is cached (for tests).
func (c *chunkCache) has(h meta.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byHash[h]
	return ok
}
