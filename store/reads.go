package store

// The namespace reads as DB methods, each in a read transaction of its
// own, so that callers outside this package never hold a bbolt
// transaction. They answer as the functions of the same name do.

import (
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// LookupAt is LookupAt over the current state.
func (d *DB) LookupAt(dir uint64, path string, cred *meta.Cred, want uint32) (in meta.Inode, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		in, err = LookupAt(tx, dir, path, cred, want)
		return err
	})
	return in, err
}

// ReadDirAt is ReadDirAt over the current state.
func (d *DB) ReadDirAt(at uint64, path string, cred *meta.Cred) (entries []meta.DirEntry, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		entries, err = ReadDirAt(tx, at, path, cred)
		return err
	})
	return entries, err
}

// CheckPut is CheckPut over the current state.
func (d *DB) CheckPut(dir uint64, path string, cred *meta.Cred) error {
	return d.view(func(tx *bolt.Tx) error { return CheckPut(tx, dir, path, cred) })
}

// UserByToken is UserByToken over the current state.
func (d *DB) UserByToken(hash [32]byte) (u meta.User, ok bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		u, ok, err = UserByToken(tx, hash)
		return err
	})
	return u, ok, err
}

// UserByName is UserByName over the current state.
func (d *DB) UserByName(name string) (u meta.User, ok bool, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		u, ok, err = UserByName(tx, name)
		return err
	})
	return u, ok, err
}

// Users is Users over the current state.
func (d *DB) Users() (users []meta.User, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		users, err = Users(tx)
		return err
	})
	return users, err
}

// Owned is Owned over the current state.
func (d *DB) Owned(uid uint32, after uint64, limit int) (out []meta.OwnedInode, next uint64, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		out, next, err = Owned(tx, uid, after, limit)
		return err
	})
	return out, next, err
}

// ForEachChunk is ForEachChunk over the current state. fn must not call
// the DB: it runs inside the read transaction.
func (d *DB) ForEachChunk(fn func(meta.ChunkRef) error) error {
	return d.view(func(tx *bolt.Tx) error { return ForEachChunk(tx, fn) })
}
