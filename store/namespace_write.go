package store

// The operations that add to the namespace: put (create or replace a file)
// and mkdir, with the plan a put follows.

import "shoal/meta"

// putPlan is what an OpPut will do, decided before its first write.
type putPlan struct {
	name    string
	parent  meta.Inode // the directory the name is in, or the deepest existing one
	missing []string   // the directories to make below parent first
	old     meta.Inode // what the name holds now, if exists
	exists  bool
}

// planPut checks an OpPut of path from the inode at, as open(2) with
// O_CREAT|O_TRUNC after mkdir -p of the missing parents would check it:
// search on every directory walked, write and search on the directory a
// name is added to, write on a file whose content is replaced. A symlink
// at path is unlinked for the new file (unlink(2)). mode, with setsMode,
// is set on an existing file, which only its owner may do (chmod(2)), as
// is an explicit mtime (setsMTime; utimes(2) with times).
func (n *namespace) planPut(at uint64, path string, setsMode bool, mode uint32, setsMTime bool) (putPlan, meta.Code, error) {
	parts, ok := splitPath(path)
	if !ok {
		return putPlan{}, meta.CodeInvalid, nil
	}
	if len(parts) == 0 {
		return putPlan{}, meta.CodeIsDir, nil
	}
	chain, code, err := n.walk(at, parts)
	switch {
	case err != nil:
		return putPlan{}, meta.CodeOK, err
	case code == meta.CodeNotFound && len(chain) > 0:
		// Like an object store's PUT, a missing parent is created rather
		// than reported, so clients need no mkdir round trip first.
		p := putPlan{name: parts[len(parts)-1], parent: chain[len(chain)-1], missing: parts[len(chain)-1 : len(parts)-1]}
		return p, createCode(n.cred, p.parent), nil
	case code != meta.CodeOK:
		return putPlan{}, code, nil
	}
	p := putPlan{name: parts[len(parts)-1], parent: chain[len(parts)-1], old: chain[len(parts)], exists: true}
	switch {
	case p.old.Type == meta.TypeDir:
		return putPlan{}, meta.CodeIsDir, nil
	case p.old.Type == meta.TypeSymlink || p.old.Type.Special():
		return p, deleteCode(n.cred, p.parent, p.old), nil
	case !mayContent(n.cred, p.old, meta.MayWrite):
		return putPlan{}, meta.CodeAccess, nil
	case setsMode && mode&meta.ModeMask != p.old.Mode && !owns(n.cred, p.old):
		return putPlan{}, meta.CodePerm, nil
	case setsMTime && !owns(n.cred, p.old):
		return putPlan{}, meta.CodePerm, nil
	}
	return p, meta.CodeOK, nil
}

func (n *namespace) put(op *meta.Op) (meta.Result, error) {
	if op.File == nil {
		return reject(meta.CodeInvalid)
	}
	// An explicit mtime (a copy keeping its source's) is the only
	// attribute a put takes besides the mode.
	mtime, setsMTime := op.Time, op.Attr != nil && op.Attr.Valid&meta.SetMTime != 0
	if setsMTime {
		mtime = op.Attr.MTime
	}
	setsMode := op.Mode != 0 || op.ModeGiven
	p, code, err := n.planPut(op.Dir, op.Path, setsMode, op.Mode, setsMTime)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if p.exists && p.old.Type == meta.TypeFile {
		f := p.old
		f.Size, f.Hash, f.Chunks, f.Data, f.DataKey, f.MTime, f.CTime = op.File.Size, op.File.Hash, op.File.Chunks, op.File.Data, op.File.DataKey, mtime, op.Time
		f.ContentType, f.Object = op.File.ContentType, op.File.Object
		contentChanged(n.cred, &f)
		if setsMode {
			f.Mode = chmodMode(n.cred, op.Mode, f.Gid)
		}
		f.Gen++
		return meta.Result{Inode: ptr(f.Attrs())}, n.save(f)
	}
	parent := p.parent
	if p.exists {
		// A symlink is replaced by a new file: an inode keeps its type.
		if err := n.removeEntry(&parent, p.name, p.old, op.Time); err != nil {
			return meta.Result{}, err
		}
		if err := n.release(p.old, false, op.Time); err != nil {
			return meta.Result{}, err
		}
	}
	parent, err = n.makeDirs(parent, p.missing, op)
	if err != nil {
		return meta.Result{}, err
	}
	ino, err := n.allocIno()
	if err != nil {
		return meta.Result{}, err
	}
	f := meta.Inode{
		Ino: ino, Type: meta.TypeFile, Size: op.File.Size, Mode: modeOr(op, defaultFileMode) & meta.ModeMask,
		MTime: mtime, Nlink: 1, Hash: op.File.Hash, Chunks: op.File.Chunks, Data: op.File.Data, DataKey: op.File.DataKey,
		ATime: op.Time, CTime: op.Time, Gen: 1, ContentType: op.File.ContentType, Object: op.File.Object,
	}
	n.initOwner(&f, parent, op)
	if err := n.addEntry(&parent, p.name, f, op.Time); err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: true, Inode: ptr(f.Attrs())}, nil
}

func (n *namespace) mkdir(op *meta.Op) (meta.Result, error) {
	parts, ok := splitPath(op.Path)
	if !ok {
		return reject(meta.CodeInvalid)
	}
	chain, code, err := n.walk(op.Dir, parts)
	switch {
	case err != nil:
		return meta.Result{}, err
	case code == meta.CodeOK:
		if d := chain[len(parts)]; d.Type == meta.TypeDir && op.Parents {
			return meta.Result{Inode: ptr(d.Attrs())}, nil
		}
		return reject(meta.CodeExists)
	case code != meta.CodeNotFound || len(chain) == 0:
		return reject(code)
	}
	parent := chain[len(chain)-1]
	missing := parts[len(chain)-1:]
	if len(missing) > 1 && !op.Parents {
		return reject(meta.CodeNotFound)
	}
	// mkdir(2) reports EEXIST and ENOENT before it checks the parent's
	// write permission (may_create).
	if code := createCode(n.cred, parent); code != meta.CodeOK {
		return reject(code)
	}
	parent, err = n.makeDirs(parent, missing[:len(missing)-1], op)
	if err != nil {
		return meta.Result{}, err
	}
	d, err := n.addDir(&parent, missing[len(missing)-1], modeOr(op, defaultDirMode), op)
	if err != nil {
		return meta.Result{}, err
	}
	return meta.Result{Created: true, Inode: ptr(d.Attrs())}, nil
}
