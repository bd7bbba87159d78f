package store

// The reads of the namespace, for a Cred (nil: the cluster itself, which
// may read everything). Each takes the caller's transaction, like ApplyOp.

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// lookupPath returns the inode at path. The error wraps ErrNotFound, ErrNotDir
// or ErrInvalid and names the path.
func lookupPath(tx *bbolt.Tx, path string) (meta.Inode, error) {
	return lookupAt(tx, 0, path, nil, 0)
}

// lookupAt is Lookup with path resolved from the inode dir (0: the root;
// see Op.Dir), for cred, which must be allowed want (a mask of MayRead,
// MayWrite and MayExec; 0 for a stat) on the inode found: a router asks
// for MayRead before it serves a file's content. A dir that no longer
// exists is ErrNotFound; a missing permission is ErrPermission.
func lookupAt(tx *bbolt.Tx, dir uint64, path string, cred *meta.Cred, want uint32) (meta.Inode, error) {
	n, err := openNamespace(tx)
	if err != nil {
		return meta.Inode{}, err
	}
	n.cred = cred
	return n.lookupAt(dir, path, want)
}

// lookupAt is lookupAt for n.cred.
func (n *namespace) lookupAt(dir uint64, path string, want uint32) (meta.Inode, error) {
	cred := n.cred
	in, err := n.resolvePath("lookup", dir, path)
	if err != nil {
		return meta.Inode{}, err
	}
	// access(2) and open(2) check the inode found for what the caller
	// wants of it; a file's content is subject to the owner override of
	// trusted mount hosts.
	ok := permits(cred, in, want)
	if in.Type == meta.TypeFile && want&meta.MayExec == 0 {
		ok = mayContent(cred, in, want)
	}
	if !ok {
		return meta.Inode{}, fmt.Errorf("lookup %s: %w: no %s permission", path, meta.ErrPermission, wantName(want))
	}
	return in, n.withUsage(&in)
}

// withUsage fills in a directory's Usage for a caller who may list it
// (left nil in a store older than usage records). The totals count what
// is below at every depth, readable by the caller or not, as df counts
// every file.
func (n *namespace) withUsage(in *meta.Inode) error {
	if in.Type != meta.TypeDir || !n.usage().exists() || !permits(n.cred, *in, meta.MayRead) {
		return nil
	}
	u, err := n.usageOf(in.Ino)
	in.Usage = &u
	return err
}

// readDirPath lists the directory at path, sorted by name. It fails with
// ErrNotDir when path is a file.
func readDirPath(tx *bbolt.Tx, path string) ([]meta.DirEntry, error) {
	return readDirAt(tx, 0, path, nil)
}

// readDirAt is ReadDir with path resolved from the inode at, for cred,
// which needs read permission on the directory. Without search
// permission on it, cred gets the names with their inode numbers and
// types only, every other attribute zero: like getdents(2), whose
// caller cannot stat what it lists.
func readDirAt(tx *bbolt.Tx, at uint64, path string, cred *meta.Cred) ([]meta.DirEntry, error) {
	out, _, err := readDirPage(tx, at, path, cred, "", 0)
	return out, err
}

// readDirPage is readDirAt for the entries after the name after (all from
// the first with ""), in name order, at most limit of them (0: no limit);
// more reports whether entries follow the last one returned.
func readDirPage(tx *bbolt.Tx, at uint64, path string, cred *meta.Cred, after string, limit int) (out []meta.DirEntry, more bool, err error) {
	n, err := openNamespace(tx)
	if err != nil {
		return nil, false, err
	}
	n.cred = cred
	dir, err := n.resolvePath("read dir", at, path)
	if err != nil {
		return nil, false, err
	}
	if dir.Type != meta.TypeDir {
		return nil, false, fmt.Errorf("read dir %s: %w", path, meta.ErrNotDir)
	}
	if !permits(cred, dir, meta.MayRead) {
		return nil, false, fmt.Errorf("read dir %s: %w: no read permission", path, meta.ErrPermission)
	}
	names := permits(cred, dir, meta.MayExec)
	kids, more, err := n.childrenAfter(dir.Ino, after, limit)
	if err != nil {
		return nil, false, err
	}
	out = make([]meta.DirEntry, 0, len(kids))
	for _, k := range kids {
		in, err := n.get(k.ino)
		if err != nil {
			return nil, false, err
		}
		if !names {
			in = meta.Inode{Ino: in.Ino, Type: in.Type}
		} else if err := n.withUsage(&in); err != nil {
			return nil, false, err
		}
		out = append(out, meta.DirEntry{Name: k.name, Inode: in.Attrs()})
	}
	return out, more, nil
}

// checkPut returns nil when an OpPut of path from the inode dir by cred
// would pass its checks now, else the error it would fail with (wrapping
// ErrPermission, ErrNotPermitted, ErrIsDir, ...). A router asks before it
// takes a large body, so a user who may not write fills no disk first.
// The op may still fail if the namespace changes before it is applied.
func checkPut(tx *bbolt.Tx, dir uint64, path string, cred *meta.Cred) error {
	n, err := openNamespace(tx)
	if err != nil {
		return err
	}
	n.cred = cred
	return n.checkPut(dir, path)
}

// checkPut is checkPut for n.cred.
func (n *namespace) checkPut(dir uint64, path string) error {
	_, code, err := n.planPut(dir, path, false, 0, false)
	if err != nil {
		return err
	}
	if code != meta.CodeOK {
		return fmt.Errorf("put %s: %w", path, code.Err())
	}
	return nil
}

func wantName(want uint32) string {
	var s []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{meta.MayRead, "read"}, {meta.MayWrite, "write"}, {meta.MayExec, "execute"}} {
		if want&b.bit != 0 {
			s = append(s, b.name)
		}
	}
	return strings.Join(s, " and ")
}

// resolvePath is the user-facing lookup: its errors name the path and, for
// ErrNotDir and ErrPermission, the component at fault.
func (n *namespace) resolvePath(verb string, at uint64, path string) (meta.Inode, error) {
	parts, ok := splitPath(path)
	if !ok {
		return meta.Inode{}, fmt.Errorf("%s %q: %w: want an absolute path with no empty, \".\" or \"..\" names", verb, path, meta.ErrInvalid)
	}
	chain, code, err := n.walk(at, parts)
	if err != nil {
		return meta.Inode{}, err
	}
	stop := "/" + strings.Join(parts[:max(len(chain)-1, 0)], "/")
	switch {
	case code == meta.CodeOK:
		return chain[len(parts)], nil
	case len(chain) == 0 && code == meta.CodeNotFound:
		return meta.Inode{}, fmt.Errorf("%s %s from inode %d: the inode was removed: %w", verb, path, at, meta.ErrNotFound)
	case len(chain) == 0:
		return meta.Inode{}, fmt.Errorf("%s %s from inode %d: %w: the inode is in no directory you may search", verb, path, at, code.Err())
	case code == meta.CodeNotDir:
		return meta.Inode{}, fmt.Errorf("%s %s: %s is a file: %w", verb, path, stop, meta.ErrNotDir)
	case code == meta.CodeAccess:
		return meta.Inode{}, fmt.Errorf("%s %s: %w: no search permission on %s", verb, path, meta.ErrPermission, stop)
	}
	return meta.Inode{}, fmt.Errorf("%s %s: %w", verb, path, code.Err())
}
