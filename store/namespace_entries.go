package store

// Linking and unlinking names: the entries of directories, the inodes
// they leave behind, and the directories an op changed (its result's
// Dirs).

import "shoal/meta"

// addEntry stores child and links it into parent as name, updating and
// saving parent.
func (n *namespace) addEntry(parent *meta.Inode, name string, child meta.Inode, now int64) error {
	if child.Type == meta.TypeDir {
		child.Parent = parent.Ino
	}
	if err := n.save(child); err != nil {
		return err
	}
	if err := n.putDentry(parent.Ino, name, child); err != nil {
		return err
	}
	if child.Type == meta.TypeDir {
		parent.Nlink++
	}
	parent.MTime, parent.CTime = now, now
	return n.saveDir(*parent)
}

// saveDir saves the directory dir, whose entries changed, and remembers
// it for the op's result.
func (n *namespace) saveDir(dir meta.Inode) error {
	if err := n.save(dir); err != nil {
		return err
	}
	for i := range n.dirs {
		if n.dirs[i].Ino == dir.Ino {
			n.dirs[i] = dir.Attrs()
			return nil
		}
	}
	n.dirs = append(n.dirs, dir.Attrs())
	return nil
}

// removeEntry unlinks name (whose inode is child) from parent, updating and
// saving parent. The child's inode is left for the caller to release.
func (n *namespace) removeEntry(parent *meta.Inode, name string, child meta.Inode, now int64) error {
	if err := n.deleteDentry(parent.Ino, name, child.Ino); err != nil {
		return err
	}
	if child.Type == meta.TypeDir {
		parent.Nlink--
	}
	parent.MTime, parent.CTime = now, now
	return n.saveDir(*parent)
}

// release drops one link to in, which has already been unlinked from its
// parent: a directory goes with everything below it, a file or symlink
// when its last link goes, unless orphan is set: then a file losing its
// last link is kept with Nlink 0 for OpRelease to drop.
func (n *namespace) release(in meta.Inode, orphan bool, now int64) error {
	if in.Type != meta.TypeDir && (in.Nlink > 1 || orphan && in.Type == meta.TypeFile) {
		in.Nlink--
		in.CTime = now
		if in.Nlink == 0 {
			// Kept for the mount that has it open, while it renews.
			if err := n.leaseOrphan(in.Ino, n.clock+int64(meta.DefaultOrphanTTL)); err != nil {
				return err
			}
		}
		return n.save(in)
	}
	if in.Type == meta.TypeDir {
		kids, err := n.children(in.Ino)
		if err != nil {
			return err
		}
		for _, k := range kids {
			c, err := n.get(k.ino)
			if err != nil {
				return err
			}
			if err := n.deleteDentry(in.Ino, k.name, k.ino); err != nil {
				return err
			}
			if err := n.release(c, false, now); err != nil {
				return err
			}
		}
	}
	return n.dropInode(in)
}

// addDir makes the directory name in parent, owned as op says. A caller
// (unless root choosing the owner, as a mount host does) gets what
// mkdir(2) gives: only the permission and sticky bits of mode
// (vfs_prepare_mode), setgid coming from the parent alone.
func (n *namespace) addDir(parent *meta.Inode, name string, mode uint32, op *meta.Op) (meta.Inode, error) {
	ino, err := n.allocIno()
	if err != nil {
		return meta.Inode{}, err
	}
	if c := n.cred; c != nil && !(c.Root && op.Owner) {
		mode &= 0o1777
	}
	d := meta.Inode{Ino: ino, Type: meta.TypeDir, Mode: mode & meta.ModeMask, MTime: op.Time, Nlink: 2,
		ATime: op.Time, CTime: op.Time, Parent: parent.Ino}
	n.initOwner(&d, *parent, op)
	return d, n.addEntry(parent, name, d, op.Time)
}

// makeDirs creates names as a chain of directories below parent and returns
// the deepest one (parent itself when names is empty). Only the write
// permission on parent needs checking first: each directory made below it
// belongs to the caller with mode 0755, or root made it.
func (n *namespace) makeDirs(parent meta.Inode, names []string, op *meta.Op) (meta.Inode, error) {
	for _, name := range names {
		d, err := n.addDir(&parent, name, defaultDirMode, op)
		if err != nil {
			return meta.Inode{}, err
		}
		parent = d
	}
	return parent, nil
}

// delete reports CodeNotDir rather than CodeNotFound when a component above
// the target is a file, as unlink(2) does. Like unlink(2) and rmdir(2)
// (may_delete), it checks permission before the type of the target, and
// both before ENOTEMPTY.
func (n *namespace) delete(op *meta.Op) (meta.Result, error) {
	parts, ok := splitPath(op.Path)
	if !ok || len(parts) == 0 {
		return reject(meta.CodeInvalid)
	}
	parent, target, code, err := n.locateSource(op.Dir, parts)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if code := deleteCode(n.cred, parent, target); code != meta.CodeOK {
		return reject(code)
	}
	switch {
	case op.NotDir && target.Type == meta.TypeDir:
		return reject(meta.CodeIsDir)
	case op.OnlyDir && target.Type != meta.TypeDir:
		return reject(meta.CodeNotDir)
	case target.Type == meta.TypeDir && (!op.Recursive || op.OnlyDir):
		if full, err := n.hasChildren(target.Ino); err != nil || full {
			return meta.Result{Code: meta.CodeNotEmpty}, err
		}
	case target.Type == meta.TypeDir:
		if code, err := n.deleteTreeCode(target); err != nil || code != meta.CodeOK {
			return meta.Result{Code: code}, err
		}
	}
	if err := n.removeEntry(&parent, parts[len(parts)-1], target, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{}, n.release(target, op.Orphan, op.Time)
}
