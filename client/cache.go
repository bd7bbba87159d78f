package client

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// The client's cache: blocks of file content, named by the version of
// the file they come from (its ETag, which names the content: the same
// ETag always means the same bytes), so a cached block is never wrong
// and needs no revalidation; what has to be checked is which version a
// path holds, and File's open does that with the conditional request it
// makes anyway (If-None-Match: an unchanged file answers 304 with no
// body). Bounded by bytes, least recently used first out.

// cacheBlock is the size of a cached block, and of the reads a File
// makes: one request per block.
const cacheBlock = 1 << 20

// DefaultCacheSize is the cache of a Client whose Config.CacheSize is 0.
const DefaultCacheSize = 64 << 20

type blockKey struct {
	etag  string
	index int64
}

type cacheEntry struct {
	key  blockKey
	data []byte
}

// pathVersion is what the cache last learned a path holds.
type pathVersion struct {
	etag string
	ino  uint64
	size int64
}

// maxCachedPaths bounds the paths whose version the cache remembers.
const maxCachedPaths = 1 << 16

type contentCache struct {
	max int64

	mu     sync.Mutex
	used   int64
	lru    *list.List // of *cacheEntry, most recent first
	blocks map[blockKey]*list.Element
	paths  map[string]pathVersion

	hits, misses atomic.Int64
}

func newContentCache(max int64) *contentCache {
	if max <= 0 {
		return nil
	}
	return &contentCache{max: max, lru: list.New(), blocks: map[blockKey]*list.Element{}, paths: map[string]pathVersion{}}
}

// get returns a cached block; nil when it is not there (or c is nil).
func (c *contentCache) get(k blockKey) []byte {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.blocks[k]
	if !ok {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	c.lru.MoveToFront(e)
	return e.Value.(*cacheEntry).data
}

// put keeps a block (the caller no longer changes data).
func (c *contentCache) put(k blockKey, data []byte) {
	if c == nil || int64(len(data)) > c.max || k.etag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.blocks[k]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.blocks[k] = c.lru.PushFront(&cacheEntry{key: k, data: data})
	c.used += int64(len(data))
	for c.used > c.max {
		last := c.lru.Back()
		old := last.Value.(*cacheEntry)
		c.lru.Remove(last)
		delete(c.blocks, old.key)
		c.used -= int64(len(old.data))
	}
}

// version returns what path held when last seen.
func (c *contentCache) version(path string) (pathVersion, bool) {
	if c == nil {
		return pathVersion{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.paths[path]
	return v, ok
}

func (c *contentCache) setVersion(path string, v pathVersion) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.paths) >= maxCachedPaths {
		clear(c.paths)
	}
	c.paths[path] = v
}

func (c *contentCache) forget(path string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.paths, path)
}

// CacheStats is what a client's cache did since the client was made.
type CacheStats struct {
	Hits, Misses int64 // blocks found and not found
	Bytes        int64 // bytes held
}

// CacheStats reports the client's cache use.
func (c *Client) CacheStats() CacheStats {
	cc := c.cache
	if cc == nil {
		return CacheStats{}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return CacheStats{Hits: cc.hits.Load(), Misses: cc.misses.Load(), Bytes: cc.used}
}
