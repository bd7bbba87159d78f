package store

// Locks with leases (see meta/locks.go for what they promise). Every
// decision is made from the op and the group's clock the op is applied
// at, so every member decides alike. Buckets:
//
//	locks       inode                 ->  msgpack lockRecord (holders, queue length)
//	lockwaits   inode + waiter number ->  msgpack meta.LockWaiter, in queue order
//	locktokens  fencing token         ->  inode
//	nsmeta      "lock_seq"            ->  the last token or waiter number given
//
// Waiter numbers come from the same counter as tokens, so a queue's keys
// sort in arrival order. A lease that ran out is dropped by the next op
// on its lock; until then it only looks held to a reader who ignores
// Expires, which no decision here does.

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

var (
	bucketLocks      = []byte("locks")
	bucketLockWaits  = []byte("lockwaits")
	bucketLockTokens = []byte("locktokens")
	keyLockSeq       = []byte("lock_seq")
)

// lockRecord is what a lock keeps besides its queue.
type lockRecord struct {
	Holders []meta.LockHolder `msgpack:"h,omitempty"`
	Waiting int               `msgpack:"n,omitempty"`
}

// lockTable is the lock buckets of one write transaction, at the clock
// of the op being applied.
type lockTable struct {
	n                   *namespace
	clock               int64
	recs, waits, tokens bucket
}

func openLocks(tx *bolt.Tx, n *namespace, clock int64) (*lockTable, error) {
	t := &lockTable{n: n, clock: clock}
	var err error
	if t.recs, err = createBucket(tx, bucketLocks); err != nil {
		return nil, err
	}
	if t.waits, err = createBucket(tx, bucketLockWaits); err != nil {
		return nil, err
	}
	if t.tokens, err = createBucket(tx, bucketLockTokens); err != nil {
		return nil, err
	}
	return t, nil
}

func waitKey(ino, waiter uint64) []byte {
	return binary.BigEndian.AppendUint64(inoKey(ino), waiter)
}

// next returns a new token or waiter number.
func (t *lockTable) next() (uint64, error) {
	seq, err := getU64(t.n.meta, keyLockSeq)
	if err != nil {
		return 0, err
	}
	seq++
	return seq, t.n.meta.put(keyLockSeq, key(seq))
}

func (t *lockTable) load(ino uint64) (lockRecord, error) {
	var r lockRecord
	v, err := t.recs.get(inoKey(ino))
	if err != nil || v == nil {
		return r, err
	}
	if err := msgpack.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("lock of inode %d: %w: %v", ino, meta.ErrCorrupt, err)
	}
	return r, nil
}

// save stores r, or drops it when it holds nothing.
func (t *lockTable) save(ino uint64, r lockRecord) error {
	if len(r.Holders) == 0 && r.Waiting <= 0 {
		return t.recs.del(inoKey(ino))
	}
	v, err := msgpack.Marshal(r)
	if err != nil {
		return err
	}
	return t.recs.put(inoKey(ino), v)
}

// prune drops the leases of r that ran out by the table's clock, and the
// lapsed waiters at the head of its queue (one further back is dropped
// when it reaches the head).
func (t *lockTable) prune(ino uint64, r *lockRecord) error {
	live := r.Holders[:0]
	for _, h := range r.Holders {
		if h.Expires > t.clock {
			live = append(live, h)
		} else if err := t.tokens.del(key(h.Token)); err != nil {
			return err
		}
	}
	r.Holders = live
	for r.Waiting > 0 {
		k, w, err := t.head(ino)
		if err != nil {
			return err
		}
		if k == nil {
			r.Waiting = 0 // the count ran ahead of the queue: trust the queue
			break
		}
		if w.Expires > t.clock {
			break
		}
		if err := t.waits.del(k); err != nil {
			return err
		}
		r.Waiting--
	}
	return nil
}

// head returns the first waiter in ino's queue, a nil key if none.
func (t *lockTable) head(ino uint64) ([]byte, meta.LockWaiter, error) {
	var w meta.LockWaiter
	prefix := inoKey(ino)
	k, v, err := t.waits.cursor().seek(prefix)
	if err != nil || k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, w, err
	}
	if err := msgpack.Unmarshal(v, &w); err != nil {
		return nil, w, fmt.Errorf("waiter %x: %w: %v", k, meta.ErrCorrupt, err)
	}
	return bytes.Clone(k), w, nil
}

func (t *lockTable) waiter(ino, id uint64) (*meta.LockWaiter, error) {
	v, err := t.waits.get(waitKey(ino, id))
	if err != nil || v == nil {
		return nil, err
	}
	var w meta.LockWaiter
	if err := msgpack.Unmarshal(v, &w); err != nil {
		return nil, fmt.Errorf("waiter %d of inode %d: %w: %v", id, ino, meta.ErrCorrupt, err)
	}
	return &w, nil
}

func (t *lockTable) putWaiter(ino uint64, w meta.LockWaiter) error {
	v, err := msgpack.Marshal(w)
	if err != nil {
		return err
	}
	return t.waits.put(waitKey(ino, w.Waiter), v)
}

// state is r as a LockState, with the first waiters of its queue.
func (t *lockTable) state(ino uint64, r lockRecord) (*meta.LockState, error) {
	s := &meta.LockState{Ino: ino, Holders: r.Holders, Waiting: r.Waiting, Clock: t.clock}
	queue, err := lockQueue(t.waits, ino, meta.LockQueueShown)
	s.Queue = queue
	return s, err
}

func lockQueue(waits bucket, ino uint64, limit int) ([]meta.LockWaiter, error) {
	if !waits.exists() {
		return nil, nil
	}
	var out []meta.LockWaiter
	prefix := inoKey(ino)
	c := waits.cursor()
	for k, v, err := c.seek(prefix); len(out) < limit; k, v, err = c.next() {
		if err != nil {
			return nil, err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			break
		}
		var w meta.LockWaiter
		if err := msgpack.Unmarshal(v, &w); err != nil {
			return nil, fmt.Errorf("waiter %x: %w: %v", k, meta.ErrCorrupt, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// fits reports whether a lease of the lock API (the whole file, no
// session) in mode shared can join holders.
func fits(holders []meta.LockHolder, shared bool) bool {
	for _, h := range holders {
		if h.Conflicts("", 0, meta.LockEOF, shared) {
			return false
		}
	}
	return len(holders) < meta.MaxLockHolders
}

// checkLockOp refuses a lock op whose fields are out of bounds.
func checkLockOp(l *meta.LockOp) meta.Code {
	if l == nil || len(l.Owner) > meta.MaxLockOwner {
		return meta.CodeInvalid
	}
	if l.TTL != 0 && (l.TTL < int64(meta.MinLockTTL) || l.TTL > int64(meta.MaxLockTTL)) {
		return meta.CodeInvalid
	}
	switch l.Action {
	case meta.LockAcquire:
		if l.TTL == 0 || len(l.Key) < 16 || len(l.Key) > 64 {
			return meta.CodeInvalid
		}
	case meta.LockRenew, meta.LockRelease:
		if l.Token == 0 || l.Key == "" {
			return meta.CodeInvalid
		}
	case meta.LockKeep:
		if len(l.Keep) > meta.MaxLockKeep {
			return meta.CodeInvalid
		}
	case meta.LockCancel:
		if len(l.Keep) != 1 {
			return meta.CodeInvalid
		}
	case meta.LockRange, meta.LockUnrange:
		if len(l.Session) < meta.MinLockSession || len(l.Session) > 256 || l.Start >= l.End ||
			l.Action == meta.LockRange && l.TTL == 0 {
			return meta.CodeInvalid
		}
	case meta.LockRenewSession, meta.LockDropSession:
		if len(l.Session) < meta.MinLockSession || len(l.Session) > 256 || len(l.Inos) > meta.MaxLockKeep {
			return meta.CodeInvalid
		}
	default:
		return meta.CodeInvalid
	}
	return meta.CodeOK
}

// lock applies an OpLock.
func (n *namespace) lock(tx *bolt.Tx, op *meta.Op, clock int64) (meta.Result, error) {
	if c := checkLockOp(op.Lock); c != meta.CodeOK {
		return reject(c)
	}
	t, err := openLocks(tx, n, clock)
	if err != nil {
		return meta.Result{}, err
	}
	switch l := op.Lock; l.Action {
	case meta.LockAcquire:
		return t.acquire(op)
	case meta.LockRenew, meta.LockRelease:
		return t.renewOrRelease(l)
	case meta.LockKeep:
		for _, ref := range l.Keep {
			w, err := t.waiter(ref.Ino, ref.Waiter)
			if err != nil {
				return meta.Result{}, err
			}
			if w != nil && w.Expires > clock {
				w.Expires = max(w.Expires, clock+int64(meta.LockWaiterTTL))
				if err := t.putWaiter(ref.Ino, *w); err != nil {
					return meta.Result{}, err
				}
			}
		}
		return meta.Result{}, nil
	case meta.LockCancel:
		ref := l.Keep[0]
		w, err := t.waiter(ref.Ino, ref.Waiter)
		if err != nil || w == nil {
			return meta.Result{}, err
		}
		r, err := t.load(ref.Ino)
		if err != nil {
			return meta.Result{}, err
		}
		r.Waiting--
		if err := t.waits.del(waitKey(ref.Ino, ref.Waiter)); err != nil {
			return meta.Result{}, err
		}
		if err := t.prune(ref.Ino, &r); err != nil {
			return meta.Result{}, err
		}
		return meta.Result{}, t.save(ref.Ino, r)
	case meta.LockRange, meta.LockUnrange:
		return t.setRange(op)
	case meta.LockRenewSession, meta.LockDropSession:
		for _, ino := range l.Inos {
			if err := t.sessionOn(ino, l); err != nil {
				return meta.Result{}, err
			}
		}
		return meta.Result{}, nil
	}
	return reject(meta.CodeInvalid)
}

// target finds the inode an acquire or a range op names and its lock,
// pruned of what ran out; a path that is not there, or that the caller
// may not read, is the op's answer (code). Taking a lock is like
// flock(2), which needs an open file, and so read permission.
func (t *lockTable) target(op *meta.Op) (meta.Inode, lockRecord, meta.Code, error) {
	in, err := t.n.resolvePath("lock", op.Dir, op.Path)
	if err != nil {
		if errors.Is(err, meta.ErrCorrupt) {
			return in, lockRecord{}, meta.CodeOK, err
		}
		return in, lockRecord{}, meta.CodeOf(err), nil
	}
	if !mayContent(t.n.cred, in, meta.MayRead) && !permits(t.n.cred, in, meta.MayRead) {
		return in, lockRecord{}, meta.CodeAccess, nil
	}
	r, err := t.load(in.Ino)
	if err == nil {
		err = t.prune(in.Ino, &r)
	}
	return in, r, meta.CodeOK, err
}

// setRange applies LockRange and LockUnrange: the session's locks on the
// range are replaced by the one asked for (none, to unlock), as
// fcntl(F_SETLK) replaces a process's own locks, splitting those that
// reach past the range.
func (t *lockTable) setRange(op *meta.Op) (meta.Result, error) {
	l := op.Lock
	in, r, code, err := t.target(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	if l.Action == meta.LockRange {
		// The lock API's waiters come before a session that holds
		// nothing here yet; one that does already holds them up, and
		// refusing it more would leave both waiting on each other.
		busy, holds := false, false
		for _, h := range r.Holders {
			busy = busy || h.Conflicts(l.Session, l.Start, l.End, l.Shared)
			holds = holds || h.Session == l.Session
		}
		if busy || r.Waiting > 0 && !holds {
			return t.refuse(in.Ino, r)
		}
	}
	// Count the pieces first: a refusal changes nothing.
	pieces := 0
	for _, h := range r.Holders {
		hs, he := h.Range()
		if h.Session != l.Session || he <= l.Start || l.End <= hs {
			pieces++
			continue
		}
		if hs < l.Start {
			pieces++
		}
		if l.End < he {
			pieces++
		}
	}
	if l.Action == meta.LockRange && pieces+1 > meta.MaxLockHolders {
		return t.refuse(in.Ino, r)
	}
	var keep []meta.LockHolder
	for _, h := range r.Holders {
		hs, he := h.Range()
		if h.Session != l.Session || he <= l.Start || l.End <= hs {
			keep = append(keep, h)
			continue
		}
		if err := t.tokens.del(key(h.Token)); err != nil {
			return meta.Result{}, err
		}
		for _, piece := range [][2]uint64{{hs, l.Start}, {l.End, he}} {
			if piece[0] >= piece[1] {
				continue
			}
			p := h
			p.Start, p.End = piece[0], piece[1]
			if p.Token, err = t.grantToken(in.Ino); err != nil {
				return meta.Result{}, err
			}
			keep = append(keep, p)
		}
	}
	if l.Action == meta.LockRange {
		uid := uint32(0)
		if t.n.cred != nil {
			uid = t.n.cred.Uid
		}
		h := meta.LockHolder{Key: l.Session, Session: l.Session, Start: l.Start, End: l.End, Shared: l.Shared, TTL: l.TTL,
			Expires: t.clock + l.TTL, Owner: l.Owner, Uid: uid, Pid: l.Pid, Granted: t.clock}
		if h.Token, err = t.grantToken(in.Ino); err != nil {
			return meta.Result{}, err
		}
		keep = append(keep, h)
	}
	r.Holders = keep
	if err := t.save(in.Ino, r); err != nil {
		return meta.Result{}, err
	}
	s, err := t.state(in.Ino, r)
	return meta.Result{Lock: s}, err
}

// refuse answers CodeLocked with the lock's state. It keeps what prune
// dropped (leases and places that had run out, gone whatever the answer),
// so the record stays in step with the buckets; the lock as anyone sees
// it is unchanged.
func (t *lockTable) refuse(ino uint64, r lockRecord) (meta.Result, error) {
	if err := t.save(ino, r); err != nil {
		return meta.Result{}, err
	}
	s, err := t.state(ino, r)
	return meta.Result{Code: meta.CodeLocked, Lock: s}, err
}

// grantToken numbers a new lease of the inode ino.
func (t *lockTable) grantToken(ino uint64) (uint64, error) {
	token, err := t.next()
	if err != nil {
		return 0, err
	}
	return token, t.tokens.put(key(token), inoKey(ino))
}

// sessionOn renews or drops every lease of the session l names on ino.
func (t *lockTable) sessionOn(ino uint64, l *meta.LockOp) error {
	r, err := t.load(ino)
	if err != nil || len(r.Holders) == 0 {
		return err
	}
	if err := t.prune(ino, &r); err != nil {
		return err
	}
	keep := r.Holders[:0]
	for _, h := range r.Holders {
		switch {
		case h.Session != l.Session:
		case l.Action == meta.LockRenewSession:
			h.Expires = t.clock + h.TTL
		default:
			if err := t.tokens.del(key(h.Token)); err != nil {
				return err
			}
			continue
		}
		keep = append(keep, h)
	}
	r.Holders = keep
	return t.save(ino, r)
}

func (t *lockTable) acquire(op *meta.Op) (meta.Result, error) {
	l := op.Lock
	in, r, code, err := t.target(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	var mine *meta.LockWaiter
	if l.Waiter != 0 {
		if mine, err = t.waiter(in.Ino, l.Waiter); err != nil {
			return meta.Result{}, err
		}
	}
	first := r.Waiting == 0
	if !first {
		_, head, err := t.head(in.Ino)
		if err != nil {
			return meta.Result{}, err
		}
		first = mine != nil && head.Waiter == mine.Waiter
	}
	uid := uint32(0)
	if t.n.cred != nil {
		uid = t.n.cred.Uid
	}
	if first && fits(r.Holders, l.Shared) {
		if mine != nil {
			if err := t.waits.del(waitKey(in.Ino, mine.Waiter)); err != nil {
				return meta.Result{}, err
			}
			r.Waiting--
		}
		token, err := t.next()
		if err != nil {
			return meta.Result{}, err
		}
		h := meta.LockHolder{Token: token, Key: l.Key, Shared: l.Shared, TTL: l.TTL, Expires: t.clock + l.TTL,
			Owner: l.Owner, Uid: uid, Granted: t.clock, End: meta.LockEOF}
		r.Holders = append(r.Holders, h)
		if err := t.tokens.put(key(token), inoKey(in.Ino)); err != nil {
			return meta.Result{}, err
		}
		if err := t.prune(in.Ino, &r); err != nil { // the waiter behind may have lapsed
			return meta.Result{}, err
		}
		if err := t.save(in.Ino, r); err != nil {
			return meta.Result{}, err
		}
		s, err := t.state(in.Ino, r)
		if s != nil {
			s.Granted = &h
		}
		return meta.Result{Lock: s}, err
	}
	if !l.Wait {
		return t.refuse(in.Ino, r)
	}
	if mine == nil {
		if r.Waiting >= meta.MaxLockWaiters {
			return t.refuse(in.Ino, r)
		}
		id, err := t.next()
		if err != nil {
			return meta.Result{}, err
		}
		mine = &meta.LockWaiter{Waiter: id, Shared: l.Shared, Owner: l.Owner, Uid: uid}
		r.Waiting++
	}
	mine.Expires = max(mine.Expires, t.clock+int64(meta.LockWaiterTTL))
	if err := t.putWaiter(in.Ino, *mine); err != nil {
		return meta.Result{}, err
	}
	if err := t.save(in.Ino, r); err != nil {
		return meta.Result{}, err
	}
	s, err := t.state(in.Ino, r)
	if s != nil {
		s.Waiter = mine.Waiter
	}
	return meta.Result{Lock: s}, err
}

// holderOf finds the live lease token names, with its lock: nil if it
// does not hold one (released, run out, or never granted).
func (t *lockTable) holderOf(token uint64) (ino uint64, r lockRecord, i int, err error) {
	v, err := t.tokens.get(key(token))
	if err != nil || v == nil {
		return 0, r, -1, err
	}
	if len(v) != 8 {
		return 0, r, -1, fmt.Errorf("lock token %d: inode record of %d bytes: %w", token, len(v), meta.ErrCorrupt)
	}
	ino = binary.BigEndian.Uint64(v)
	if r, err = t.load(ino); err != nil {
		return 0, r, -1, err
	}
	for i, h := range r.Holders {
		if h.Token == token && h.Expires > t.clock {
			return ino, r, i, nil
		}
	}
	return ino, r, -1, nil
}

func (t *lockTable) renewOrRelease(l *meta.LockOp) (meta.Result, error) {
	ino, r, i, err := t.holderOf(l.Token)
	if err != nil {
		return meta.Result{}, err
	}
	if i < 0 || subtle.ConstantTimeCompare([]byte(r.Holders[i].Key), []byte(l.Key)) != 1 {
		return reject(meta.CodeNotHolder)
	}
	h := r.Holders[i]
	if l.Action == meta.LockRelease {
		r.Holders = append(r.Holders[:i:i], r.Holders[i+1:]...)
		if err := t.tokens.del(key(h.Token)); err != nil {
			return meta.Result{}, err
		}
	} else {
		if l.TTL != 0 {
			h.TTL = l.TTL
		}
		h.Expires = t.clock + h.TTL
		r.Holders[i] = h
	}
	if err := t.prune(ino, &r); err != nil {
		return meta.Result{}, err
	}
	if err := t.save(ino, r); err != nil {
		return meta.Result{}, err
	}
	s, err := t.state(ino, r)
	if s != nil && l.Action == meta.LockRenew {
		s.Granted = &h
	}
	return meta.Result{Lock: s}, err
}

// fenced reports whether token no longer holds its lock at clock.
func fenced(tx *bolt.Tx, n *namespace, token uint64, clock int64) (bool, error) {
	if !hasBucket(tx, bucketLockTokens) {
		return true, nil
	}
	t := &lockTable{n: n, clock: clock, recs: bucketIn(tx, bucketLocks), waits: bucketIn(tx, bucketLockWaits),
		tokens: bucketIn(tx, bucketLockTokens)}
	_, _, i, err := t.holderOf(token)
	return i < 0, err
}

// renewLeases is what a new primary's first entry does: every lease and
// every place in a queue that had not run out by the group's clock then
// counts as granted at that clock, never shorter, so no holder loses its
// lock to the failover, whatever its clock measured meanwhile.
func renewLeases(tx *bolt.Tx, clock int64) error {
	if !hasBucket(tx, bucketLocks) {
		return nil
	}
	recs, waits := bucketIn(tx, bucketLocks), bucketIn(tx, bucketLockWaits)
	type change struct {
		k, v []byte
	}
	var changes []change
	err := recs.forEach(func(k, v []byte) error {
		var r lockRecord
		if err := msgpack.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("lock %x: %w: %v", k, meta.ErrCorrupt, err)
		}
		for i, h := range r.Holders {
			if h.Expires > clock {
				r.Holders[i].Expires = max(h.Expires, clock+h.TTL)
			}
		}
		nv, err := msgpack.Marshal(r)
		changes = append(changes, change{bytes.Clone(k), nv})
		return err
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := recs.put(c.k, c.v); err != nil {
			return err
		}
	}
	changes = changes[:0]
	if err := waits.forEach(func(k, v []byte) error {
		var w meta.LockWaiter
		if err := msgpack.Unmarshal(v, &w); err != nil {
			return fmt.Errorf("waiter %x: %w: %v", k, meta.ErrCorrupt, err)
		}
		if w.Expires > clock {
			w.Expires = max(w.Expires, clock+int64(meta.LockWaiterTTL))
		}
		nv, err := msgpack.Marshal(w)
		changes = append(changes, change{bytes.Clone(k), nv})
		return err
	}); err != nil {
		return err
	}
	for _, c := range changes {
		if err := waits.put(c.k, c.v); err != nil {
			return err
		}
	}
	return nil
}

// lockStateAt reads the lock of the inode at path for cred, at clock.
// session, when set, marks the holders of that session as Mine.
func lockStateAt(tx *bolt.Tx, dir uint64, path string, cred *meta.Cred, session string, clock int64) (meta.LockState, error) {
	n, err := openNamespace(tx)
	if err != nil {
		return meta.LockState{}, err
	}
	n.cred = cred
	in, err := n.resolvePath("lock", dir, path)
	if err != nil {
		return meta.LockState{}, err
	}
	if !mayContent(cred, in, meta.MayRead) && !permits(cred, in, meta.MayRead) {
		return meta.LockState{}, fmt.Errorf("lock %s: %w: no read permission", path, meta.ErrPermission)
	}
	s := meta.LockState{Ino: in.Ino, Clock: clock}
	recs := bucketIn(tx, bucketLocks)
	if !recs.exists() {
		return s, nil
	}
	v, err := recs.get(inoKey(in.Ino))
	if err != nil || v == nil {
		return s, err
	}
	var r lockRecord
	if err := msgpack.Unmarshal(v, &r); err != nil {
		return s, fmt.Errorf("lock of inode %d: %w: %v", in.Ino, meta.ErrCorrupt, err)
	}
	for _, h := range r.Holders {
		if h.Expires > clock {
			s.Holders = append(s.Holders, h)
		}
	}
	s.Waiting = r.Waiting
	s.Queue, err = liveQueue(bucketIn(tx, bucketLockWaits), in.Ino, clock)
	return s.Public(session), err
}

// maxQueueScan bounds the places a read of a lock looks at for the first
// live ones (places that lapsed stay until an op reaches them).
const maxQueueScan = 10_000

// liveQueue returns the first LockQueueShown places of ino's queue that
// have not lapsed by clock.
func liveQueue(waits bucket, ino uint64, clock int64) ([]meta.LockWaiter, error) {
	if !waits.exists() {
		return nil, nil
	}
	var out []meta.LockWaiter
	prefix := inoKey(ino)
	c := waits.cursor()
	scanned := 0
	for k, v, err := c.seek(prefix); len(out) < meta.LockQueueShown && scanned < maxQueueScan; k, v, err = c.next() {
		if err != nil {
			return nil, err
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			break
		}
		scanned++
		var w meta.LockWaiter
		if err := msgpack.Unmarshal(v, &w); err != nil {
			return nil, fmt.Errorf("waiter %x: %w: %v", k, meta.ErrCorrupt, err)
		}
		if w.Expires > clock {
			out = append(out, w)
		}
	}
	return out, nil
}

// LockState is lockStateAt over the Reader's state, at the group clock
// clock (the primary's).
func (r Reader) LockState(dir uint64, path string, cred *meta.Cred, session string, clock int64) (s meta.LockState, err error) {
	err = r.view(func(tx *bolt.Tx) error {
		s, err = lockStateAt(tx, dir, path, cred, session, clock)
		return err
	})
	return s, err
}
