package store

// Permission checks, made as the Linux kernel makes them on a local file
// system (generic_permission, may_lookup, may_create, may_delete,
// may_linkat in fs/namei.c; setattr_prepare in fs/attr.c), so a program
// on a mount sees the errno a local disk would give: CodeAccess (EACCES)
// when a mode bit is missing, CodePerm (EPERM) when only the owner or
// root may act. Each op and read acts for a Cred; a nil Cred is the
// cluster itself and passes every check, so a cluster run without
// security behaves as before.
//
// One rule has no kernel counterpart. A request may name an inode by
// number (Op.Dir, Op.ToDir) instead of by a path walked from the root, so
// a caller could guess the number of a file below a directory it may not
// search. Such an anchor must be reachable: a directory when the caller
// may search every directory above it, a file when one of its names is in
// a directory the caller may search and reach, an orphan only by its
// owner. A trusted mount host (Cred.Host) is exempt: its kernel walked
// the path before it sent the number.

import (
	"fmt"

	"shoal/meta"
)

const (
	modeSetuid    = 0o4000
	modeSetgid    = 0o2000
	modeSticky    = 0o1000
	modeGroupExec = 0o010
	modeAnyExec   = 0o111
)

// inGroup reports whether gid is c's group or one of its supplementary
// groups (in_group_p).
func inGroup(c *meta.Cred, gid uint32) bool {
	if c.Gid == gid {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// classBits returns the rwx bits of in's mode that apply to c: the
// owner's when c owns in, else the group's when c is in in's group, else
// the others'. As on Linux, an owner gets only the owner's bits even where
// group or others have more.
func classBits(c *meta.Cred, in meta.Inode) uint32 {
	switch {
	case c.Uid == in.Uid:
		return in.Mode >> 6 & 7
	case inGroup(c, in.Gid):
		return in.Mode >> 3 & 7
	}
	return in.Mode & 7
}

// permits reports whether c may access in for want, a mask of MayRead,
// MayWrite and MayExec (generic_permission).
func permits(c *meta.Cred, in meta.Inode, want uint32) bool {
	switch {
	case c == nil:
		return true
	case c.Root:
		// CAP_DAC_OVERRIDE grants everything but executing a file that
		// no execute bit allows anyone to execute.
		return want&meta.MayExec == 0 || in.Type == meta.TypeDir || in.Mode&modeAnyExec != 0
	}
	return want&^classBits(c, in) == 0
}

// mayContent is permits for reading or writing a file's content. A
// trusted mount host acting for a file's owner may do both whatever the
// mode, as an NFS server allows: a program that creates a file 0444 keeps
// writing it through the descriptor it opened, which a local kernel never
// checks again but the store sees as separate writes.
func mayContent(c *meta.Cred, in meta.Inode, want uint32) bool {
	if c != nil && c.Host && c.Uid == in.Uid && in.Type == meta.TypeFile && want&meta.MayExec == 0 {
		return true
	}
	return permits(c, in, want)
}

// owns reports whether c may act as in's owner (inode_owner_or_capable):
// it is the owner, or root (CAP_FOWNER).
func owns(c *meta.Cred, in meta.Inode) bool {
	return c == nil || c.Root || c.Uid == in.Uid
}

// createCode says whether c may add a name to dir (may_create): it needs
// write and search permission there.
func createCode(c *meta.Cred, dir meta.Inode) meta.Code {
	if !permits(c, dir, meta.MayWrite|meta.MayExec) {
		return meta.CodeAccess
	}
	return meta.CodeOK
}

// deleteCode says whether c may remove victim's name from dir
// (may_delete, before the type checks each caller makes after it): write
// and search permission on dir, and in a sticky directory (/tmp) only the
// owner of the victim or of the directory, or root, may remove a name
// (check_sticky: EPERM).
func deleteCode(c *meta.Cred, dir, victim meta.Inode) meta.Code {
	if !permits(c, dir, meta.MayWrite|meta.MayExec) {
		return meta.CodeAccess
	}
	if dir.Mode&modeSticky != 0 && !owns(c, victim) && !owns(c, dir) {
		return meta.CodePerm
	}
	return meta.CodeOK
}

// linkCode says whether c may give src another name (may_linkat with
// fs.protected_hardlinks=1, the default): the owner may, and others only
// a regular file that is neither setuid nor setgid-executable and that
// they may both read and write. This keeps a user from pinning a
// privileged file that its owner then deletes or fixes.
func linkCode(c *meta.Cred, src meta.Inode) meta.Code {
	if owns(c, src) {
		return meta.CodeOK
	}
	safe := src.Type == meta.TypeFile && src.Mode&modeSetuid == 0 &&
		src.Mode&(modeSetgid|modeGroupExec) != modeSetgid|modeGroupExec &&
		permits(c, src, meta.MayRead|meta.MayWrite)
	if !safe {
		return meta.CodePerm
	}
	return meta.CodeOK
}

// killPrivs is the mode in keeps when c changes its content or owner
// (setattr_should_drop_suidgid, setattr_should_drop_sgid): setuid goes,
// and setgid when group execute is set. Without group execute, setgid
// marks mandatory locking rather than a privilege, and stays only when c
// is in in's group or root: since Linux 6.2 a caller outside the group
// drops it, as chmod(2) would not let that caller set it.
func killPrivs(c *meta.Cred, in meta.Inode) uint32 {
	mode := in.Mode &^ modeSetuid
	if mode&modeGroupExec != 0 || c != nil && !c.Root && !inGroup(c, in.Gid) {
		mode &^= modeSetgid
	}
	return mode
}

// contentChanged applies file_remove_privs to a file whose content c
// changes: anyone but root (CAP_FSETID) drops the setuid and setgid
// bits (see killPrivs), so writing a setuid program never leaves one
// that runs the new content with its owner's rights. The cluster itself
// (nil) keeps them.
func contentChanged(c *meta.Cred, f *meta.Inode) {
	if c != nil && !c.Root {
		f.Mode = killPrivs(c, *f)
	}
}

// initOwner sets the owner of in, a new inode in parent, for op (Linux
// inode_init_owner). Without a Cred, op.Uid and op.Gid own it; a Root
// Cred with op.Owner chose them too. Otherwise the caller owns it, with
// the group of a setgid parent, whose bit a new directory inherits, or
// else the caller's group. A file made setgid-executable in a setgid
// parent whose group the caller is not in loses the bit
// (mode_strip_sgid): it would run with a group the caller never had.
func (n *namespace) initOwner(in *meta.Inode, parent meta.Inode, op *meta.Op) {
	c := n.cred
	if c == nil || c.Root && op.Owner {
		in.Uid, in.Gid = op.Uid, op.Gid
		return
	}
	in.Uid, in.Gid = c.Uid, c.Gid
	if parent.Mode&modeSetgid == 0 {
		return
	}
	in.Gid = parent.Gid
	switch {
	case in.Type == meta.TypeDir:
		in.Mode |= modeSetgid
	case in.Mode&(modeSetgid|modeGroupExec) == modeSetgid|modeGroupExec && !c.Root && !inGroup(c, in.Gid):
		in.Mode &^= modeSetgid
	}
}

// anchorCode says whether n.cred may reach in, an inode a request names
// by number (see the top of this file). The root is always reachable,
// and root and trusted mount hosts reach everything.
func (n *namespace) anchorCode(in meta.Inode) (meta.Code, error) {
	c := n.cred
	if c == nil || c.Root || c.Host || in.Ino == RootIno {
		return meta.CodeOK, nil
	}
	if in.Type == meta.TypeDir {
		return n.reachCode(in)
	}
	found, named := false, false
	err := n.eachLink(in.Ino, func(l link) (bool, error) {
		named = true
		dir, err := n.get(l.parent)
		if err != nil || !permits(c, dir, meta.MayExec) {
			return true, err
		}
		code, err := n.reachCode(dir)
		found = code == meta.CodeOK
		return !found, err
	})
	switch {
	case err != nil:
		return meta.CodeOK, err
	case found, !named && c.Uid == in.Uid:
		return meta.CodeOK, nil
	}
	return meta.CodeAccess, nil
}

// reachCode says whether n.cred may search every directory above dir,
// up to the root: the walk a path from the root to dir would make.
func (n *namespace) reachCode(dir meta.Inode) (meta.Code, error) {
	for range maxDepth {
		if dir.Ino == RootIno {
			return meta.CodeOK, nil
		}
		if dir.Parent == 0 {
			return meta.CodeAccess, nil // cut off from the root: nobody's path leads here
		}
		var err error
		if dir, err = n.get(dir.Parent); err != nil {
			return meta.CodeOK, err
		}
		if !permits(n.cred, dir, meta.MayExec) {
			return meta.CodeAccess, nil
		}
	}
	return meta.CodeOK, fmt.Errorf("namespace: directory %d is more than %d levels deep: %w", dir.Ino, maxDepth, meta.ErrCorrupt)
}

// attrCode checks the attributes a changes on in, in the order of
// setattr_prepare: chown(2) (the owner may only "change" the uid to its
// own), chgrp (the owner may pick its own group or any group it is in),
// chmod(2), explicit times of utimensat(2) and a directory's public
// flag (the owner only), then setting both times to now, which whoever
// may write the file may do.
func attrCode(c *meta.Cred, in meta.Inode, a *meta.SetAttr) meta.Code {
	if c == nil || c.Root {
		return meta.CodeOK
	}
	owner := c.Uid == in.Uid
	switch {
	case a.Valid&meta.SetUid != 0 && !(owner && a.Uid == in.Uid):
		return meta.CodePerm
	case a.Valid&meta.SetGid != 0 && !(owner && (a.Gid == in.Gid || inGroup(c, a.Gid))):
		return meta.CodePerm
	case a.Valid&meta.SetMode != 0 && !owner && !killsPrivs(c, in, a):
		return meta.CodePerm
	case a.Valid&(meta.SetATime|meta.SetMTime|meta.SetPublic) != 0 && !owner:
		return meta.CodePerm
	case a.Valid&(meta.SetATimeNow|meta.SetMTimeNow) != 0 && !owner && !permits(c, in, meta.MayWrite):
		return meta.CodeAccess
	}
	return meta.CodeOK
}

// killsPrivs says a's mode only clears the setuid or setgid bit of in,
// a file c may write: what a mount host's kernel asks when someone who
// is not the owner writes or truncates it (file_remove_privs, before the
// data arrives), which writing the content here would do anyway.
func killsPrivs(c *meta.Cred, in meta.Inode, a *meta.SetAttr) bool {
	mode := a.Mode & meta.ModeMask
	cleared := in.Mode &^ mode
	return in.Type == meta.TypeFile && mode&^in.Mode == 0 && cleared != 0 &&
		cleared&^(modeSetuid|modeSetgid) == 0 && mayContent(c, in, meta.MayWrite)
}

// applyAttr sets the attributes a names on in, which attrCode allowed.
// A new owner or group of anything but a directory drops setuid and
// setgid-executable (chown(2), for root too since Linux 2.2.13), and
// setgid for a caller outside the file's group (see killPrivs), unless
// the same change sets the mode, as a mount host's kernel does after
// computing the cleared mode itself.
func applyAttr(c *meta.Cred, in *meta.Inode, a *meta.SetAttr, now int64) {
	if a.Valid&(meta.SetUid|meta.SetGid) != 0 && in.Type != meta.TypeDir && c != nil {
		in.Mode = killPrivs(c, *in)
	}
	if a.Valid&meta.SetUid != 0 {
		in.Uid = a.Uid
	}
	if a.Valid&meta.SetGid != 0 {
		in.Gid = a.Gid
	}
	if a.Valid&meta.SetMode != 0 {
		in.Mode = chmodMode(c, a.Mode, in.Gid)
	}
	if a.Valid&meta.SetATime != 0 {
		in.ATime = a.ATime
	}
	if a.Valid&meta.SetMTime != 0 {
		in.MTime = a.MTime
	}
	if a.Valid&meta.SetATimeNow != 0 {
		in.ATime = now
	}
	if a.Valid&meta.SetMTimeNow != 0 {
		in.MTime = now
	}
	if a.Valid&meta.SetPublic != 0 {
		in.Object = &meta.Object{Public: true}
		if !a.Public {
			in.Object = nil
		}
	}
}

// chmodMode is the mode chmod(2) by c sets on an inode of group gid:
// setgid is dropped silently unless c is in that group or root, so
// nobody makes a program that runs with a group they do not have.
func chmodMode(c *meta.Cred, mode, gid uint32) uint32 {
	mode &= meta.ModeMask
	if c != nil && !c.Root && !inGroup(c, gid) {
		mode &^= modeSetgid
	}
	return mode
}

// deleteTreeCode says whether n.cred may empty the directory dir and
// everything below it, as rm -r does: read, write and search permission
// on every directory that has names to remove (to list it and unlink from
// it), and the sticky rule for each name. rm stops at the first refused
// name and leaves the rest removed; a recursive delete checks all first
// and removes nothing when one is refused.
func (n *namespace) deleteTreeCode(dir meta.Inode) (meta.Code, error) {
	if n.cred == nil || n.cred.Root {
		return meta.CodeOK, nil
	}
	for todo := []meta.Inode{dir}; len(todo) > 0; {
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		kids, err := n.children(d.Ino)
		if err != nil || len(kids) == 0 {
			if err != nil {
				return meta.CodeOK, err
			}
			continue
		}
		if !permits(n.cred, d, meta.MayRead|meta.MayWrite|meta.MayExec) {
			return meta.CodeAccess, nil
		}
		for _, k := range kids {
			in, err := n.get(k.ino)
			if err != nil {
				return meta.CodeOK, err
			}
			if code := deleteCode(n.cred, d, in); code != meta.CodeOK {
				return code, nil
			}
			if in.Type == meta.TypeDir {
				todo = append(todo, in)
			}
		}
	}
	return meta.CodeOK, nil
}

// readTreeCode says whether n.cred may read everything a copy of src
// reads, as cp -r does: every file's content, and every directory's
// listing and the inodes in it (read and search).
func (n *namespace) readTreeCode(src meta.Inode) (meta.Code, error) {
	if n.cred == nil || n.cred.Root {
		return meta.CodeOK, nil
	}
	for todo := []meta.Inode{src}; len(todo) > 0; {
		in := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		switch in.Type {
		case meta.TypeFile:
			if !mayContent(n.cred, in, meta.MayRead) {
				return meta.CodeAccess, nil
			}
		case meta.TypeCharDev, meta.TypeBlockDev:
			// A copy would be a new device node, which only root makes.
			return meta.CodePerm, nil
		case meta.TypeDir:
			if !permits(n.cred, in, meta.MayRead|meta.MayExec) {
				return meta.CodeAccess, nil
			}
			kids, err := n.children(in.Ino)
			if err != nil {
				return meta.CodeOK, err
			}
			for _, k := range kids {
				c, err := n.get(k.ino)
				if err != nil {
					return meta.CodeOK, err
				}
				todo = append(todo, c)
			}
		}
	}
	return meta.CodeOK, nil
}
