package store

// The ops a POSIX mount needs beyond whole-file puts: create and symlink
// (which, unlike put, never create missing parents), hard links, in-place
// content changes with attributes, and orphans (files unlinked while open).
// Each checks every precondition before its first write, as ApplyOp
// promises.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// MaxSymlink bounds a symlink's target, like PATH_MAX.
const MaxSymlink = 4096

// emptyHash is the content hash of an empty file.
var emptyHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// newChild resolves op.Path as a name to create: its parent must exist and
// be a directory. exists reports whether the name is taken, and old is
// what it names then.
func (n *namespace) newChild(op *Op) (dst destination, code Code, err error) {
	parts, ok := splitPath(op.Path)
	if !ok || len(parts) == 0 {
		return destination{}, CodeInvalid, nil
	}
	return n.locateTarget(op.Dir, parts)
}

func (n *namespace) create(op *Op) (Result, error) {
	dst, code, err := n.newChild(op)
	if err != nil || code != CodeOK {
		return Result{Code: code}, err
	}
	if dst.exists {
		switch {
		case op.Excl:
			return reject(CodeExists)
		case dst.old.Type == TypeDir:
			return reject(CodeIsDir)
		case dst.old.Type == TypeSymlink:
			return reject(CodeExists)
		}
		return Result{Inode: ptr(dst.old.Attrs())}, nil
	}
	ino, err := n.allocIno()
	if err != nil {
		return Result{}, err
	}
	f := Inode{
		Ino: ino, Type: TypeFile, Mode: op.Mode & ModeMask, Nlink: 1, Uid: op.Uid, Gid: op.Gid,
		ATime: op.Time, MTime: op.Time, CTime: op.Time, Gen: 1, Hash: emptyHash,
	}
	if err := n.addEntry(&dst.parent, dst.name, f, op.Time); err != nil {
		return Result{}, err
	}
	return Result{Created: true, Inode: ptr(f)}, nil
}

func (n *namespace) symlink(op *Op) (Result, error) {
	if op.Target == "" || len(op.Target) > MaxSymlink || strings.IndexByte(op.Target, 0) >= 0 {
		return reject(CodeInvalid)
	}
	dst, code, err := n.newChild(op)
	if err != nil || code != CodeOK {
		return Result{Code: code}, err
	}
	if dst.exists {
		return reject(CodeExists)
	}
	ino, err := n.allocIno()
	if err != nil {
		return Result{}, err
	}
	l := Inode{
		Ino: ino, Type: TypeSymlink, Mode: 0o777, Nlink: 1, Uid: op.Uid, Gid: op.Gid,
		Size: int64(len(op.Target)), Target: op.Target, ATime: op.Time, MTime: op.Time, CTime: op.Time,
	}
	if err := n.addEntry(&dst.parent, dst.name, l, op.Time); err != nil {
		return Result{}, err
	}
	return Result{Created: true, Inode: ptr(l)}, nil
}

// link gives the file at Path (usually "/" from Dir: the inode itself) the
// new name To. Directories cannot be linked (CodePerm, as link(2)), and an
// orphan cannot be linked back (CodeNotFound).
func (n *namespace) link(op *Op) (Result, error) {
	from, ok1 := splitPath(op.Path)
	to, ok2 := splitPath(op.To)
	if !ok1 || !ok2 || len(to) == 0 {
		return reject(CodeInvalid)
	}
	_, src, code, err := n.locateSource(op.Dir, from)
	if err != nil || code != CodeOK {
		return Result{Code: code}, err
	}
	switch {
	case src.Type == TypeDir:
		return reject(CodePerm)
	case src.Nlink == 0:
		return reject(CodeNotFound)
	}
	dst, code, err := n.locateTarget(op.ToDir, to)
	if err != nil || code != CodeOK {
		return Result{Code: code}, err
	}
	if dst.exists {
		return reject(CodeExists)
	}
	src.Nlink++
	src.CTime = op.Time
	if err := n.addEntry(&dst.parent, dst.name, src, op.Time); err != nil {
		return Result{}, err
	}
	return Result{Inode: ptr(src.Attrs())}, nil
}

// update changes the inode at Path: its content when op.File is set (a
// file only, and only if its Gen is still op.Gen: the content was
// computed from that version), and the attributes op.Attr names.
func (n *namespace) update(op *Op) (Result, error) {
	parts, ok := splitPath(op.Path)
	if !ok || (op.File == nil && op.Attr == nil) {
		return reject(CodeInvalid)
	}
	_, in, code, err := n.locateSource(op.Dir, parts)
	if err != nil || code != CodeOK {
		return Result{Code: code}, err
	}
	if op.File != nil {
		switch {
		case in.Type == TypeDir:
			return reject(CodeIsDir)
		case in.Type != TypeFile:
			return reject(CodeInvalid)
		case in.Gen != op.Gen:
			return reject(CodeConflict)
		}
		in.Size, in.Hash, in.Chunks, in.Data = op.File.Size, op.File.Hash, op.File.Chunks, op.File.Data
		in.Gen++
		in.MTime = op.Time
	}
	if a := op.Attr; a != nil {
		if a.Valid&SetMode != 0 {
			in.Mode = a.Mode & ModeMask
		}
		if a.Valid&SetUid != 0 {
			in.Uid = a.Uid
		}
		if a.Valid&SetGid != 0 {
			in.Gid = a.Gid
		}
		if a.Valid&SetATime != 0 {
			in.ATime = a.ATime
		}
		if a.Valid&SetMTime != 0 {
			in.MTime = a.MTime
		}
		if a.Valid&SetATimeNow != 0 {
			in.ATime = op.Time
		}
		if a.Valid&SetMTimeNow != 0 {
			in.MTime = op.Time
		}
	}
	in.CTime = op.Time
	if err := n.save(in); err != nil {
		return Result{}, err
	}
	return Result{Inode: ptr(in.Attrs())}, nil
}

// releaseOrphan drops the inode at Path if it is an orphan (Nlink 0). An
// inode that has a name again, or is gone already, is left alone: a
// release is sent once per mount that held the file open, and may be
// retried.
func (n *namespace) releaseOrphan(op *Op) (Result, error) {
	parts, ok := splitPath(op.Path)
	if !ok {
		return reject(CodeInvalid)
	}
	_, in, code, err := n.locateSource(op.Dir, parts)
	if err != nil || code != CodeOK || in.Type != TypeFile || in.Nlink != 0 {
		return Result{}, err // gone already, or not an orphan: nothing to do
	}
	return Result{}, n.dropInode(in)
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
