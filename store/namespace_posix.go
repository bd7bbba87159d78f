package store

// The ops a POSIX mount needs beyond whole-file puts: create and symlink
// (which, unlike put, never create missing parents), hard links, in-place
// content changes with attributes, and orphans (files unlinked while open).
// Each checks every precondition before its first write, as ApplyOp
// promises.

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"shoal/meta"
)

// emptyHash is the content hash of an empty file.
var emptyHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// newChild resolves op.Path as a name to create: its parent must exist and
// be a directory. exists reports whether the name is taken, and old is
// what it names then.
func (n *namespace) newChild(op *meta.Op) (dst destination, code meta.Code, err error) {
	parts, ok := splitPath(op.Path)
	if !ok || len(parts) == 0 {
		return destination{}, meta.CodeInvalid, nil
	}
	return n.locateTarget(op.Dir, parts)
}

func (n *namespace) create(op *meta.Op) (meta.Result, error) {
	dst, code, err := n.newChild(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		// open(2) with O_CREAT opens what is there without the write
		// check on the directory, which applies only to a new name; the
		// mount's open of the file checks what it needs then.
		switch {
		case op.Excl:
			return reject(meta.CodeExists)
		case dst.old.Type == meta.TypeDir:
			return reject(meta.CodeIsDir)
		case dst.old.Type == meta.TypeSymlink:
			return reject(meta.CodeExists)
		}
		return meta.Result{Inode: ptr(dst.old.Attrs())}, nil
	}
	if code := createCode(n.cred, dst.parent); code != meta.CodeOK {
		return reject(code)
	}
	ino, err := n.allocIno()
	if err != nil {
		return meta.Result{}, err
	}
	f := meta.Inode{
		Ino: ino, Type: meta.TypeFile, Mode: op.Mode & meta.ModeMask, Nlink: 1,
		ATime: op.Time, MTime: op.Time, CTime: op.Time, Gen: 1, Hash: emptyHash,
	}
	n.initOwner(&f, dst.parent, op)
	if err := n.addEntry(&dst.parent, dst.name, f, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: true, Inode: ptr(f)}, nil
}

func (n *namespace) symlink(op *meta.Op) (meta.Result, error) {
	if op.Target == "" || len(op.Target) > meta.MaxSymlink || strings.IndexByte(op.Target, 0) >= 0 {
		return reject(meta.CodeInvalid)
	}
	dst, code, err := n.newChild(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	// symlink(2) reports EEXIST before the write check (may_create).
	if dst.exists {
		return reject(meta.CodeExists)
	}
	if code := createCode(n.cred, dst.parent); code != meta.CodeOK {
		return reject(code)
	}
	ino, err := n.allocIno()
	if err != nil {
		return meta.Result{}, err
	}
	l := meta.Inode{
		Ino: ino, Type: meta.TypeSymlink, Mode: 0o777, Nlink: 1,
		Size: int64(len(op.Target)), Target: op.Target, ATime: op.Time, MTime: op.Time, CTime: op.Time,
	}
	n.initOwner(&l, dst.parent, op)
	if err := n.addEntry(&dst.parent, dst.name, l, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: true, Inode: ptr(l)}, nil
}

// mknod makes a FIFO, socket or device node (op.Node) at op.Path, as
// mknod(2): EEXIST first, then the device check (only root makes device
// nodes: CAP_MKNOD), then the write check on the directory.
func (n *namespace) mknod(op *meta.Op) (meta.Result, error) {
	if !op.Node.Special() || op.Rdev != 0 && op.Node != meta.TypeCharDev && op.Node != meta.TypeBlockDev {
		return reject(meta.CodeInvalid)
	}
	dst, code, err := n.newChild(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		return reject(meta.CodeExists)
	}
	if (op.Node == meta.TypeCharDev || op.Node == meta.TypeBlockDev) && n.cred != nil && !n.cred.Root {
		return reject(meta.CodePerm)
	}
	if code := createCode(n.cred, dst.parent); code != meta.CodeOK {
		return reject(code)
	}
	ino, err := n.allocIno()
	if err != nil {
		return meta.Result{}, err
	}
	in := meta.Inode{
		Ino: ino, Type: op.Node, Mode: op.Mode & meta.ModeMask, Nlink: 1, Rdev: op.Rdev,
		ATime: op.Time, MTime: op.Time, CTime: op.Time,
	}
	n.initOwner(&in, dst.parent, op)
	if err := n.addEntry(&dst.parent, dst.name, in, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: true, Inode: ptr(in)}, nil
}

// link gives the file at Path (usually "/" from Dir: the inode itself) the
// new name To. Directories cannot be linked (CodePerm, as link(2)), and an
// orphan cannot be linked back (CodeNotFound). As in link(2), a taken name
// is reported first, then the hard link protection (may_linkat), then
// the write check on the new name's directory (may_create).
func (n *namespace) link(op *meta.Op) (meta.Result, error) {
	from, ok1 := splitPath(op.Path)
	to, ok2 := splitPath(op.To)
	if !ok1 || !ok2 || len(to) == 0 {
		return reject(meta.CodeInvalid)
	}
	_, src, code, err := n.locateSource(op.Dir, from)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	switch {
	case src.Type == meta.TypeDir:
		return reject(meta.CodePerm)
	case src.Nlink == 0:
		return reject(meta.CodeNotFound)
	}
	dst, code, err := n.locateTarget(op.ToDir, to)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		return reject(meta.CodeExists)
	}
	if code := linkCode(n.cred, src); code != meta.CodeOK {
		return reject(code)
	}
	if code := createCode(n.cred, dst.parent); code != meta.CodeOK {
		return reject(code)
	}
	src.Nlink++
	src.CTime = op.Time
	if err := n.addEntry(&dst.parent, dst.name, src, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Inode: ptr(src.Attrs())}, nil
}

// update changes the inode at Path: its content when op.File is set (a
// file only, and only if its Gen is still op.Gen: the content was
// computed from that version), and the attributes op.Attr names.
func (n *namespace) update(op *meta.Op) (meta.Result, error) {
	parts, ok := splitPath(op.Path)
	if !ok || (op.File == nil && op.Attr == nil) {
		return reject(meta.CodeInvalid)
	}
	_, in, code, err := n.locateSource(op.Dir, parts)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if code := n.updateCode(op, in); code != meta.CodeOK {
		return reject(code)
	}
	if op.File != nil {
		in.Size, in.Hash, in.Chunks, in.Data, in.DataKey = op.File.Size, op.File.Hash, op.File.Chunks, op.File.Data, op.File.DataKey
		in.Gen++
		in.MTime = op.Time
		contentChanged(n.cred, &in)
	}
	if op.Attr != nil {
		applyAttr(n.cred, &in, op.Attr, op.Time)
	}
	in.CTime = op.Time
	if err := n.save(in); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Inode: ptr(in.Attrs())}, nil
}

// updateCode checks an OpUpdate of in: the type of a content change,
// then permissions as truncate(2) and write(2) check them (write on the
// file) and as setattr_prepare checks attributes, then the generation.
func (n *namespace) updateCode(op *meta.Op, in meta.Inode) meta.Code {
	if op.File != nil {
		switch {
		case in.Type == meta.TypeDir:
			return meta.CodeIsDir
		case in.Type != meta.TypeFile:
			return meta.CodeInvalid
		case !mayContent(n.cred, in, meta.MayWrite):
			return meta.CodeAccess
		}
	}
	if op.Attr != nil {
		if op.Attr.Valid&meta.SetPublic != 0 && in.Type != meta.TypeDir {
			return meta.CodeNotDir
		}
		if code := attrCode(n.cred, in, op.Attr); code != meta.CodeOK {
			return code
		}
	}
	if op.File != nil && in.Gen != op.Gen {
		return meta.CodeConflict
	}
	return meta.CodeOK
}

// releaseOrphan drops the inode at Path if it is an orphan (Nlink 0). An
// inode that has a name again, or is gone already, is left alone: a
// release is sent once per mount that held the file open, and may be
// retried.
func (n *namespace) releaseOrphan(op *meta.Op) (meta.Result, error) {
	in, found, code, err := n.orphanAt(op)
	if !found || err != nil || code != meta.CodeOK {
		if code == meta.CodeNotFound {
			code = meta.CodeOK // gone already, or not an orphan: nothing to do
		}
		return meta.Result{Code: code}, err
	}
	return meta.Result{}, n.dropInode(in)
}

// orphanAt finds the orphan at op.Path for the mount that holds it open
// (found false, CodeNotFound: gone, or not an orphan) and checks that
// op's Cred may release or keep it: the file's owner, or the trusted
// host that served the open for whoever it was.
func (n *namespace) orphanAt(op *meta.Op) (in meta.Inode, found bool, code meta.Code, err error) {
	parts, ok := splitPath(op.Path)
	if !ok {
		return in, false, meta.CodeInvalid, nil
	}
	_, in, code, err = n.locateSource(op.Dir, parts)
	switch {
	case err != nil || code == meta.CodeAccess:
		return in, false, code, err
	case code != meta.CodeOK || in.Type != meta.TypeFile || in.Nlink != 0:
		return in, false, meta.CodeNotFound, nil
	}
	if c := n.cred; c != nil && !c.Root && !c.Host && c.Uid != in.Uid {
		return in, true, meta.CodePerm, nil
	}
	return in, true, meta.CodeOK, nil
}
