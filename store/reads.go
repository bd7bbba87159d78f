package store

// The namespace reads. Callers outside this package never hold a bbolt
// transaction: each read opens its own, or runs in one this package
// opened for the length of a call (DB.View, ApplyThen's next). Each
// answers as the function it wraps. Those a primary serves are Reader
// methods (DB.Reader or DB.View for the last commit), so that they can
// also read the state of an apply transaction still open.

import (
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// A Reader reads the namespace as of one state: the last committed one
// (DB.Reader, each read in a transaction of its own; DB.View, all in
// one), or that of an apply transaction still open, which has applied
// committed entries that its commit has yet to make durable (ApplyThen).
// The last two are valid only during the call they are given to.
type Reader struct {
	d  *DB
	tx *bolt.Tx // View's read transaction, the open apply transaction, or nil
	// shared, when set, is what the reads of a Reader made by View or
	// Shared share: the namespace, opened at the first read that needs
	// it, with the directories its walks found.
	shared *sharedRead
}

type sharedRead struct{ ns *namespace }

// Reader returns a Reader of the last committed state, each read in a
// read transaction of its own.
func (d *DB) Reader() Reader { return Reader{d: d} }

// View calls fn with a Reader of one read transaction of the last
// committed state: every read through it sees the same state, and
// lookups share one namespace, whose buckets are opened once and whose
// walks find each directory once (a batch of reads in one directory
// resolves its path once). The Reader is valid only during the call, by
// one goroutine at a time.
func (d *DB) View(fn func(Reader)) error {
	return d.view(func(tx *bolt.Tx) error {
		fn(Reader{d: d, tx: tx, shared: &sharedRead{}})
		return nil
	})
}

// Shared returns r with lookups sharing one namespace as View's do. r
// must read one state for as long as the result is used: a Reader of an
// open apply transaction, within the call it is lent to.
func (r Reader) Shared() Reader {
	if r.tx == nil {
		return r
	}
	r.shared = &sharedRead{}
	return r
}

// namespace returns the namespace of tx for one read by cred: the
// Reader's shared one, else one of its own.
func (r Reader) namespace(tx *bolt.Tx, cred *meta.Cred) (*namespace, error) {
	if r.shared == nil {
		n, err := openNamespace(tx)
		if err == nil {
			n.cred = cred
		}
		return n, err
	}
	if r.shared.ns == nil {
		n, err := openNamespace(tx)
		if err != nil {
			return nil, err
		}
		n.found = map[dentryName]meta.Inode{}
		r.shared.ns = n
	}
	r.shared.ns.cred = cred
	return r.shared.ns, nil
}

// view runs fn over the Reader's state. A read inside the apply
// transaction only reads: what it finds wrong is its own answer, and the
// transaction goes on. It takes no lock: the transaction's goroutine
// holds d.mu (update) while it lends the transaction, and waits.
func (r Reader) view(fn func(tx *bolt.Tx) error) error {
	if r.tx == nil {
		return r.d.view(fn)
	}
	if err := r.d.usable(); err != nil {
		return err
	}
	return r.d.noteCorrupt(guard(func() error { return fn(r.tx) }))
}

// LookupAt is lookupAt over the Reader's state.
func (r Reader) LookupAt(dir uint64, path string, cred *meta.Cred, want uint32) (in meta.Inode, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		n, err := r.namespace(tx, cred)
		if err != nil {
			return err
		}
		in, err = n.lookupAt(dir, path, want)
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

// ReadDirPage is readDirPage over the Reader's state: one page of a
// directory's entries, after the name after, at most limit (0: all).
func (r Reader) ReadDirPage(at uint64, path string, cred *meta.Cred, after string, limit int) (entries []meta.DirEntry, more bool, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		entries, more, err = readDirPage(tx, at, path, cred, after, limit)
		return err
	})
	return entries, more, err
}

// CheckPut is checkPut over the Reader's state.
func (r Reader) CheckPut(dir uint64, path string, cred *meta.Cred) error {
	return r.view(func(tx *bolt.Tx) error {
		n, err := r.namespace(tx, cred)
		if err != nil {
			return err
		}
		return n.checkPut(dir, path)
	})
}

// UserByToken is userByToken over the Reader's state.
func (r Reader) UserByToken(hash [32]byte) (u meta.User, ok bool, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		u, ok, err = userByToken(tx, hash)
		return err
	})
	return u, ok, err
}

// UserByName is userByName over the Reader's state.
func (r Reader) UserByName(name string) (u meta.User, ok bool, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		u, ok, err = userByName(tx, name)
		return err
	})
	return u, ok, err
}

// Users is listUsers over the Reader's state.
func (r Reader) Users() (users []meta.User, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		users, err = listUsers(tx)
		return err
	})
	return users, err
}

// Owned is ownedBy over the Reader's state.
func (r Reader) Owned(uid uint32, after uint64, limit int) (out []meta.OwnedInode, next uint64, err error) {
	err = r.view(func(tx *bolt.Tx) error {
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
