package store

// The names of chunk files (see chunks.go for the directory's format):
// writing and reading them, finding a chunk's file for tools and tests,
// and choosing between two files of one chunk.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"shoal/meta"
)

// crcNameLen is the length of the checksum part of a chunk file's name:
// a dash and 8 hex digits.
const crcNameLen = 9

// chunkName is the name of chunk h's file as c describes it: the hash, and
// the checksum when it has one, in lower-case hex.
func chunkName(h meta.Hash, c chunkInfo) string {
	if c.hasCRC {
		return fmt.Sprintf("%s-%08x", h, c.crc)
	}
	return h.String()
}

// parseChunkName reads a chunk file's name: the hash alone (written before
// checksums were kept) or the hash, a dash and the CRC-32C, each as
// chunkName writes it.
func parseChunkName(name string) (meta.Hash, chunkInfo, bool) {
	var c chunkInfo
	hexLen := 2 * len(meta.Hash{})
	hash := name
	if len(name) == hexLen+crcNameLen && name[hexLen] == '-' {
		v, err := strconv.ParseUint(name[hexLen+1:], 16, 32)
		if err != nil {
			return meta.Hash{}, c, false
		}
		c.crc, c.hasCRC = uint32(v), true
		hash = name[:hexLen]
	}
	h, err := meta.ParseHash(hash)
	return h, c, err == nil && chunkName(h, c) == name
}

// pickCopy reads the two files of chunk h that a and b describe and
// returns the one to index, the other, and whether the other may be
// removed. The better copy is one that holds the chunk under its right
// checksum, then one that holds it under a wrong one (a read renames it),
// then one that holds it under its hash alone, then a corrupt one; a tie
// keeps a. The other goes only if it is corrupt, or holds what the kept
// one holds: a file that could not be read is left where it is.
func (s *ChunkStore) pickCopy(h meta.Hash, a, b chunkInfo) (keep, drop chunkInfo, remove bool) {
	const unread, corrupt = -1, 0
	rank := func(c chunkInfo) int {
		data, err := readFile(s.fs, s.pathOf(h, c))
		defer recycle(data)
		switch {
		case err != nil:
			return unread
		case meta.HashOf(data) != h:
			return corrupt
		case !c.hasCRC:
			return 1
		case meta.ChunkCRC(data) != c.crc:
			return 2
		}
		return 3
	}
	ra, rb := rank(a), rank(b)
	if rb > ra {
		a, b, ra, rb = b, a, rb, ra
	}
	return a, b, rb == corrupt || rb > corrupt && ra > corrupt
}

// ChunkFile returns the path of chunk h's file in the chunk directory
// dir, under either of its names, for tools and tests that look at a
// node's disk; fs.ErrNotExist if there is none.
func ChunkFile(dir string, h meta.Hash) (string, error) {
	x := h.String()
	entries, err := os.ReadDir(filepath.Join(dir, x[:2]))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if got, _, ok := parseChunkName(e.Name()); ok && got == h {
			return filepath.Join(dir, x[:2], e.Name()), nil
		}
	}
	return "", fmt.Errorf("chunk %s in %s: %w", h, dir, fs.ErrNotExist)
}

// ChunkFileHash returns the hash a chunk file's name spells, and whether
// name is a chunk file's name at all (see the top of this file).
func ChunkFileHash(name string) (meta.Hash, bool) {
	h, _, ok := parseChunkName(name)
	return h, ok
}
