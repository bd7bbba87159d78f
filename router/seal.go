package router

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"shoal/meta"
	"shoal/secure"
)

// Content at rest. With a data key (Config.Sealer) the router seals every
// chunk and every small file's inline content before it leaves for a
// storage node, and opens them as they come back: storage nodes, their
// disks, logs and snapshots hold sealed bytes only, and never the key.
// Chunks are sealed convergently (secure.Sealer), so identical content is
// still one chunk; a chunk's name is the SHA-256 of its sealed bytes, so
// nodes verify, repair and scrub them without the key. A ChunkRef and an
// inode record the ID of the key that sealed them, so a router whose key
// file lists several keys reads content sealed with any of them.

// sealedPool recycles the buffers sealed chunks are written to, of size
// bytes (a chunk and the sealing's overhead).
type sealedPool struct {
	size int
	p    sync.Pool
}

func (p *sealedPool) get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.size)
}

func (p *sealedPool) put(b []byte) {
	if cap(b) == p.size {
		p.p.Put(&b)
	}
}

// storedForm returns the bytes to store for a chunk of plain content and
// its reference (the group is filled in once it is placed); release
// returns any buffer it took, once the bytes are stored.
func (s *Server) storedForm(plain []byte) (stored []byte, ref meta.ChunkRef, release func()) {
	if s.cfg.Sealer == nil {
		stored, ref = s.storedFormIn(nil, plain)
		return stored, ref, func() {}
	}
	stored, ref = s.storedFormIn(s.sealed.get(), plain)
	return stored, ref, func() { s.sealed.put(stored) }
}

// sameChunk reports whether ref holds the plaintext whose SHA-256 is sum:
// a clear chunk is named by it; a sealed one carries a tag of it, which
// only a router holding the chunk's data key can compare.
func (s *Server) sameChunk(ref meta.ChunkRef, sum meta.Hash) bool {
	if ref.Key == 0 {
		return ref.Hash == sum
	}
	if s.cfg.Sealer == nil || ref.Tag == "" {
		return false
	}
	tag, ok := s.cfg.Sealer.ChunkTag(ref.Key, sum)
	return ok && hmac.Equal([]byte(tag), []byte(ref.Tag))
}

// storedFormIn is storedForm sealing into dst (from its start, growing
// it if it is short) instead of a buffer of the pool.
func (s *Server) storedFormIn(dst, plain []byte) (stored []byte, ref meta.ChunkRef) {
	sl := s.cfg.Sealer
	if sl == nil {
		return plain, meta.ChunkRef{Hash: meta.HashOf(plain), Size: int64(len(plain))}
	}
	dst = dst[:0]
	if cap(dst) < len(plain)+secure.ChunkOverhead {
		dst = make([]byte, 0, len(plain)+secure.ChunkOverhead)
	}
	stored, key := sl.SealChunk(dst, plain)
	tag, _ := sl.ChunkTag(key, sha256.Sum256(plain))
	return stored, meta.ChunkRef{Hash: meta.HashOf(stored), Size: int64(len(plain)), Key: key, Tag: tag}
}

// chunkContent reads a chunk of a file and returns its plain content,
// appended to dst when the chunk is sealed.
func (s *Server) chunkContent(ctx context.Context, ref meta.ChunkRef, dst []byte) ([]byte, error) {
	if ref.Hole() {
		return nil, fmt.Errorf("read of a hole of %d bytes as a chunk (a hole is stored nowhere)", ref.Size)
	}
	var b []byte
	var err error
	if s.hot != nil {
		b, err = s.hot.get(ctx, ref.Hash, s.metrics, func(ctx context.Context) ([]byte, error) { return s.fetchChunk(ctx, ref) })
	} else {
		b, err = s.fetchChunk(ctx, ref)
	}
	if err != nil {
		return nil, err
	}
	if ref.Key != 0 {
		if s.cfg.Sealer == nil {
			return nil, fmt.Errorf("%w: chunk %s is sealed with data key %08x and this router has no --data-key-file", ErrSealed, ref.Hash, ref.Key)
		}
		if b, err = s.cfg.Sealer.OpenChunk(dst, b, ref.Key); err != nil {
			return nil, fmt.Errorf("chunk %s: %w: %w", ref.Hash, ErrSealed, err)
		}
	}
	if int64(len(b)) != ref.Size {
		return nil, fmt.Errorf("chunk %s has %d bytes, the file says %d: %w", ref.Hash, len(b), ref.Size, meta.ErrCorrupt)
	}
	return b, nil
}

// newInline makes the file of a small content kept in its metadata,
// sealed when the router has a data key. Its Hash (the ETag) is the
// SHA-256 of the plaintext, as for any file written whole.
func (s *Server) newInline(plain []byte) *meta.Inode {
	sum := sha256.Sum256(plain)
	in := &meta.Inode{Type: meta.TypeFile, Size: int64(len(plain)), Data: plain, Hash: hex.EncodeToString(sum[:])}
	if s.cfg.Sealer != nil {
		in.Data, in.DataKey = s.cfg.Sealer.SealInline(plain)
	}
	return in
}

// openInline replaces a file's sealed inline content with its plaintext.
func (s *Server) openInline(in *meta.Inode) error {
	if in.DataKey == 0 {
		return nil
	}
	if s.cfg.Sealer == nil {
		return fmt.Errorf("%w: inode %d is sealed with data key %08x and this router has no --data-key-file", ErrSealed, in.Ino, in.DataKey)
	}
	plain, err := s.cfg.Sealer.OpenInline(in.Data, in.DataKey)
	if err != nil {
		return fmt.Errorf("inode %d: %w: %w", in.Ino, ErrSealed, err)
	}
	in.Data, in.DataKey = plain, 0
	return nil
}

// checkKeys fails, before anything is sent, for a file whose content this
// router cannot open: a read that failed halfway would have to cut the
// connection.
func (s *Server) checkKeys(in meta.Inode) error {
	has := func(id uint32) bool { return id == 0 || s.cfg.Sealer != nil && s.cfg.Sealer.Has(id) }
	if !has(in.DataKey) {
		return fmt.Errorf("%w: inode %d is sealed with data key %08x, which this router's --data-key-file does not hold", ErrSealed, in.Ino, in.DataKey)
	}
	for _, c := range in.Chunks {
		if !has(c.Key) {
			return fmt.Errorf("%w: inode %d has chunks sealed with data key %08x, which this router's --data-key-file does not hold", ErrSealed, in.Ino, c.Key)
		}
	}
	return nil
}
