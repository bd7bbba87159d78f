package store

// The namespace reads as DB methods, each in a read transaction of its
// own, so that callers outside this package never hold a bbolt
// transaction. Each answers as the function it wraps.

import (
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// LookupAt is lookupAt over the current state.
func (d *DB) LookupAt(dir uint64, path string, cred *meta.Cred, want uint32) (in meta.Inode, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		in, err = lookupAt(tx, dir, path, cred, want)
		return err
	})
	return in, err
}

// ReadDirAt is readDirAt over the current state.
func (d *DB) ReadDirAt(at uint64, path string, cred *meta.Cred) (entries []meta.DirEntry, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		entries, err = readDirAt(tx, at, path, cred)
		return err
	})
	return entries, err
}

// ReadDirPage is readDirPage over the current state: one page of a
// directory's entries, after the name after, at most limit (0: all).
func (d *DB) ReadDirPage(at uint64, path string, cred *meta.Cred, after string, limit int) (entries []meta.DirEntry, more bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		entries, more, err = readDirPage(tx, at, path, cred, after, limit)
		return err
	})
	return entries, more, err
}

// CheckPut is checkPut over the current state.
func (d *DB) CheckPut(dir uint64, path string, cred *meta.Cred) error {
	return d.view(func(tx *bolt.Tx) error { return checkPut(tx, dir, path, cred) })
}

// UserByToken is userByToken over the current state.
func (d *DB) UserByToken(hash [32]byte) (u meta.User, ok bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		u, ok, err = userByToken(tx, hash)
		return err
	})
	return u, ok, err
}

// UserByName is userByName over the current state.
func (d *DB) UserByName(name string) (u meta.User, ok bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		u, ok, err = userByName(tx, name)
		return err
	})
	return u, ok, err
}

// Users is listUsers over the current state.
func (d *DB) Users() (users []meta.User, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		users, err = listUsers(tx)
		return err
	})
	return users, err
}

// Owned is ownedBy over the current state.
func (d *DB) Owned(uid uint32, after uint64, limit int) (out []meta.OwnedInode, next uint64, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		out, next, err = ownedBy(tx, uid, after, limit)
		return err
	})
	return out, next, err
}

// ForEachChunk is forEachChunk over the current state. fn must not call
// the DB: it runs inside the read transaction.
func (d *DB) ForEachChunk(fn func(meta.ChunkRef) error) error {
	return d.view(func(tx *bolt.Tx) error { return forEachChunk(tx, fn) })
}
