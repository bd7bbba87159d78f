package store

// Two indexes kept with the namespace, inside the transaction of every
// change:
//
//	links   child ino + parent ino + name  ->  empty
//	owners  4-byte uid + ino               ->  empty
//
// (integers big-endian). links mirrors dentries keyed by the child: it
// answers which names point at an inode, which a permission check needs
// for an inode a caller names by number (see perm.go), and which gives
// Owned a path for each inode. owners lists each uid's inodes of every
// type, the root included, in inode order, so Owned pages through one
// user's files without a scan of every inode.
//
// putDentry and deleteDentry are the only writers of dentries and links;
// save and dropInode the only writers of inodes and owners, so neither
// index can drift from what it mirrors. A database written before an
// index existed gets it built from a full scan by InitNamespace.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

var (
	bucketLinks  = []byte("links")
	bucketOwners = []byte("owners")
)

func linkKey(child, parent uint64, name string) []byte {
	k := make([]byte, 0, 16+len(name))
	k = binary.BigEndian.AppendUint64(k, child)
	return append(binary.BigEndian.AppendUint64(k, parent), name...)
}

func ownerKey(uid uint32, ino uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(make([]byte, 0, 12), uid), ino)
}

// putDentry names child, as it was just stored, as name in parent, in
// dentries and links.
func (n *namespace) putDentry(parent uint64, name string, child meta.Inode) error {
	if err := n.dentries.put(dentryKey(parent, name), inoKey(child.Ino)); err != nil {
		return err
	}
	if err := n.links().put(linkKey(child.Ino, parent, name), nil); err != nil {
		return err
	}
	return n.nameUsage(parent, child, 1)
}

// deleteDentry removes the name putDentry made.
func (n *namespace) deleteDentry(parent uint64, name string, child uint64) error {
	in, err := n.get(child)
	if err != nil {
		return err
	}
	if err := n.nameUsage(parent, in, -1); err != nil {
		return err
	}
	if err := n.dentries.del(dentryKey(parent, name)); err != nil {
		return err
	}
	return n.links().del(linkKey(child, parent, name))
}

// moveOwner keeps owners in step when the record of in replaces old
// (had: whether there was one).
func (n *namespace) moveOwner(old meta.Inode, had bool, in meta.Inode) error {
	if had && old.Uid == in.Uid {
		return nil
	}
	if had {
		if err := n.owners().del(ownerKey(old.Uid, in.Ino)); err != nil {
			return err
		}
	}
	return n.owners().put(ownerKey(in.Uid, in.Ino), nil)
}

// link is one name of an inode, read from the links index.
type link struct {
	parent uint64
	name   string
}

// eachLink calls fn for the names of ino in (parent, name) order until fn
// returns false. fn must not write: it runs inside a cursor scan.
func (n *namespace) eachLink(ino uint64, fn func(link) (bool, error)) error {
	if !n.links().exists() {
		return fmt.Errorf("namespace: bucket %s missing: call InitNamespace when opening the store", bucketLinks)
	}
	prefix := inoKey(ino)
	c := n.links().cursor()
	for k, _, err := c.seek(prefix); ; k, _, err = c.next() {
		if err != nil {
			return err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		if len(k) < 16 {
			return fmt.Errorf("namespace: link record %x is shorter than 16 bytes: %w", k, meta.ErrCorrupt)
		}
		more, err := fn(link{parent: binary.BigEndian.Uint64(k[8:16]), name: string(k[16:])})
		if err != nil || !more {
			return err
		}
	}
}

// firstLink returns the first name of ino, if it has one.
func (n *namespace) firstLink(ino uint64) (l link, ok bool, err error) {
	err = n.eachLink(ino, func(x link) (bool, error) {
		l, ok = x, true
		return false, nil
	})
	return l, ok, err
}

// pathOf returns a path of ino from the root, following the first name
// of each inode upward; "" for an orphan, which has none.
func (n *namespace) pathOf(ino uint64) (string, error) {
	var names []string
	for range maxDepth {
		if ino == RootIno {
			var b strings.Builder
			for i := len(names) - 1; i >= 0; i-- {
				b.WriteString("/" + names[i])
			}
			if b.Len() == 0 {
				return "/", nil
			}
			return b.String(), nil
		}
		l, ok, err := n.firstLink(ino)
		if err != nil {
			return "", err
		}
		if !ok && len(names) == 0 {
			return "", nil
		}
		if !ok {
			return "", fmt.Errorf("namespace: directory %d has entries but no name: %w", ino, meta.ErrCorrupt)
		}
		names = append(names, l.name)
		ino = l.parent
	}
	return "", fmt.Errorf("namespace: inode %d is more than %d levels deep: %w", ino, maxDepth, meta.ErrCorrupt)
}

// rebuildLinks replaces bucket links with one key for every dentry.
func rebuildLinks(tx *bbolt.Tx) error {
	var keys [][]byte
	err := bucketIn(tx, bucketDentries).forEach(func(k, v []byte) error {
		if len(k) < 8 || len(v) != 8 {
			return fmt.Errorf("dentry %x holds %x: %w", k, v, meta.ErrCorrupt)
		}
		keys = append(keys, linkKey(binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(k), string(k[8:])))
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild the link index: %w", err)
	}
	return refill(tx, bucketLinks, keys)
}

// rebuildOwners replaces bucket owners with one key for every inode.
func rebuildOwners(tx *bbolt.Tx) error {
	var keys [][]byte
	err := bucketIn(tx, bucketInodes).forEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("inode key %x is not 8 bytes: %w", k, meta.ErrCorrupt)
		}
		in, err := decodeInode(binary.BigEndian.Uint64(k), v)
		keys = append(keys, ownerKey(in.Uid, in.Ino))
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild the owner index: %w", err)
	}
	return refill(tx, bucketOwners, keys)
}

// refill replaces bucket name with keys, all mapping to empty values.
// The keys are gathered first because bbolt cursors do not survive
// writes during a scan.
func refill(tx *bbolt.Tx, name []byte, keys [][]byte) error {
	if err := deleteBucket(tx, name); err != nil {
		return err
	}
	b, err := createBucket(tx, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// ownedBy lists the inodes uid owns with numbers above after, in inode
// order, at most limit of them. next is the number of the last one
// listed when more follow (pass it as after to get them), else 0.
func ownedBy(tx *bbolt.Tx, uid uint32, after uint64, limit int) (out []meta.OwnedInode, next uint64, err error) {
	if limit <= 0 {
		return nil, 0, fmt.Errorf("owned inodes: limit %d: %w: want at least 1", limit, meta.ErrInvalid)
	}
	n, err := openNamespace(tx)
	if err != nil {
		return nil, 0, err
	}
	if !n.owners().exists() {
		return nil, 0, fmt.Errorf("owned inodes: bucket %s missing: call InitNamespace when opening the store", bucketOwners)
	}
	prefix := binary.BigEndian.AppendUint32(nil, uid)
	var inos []uint64
	c := n.owners().cursor()
	k, _, err := c.seek(ownerKey(uid, after+1))
	if after == ^uint64(0) {
		k = nil // no inode number is above it
	}
	for ; ; k, _, err = c.next() {
		if err != nil {
			return nil, 0, err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			break
		}
		if len(k) != 12 {
			return nil, 0, fmt.Errorf("owned inodes: owner record %x is not 12 bytes: %w", k, meta.ErrCorrupt)
		}
		if len(inos) == limit {
			next = inos[len(inos)-1]
			break
		}
		inos = append(inos, binary.BigEndian.Uint64(k[4:]))
	}
	for _, ino := range inos {
		in, err := n.get(ino)
		if err != nil {
			return nil, 0, err
		}
		p, err := n.pathOf(ino)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, meta.OwnedInode{Path: p, Inode: in.Attrs()})
	}
	return out, next, nil
}
