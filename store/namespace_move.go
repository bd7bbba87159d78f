package store

// Rename, copy and the lookups they share with link: where a source and a
// destination are, what rename(2) allows to replace, and the walk up a
// directory's parents that refuses a directory moved below itself.

import (
	"fmt"

	"shoal/meta"
)

// destination is the target of a rename, copy or link: its parent
// directory and, when the name is taken, the inode it names now.
type destination struct {
	parent meta.Inode
	name   string
	old    meta.Inode
	exists bool
}

// locateTarget resolves the destination path parts (not empty) from the
// inode at. code is CodeNotFound or CodeNotDir when the parent is missing
// or is not a directory, CodeAccess when the walk to it was refused.
func (n *namespace) locateTarget(at uint64, parts []string) (destination, meta.Code, error) {
	chain, code, err := n.walk(at, parts)
	switch {
	case err != nil:
		return destination{}, meta.CodeOK, err
	case code != meta.CodeOK && (code != meta.CodeNotFound || len(chain) != len(parts)):
		return destination{}, code, nil
	}
	t := destination{parent: chain[len(parts)-1], name: parts[len(parts)-1]}
	if code == meta.CodeOK {
		t.old, t.exists = chain[len(parts)], true
	}
	return t, meta.CodeOK, nil
}

// locateSource resolves the path of an inode an op works on (the source
// of a rename, copy or link; the target of a delete or update) from the
// inode at. It must exist; code says why it does not. parent is only
// meaningful when parts is not empty.
func (n *namespace) locateSource(at uint64, parts []string) (parent, src meta.Inode, code meta.Code, err error) {
	chain, code, err := n.walk(at, parts)
	if err != nil || code != meta.CodeOK {
		return meta.Inode{}, meta.Inode{}, code, err
	}
	if len(parts) > 0 {
		parent = chain[len(parts)-1]
	}
	return parent, chain[len(parts)], meta.CodeOK, nil
}

// moveCode checks a rename(2) of src (named in srcDir) to dst in the
// order of vfs_rename: removing the source name (may_delete), then
// removing the name replaced (may_delete, whose type checks follow its
// permission checks) or adding the new one (may_create), then write
// permission on a directory moved to another parent, whose ".." entry
// changes, and last the file system's ENOTEMPTY.
func (n *namespace) moveCode(srcDir, src meta.Inode, dst destination) (meta.Code, error) {
	if code := deleteCode(n.cred, srcDir, src); code != meta.CodeOK {
		return code, nil
	}
	if !dst.exists {
		if code := createCode(n.cred, dst.parent); code != meta.CodeOK {
			return code, nil
		}
	} else if code := deleteCode(n.cred, dst.parent, dst.old); code != meta.CodeOK {
		return code, nil
	}
	switch {
	case dst.exists && src.Type != meta.TypeDir && dst.old.Type == meta.TypeDir:
		return meta.CodeIsDir, nil
	case dst.exists && src.Type == meta.TypeDir && dst.old.Type != meta.TypeDir:
		return meta.CodeNotDir, nil
	case src.Type == meta.TypeDir && srcDir.Ino != dst.parent.Ino && !permits(n.cred, src, meta.MayWrite):
		return meta.CodeAccess, nil
	case dst.exists && src.Type == meta.TypeDir:
		if full, err := n.hasChildren(dst.old.Ino); err != nil || full {
			return meta.CodeNotEmpty, err
		}
	}
	return meta.CodeOK, nil
}

// maxDepth bounds the walk up a directory's parents: a longer chain can
// only be a loop in corrupt records.
const maxDepth = 1 << 16

// within reports whether dir is the directory anc or lies below it,
// walking up dir's parents.
func (n *namespace) within(dir meta.Inode, anc uint64) (bool, error) {
	for range maxDepth {
		if dir.Ino == anc {
			return true, nil
		}
		if dir.Ino == RootIno || dir.Parent == 0 {
			return false, nil
		}
		var err error
		if dir, err = n.get(dir.Parent); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("namespace: directory %d is more than %d levels deep: %w", dir.Ino, maxDepth, meta.ErrCorrupt)
}

// moveTarget is locateTarget for moving or copying src, refusing
// (CodeInvalid) a directory placed inside itself.
func (n *namespace) moveTarget(at uint64, parts []string, src meta.Inode) (destination, meta.Code, error) {
	dst, code, err := n.locateTarget(at, parts)
	if err != nil || code != meta.CodeOK || src.Type != meta.TypeDir {
		return dst, code, err
	}
	if in, err := n.within(dst.parent, src.Ino); err != nil || in {
		return destination{}, meta.CodeInvalid, err
	}
	return dst, meta.CodeOK, nil
}

// rootPaths reports whether both paths of op are resolved from the root,
// so that comparing them says how they nest.
func rootPaths(op *meta.Op) bool { return op.Dir == 0 && op.ToDir == 0 }

func (n *namespace) rename(op *meta.Op) (meta.Result, error) {
	from, ok1 := splitPath(op.Path)
	to, ok2 := splitPath(op.To)
	if !ok1 || !ok2 || len(from) == 0 || len(to) == 0 {
		return reject(meta.CodeInvalid)
	}
	srcParent, src, code, err := n.locateSource(op.Dir, from)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if rootPaths(op) && op.Path == op.To {
		return meta.Result{}, nil
	}
	if rootPaths(op) && src.Type == meta.TypeDir && isUnder(to, from) {
		return reject(meta.CodeInvalid)
	}
	dst, code, err := n.moveTarget(op.ToDir, to, src)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		if op.NoReplace {
			return reject(meta.CodeExists)
		}
		if dst.old.Ino == src.Ino {
			return meta.Result{}, nil // two links to one inode: rename(2) does nothing
		}
	}
	if code, err := n.moveCode(srcParent, src, dst); err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	// Both parents may be one directory; edit a single copy so neither
	// save undoes the other's link count change.
	fromDir := &srcParent
	if srcParent.Ino == dst.parent.Ino {
		fromDir = &dst.parent
	}
	if err := n.removeEntry(fromDir, from[len(from)-1], src, op.Time); err != nil {
		return meta.Result{}, err
	}
	if dst.exists {
		if err := n.removeEntry(&dst.parent, dst.name, dst.old, op.Time); err != nil {
			return meta.Result{}, err
		}
		if err := n.release(dst.old, op.Orphan, op.Time); err != nil {
			return meta.Result{}, err
		}
	}
	src.CTime = op.Time
	if err := n.addEntry(&dst.parent, dst.name, src, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{}, nil
}

// copy rejects the root as destination and a copy onto the source itself
// (like cp(1)) with CodeInvalid. A directory is never copied over an
// existing name, whatever it names.
func (n *namespace) copy(op *meta.Op) (meta.Result, error) {
	from, ok1 := splitPath(op.Path)
	to, ok2 := splitPath(op.To)
	// Every path lies below the root, so copying it is copying a directory
	// into its own subtree.
	if !ok1 || !ok2 || len(from) == 0 || len(to) == 0 {
		return reject(meta.CodeInvalid)
	}
	_, src, code, err := n.locateSource(op.Dir, from)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if rootPaths(op) && (op.Path == op.To || (src.Type == meta.TypeDir && isUnder(to, from))) {
		return reject(meta.CodeInvalid)
	}
	dst, code, err := n.moveTarget(op.ToDir, to, src)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		switch {
		case dst.old.Ino == src.Ino:
			return reject(meta.CodeInvalid)
		case src.Type == meta.TypeDir:
			return reject(meta.CodeExists)
		case dst.old.Type == meta.TypeDir:
			return reject(meta.CodeIsDir)
		}
	}
	if code, err := n.copyCode(src, dst); err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if dst.exists {
		if src.Type == meta.TypeFile && dst.old.Type == meta.TypeFile {
			// Keep the destination's inode, and its mode as cp(1) does.
			f := dst.old
			f.Size, f.Hash, f.Chunks, f.Data, f.DataKey, f.MTime, f.CTime = src.Size, src.Hash, src.Chunks, src.Data, src.DataKey, op.Time, op.Time
			contentChanged(n.cred, &f)
			f.Gen++
			return meta.Result{}, n.save(f)
		}
		// A symlink on either side: the destination becomes a new inode.
		if err := n.removeEntry(&dst.parent, dst.name, dst.old, op.Time); err != nil {
			return meta.Result{}, err
		}
		if err := n.release(dst.old, false, op.Time); err != nil {
			return meta.Result{}, err
		}
	}
	c, err := n.copyTree(src, dst.parent, op)
	if err != nil {
		return meta.Result{}, err
	}
	if err := n.addEntry(&dst.parent, dst.name, c, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: !dst.exists}, nil
}

// copyCode checks a copy of src to dst as cp -r by n.cred would be
// checked: reading everything it copies, then writing the file it
// overwrites in place, or unlinking the symlink it replaces (unlink(2)),
// or adding the new name (may_create).
func (n *namespace) copyCode(src meta.Inode, dst destination) (meta.Code, error) {
	if code, err := n.readTreeCode(src); err != nil || code != meta.CodeOK {
		return code, err
	}
	switch {
	case !dst.exists:
		return createCode(n.cred, dst.parent), nil
	case src.Type == meta.TypeFile && dst.old.Type == meta.TypeFile:
		if !mayContent(n.cred, dst.old, meta.MayWrite) {
			return meta.CodeAccess, nil
		}
		return meta.CodeOK, nil
	}
	return deleteCode(n.cred, dst.parent, dst.old), nil
}

// copyTree copies src (and, for a directory, everything below it) to new
// inodes in parent that share its chunks, and returns the copy of src for
// the caller to link with addEntry, which also saves it. The caller has
// ruled out a destination inside src, so the entries written here never
// land in a directory still to be read. A copy keeps the mode; it keeps
// the owner too when the cluster copies (no Cred), and otherwise belongs
// to the caller, as cp without -p makes it.
func (n *namespace) copyTree(src, parent meta.Inode, op *meta.Op) (meta.Inode, error) {
	ino, err := n.allocIno()
	if err != nil {
		return meta.Inode{}, err
	}
	now := op.Time
	c := meta.Inode{
		Ino: ino, Type: src.Type, Size: src.Size, Mode: src.Mode, Uid: src.Uid, Gid: src.Gid,
		MTime: now, ATime: now, CTime: now, Nlink: 1, Gen: 1,
		Hash: src.Hash, Chunks: src.Chunks, Data: src.Data, DataKey: src.DataKey, Target: src.Target, Rdev: src.Rdev,
	}
	if n.cred != nil {
		n.initOwner(&c, parent, op)
	}
	if src.Type != meta.TypeDir {
		return c, nil
	}
	c.Nlink, c.Gen = 2, 0
	kids, err := n.children(src.Ino)
	if err != nil {
		return meta.Inode{}, err
	}
	for _, k := range kids {
		s, err := n.get(k.ino)
		if err != nil {
			return meta.Inode{}, err
		}
		sc, err := n.copyTree(s, c, op)
		if err != nil {
			return meta.Inode{}, err
		}
		if err := n.addEntry(&c, k.name, sc, now); err != nil {
			return meta.Inode{}, err
		}
	}
	return c, nil
}
