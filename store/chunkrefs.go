package store

// Bucket chunkrefs counts, for every chunk, the file inodes that list it:
//
//	chunkrefs  32-byte hash + group name bytes  ->  8-byte big-endian count
//
// The group is ChunkRef.Group, possibly empty. A file that lists a chunk
// twice counts twice, so the count of a key always equals the number of
// times the chunk appears across the Chunks of all stored file inodes, and
// a key whose count would reach zero is deleted. Garbage collection asks
// this bucket, not a scan of every inode, whether a chunk is still needed.
//
// The namespace keeps the bucket in step inside the transaction of every
// change: save and dropInode in namespace.go are the only writers of the
// inodes bucket, and each adjusts the counts by the difference between the
// stored record and its replacement. A database written before the bucket
// existed gets it rebuilt from the inodes by InitNamespace.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

var bucketChunkRefs = []byte("chunkrefs")

func chunkRefKey(h meta.Hash, group string) []byte {
	return append(append(make([]byte, 0, len(h)+len(group)), h[:]...), group...)
}

// adjustRefs applies the count changes of replacing a file inode's chunk
// list old with new (either may be empty). Equal entries cancel before any
// write, so rewriting a file with the same chunks leaves the bucket alone;
// the keys are written in sorted order so every member writes alike.
func (n *namespace) adjustRefs(old, new []meta.ChunkRef) error {
	if len(old) == 0 && len(new) == 0 {
		return nil
	}
	if !n.refs().exists() {
		return fmt.Errorf("namespace: bucket %s missing: call InitNamespace when opening the store", bucketChunkRefs)
	}
	delta := map[string]int64{}
	for _, c := range old {
		if !c.Hole() {
			delta[string(chunkRefKey(c.Hash, c.Group))]--
		}
	}
	for _, c := range new {
		if !c.Hole() {
			delta[string(chunkRefKey(c.Hash, c.Group))]++
		}
	}
	keys := make([]string, 0, len(delta))
	for k, d := range delta {
		if d != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := n.addRef([]byte(k), delta[k]); err != nil {
			return err
		}
	}
	return nil
}

func (n *namespace) addRef(k []byte, d int64) error {
	v, err := n.refs().get(k)
	if err != nil {
		return err
	}
	if v != nil && len(v) != 8 {
		return fmt.Errorf("namespace: chunk reference count %x holds %x: %w", k, v, meta.ErrCorrupt)
	}
	cur := int64(u64(v))
	if cur < 0 || cur+d < 0 {
		return fmt.Errorf("namespace: reference count of chunk %x group %q would drop from %d to %d: %w",
			k[:32], k[32:], cur, cur+d, meta.ErrCorrupt)
	}
	if cur+d == 0 {
		return n.refs().del(k)
	}
	return n.refs().put(k, key(uint64(cur+d)))
}

// rebuildChunkRefs replaces bucket chunkrefs with a recount of every file
// inode's chunks.
func rebuildChunkRefs(tx *bolt.Tx) error {
	counts := map[string]uint64{}
	err := forEachChunk(tx, func(c meta.ChunkRef) error {
		counts[string(chunkRefKey(c.Hash, c.Group))]++
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild chunk reference counts: %w", err)
	}
	if err := deleteBucket(tx, bucketChunkRefs); err != nil {
		return err
	}
	b, err := createBucket(tx, bucketChunkRefs)
	if err != nil {
		return fmt.Errorf("rebuild chunk reference counts: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if err := b.put([]byte(k), key(counts[k])); err != nil {
			return err
		}
	}
	return nil
}

// ChunkReferenced reports, for each hash, whether some file inode lists it
// under one of groups. With no groups given, any group counts: a caller
// that forgets to name its groups must not see every chunk as garbage.
func (r Reader) ChunkReferenced(hs []meta.Hash, groups ...string) ([]bool, error) {
	out := make([]bool, len(hs))
	err := r.viewRefs(func(b bucket) error {
		c := b.cursor()
		for i, h := range hs {
			if len(groups) == 0 {
				k, _, err := c.seek(h[:])
				if err != nil {
					return err
				}
				out[i] = k != nil && bytes.HasPrefix(k, h[:])
				continue
			}
			for _, g := range groups {
				v, err := b.get(chunkRefKey(h, g))
				if err != nil {
					return err
				}
				if u64(v) > 0 {
					out[i] = true
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ForEachChunkRef calls fn for every chunk with a positive reference count,
// in hash then group order, stopping at the first error fn returns. fn runs
// inside a read transaction and must not call the DB.
func (d *DB) ForEachChunkRef(fn func(group string, h meta.Hash, count uint64) error) error {
	return d.viewRefs(func(b bucket) error {
		return b.forEach(func(k, v []byte) error {
			var h meta.Hash
			if len(k) < len(h) || len(v) != 8 {
				return fmt.Errorf("chunk reference record %x=%x: %w", k, v, meta.ErrCorrupt)
			}
			copy(h[:], k)
			return fn(string(k[len(h):]), h, binary.BigEndian.Uint64(v))
		})
	})
}

// ChunkGroups returns, for each hash, a group under which some file
// references it, or "" for none (a reference from before chunks named
// their group also reads as ""). Routers use it to store a chunk where
// an identical one already is, so content is kept once in the cluster.
func (d *DB) ChunkGroups(hs []meta.Hash) ([]string, error) {
	out := make([]string, len(hs))
	err := d.viewRefs(func(b bucket) error {
		c := b.cursor()
		for i, h := range hs {
			k, _, err := c.seek(h[:])
			if err != nil {
				return err
			}
			if k != nil && bytes.HasPrefix(k, h[:]) {
				out[i] = string(k[len(h):])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// viewRefs runs fn on bucket chunkrefs in a read transaction.
func (d *DB) viewRefs(fn func(b bucket) error) error { return d.Reader().viewRefs(fn) }

// viewRefs runs fn on bucket chunkrefs in the Reader's state.
func (r Reader) viewRefs(fn func(b bucket) error) error {
	return r.view(func(tx *bolt.Tx) error {
		b := bucketIn(tx, bucketChunkRefs)
		if !b.exists() {
			return fmt.Errorf("chunk references: bucket %s missing", bucketChunkRefs)
		}
		return fn(b)
	})
}
