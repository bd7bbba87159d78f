package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ChunkStore keeps chunk content as one file per chunk, named by its hash:
//
//	DIR/ab/abcdef0123...   (two-level fan-out on the first hex byte)
//
// A chunk file is written to a temporary name, fsynced, renamed into place
// and its directory fsynced, so after a crash a chunk file either holds the
// whole verified content or does not exist. Every Get re-hashes the bytes.
type ChunkStore struct {
	dir string
}

// OpenChunkStore opens (creating if needed) the chunk directory dir.
func OpenChunkStore(dir string) (*ChunkStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create chunk directory %s: %w", dir, err)
	}
	return &ChunkStore{dir: dir}, nil
}

func (s *ChunkStore) path(h Hash) string {
	x := h.String()
	return filepath.Join(s.dir, x[:2], x)
}

// ErrNoSpace reports that the disk is full.
var ErrNoSpace = errors.New("no space left on device")

// Put stores data under h after checking that h is its hash. Storing a chunk
// that is already present is a no-op, which makes retries idempotent.
func (s *ChunkStore) Put(h Hash, data []byte) error {
	if HashOf(data) != h {
		return fmt.Errorf("store chunk %s: content does not match its hash: %w", h, ErrCorrupt)
	}
	p := s.path(h)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return wrapSpace(fmt.Errorf("write chunk %s: %w", h, err))
	}
	if err := f.Sync(); err != nil {
		return wrapSpace(fmt.Errorf("sync chunk %s: %w", h, err))
	}
	if err := f.Close(); err != nil {
		return wrapSpace(fmt.Errorf("close chunk %s: %w", h, err))
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("store chunk %s: %w", h, err)
	}
	ok = true
	return syncDir(dir)
}

// Get returns the content of chunk h, verified against its hash.
func (s *ChunkStore) Get(h Hash) ([]byte, error) {
	b, err := os.ReadFile(s.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chunk %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read chunk %s: %w", h, err)
	}
	if HashOf(b) != h {
		return nil, fmt.Errorf("chunk %s on disk: %w", h, ErrCorrupt)
	}
	return b, nil
}

// Has reports whether a file for chunk h exists. It does not verify it.
func (s *ChunkStore) Has(h Hash) bool {
	_, err := os.Stat(s.path(h))
	return err == nil
}

// Remove deletes chunk h; removing an absent chunk is not an error.
func (s *ChunkStore) Remove(h Hash) error {
	err := os.Remove(s.path(h))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove chunk %s: %w", h, err)
	}
	return nil
}

// ForEach calls fn with the hash of every chunk file present.
func (s *ChunkStore) ForEach(fn func(Hash) error) error {
	return filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h, perr := ParseHash(d.Name())
		if perr != nil {
			return nil // temporary files and strangers
		}
		return fn(h)
	})
}

func wrapSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
