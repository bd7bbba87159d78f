package store

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// Usage: every directory's totals below it (bytes of files and symlinks,
// how many of them, how many directories), kept as the tree changes, so
// that du of any directory is one read, not a walk. The bucket usage maps
// a directory's inode number to its totals.
//
// putDentry and deleteDentry, the only writers of names, add and take
// away the totals of what they name (a file's size and one file; a
// directory's totals and one directory) at the parent and each directory
// above it, found through the link index; save adds a file's change of
// size at every directory holding a name of it. A file with several names
// counts under each, as it shows in each listing. A directory unlinked
// from the tree (being removed) has no name, so what its removal below
// takes away stops there.

var bucketUsage = []byte("usage")

func usageKey(ino uint64) []byte { return inoKey(ino) }

func encodeUsage(u meta.Usage) []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, uint64(u.Bytes))
	b = binary.BigEndian.AppendUint64(b, uint64(u.Files))
	return binary.BigEndian.AppendUint64(b, uint64(u.Dirs))
}

func decodeUsage(ino uint64, v []byte) (meta.Usage, error) {
	if len(v) != 24 {
		return meta.Usage{}, fmt.Errorf("namespace: usage of directory %d is %d bytes, not 24: %w", ino, len(v), meta.ErrCorrupt)
	}
	return meta.Usage{
		Bytes: int64(binary.BigEndian.Uint64(v)),
		Files: int64(binary.BigEndian.Uint64(v[8:])),
		Dirs:  int64(binary.BigEndian.Uint64(v[16:])),
	}, nil
}

// usageOf returns the totals below the directory ino.
func (n *namespace) usageOf(ino uint64) (meta.Usage, error) {
	if !n.usage().exists() {
		return meta.Usage{}, fmt.Errorf("namespace: bucket %s missing: call InitNamespace when opening the store", bucketUsage)
	}
	v, err := n.usage().get(usageKey(ino))
	if err != nil || v == nil {
		return meta.Usage{}, err
	}
	return decodeUsage(ino, v)
}

// entryUsage is what a name of in adds to its directory's totals.
func (n *namespace) entryUsage(in meta.Inode) (meta.Usage, error) {
	if in.Type != meta.TypeDir {
		return meta.Usage{Bytes: in.Size, Files: 1}, nil
	}
	u, err := n.usageOf(in.Ino)
	u.Dirs++
	return u, err
}

// addUsage adds d to the totals of dir and of every directory above it.
func (n *namespace) addUsage(dir uint64, d meta.Usage) error {
	if d == (meta.Usage{}) {
		return nil
	}
	for depth := 0; ; depth++ {
		if depth > maxDepth {
			return fmt.Errorf("namespace: directory %d is more than %d levels deep: a loop: %w", dir, maxDepth, meta.ErrCorrupt)
		}
		u, err := n.usageOf(dir)
		if err != nil {
			return err
		}
		u.Add(d)
		if err := n.usage().put(usageKey(dir), encodeUsage(u)); err != nil {
			return err
		}
		if dir == RootIno {
			return nil
		}
		up, ok, err := n.firstLink(dir)
		if err != nil || !ok {
			return err // a directory unlinked from the tree: nothing above
		}
		dir = up.parent
	}
}

// nameUsage adds (sign 1) or takes away (-1) what a name of in, as
// stored, in parent counts for.
func (n *namespace) nameUsage(parent uint64, in meta.Inode, sign int64) error {
	u, err := n.entryUsage(in)
	if err != nil {
		return err
	}
	return n.addUsage(parent, u.Times(sign))
}

// resized adds a file's change of size at every directory holding a name
// of it.
func (n *namespace) resized(ino uint64, delta int64) error {
	var parents []uint64
	err := n.eachLink(ino, func(l link) (bool, error) {
		parents = append(parents, l.parent)
		return true, nil
	})
	for _, p := range parents {
		if err == nil {
			err = n.addUsage(p, meta.Usage{Bytes: delta})
		}
	}
	return err
}

// rebuildUsage computes every directory's totals from the tree, for a
// namespace written before they were kept.
func rebuildUsage(tx *bbolt.Tx) error {
	if _, err := createBucket(tx, bucketUsage); err != nil {
		return err
	}
	n, err := openNamespace(tx)
	if err != nil {
		return err
	}
	var sum func(dir uint64, depth int) (meta.Usage, error)
	sum = func(dir uint64, depth int) (meta.Usage, error) {
		if depth > maxDepth {
			return meta.Usage{}, fmt.Errorf("directory %d is more than %d levels deep: %w", dir, maxDepth, meta.ErrCorrupt)
		}
		kids, err := n.children(dir)
		if err != nil {
			return meta.Usage{}, err
		}
		var total meta.Usage
		for _, k := range kids {
			in, err := n.get(k.ino)
			if err != nil {
				return meta.Usage{}, err
			}
			if in.Type != meta.TypeDir {
				total.Add(meta.Usage{Bytes: in.Size, Files: 1})
				continue
			}
			u, err := sum(in.Ino, depth+1)
			if err != nil {
				return meta.Usage{}, err
			}
			u.Dirs++
			total.Add(u)
		}
		return total, n.usage().put(usageKey(dir), encodeUsage(total))
	}
	if _, err := sum(RootIno, 0); err != nil {
		return fmt.Errorf("rebuild directory usage: %w", err)
	}
	return nil
}
