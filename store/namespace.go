package store

// The namespace is a deterministic state machine over the bbolt buckets
// below. Every function takes the caller's transaction: the caller decides
// what to batch, when to commit and when to fsync, and rolls back on any
// error.
//
// On-disk layout (integers big-endian, inode numbers 8 bytes, uids 4):
//
//	inodes    ino                      -> msgpack(Inode)
//	dentries  parent ino + child name  -> child ino
//	nsmeta    "next_ino"               -> next inode number to allocate
//	          "dir_parents"            -> present once every directory
//	                                      records its parent (Inode.Parent)
//	chunkrefs chunk hash + group name  -> count of file inodes' references
//	                                      (see chunkrefs.go)
//	links     child ino + parent ino   -> empty: dentries keyed by the
//	          + child name                child (see index.go)
//	owners    uid + ino                -> empty: every inode by its owner
//	                                      (see index.go)
//	users     user name                -> msgpack(User) (see users.go)
//	tokens    SHA-256 of a token       -> user name
//
// The root directory is inode 1 and has no dentry. Names live only in
// dentries, never in inodes, so a directory rename moves one dentry however
// large the subtree below it, and a later FUSE mount gets stable inode
// numbers. Because a dentry key starts with its parent's inode number,
// listing a directory is a prefix scan, and bbolt's byte order sorts the
// listing by name.
//
// applyOp checks every precondition before its first write, so an op that
// fails with a Result code leaves every bucket untouched; an error
// return means storage failed or a record is corrupt, and the caller must
// roll the transaction back.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"go.etcd.io/bbolt"

	"shoal/meta"
)

// RootIno is the inode number of the root directory.
const RootIno = 1

const (
	defaultFileMode = 0o644
	defaultDirMode  = 0o755
	// maxNameLen is NAME_MAX: a FUSE mount could not serve a longer name,
	// and the bound keeps dentry keys far below bbolt's key size limit, so
	// a long name fails as CodeInvalid instead of as a storage error after
	// other writes of the op.
	maxNameLen = 255
)

var (
	bucketInodes   = []byte("inodes")
	bucketDentries = []byte("dentries")
	bucketNSMeta   = []byte("nsmeta")
	keyNextIno     = []byte("next_ino")
	keyDirParents  = []byte("dir_parents")
)

// initNamespace creates the namespace buckets and the root directory if they
// are missing. It is idempotent, so a store calls it every time it opens.
// The root's MTime is 0: no op carries the time it was created. A namespace
// written before chunk reference counts or an index existed gets them
// built here.
func initNamespace(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketInodes, bucketDentries, bucketNSMeta, bucketUsers, bucketTokens} {
		if _, err := createBucket(tx, name); err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	rebuilds := []struct {
		bucket  []byte
		rebuild func(*bbolt.Tx) error
	}{{bucketChunkRefs, rebuildChunkRefs}, {bucketLinks, rebuildLinks}, {bucketOwners, rebuildOwners}}
	for _, r := range rebuilds {
		if hasBucket(tx, r.bucket) {
			continue
		}
		if err := r.rebuild(tx); err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	n, err := openNamespace(tx)
	if err != nil {
		return err
	}
	if v, err := n.meta.get(keyNextIno); err != nil || v == nil {
		if err == nil {
			err = n.meta.put(keyNextIno, inoKey(RootIno+1))
		}
		if err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	if v, err := n.inodes.get(inoKey(RootIno)); err != nil || v == nil {
		if err == nil {
			root := meta.Inode{Ino: RootIno, Type: meta.TypeDir, Mode: defaultDirMode, Nlink: 2}
			err = n.save(root)
		}
		if err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	v, err := n.meta.get(keyDirParents)
	if err != nil {
		return fmt.Errorf("init namespace: %w", err)
	}
	if v == nil {
		if err := n.recordDirParents(RootIno); err != nil {
			return fmt.Errorf("init namespace: record directory parents: %w", err)
		}
		if err := n.meta.put(keyDirParents, []byte{1}); err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	if !hasBucket(tx, bucketUsage) {
		if err := rebuildUsage(tx); err != nil {
			return fmt.Errorf("init namespace: %w", err)
		}
	}
	return nil
}

// namespaceReady reports whether initNamespace would find nothing to do:
// every bucket, the next inode number, the root and the directory parents
// are there. Opening such a store then writes nothing.
func namespaceReady(tx *bbolt.Tx) bool {
	for _, name := range [][]byte{bucketInodes, bucketDentries, bucketNSMeta, bucketUsers, bucketTokens,
		bucketChunkRefs, bucketLinks, bucketOwners, bucketUsage} {
		if !hasBucket(tx, name) {
			return false
		}
	}
	ns := bucketIn(tx, bucketNSMeta)
	return ns.unsealed(keyNextIno) != nil && ns.unsealed(keyDirParents) != nil && bucketIn(tx, bucketInodes).unsealed(inoKey(RootIno)) != nil
}

// recordDirParents sets Parent in every directory below dir, for a
// namespace written before directories recorded it.
func (n *namespace) recordDirParents(dir uint64) error {
	kids, err := n.children(dir)
	if err != nil {
		return err
	}
	for _, k := range kids {
		in, err := n.get(k.ino)
		if err != nil {
			return err
		}
		if in.Type != meta.TypeDir {
			continue
		}
		if in.Parent != dir {
			in.Parent = dir
			if err := n.save(in); err != nil {
				return err
			}
		}
		if err := n.recordDirParents(in.Ino); err != nil {
			return err
		}
	}
	return nil
}

// applyOp applies one op to the namespace. A user-level failure (a missing
// path, an existing target, ...) is reported in Result.Code with a nil error
// and changes nothing. A non-nil error means storage failed or a record is
// corrupt; the caller must roll the transaction back.
//
// clock is the group's clock with op applied: leases and fencing tokens
// are judged by it.
func applyOp(tx *bbolt.Tx, op *meta.Op, clock int64) (meta.Result, error) {
	return applyOpIn(tx, op, clock, nil)
}

// applyOpIn is applyOp, with the namespace's buckets of a, if not nil,
// the applies of one transaction share.
func applyOpIn(tx *bbolt.Tx, op *meta.Op, clock int64, a *applying) (meta.Result, error) {
	if op == nil {
		return reject(meta.CodeInvalid)
	}
	switch op.Kind {
	case meta.OpNoop:
		// The first entry of a new primary: the leases it inherits
		// start afresh.
		if err := renewOrphanLeases(tx, clock); err != nil {
			return meta.Result{}, err
		}
		return meta.Result{}, renewLeases(tx, clock)
	case meta.OpConfig:
		return meta.Result{}, nil
	}
	n, err := a.namespace(tx)
	if err != nil {
		return meta.Result{}, err
	}
	if !n.refs().exists() || !n.links().exists() || !n.owners().exists() || !n.users().exists() || !n.tokens().exists() || !n.usage().exists() {
		return meta.Result{}, fmt.Errorf("namespace: bucket %s, %s, %s, %s, %s or %s missing: call InitNamespace when opening the store",
			bucketChunkRefs, bucketLinks, bucketOwners, bucketUsers, bucketTokens, bucketUsage)
	}
	n.cred, n.clock = op.Cred, clock
	if op.Fence != 0 {
		if out, err := fenced(tx, n, op.Fence, clock); err != nil || out {
			return meta.Result{Code: meta.CodeFenced}, err
		}
	}
	if op.IfMatch != "" || op.IfAbsent {
		if code, err := n.checkConditions(op); err != nil || code != meta.CodeOK {
			return meta.Result{Code: code}, err
		}
	}
	r, err := n.apply(op, tx, clock)
	if err == nil && r.Code == meta.CodeOK && op.WantDirs {
		r.Dirs = n.dirs
	}
	return r, err
}

// apply applies op, which is neither a no-op nor a change of
// configuration, to n.
func (n *namespace) apply(op *meta.Op, tx *bbolt.Tx, clock int64) (meta.Result, error) {
	switch op.Kind {
	case meta.OpPut:
		return n.put(op)
	case meta.OpDelete:
		return n.delete(op)
	case meta.OpMkdir:
		return n.mkdir(op)
	case meta.OpRename:
		return n.rename(op)
	case meta.OpCopy:
		return n.copy(op)
	case meta.OpCreate:
		return n.create(op)
	case meta.OpSymlink:
		return n.symlink(op)
	case meta.OpMknod:
		return n.mknod(op)
	case meta.OpKeepOrphan:
		return n.keepOrphan(op)
	case meta.OpCollectOrphans:
		return n.collectOrphans()
	case meta.OpLink:
		return n.link(op)
	case meta.OpUpdate:
		return n.update(op)
	case meta.OpRelease:
		return n.releaseOrphan(op)
	case meta.OpUserAdd:
		return n.userAdd(op)
	case meta.OpUserRemove:
		return n.userRemove(op)
	case meta.OpUserToken:
		return n.userToken(op)
	case meta.OpUserKeyAdd:
		return n.userKeyAdd(op)
	case meta.OpUserKeyRemove:
		return n.userKeyRemove(op)
	case meta.OpLock:
		return n.lock(tx, op, clock)
	}
	return reject(meta.CodeInvalid)
}

// checkConditions checks op's IfMatch and IfAbsent against the namespace
// as it is before op applies. A path the caller may not search fails as
// the op itself would, with CodeAccess, so a condition tells nothing the
// caller could not learn otherwise.
func (n *namespace) checkConditions(op *meta.Op) (meta.Code, error) {
	look := func(at uint64, path string) (meta.Inode, bool, meta.Code, error) {
		parts, ok := splitPath(path)
		if !ok {
			return meta.Inode{}, false, meta.CodeInvalid, nil
		}
		chain, code, err := n.walk(at, parts)
		switch {
		case err != nil:
			return meta.Inode{}, false, meta.CodeOK, err
		case code == meta.CodeAccess:
			return meta.Inode{}, false, code, nil
		case code != meta.CodeOK:
			return meta.Inode{}, false, meta.CodeOK, nil // nothing there
		}
		return chain[len(chain)-1], true, meta.CodeOK, nil
	}
	if op.IfMatch != "" {
		in, found, code, err := look(op.Dir, op.Path)
		if err != nil || code != meta.CodeOK {
			return code, err
		}
		if !found || op.IfMatch != "*" && op.IfMatch != in.Hash {
			return meta.CodePrecond, nil
		}
	}
	if op.IfAbsent {
		at, path := op.Dir, op.Path
		switch op.Kind {
		case meta.OpRename, meta.OpCopy, meta.OpLink:
			at, path = op.ToDir, op.To
		}
		_, found, code, err := look(at, path)
		if err != nil || code != meta.CodeOK {
			return code, err
		}
		if found {
			return meta.CodePrecond, nil
		}
	}
	return meta.CodeOK, nil
}

// forEachChunk calls fn for every stored chunk (not the holes) of every
// file inode, stopping at the first error fn returns. A chunk shared by
// copies is reported once per inode. fn must not modify the namespace: it runs inside a bucket scan.
func forEachChunk(tx *bbolt.Tx, fn func(meta.ChunkRef) error) error {
	n, err := openNamespace(tx)
	if err != nil {
		return err
	}
	return n.inodes.forEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("namespace: inode key %x is not 8 bytes: %w", k, meta.ErrCorrupt)
		}
		in, err := decodeInode(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		for _, c := range in.Chunks {
			if c.Hole() {
				continue
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// namespace is the set of buckets of one transaction. The buckets added
// after the first three may be nil in a read-only transaction over a
// database older than them; ApplyOp refuses to run without them.
type namespace struct {
	inodes, dentries, meta bucket
	// lazy holds the other buckets, each opened when first used (see
	// lazyBucket): a read needs few of them, and opening one in a read
	// transaction is a search of the root every time.
	lazy   [lazyBuckets]bucket
	opened [lazyBuckets]bool
	// cred is who the op or read acts for (nil: the cluster itself):
	// permission checks and the owners of new inodes follow it.
	cred *meta.Cred
	// tx is the transaction, for the buckets opened or made when first
	// needed; clock the group's clock of the op applied (leases).
	tx    *bbolt.Tx
	clock int64
	// dirs are the directories whose entries the op changed, as they
	// are after it (attributes only; see meta.Result.Dirs).
	dirs []meta.Inode
	// found, when not nil, keeps the directories walk found, by the
	// entry that names them: reads of one state (Reader.namespace) that
	// share the namespace look each up once. Nil where anything writes.
	found map[dentryName]meta.Inode
}

// dentryName is an entry of a directory: the directory's inode and the
// name.
type dentryName struct {
	dir  uint64
	name string
}

func openNamespace(tx *bbolt.Tx) (*namespace, error) {
	n := &namespace{
		inodes:   bucketIn(tx, bucketInodes),
		dentries: bucketIn(tx, bucketDentries),
		meta:     bucketIn(tx, bucketNSMeta),
		tx:       tx,
	}
	if !n.inodes.exists() || !n.dentries.exists() || !n.meta.exists() {
		return nil, fmt.Errorf("namespace buckets missing: call InitNamespace when opening the store")
	}
	if tx.Writable() {
		n.inodes, n.dentries, n.meta = n.inodes.withCursor(), n.dentries.withCursor(), n.meta.withCursor()
	}
	return n, nil
}

// applying is what the applies of one transaction share (ApplyThen):
// the buckets they write, opened once, each with a cursor that its
// lookups reuse, and the changes to the record counts of bucket sums,
// gathered for the transaction to write once (counts.flush) where each
// record added or removed would read and rewrite its bucket's count. A
// nil *applying opens what each apply needs afresh and tallies each
// record at once, as buckets opened apart (locks, orphans) always do.
type applying struct {
	counts *counts
	// ns has every bucket of the namespace open; each op gets a copy of
	// its own (namespace).
	ns          *namespace
	reqs, times bucket // once opened (requests)
}

func newApplying() *applying { return &applying{counts: &counts{}} }

// gather returns b with a cursor for its lookups and its changes of
// record counts gathered in a's.
func (a *applying) gather(b bucket) bucket {
	b = b.withCursor()
	b.counts = a.counts
	return b
}

// namespace returns a namespace of tx for one op: a copy of a's, whose
// buckets (and their cursors) it shares, or a new one if a is nil.
func (a *applying) namespace(tx *bbolt.Tx) (*namespace, error) {
	if a == nil {
		return openNamespace(tx)
	}
	if a.ns == nil {
		n, err := openNamespace(tx)
		if err != nil {
			return nil, err
		}
		n.inodes, n.dentries, n.meta = a.gather(n.inodes), a.gather(n.dentries), a.gather(n.meta)
		for i := range lazyBuckets {
			*n.lazyBucket(i) = a.gather(*n.lazyBucket(i))
		}
		a.ns = n
	}
	n := *a.ns
	return &n, nil
}

// requests returns the buckets of request records of tx, made if need
// be: a's, or new ones if a is nil.
func (a *applying) requests(tx *bbolt.Tx) (reqs, times bucket, err error) {
	if a != nil && a.reqs.exists() {
		return a.reqs, a.times, nil
	}
	if reqs, err = createBucket(tx, bucketRequests); err != nil {
		return reqs, times, err
	}
	if times, err = createBucket(tx, bucketReqTimes); err != nil {
		return reqs, times, err
	}
	if a != nil {
		a.reqs, a.times = a.gather(reqs), a.gather(times)
		return a.reqs, a.times, nil
	}
	return reqs, times, nil
}

// The namespace's buckets opened when first used, in namespace.lazy.
const (
	lazyRefs = iota
	lazyLinks
	lazyOwners
	lazyUsers
	lazyTokens
	lazyUsage
	lazyBuckets
)

var lazyNames = [lazyBuckets][]byte{bucketChunkRefs, bucketLinks, bucketOwners, bucketUsers, bucketTokens, bucketUsage}

// lazyBucket returns the bucket lazy[i], opening it on first use.
func (n *namespace) lazyBucket(i int) *bucket {
	if !n.opened[i] {
		n.lazy[i], n.opened[i] = bucketIn(n.tx, lazyNames[i]), true
		if n.tx.Writable() {
			n.lazy[i] = n.lazy[i].withCursor()
		}
	}
	return &n.lazy[i]
}

func (n *namespace) refs() *bucket   { return n.lazyBucket(lazyRefs) }
func (n *namespace) links() *bucket  { return n.lazyBucket(lazyLinks) }
func (n *namespace) owners() *bucket { return n.lazyBucket(lazyOwners) }
func (n *namespace) users() *bucket  { return n.lazyBucket(lazyUsers) }
func (n *namespace) tokens() *bucket { return n.lazyBucket(lazyTokens) }
func (n *namespace) usage() *bucket  { return n.lazyBucket(lazyUsage) }

func reject(c meta.Code) (meta.Result, error) { return meta.Result{Code: c}, nil }

func modeOr(op *meta.Op, def uint32) uint32 {
	if op.Mode == 0 && !op.ModeGiven {
		return def
	}
	return op.Mode
}

// splitPath splits an absolute path into its names; the root has none. ok is
// false for anything the HTTP layer should have rejected, so a bad op from
// the log fails as CodeInvalid on every member instead of panicking.
func splitPath(p string) (parts []string, ok bool) {
	if p == "/" {
		return nil, true
	}
	if len(p) < 2 || p[0] != '/' {
		return nil, false
	}
	parts = strings.Split(p[1:], "/")
	for _, s := range parts {
		if s == "" || s == "." || s == ".." || len(s) > maxNameLen || strings.IndexByte(s, 0) >= 0 {
			return nil, false
		}
	}
	return parts, true
}

// isUnder reports whether p is dir or lies below it.
func isUnder(p, dir []string) bool {
	if len(p) < len(dir) {
		return false
	}
	for i := range dir {
		if p[i] != dir[i] {
			return false
		}
	}
	return true
}

func inoKey(ino uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), ino)
}

func dentryKey(dir uint64, name string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(name)), dir), name...)
}

func decodeInode(ino uint64, v []byte) (meta.Inode, error) {
	in, err := meta.UnmarshalInode(v)
	if err != nil {
		return meta.Inode{}, fmt.Errorf("namespace: decode inode %d: %w: %w", ino, meta.ErrCorrupt, err)
	}
	if in.Ino != ino || !in.Type.Valid() {
		return meta.Inode{}, fmt.Errorf("namespace: inode record %d holds ino %d type %d: %w", ino, in.Ino, in.Type, meta.ErrCorrupt)
	}
	return in, nil
}

// get loads an inode that a dentry or the root points at, so a missing one
// is corruption, not a user error.
func (n *namespace) get(ino uint64) (meta.Inode, error) {
	v, err := n.inodes.seek(inoKey(ino))
	if err != nil {
		return meta.Inode{}, err
	}
	if v == nil {
		return meta.Inode{}, fmt.Errorf("namespace: inode %d is referenced but missing: %w", ino, meta.ErrCorrupt)
	}
	return decodeInode(ino, v)
}

// save and dropInode are the only writers of the inodes bucket. Each moves
// the chunk reference counts and the owner index by the difference between
// the record stored now and what replaces it, so no op can get them wrong
// by passing a stale copy of an inode. Chunks of directories are skipped:
// they have none, and an inode number never changes type because numbers
// are never reused.
func (n *namespace) save(in meta.Inode) error {
	in.Usage = nil // kept in its own bucket
	v, err := msgpack.Marshal(&in)
	if err != nil {
		return fmt.Errorf("namespace: encode inode %d: %w", in.Ino, err)
	}
	if !n.owners().exists() {
		return fmt.Errorf("namespace: bucket %s missing: call InitNamespace when opening the store", bucketOwners)
	}
	old, had, err := n.stored(in.Ino)
	if err != nil {
		return err
	}
	if in.Type != meta.TypeDir {
		if err := n.adjustRefs(old.Chunks, in.Chunks); err != nil {
			return err
		}
		if had && old.Size != in.Size {
			if err := n.resized(in.Ino, in.Size-old.Size); err != nil {
				return err
			}
		}
	}
	if err := n.moveOwner(old, had, in); err != nil {
		return err
	}
	return n.inodes.put(inoKey(in.Ino), v)
}

func (n *namespace) dropInode(in meta.Inode) error {
	if !n.owners().exists() {
		return fmt.Errorf("namespace: bucket %s missing: call InitNamespace when opening the store", bucketOwners)
	}
	old, had, err := n.stored(in.Ino)
	if err != nil || !had {
		return err
	}
	if in.Type != meta.TypeDir {
		if err := n.adjustRefs(old.Chunks, nil); err != nil {
			return err
		}
	}
	if err := n.owners().del(ownerKey(old.Uid, old.Ino)); err != nil {
		return err
	}
	if old.Type == meta.TypeDir {
		if err := n.usage().del(usageKey(old.Ino)); err != nil {
			return err
		}
	}
	if old.Nlink == 0 {
		if err := n.forgetOrphan(old.Ino); err != nil {
			return err
		}
	}
	return n.inodes.del(inoKey(in.Ino))
}

// stored returns the record stored for ino, if any.
func (n *namespace) stored(ino uint64) (meta.Inode, bool, error) {
	v, err := n.inodes.get(inoKey(ino))
	if err != nil || v == nil {
		return meta.Inode{}, false, err
	}
	old, err := decodeInode(ino, v)
	return old, err == nil, err
}

func (n *namespace) allocIno() (uint64, error) {
	v, err := n.meta.get(keyNextIno)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 || binary.BigEndian.Uint64(v) <= RootIno {
		return 0, fmt.Errorf("namespace: next_ino record %x is invalid: %w", v, meta.ErrCorrupt)
	}
	ino := binary.BigEndian.Uint64(v)
	return ino, n.meta.put(keyNextIno, inoKey(ino+1))
}

// child returns the inode number of name in dir, if there is one.
func (n *namespace) child(dir uint64, name string) (uint64, bool, error) {
	v, err := n.dentries.seek(dentryKey(dir, name))
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("namespace: entry %q of dir %d holds %x: %w", name, dir, v, meta.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

type dentry struct {
	name string
	ino  uint64
}

// children lists dir in name order. It returns a slice rather than taking a
// callback so callers may write to the buckets while walking the result;
// bbolt cursors do not survive writes.
func (n *namespace) children(dir uint64) ([]dentry, error) {
	prefix := inoKey(dir)
	var out []dentry
	c := n.dentries.cursor()
	for k, v, err := c.seek(prefix); ; k, v, err = c.next() {
		if err != nil {
			return nil, err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return out, nil
		}
		if len(v) != 8 {
			return nil, fmt.Errorf("namespace: entry %q of dir %d holds %x: %w", k[8:], dir, v, meta.ErrCorrupt)
		}
		out = append(out, dentry{name: string(k[8:]), ino: binary.BigEndian.Uint64(v)})
	}
}

// childrenAfter lists the entries of dir after the name after ("": from
// the first), in name order, at most limit (0: all); more reports whether
// another entry follows.
func (n *namespace) childrenAfter(dir uint64, after string, limit int) (out []dentry, more bool, err error) {
	prefix := inoKey(dir)
	c := n.dentries.cursor()
	k, v, err := c.seek(append(prefix, after...))
	if err == nil && after != "" && k != nil && string(k) == string(prefix)+after {
		k, v, err = c.next()
	}
	for ; ; k, v, err = c.next() {
		if err != nil {
			return nil, false, err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return out, false, nil
		}
		if limit > 0 && len(out) == limit {
			return out, true, nil
		}
		if len(v) != 8 {
			return nil, false, fmt.Errorf("namespace: entry %q of dir %d holds %x: %w", k[8:], dir, v, meta.ErrCorrupt)
		}
		out = append(out, dentry{name: string(k[8:]), ino: binary.BigEndian.Uint64(v)})
	}
}

func (n *namespace) hasChildren(dir uint64) (bool, error) {
	prefix := inoKey(dir)
	k, _, err := n.dentries.cursor().seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix), err
}

// walk resolves parts from the inode at (0: the root) as far as it can:
// chain[0] is that inode and chain[i] the inode of parts[i-1]. code is
// CodeOK when the whole path resolved, else why the walk stopped after
// chain: CodeNotFound at a missing name (with chain empty: the inode at
// is gone, a client held on to its number after it was removed),
// CodeNotDir at a file or symlink that still has names below it (the
// namespace never follows symlinks), CodeAccess where n.cred may not
// search the last directory of chain (with chain empty: may not reach
// the inode at; see perm.go). As the kernel's link_path_walk does, the
// search permission is checked before the name is looked up, so a
// caller learns nothing about what a directory it may not search holds.
func (n *namespace) walk(at uint64, parts []string) ([]meta.Inode, meta.Code, error) {
	if at == 0 {
		at = RootIno
	}
	v, err := n.inodes.get(inoKey(at))
	if err != nil {
		return nil, meta.CodeOK, err
	}
	if v == nil {
		return nil, meta.CodeNotFound, nil
	}
	cur, err := decodeInode(at, v)
	if err != nil {
		return nil, meta.CodeOK, err
	}
	if code, err := n.anchorCode(cur); err != nil || code != meta.CodeOK {
		return nil, code, err
	}
	chain := append(make([]meta.Inode, 0, len(parts)+1), cur)
	for _, name := range parts {
		if cur.Type != meta.TypeDir {
			return chain, meta.CodeNotDir, nil
		}
		if !permits(n.cred, cur, meta.MayExec) {
			return chain, meta.CodeAccess, nil
		}
		if dir, ok := n.found[dentryName{cur.Ino, name}]; ok {
			cur = dir
			chain = append(chain, cur)
			continue
		}
		parent := cur.Ino
		ino, ok, err := n.child(parent, name)
		if err != nil {
			return nil, meta.CodeOK, err
		}
		if !ok {
			return chain, meta.CodeNotFound, nil
		}
		if cur, err = n.get(ino); err != nil {
			return nil, meta.CodeOK, err
		}
		if n.found != nil && cur.Type == meta.TypeDir {
			n.found[dentryName{parent, name}] = cur
		}
		chain = append(chain, cur)
	}
	return chain, meta.CodeOK, nil
}

func ptr[T any](v T) *T { return &v }
