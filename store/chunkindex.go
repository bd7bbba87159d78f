package store

// Queries over the ChunkStore's in-memory index, and the touch and
// idle-removal calls that garbage collection is built on (see chunks.go for
// why chunks carry a last-used time).

import (
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"time"

	"shoal/meta"
)

// SetLimits sets the capacity and the disk's reserve (see Limits). Chunks
// already stored stay even if they exceed them.
func (s *ChunkStore) SetLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// Limits returns the limits set by SetLimits.
func (s *ChunkStore) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// Usage measures what the node's data takes and what its disk has left.
// A disk that cannot be measured counts as unknown (no limit from it).
func (s *ChunkStore) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usageLocked()
}

func (s *ChunkStore) usageLocked() Usage {
	u := Usage{Chunks: s.used}
	if s.metaUsage != nil {
		u.Meta, u.MetaFree = s.metaUsage()
	}
	if d, err := s.fs.Statfs(s.dir); err == nil {
		u.Disk = d
	}
	return u
}

// Used returns the total size of the chunks present.
func (s *ChunkStore) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Count returns the number of chunks present.
func (s *ChunkStore) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

// Touch marks chunk h as used at now (a time from this process's
// time.Now, which carries a monotonic reading), so that RemoveIfIdle spares
// it for another grace period; the file's mtime follows as a hint. It
// reports false if h is absent.
func (s *ChunkStore) Touch(h meta.Hash, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touchLocked(h, now)
}

// touchLocked marks h used at now if present. If the disk refuses the new
// mtime for a reason other than the file being gone, the index still
// moves: keeping a chunk too long is harmless, collecting it too early is
// not.
func (s *ChunkStore) touchLocked(h meta.Hash, now time.Time) bool {
	c, ok := s.index[h]
	if !ok {
		return false
	}
	if err := s.fs.Chtimes(s.pathOf(h, c), now, now); errors.Is(err, fs.ErrNotExist) {
		s.deleteLocked(h)
		return false
	}
	c.lastUse = now
	s.index[h] = c
	return true
}

// RemoveIfIdle deletes chunk h only if it was last used at or before
// now-idle, and reports whether it did. The check and the delete happen
// under one lock, so a concurrent Put that re-uses h either touches it first
// (and it stays) or finds it gone and writes it again.
func (s *ChunkStore) RemoveIfIdle(h meta.Hash, idle time.Duration, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.index[h]
	if !ok || c.lastUse.After(now.Add(-idle)) {
		return false, nil
	}
	if err := s.removeLocked(h); err != nil {
		return false, err
	}
	return true, nil
}

// Idle returns, sorted, the chunks last used at or before now-idle.
func (s *ChunkStore) Idle(idle time.Duration, now time.Time) []meta.Hash {
	cutoff := now.Add(-idle)
	s.mu.Lock()
	var out []meta.Hash
	for h, c := range s.index {
		if !c.lastUse.After(cutoff) {
			out = append(out, h)
		}
	}
	s.mu.Unlock()
	sortHashes(out)
	return out
}

// Digest summarises the chunk set in 256 buckets by first hash byte. Two
// stores with equal digests hold the same chunks with overwhelming
// probability; where they differ, comparing List of the unequal buckets
// finds the difference without listing everything.
func (s *ChunkStore) Digest() [256]meta.BucketDigest {
	var d [256]meta.BucketDigest
	s.mu.Lock()
	defer s.mu.Unlock()
	for h := range s.index {
		b := &d[h[0]]
		b.Count++
		for i := range h {
			b.Xor[i] ^= h[i]
		}
	}
	return d
}

// List returns, sorted, the chunks whose hash starts with the byte bucket.
func (s *ChunkStore) List(bucket int) []meta.Hash {
	if bucket < 0 || bucket > 255 {
		return nil
	}
	s.mu.Lock()
	var out []meta.Hash
	for h := range s.index {
		if int(h[0]) == bucket {
			out = append(out, h)
		}
	}
	s.mu.Unlock()
	sortHashes(out)
	return out
}

// ListAll returns every chunk present, sorted.
func (s *ChunkStore) ListAll() []meta.Hash {
	s.mu.Lock()
	out := make([]meta.Hash, 0, len(s.index))
	for h := range s.index {
		out = append(out, h)
	}
	s.mu.Unlock()
	sortHashes(out)
	return out
}

// ForEach calls fn with every chunk present, in hash order, stopping at the
// first error. It works on a copy of the list, so fn may call the store
// (Remove, say); chunks stored meanwhile may be missed.
func (s *ChunkStore) ForEach(fn func(meta.Hash) error) error {
	for _, h := range s.ListAll() {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

func sortHashes(hs []meta.Hash) {
	slices.SortFunc(hs, func(a, b meta.Hash) int { return bytes.Compare(a[:], b[:]) })
}
