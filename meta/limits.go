package meta

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// DefaultMetaGroup is the group that keeps the namespace unless a
// cluster names another (--meta-group).
const DefaultMetaGroup = "g1"

// MaxSymlink bounds a symlink's target, like PATH_MAX.
const MaxSymlink = 4096

// MaxRequestID bounds a request ID.
const MaxRequestID = 128

// The bits of a permission mask, as the kernel's MAY_READ, MAY_WRITE and
// MAY_EXEC (search, for a directory).
const (
	MayExec  uint32 = 1
	MayWrite uint32 = 2
	MayRead  uint32 = 4
)

// Attrs returns in without its content (Chunks and Data): what a listing
// or an op's result carries.
func (in Inode) Attrs() Inode {
	in.Chunks, in.Data, in.DataKey = nil, nil, 0
	return in
}

// ChunkListHash names content changed in place by its chunk list (see
// Inode.Hash): the same list always means the same bytes.
func ChunkListHash(chunks []ChunkRef, data []byte) string {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(chunks)))
	h.Write(b[:])
	for _, c := range chunks {
		h.Write(c.Hash[:])
		binary.BigEndian.PutUint64(b[:], uint64(c.Size))
		h.Write(b[:])
	}
	h.Write(data)
	return "chunks:" + hex.EncodeToString(h.Sum(nil))
}
