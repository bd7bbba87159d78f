package store

// Every record the store keeps in meta.db carries a checksum, because
// bbolt keeps none of its own for data pages: a byte the disk changes in a
// key or a value would otherwise be read back as the truth, and a member
// that lost a file's name would answer 404 for it once it leads.
//
// Record format (formats 1 and 2):
//
//	key    as the bucket's layout says (see db.go, namespace.go, ...)
//	value  payload, then 4 bytes: CRC-32C (Castagnoli, big-endian) of
//	       uvarint(len(bucket)) bucket uvarint(len(key)) key payload
//
// The checksum covers the bucket's name and the key, so a record whose key
// changed (a dentry renamed by a flipped bit) or that moved to another
// bucket fails it as surely as one whose value changed.
//
// Bucket sums keeps, for every other bucket, how many records it holds:
//
//	sums  bucket name  ->  8-byte count
//
// A record that vanishes (a page header that lost an element) breaks no
// record's checksum, but it breaks its bucket's count. put and del keep
// the counts in the transaction of every change that adds or removes a
// record; verifyBucket compares them with a full scan. (A branch that
// points at a stale page instead is found by the walk of bbolt's pages,
// see pages.go: the page is on the free list.)
//
// Bucket state holds "format" (8 bytes: 3). Format 2 has the records of
// format 1; it says the log's unapplied entries are in files of their own
// (wal.go), so that a version that kept them in meta.db refuses the file
// rather than miss them. Format 3 has the records of format 2; it says
// the node's chunk files may carry their checksum in their names
// (chunks.go), so that a version that knows chunk files by their hash
// alone refuses the node's data rather than miss every chunk written or
// read since. Open upgrades a format-1 or format-2 meta.db by rewriting
// the mark, and moves a format-1 file's unapplied entries out (openLog).
// A meta.db written before
// records had checksums has neither that key nor bucket sums: Open
// rewrites all its records once, in one transaction, and records the
// format (migrate). One that has only one of the two lost the other to
// the disk, and is corrupt.
//
// The bucket type below is the only code that touches a bbolt bucket:
// every read verifies and every write seals. A test (records_test.go)
// fails if any other file of the package calls bbolt's bucket methods.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

// formatVersion is the record format this code writes and reads.
const formatVersion = 3

var (
	bucketSums = []byte("sums")

	// keyFormat holds the record format in bucket state.
	keyFormat = []byte("format")
	// keyRebuilding is present in bucket state while this member's log
	// may lack entries it once acknowledged (see DB.Rebuilding).
	keyRebuilding = []byte("rebuilding")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sumLen is the size of the checksum that ends every value.
const sumLen = 4

// recordSum is the checksum of the record key -> payload in bucket.
func recordSum(bucket, key, payload []byte) uint32 {
	h := crc32.Update(0, castagnoli, uvarint(len(bucket)))
	h = crc32.Update(h, castagnoli, bucket)
	h = crc32.Update(h, castagnoli, uvarint(len(key)))
	h = crc32.Update(h, castagnoli, key)
	return crc32.Update(h, castagnoli, payload)
}

// uvarints holds the uvarint encodings of the lengths a bucket name or a
// key can have, so that recordSum, which runs for every record read or
// written, hashes them without allocating (a slice handed to crc32
// escapes).
var uvarints = func() (t [1 << 14][2]byte) {
	for i := range t {
		binary.AppendUvarint(t[i][:0], uint64(i))
	}
	return t
}()

func uvarint(n int) []byte {
	switch {
	case n < 1<<7:
		return uvarints[n][:1]
	case n < 1<<14:
		return uvarints[n][:2]
	}
	return binary.AppendUvarint(nil, uint64(n))
}

// seal returns the stored value of the record key -> payload in bucket.
func seal(bucket, key, payload []byte) []byte {
	v := make([]byte, len(payload), len(payload)+sumLen)
	copy(v, payload)
	return binary.BigEndian.AppendUint32(v, recordSum(bucket, key, payload))
}

// unseal returns the payload of a stored value, if its checksum holds.
func unseal(bucket, key, v []byte) ([]byte, bool) {
	if len(v) < sumLen {
		return nil, false
	}
	p := v[:len(v)-sumLen]
	return p, binary.BigEndian.Uint32(v[len(p):]) == recordSum(bucket, key, p)
}

// CorruptError reports bytes of meta.db that differ from what the store
// wrote: a record failing its checksum, a bucket whose records do not add
// up to its sum, or pages bbolt cannot read. It wraps meta.ErrCorrupt. It
// proves this member's disk changed the file, unlike a namespace that is
// consistent record by record but not as a whole, which every member
// would share.
type CorruptError struct {
	Bucket string // "" when the damage is not in one bucket
	Key    []byte // nil when the damage is not in one record
	Why    string
}

func (e *CorruptError) Error() string {
	var where string
	if e.Bucket != "" {
		where = "bucket " + e.Bucket + ": "
	}
	if e.Key != nil {
		where = fmt.Sprintf("bucket %s, key %q: ", e.Bucket, e.Key)
	}
	return fmt.Sprintf("%s%s: %v", where, e.Why, meta.ErrCorrupt)
}

func (e *CorruptError) Unwrap() error { return meta.ErrCorrupt }

func corruptRecord(bucket, key []byte, why string) error {
	return &CorruptError{Bucket: string(bucket), Key: bytes.Clone(key), Why: why}
}

// bucket is one bbolt bucket of a transaction, read and written as
// checksummed records. Its zero value, or one for a bucket that does not
// exist, fails every call.
type bucket struct {
	name []byte
	raw  *bolt.Bucket
	// sums is bucket sums in a writable transaction, nil otherwise.
	sums *bolt.Bucket
	// cur, if not nil, is the cursor lookups go through (see seek and
	// withCursor).
	cur *bolt.Cursor
	// counts, when not nil, gathers the changes to the bucket's count of
	// records for bucket sums, written once for the transaction
	// (counts.flush) instead of at each record added or removed.
	counts *counts
}

// counts holds the changes of a transaction's puts and deletes to the
// record counts in bucket sums, by bucket. A transaction that applies
// many log entries adds a record or two to each of several buckets per
// entry: with its buckets opened with counts it updates each bucket's
// count once, in flush, where each record would read and rewrite it.
// flush must run before the transaction commits, after its last put or
// delete; nothing in between may read the counts (only the verifier
// does, in transactions of its own).
type counts struct {
	// changes has one entry per bucket written, in the order first
	// written: a handful, looked through without allocating.
	changes []countChange
}

type countChange struct {
	name  []byte
	delta int64
}

func (c *counts) add(name []byte, delta int64) {
	for i := range c.changes {
		if bytes.Equal(c.changes[i].name, name) {
			c.changes[i].delta += delta
			return
		}
	}
	c.changes = append(c.changes, countChange{name: name, delta: delta})
}

// flush writes the changes gathered into bucket sums of tx, and forgets
// them.
func (c *counts) flush(tx *bolt.Tx) error {
	sums := tx.Bucket(bucketSums)
	slices.SortFunc(c.changes, func(a, b countChange) int { return bytes.Compare(a.name, b.name) })
	for _, ch := range c.changes {
		if ch.delta != 0 {
			if err := (bucket{name: ch.name, sums: sums}).tallyNow(ch.delta); err != nil {
				return err
			}
		}
	}
	c.changes = c.changes[:0]
	return nil
}

// bucketIn returns the bucket name of tx; exists reports whether there
// is one.
func bucketIn(tx *bolt.Tx, name []byte) bucket {
	b := bucket{name: name, raw: tx.Bucket(name)}
	if tx.Writable() && !bytes.Equal(name, bucketSums) {
		b.sums = tx.Bucket(bucketSums)
	}
	return b
}

// createBucket creates the bucket name in tx, or returns the one there.
func createBucket(tx *bolt.Tx, name []byte) (bucket, error) {
	if _, err := tx.CreateBucketIfNotExists(name); err != nil {
		return bucket{}, fmt.Errorf("meta.db: create bucket %s: %w", name, err)
	}
	return bucketIn(tx, name), nil
}

// deleteBucket removes the bucket name from tx, with its sum.
func deleteBucket(tx *bolt.Tx, name []byte) error {
	if tx.Bucket(name) != nil {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("meta.db: delete bucket %s: %w", name, err)
		}
	}
	if s := tx.Bucket(bucketSums); s != nil {
		return s.Delete(name)
	}
	return nil
}

// bucketNames lists the buckets of tx in name order.
func bucketNames(tx *bolt.Tx) [][]byte {
	var names [][]byte
	tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, bytes.Clone(name))
		return nil
	})
	return names
}

// hasBucket reports whether tx holds the bucket name.
func hasBucket(tx *bolt.Tx, name []byte) bool { return tx.Bucket(name) != nil }

func (b bucket) exists() bool { return b.raw != nil }

// lastKey returns the bucket's last key, nil when it is empty or missing,
// without reading the record under it: for a caller that needs the
// record only when the key is past a bound it holds.
func (b bucket) lastKey() []byte {
	if b.raw == nil {
		return nil
	}
	k, _ := b.raw.Cursor().Last()
	return k
}

func (b bucket) missing() error {
	return fmt.Errorf("meta.db: bucket %s missing: open the store with Open, which makes it", b.name)
}

// get returns the payload stored under k, nil if there is none (a
// present record with an empty payload is a non-nil empty slice). It is
// valid only during the transaction.
func (b bucket) get(k []byte) ([]byte, error) {
	if b.raw == nil {
		return nil, b.missing()
	}
	return b.found(k, b.lookup(k))
}

// found returns the payload of v, the value bbolt holds under k (nil:
// none), backing a miss where the bucket answers misses.
func (b bucket) found(k, v []byte) ([]byte, error) {
	if v == nil && answersMisses(b.name) {
		return nil, b.checkNeighbours(k)
	}
	if v == nil {
		return nil, nil
	}
	return b.check(k, v)
}

// answersMisses reports whether a miss in the bucket name is an answer
// (no such file, no such user or token), which checkNeighbours must back.
// Elsewhere a miss is a new record being made, or reported as corrupt by
// the namespace (an inode a name points at), and the verifier at rest
// finds a changed key within a pass.
func answersMisses(name []byte) bool {
	switch string(name) {
	case string(bucketDentries), string(bucketUsers), string(bucketTokens):
		return true
	}
	return false
}

// checkNeighbours verifies the records on either side of where k would
// be. A record whose key the disk changed is no longer found under its
// key, but bbolt never moves it: it sits where a lookup of the old key
// lands, so the miss of a name that exists is reported as corruption,
// not as a name that does not exist.
func (b bucket) checkNeighbours(k []byte) error {
	c := b.raw.Cursor()
	after, v := c.Seek(k)
	if after != nil {
		if _, err := b.check(after, v); err != nil {
			return err
		}
		after, v = c.Prev()
	} else {
		after, v = c.Last()
	}
	if after == nil {
		return nil
	}
	_, err := b.check(after, v)
	return err
}

// seek is get through a cursor the bucket keeps, made at the first call
// if it has none: bbolt's Get makes a cursor each time, and each search
// grows the new cursor's stack from nothing, where a cursor sought again
// reuses both. A lookup of a path makes two gets per name on it. The
// cursor is sought from the root each time, so writes in the transaction
// between two calls do not matter.
func (b *bucket) seek(k []byte) ([]byte, error) {
	if b.raw == nil {
		return nil, b.missing()
	}
	if b.cur == nil {
		b.cur = b.raw.Cursor()
	}
	return b.found(k, b.lookup(k))
}

// withCursor returns b with a cursor of its own for its lookups (get,
// put and del; see seek), shared by its copies: for a bucket that takes
// many writes in one transaction.
func (b bucket) withCursor() bucket {
	if b.raw != nil && b.cur == nil {
		b.cur = b.raw.Cursor()
	}
	return b
}

// lookup returns the value bbolt holds under k (nil: none, or a nested
// bucket, as Get's), through the bucket's cursor if it has one.
func (b bucket) lookup(k []byte) []byte {
	if b.cur == nil {
		return b.raw.Get(k)
	}
	at, v := b.cur.Seek(k)
	if !bytes.Equal(at, k) {
		return nil
	}
	return v
}

// unsealed returns a copy of the value stored under k as it is, for a
// database written before records had checksums.
func (b bucket) unsealed(k []byte) []byte {
	if b.raw == nil {
		return nil
	}
	return bytes.Clone(b.raw.Get(k))
}

// check verifies a key and the value bbolt holds for it, which a cursor
// or a Get found (nil: a nested bucket, which this store never makes).
func (b bucket) check(k, v []byte) ([]byte, error) {
	if v == nil {
		return nil, corruptRecord(b.name, k, "a nested bucket where a record should be")
	}
	p, ok := unseal(b.name, k, v)
	if !ok {
		return nil, corruptRecord(b.name, k, "the record does not match its checksum")
	}
	return p, nil
}

// put stores payload under k.
func (b bucket) put(k, payload []byte) error {
	if b.raw == nil {
		return b.missing()
	}
	had := b.lookup(k) != nil
	if err := b.raw.Put(k, seal(b.name, k, payload)); err != nil {
		return fmt.Errorf("meta.db: bucket %s: put %q: %w", b.name, k, err)
	}
	if had {
		return nil
	}
	return b.tally(1)
}

// del removes the record under k, if there is one.
func (b bucket) del(k []byte) error {
	if b.raw == nil {
		return b.missing()
	}
	if b.lookup(k) == nil {
		return nil
	}
	if err := b.raw.Delete(k); err != nil {
		return fmt.Errorf("meta.db: bucket %s: delete %q: %w", b.name, k, err)
	}
	return b.tally(-1)
}

// tally moves the bucket's count of records by delta, in its counts if
// it has them.
func (b bucket) tally(delta int64) error {
	if b.counts != nil && !bytes.Equal(b.name, bucketSums) {
		b.counts.add(b.name, delta)
		return nil
	}
	return b.tallyNow(delta)
}

// tallyNow moves the bucket's count of records in bucket sums by delta.
func (b bucket) tallyNow(delta int64) error {
	if bytes.Equal(b.name, bucketSums) {
		return nil
	}
	if b.sums == nil {
		return bucket{name: bucketSums}.missing()
	}
	n, err := bucket{name: bucketSums, raw: b.sums}.count(b.name)
	if err != nil {
		return err
	}
	// Bucket sums keeps no count of its own: put it without one.
	v := binary.BigEndian.AppendUint64(nil, uint64(int64(n)+delta))
	return b.sums.Put(b.name, seal(bucketSums, b.name, v))
}

// count reads the number of records bucket sums (s) has for the bucket
// name.
func (s bucket) count(name []byte) (uint64, error) {
	v, err := s.get(name)
	if err != nil || v == nil {
		return 0, err
	}
	return decodeCount(name, v)
}

func decodeCount(name, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("meta.db: the count of bucket %s has %d bytes, not 8: %w", name, len(v), meta.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// forEach calls fn with every record in key order, verifying each first.
// fn must not write to the bucket.
func (b bucket) forEach(fn func(k, v []byte) error) error {
	c := b.cursor()
	for k, v, err := c.first(); ; k, v, err = c.next() {
		if err != nil || k == nil {
			return err
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
}

// cursor is a bbolt cursor whose every step verifies the record it
// lands on. It does not survive writes to its bucket.
type cursor struct {
	b bucket
	c *bolt.Cursor
}

func (b bucket) cursor() cursor {
	c := cursor{b: b}
	if b.raw != nil {
		c.c = b.raw.Cursor()
	}
	return c
}

// Each step returns the key, the payload and an error, with a nil key at
// either end of the bucket.
func (c cursor) first() ([]byte, []byte, error) {
	if c.c == nil {
		return nil, nil, c.b.missing()
	}
	return c.check(c.c.First())
}

func (c cursor) last() ([]byte, []byte, error) {
	if c.c == nil {
		return nil, nil, c.b.missing()
	}
	return c.check(c.c.Last())
}

func (c cursor) next() ([]byte, []byte, error) {
	if c.c == nil {
		return nil, nil, c.b.missing()
	}
	return c.check(c.c.Next())
}

func (c cursor) prev() ([]byte, []byte, error) {
	if c.c == nil {
		return nil, nil, c.b.missing()
	}
	return c.check(c.c.Prev())
}

func (c cursor) seek(k []byte) ([]byte, []byte, error) {
	if c.c == nil {
		return nil, nil, c.b.missing()
	}
	return c.check(c.c.Seek(k))
}

func (c cursor) check(k, v []byte) ([]byte, []byte, error) {
	if k == nil {
		return nil, nil, nil
	}
	p, err := c.b.check(k, v)
	if err != nil {
		return nil, nil, err
	}
	return k, p, nil
}

// verifyBucket checks every record of the bucket name in tx against its
// checksum and the bucket's records against its sum, and returns the
// bytes it read. It also looks every key up, as reads do: a damaged
// branch page can hide a record from lookups while a scan still finds
// it, in key order.
func verifyBucket(tx *bolt.Tx, name []byte) (int64, error) {
	b := bucketIn(tx, name)
	if !b.exists() {
		return 0, nil
	}
	var got uint64
	var n int64
	var prev []byte
	c, look := b.raw.Cursor(), b.raw.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, err := b.check(k, v); err != nil {
			return n, err
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return n, corruptRecord(name, k, fmt.Sprintf("the key follows %q: the keys are out of order", prev))
		}
		if lk, lv := look.Seek(k); !bytes.Equal(lk, k) || !bytes.Equal(lv, v) {
			return n, corruptRecord(name, k, "a lookup of the key does not find the record a scan finds")
		}
		prev = k
		got++
		n += int64(len(k) + len(v))
	}
	if bytes.Equal(name, bucketSums) {
		return n, nil
	}
	want, err := bucketIn(tx, bucketSums).count(name)
	if err != nil {
		return n, err
	}
	if got != want {
		return n, &CorruptError{Bucket: string(name), Why: fmt.Sprintf("holds %d records, but %d were written: records were lost", got, want)}
	}
	return n, nil
}

// storeBuckets are the buckets a store makes, each described in the file
// that keeps it.
var storeBuckets = [][]byte{bucketLog, bucketState, bucketSums, bucketInodes, bucketDentries, bucketNSMeta,
	bucketChunkRefs, bucketLinks, bucketOwners, bucketUsers, bucketTokens, bucketRequests, bucketReqTimes, bucketUsage,
	bucketLocks, bucketLockWaits, bucketLockTokens, bucketOrphans}

// verifyAll checks every bucket of tx (see verifyBucket), that it is one
// the store makes and that a lookup finds it, and that every bucket with
// a sum still exists. It returns the bytes it read.
func verifyAll(tx *bolt.Tx) (int64, error) {
	var total int64
	for _, name := range bucketNames(tx) {
		switch {
		case !slices.ContainsFunc(storeBuckets, func(b []byte) bool { return bytes.Equal(b, name) }):
			return total, &CorruptError{Bucket: string(name), Why: "the store makes no bucket of that name"}
		case !hasBucket(tx, name):
			return total, &CorruptError{Bucket: string(name), Why: "a lookup of the bucket does not find it"}
		}
		n, err := verifyBucket(tx, name)
		total += n
		if err != nil {
			return total, err
		}
	}
	err := bucketIn(tx, bucketSums).forEach(func(name, v []byte) error {
		if hasBucket(tx, name) {
			return nil
		}
		n, err := decodeCount(name, v)
		if err == nil && n > 0 {
			err = &CorruptError{Bucket: string(name), Why: fmt.Sprintf("the bucket is gone, with the %d records written to it", n)}
		}
		return err
	})
	return total, err
}

// initFormat makes tx hold records of the current format: a new database
// gets bucket sums and the format marker, one written before checksums is
// migrated, and any other is verified whole.
func initFormat(tx *bolt.Tx) error {
	fresh := len(bucketNames(tx)) == 0
	hasState, hasSums := hasBucket(tx, bucketState), hasBucket(tx, bucketSums)
	var marker []byte
	var err error
	if st := bucketIn(tx, bucketState); hasState && st.unsealed(keyFormat) != nil {
		if marker, err = st.get(keyFormat); err != nil {
			return err
		}
	}
	switch {
	case fresh:
		if _, err := createBucket(tx, bucketSums); err != nil {
			return err
		}
		if _, err := createBucket(tx, bucketState); err != nil {
			return err
		}
		return bucketIn(tx, bucketState).put(keyFormat, key(formatVersion))
	case marker == nil && !hasSums:
		return migrate(tx)
	case marker == nil:
		return &CorruptError{Bucket: string(bucketState), Key: keyFormat, Why: "the format record is gone while bucket sums remains"}
	case len(marker) != 8:
		return fmt.Errorf("meta.db: a format record of %d bytes: %w", len(marker), meta.ErrCorrupt)
	case u64(marker) == 0 || u64(marker) > formatVersion:
		return fmt.Errorf("meta.db has record format %d; this shoal reads format %d: run the version that wrote it", u64(marker), formatVersion)
	case !hasSums:
		return &CorruptError{Bucket: string(bucketSums), Why: "the bucket is gone"}
	case u64(marker) < formatVersion:
		// Records as now. Format 1: the log's unapplied entries still in
		// meta.db, which openLog moves out after this. Format 2: chunk
		// files named by their hash alone (or, written by the version
		// just before this mark, some with their checksum), all of which
		// the chunk store reads.
		if _, err := verifyAll(tx); err != nil {
			return err
		}
		return bucketIn(tx, bucketState).put(keyFormat, key(formatVersion))
	}
	_, err = verifyAll(tx)
	return err
}

// migrateBatch bounds the records copied in memory at once by migrate.
const migrateBatch = 1024

// migrate seals every record of a database written before records had
// checksums, fills bucket sums and records the format. A record that
// already verifies means the database was sealed once and lost its
// format record and bucket sums to the disk: sealing it again would hide
// that, so migrate refuses.
func migrate(tx *bolt.Tx) error {
	names := bucketNames(tx)
	if _, err := createBucket(tx, bucketSums); err != nil {
		return err
	}
	for _, name := range names {
		if err := migrateBucket(tx, name); err != nil {
			return err
		}
	}
	st, err := createBucket(tx, bucketState)
	if err != nil {
		return err
	}
	return st.put(keyFormat, key(formatVersion))
}

func migrateBucket(tx *bolt.Tx, name []byte) error {
	raw := tx.Bucket(name)
	type kv struct{ k, v []byte }
	var after []byte
	for {
		var batch []kv
		c := raw.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(batch) < migrateBatch; k, v = c.Next() {
			if v == nil {
				return corruptRecord(name, k, "a nested bucket in a database being given checksums")
			}
			if _, ok := unseal(name, k, v); ok {
				return corruptRecord(name, k, "a record that already has a checksum, in a database with no format record: the format record was lost")
			}
			batch = append(batch, kv{bytes.Clone(k), bytes.Clone(v)})
		}
		if len(batch) == 0 {
			return nil
		}
		b := bucketIn(tx, name)
		for _, r := range batch {
			// Without the raw value, put counts the record as new.
			if err := raw.Delete(r.k); err != nil {
				return err
			}
			if err := b.put(r.k, r.v); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].k
	}
}

// isCorrupt reports whether err proves the bytes of meta.db changed.
func isCorrupt(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce)
}
