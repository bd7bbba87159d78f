package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// lockAt applies op at the group clock at.
func lockAt(t *testing.T, db *bbolt.DB, at time.Duration, op meta.Op) meta.Result {
	t.Helper()
	var r meta.Result
	if err := db.Update(func(tx *bbolt.Tx) error {
		var err error
		r, err = applyOp(tx, &op, int64(at))
		return err
	}); err != nil {
		t.Fatalf("apply %+v: %v", op, err)
	}
	return r
}

func acquireOp(path string, shared bool, ttl time.Duration, key string) meta.Op {
	return meta.Op{Kind: meta.OpLock, Path: path, Lock: &meta.LockOp{Action: meta.LockAcquire, Shared: shared, TTL: int64(ttl), Key: key}}
}

func waitOp(path string, waiter uint64, key string) meta.Op {
	op := acquireOp(path, false, 10*time.Second, key)
	op.Lock.Wait, op.Lock.Waiter = true, waiter
	return op
}

const (
	keyA = "aaaaaaaaaaaaaaaa"
	keyB = "bbbbbbbbbbbbbbbb"
	keyC = "cccccccccccccccc"
)

func lockedFile(t *testing.T) *bbolt.DB {
	db := nsOpenDB(t)
	if r := nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/f"}); r.Code != meta.CodeOK {
		t.Fatalf("create /f: %s", r.Code)
	}
	return db
}

func TestLockLeaseAndFence(t *testing.T) {
	db := lockedFile(t)
	a := lockAt(t, db, 0, acquireOp("/f", false, 5*time.Second, keyA))
	if a.Code != meta.CodeOK || a.Lock == nil || a.Lock.Granted == nil {
		t.Fatalf("first acquire: %+v", a)
	}
	ta := a.Lock.Granted.Token
	if r := lockAt(t, db, time.Second, acquireOp("/f", false, 5*time.Second, keyB)); r.Code != meta.CodeLocked || len(r.Lock.Holders) != 1 {
		t.Fatalf("acquire of a held lock: %+v, want locked with its holder", r)
	}
	if r := lockAt(t, db, time.Second, acquireOp("/f", true, 5*time.Second, keyB)); r.Code != meta.CodeLocked {
		t.Fatalf("shared acquire of an exclusive lock: %s, want locked", r.Code)
	}
	put := func(at time.Duration, fence uint64) meta.Code {
		return lockAt(t, db, at, meta.Op{Kind: meta.OpPut, Path: "/f", File: &meta.Inode{Size: 1, Data: []byte("x")}, Fence: fence}).Code
	}
	if c := put(2*time.Second, ta); c != meta.CodeOK {
		t.Fatalf("write fenced by the live lease: %s", c)
	}
	// A renew at 4s holds it until 9s.
	if r := lockAt(t, db, 4*time.Second, meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRenew, Token: ta, Key: keyA}}); r.Code != meta.CodeOK || r.Lock.Granted.Expires != int64(9*time.Second) {
		t.Fatalf("renew: %+v", r)
	}
	if r := lockAt(t, db, 4*time.Second, meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRenew, Token: ta, Key: keyB}}); r.Code != meta.CodeNotHolder {
		t.Fatalf("renew with another's key: %s, want not_holder", r.Code)
	}
	if r := lockAt(t, db, 8*time.Second, acquireOp("/f", false, 5*time.Second, keyB)); r.Code != meta.CodeLocked {
		t.Fatalf("acquire before the renewed lease ran out: %s", r.Code)
	}
	b := lockAt(t, db, 9*time.Second, acquireOp("/f", false, 5*time.Second, keyB))
	if b.Code != meta.CodeOK || b.Lock.Granted.Token <= ta {
		t.Fatalf("acquire once the lease ran out: %+v (old token %d)", b, ta)
	}
	if c := put(10*time.Second, ta); c != meta.CodeFenced {
		t.Fatalf("write fenced by the lapsed lease after a newer grant: %s, want fenced", c)
	}
	if c := put(10*time.Second, b.Lock.Granted.Token); c != meta.CodeOK {
		t.Fatalf("write fenced by the new lease: %s", c)
	}
	if r := lockAt(t, db, 10*time.Second, meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: ta, Key: keyA}}); r.Code != meta.CodeNotHolder {
		t.Fatalf("release of a lapsed lease: %s, want not_holder", r.Code)
	}
	if r := lockAt(t, db, 10*time.Second, meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: b.Lock.Granted.Token, Key: keyB}}); r.Code != meta.CodeOK {
		t.Fatalf("release: %s", r.Code)
	}
	if c := put(10*time.Second, b.Lock.Granted.Token); c != meta.CodeFenced {
		t.Fatalf("write fenced by a released lease: %s, want fenced", c)
	}
	// Nothing is left behind once the lock is free.
	db.View(func(tx *bbolt.Tx) error {
		if n := nsKeyCount(tx, bucketLocks) + nsKeyCount(tx, bucketLockTokens) + nsKeyCount(tx, bucketLockWaits); n != 0 {
			t.Errorf("%d lock records left after the last release", n)
		}
		return nil
	})
}

func TestLockShared(t *testing.T) {
	db := lockedFile(t)
	for i, k := range []string{keyA, keyB} {
		if r := lockAt(t, db, 0, acquireOp("/f", true, 5*time.Second, k)); r.Code != meta.CodeOK || len(r.Lock.Holders) != i+1 {
			t.Fatalf("shared acquire %d: %+v", i, r)
		}
	}
	if r := lockAt(t, db, 0, acquireOp("/f", false, 5*time.Second, keyC)); r.Code != meta.CodeLocked || len(r.Lock.Holders) != 2 {
		t.Fatalf("exclusive acquire of a shared lock: %+v", r)
	}
}

// A free lock goes to the waiters in the order they came; a newcomer
// never overtakes them, and a waiter nobody keeps loses its place.
func TestLockQueueOrder(t *testing.T) {
	db := lockedFile(t)
	a := lockAt(t, db, 0, acquireOp("/f", false, 5*time.Second, keyA))
	var waiters []uint64
	for i := range 3 {
		r := lockAt(t, db, time.Second, waitOp("/f", 0, keyB))
		if r.Code != meta.CodeOK || r.Lock.Granted != nil || r.Lock.Waiter == 0 {
			t.Fatalf("waiter %d: %+v", i, r)
		}
		waiters = append(waiters, r.Lock.Waiter)
	}
	release := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: a.Lock.Granted.Token, Key: keyA}}
	if r := lockAt(t, db, 2*time.Second, release); r.Code != meta.CodeOK || r.Lock.Waiting != 3 || r.Lock.Queue[0].Waiter != waiters[0] {
		t.Fatalf("release with waiters: %+v", r)
	}
	if r := lockAt(t, db, 2*time.Second, acquireOp("/f", false, 5*time.Second, keyC)); r.Code != meta.CodeLocked {
		t.Fatalf("a newcomer took a lock others wait for: %s", r.Code)
	}
	if r := lockAt(t, db, 2*time.Second, waitOp("/f", waiters[1], keyC)); r.Code != meta.CodeOK || r.Lock.Granted != nil {
		t.Fatalf("the second waiter took the lock before the first: %+v", r)
	}
	// The third is kept by its router (LockKeep) from 2s on, every half
	// place; the first is not.
	keep := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockKeep, Keep: []meta.LockWaiterRef{{Ino: a.Lock.Ino, Waiter: waiters[2]}}}}
	keepUntil := func(from, to time.Duration) {
		for at := from; at <= to; at += meta.LockWaiterTTL / 2 {
			lockAt(t, db, at, keep)
		}
	}
	keepUntil(2*time.Second, time.Second+meta.LockWaiterTTL)
	// The first waiter's place lapses: it was kept last at 1s. The
	// second, kept at 2s, comes first then.
	at := time.Second + meta.LockWaiterTTL
	r := lockAt(t, db, at, waitOp("/f", waiters[1], keyC))
	if r.Code != meta.CodeOK || r.Lock.Granted == nil {
		t.Fatalf("the second waiter, first once the first lapsed: %+v", r)
	}
	// A newcomer queues behind the kept third, and waits for it even
	// once the new holder's lease (10 s) ran out.
	late := lockAt(t, db, at+time.Second, waitOp("/f", 0, keyA))
	keepUntil(at+time.Second, at+10*time.Second)
	lockAt(t, db, at+time.Second, waitOp("/f", late.Lock.Waiter, keyA)) // keeps its own place too
	for k := at + 2*time.Second; k < at+10*time.Second; k += meta.LockWaiterTTL / 2 {
		lockAt(t, db, k, waitOp("/f", late.Lock.Waiter, keyA))
	}
	if r := lockAt(t, db, at+10*time.Second, waitOp("/f", late.Lock.Waiter, keyA)); r.Lock == nil || r.Lock.Granted != nil {
		t.Fatalf("a newcomer overtook the kept waiter: %+v", r)
	}
	if r := lockAt(t, db, at+10*time.Second, waitOp("/f", waiters[2], keyB)); r.Code != meta.CodeOK || r.Lock.Granted == nil {
		t.Fatalf("the kept waiter, once the lease ran out: %+v", r)
	}
}

// A new primary's first entry counts every live lease as granted anew.
func TestLockLeasesSurviveFailover(t *testing.T) {
	db := lockedFile(t)
	a := lockAt(t, db, 0, acquireOp("/f", false, 5*time.Second, keyA))
	lockAt(t, db, 4*time.Second, meta.Op{Kind: meta.OpNoop})
	if r := lockAt(t, db, 8*time.Second, acquireOp("/f", false, 5*time.Second, keyB)); r.Code != meta.CodeLocked {
		t.Fatalf("acquire 4s into the lease inherited at 4s: %s, want locked", r.Code)
	}
	if c := lockAt(t, db, 8*time.Second, meta.Op{Kind: meta.OpMkdir, Path: "/d", Fence: a.Lock.Granted.Token}).Code; c != meta.CodeOK {
		t.Fatalf("fenced mkdir under the inherited lease: %s", c)
	}
	if r := lockAt(t, db, 9*time.Second, acquireOp("/f", false, 5*time.Second, keyB)); r.Code != meta.CodeOK {
		t.Fatalf("acquire once the inherited lease ran out: %s", r.Code)
	}
}

func TestLockBadInput(t *testing.T) {
	db := lockedFile(t)
	nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/private", Mode: 0o600, Uid: 1000, Gid: 1000, Owner: true})
	other := &meta.Cred{Uid: 2000, Gid: 2000}
	for _, c := range []struct {
		name string
		op   meta.Op
		want meta.Code
	}{
		{"ttl 0", acquireOp("/f", false, 0, keyA), meta.CodeInvalid},
		{"negative ttl", acquireOp("/f", false, -time.Second, keyA), meta.CodeInvalid},
		{"ttl below the minimum", acquireOp("/f", false, time.Millisecond, keyA), meta.CodeInvalid},
		{"ttl past the maximum", acquireOp("/f", false, meta.MaxLockTTL+1, keyA), meta.CodeInvalid},
		{"short key", acquireOp("/f", false, time.Minute, "k"), meta.CodeInvalid},
		{"missing path", acquireOp("/nothing", false, time.Minute, keyA), meta.CodeNotFound},
		{"bad path", acquireOp("/a/../f", false, time.Minute, keyA), meta.CodeInvalid},
		{"no lock op", meta.Op{Kind: meta.OpLock, Path: "/f"}, meta.CodeInvalid},
		{"unknown action", meta.Op{Kind: meta.OpLock, Path: "/f", Lock: &meta.LockOp{Action: 99}}, meta.CodeInvalid},
		{"renew without a key", meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRenew, Token: 1}}, meta.CodeInvalid},
		{"release of a token never given", meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: 12345, Key: keyA}}, meta.CodeNotHolder},
		{"fenced write with a token never given", meta.Op{Kind: meta.OpMkdir, Path: "/d", Fence: 12345}, meta.CodeFenced},
	} {
		if got := lockAt(t, db, 0, c.op).Code; got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	op := acquireOp("/private", false, time.Minute, keyA)
	op.Cred = other
	if got := lockAt(t, db, 0, op).Code; got != meta.CodeAccess {
		t.Errorf("lock of a file the caller may not read: %q, want permission_denied", got)
	}
	db.View(func(tx *bbolt.Tx) error {
		if n := nsKeyCount(tx, bucketLocks); n != 0 {
			t.Errorf("%d lock records left by refused ops", n)
		}
		if _, err := lockStateAt(tx, 0, "/private", other, "", 0); meta.CodeOf(err) != meta.CodeAccess {
			t.Errorf("read of the lock of a file the caller may not read: %v", err)
		}
		return nil
	})
}

// Ten thousand waiters on one lock each get it in turn, in order, and
// leave nothing behind.
func TestLockManyWaiters(t *testing.T) {
	db := lockedFile(t)
	const n = 10_000
	holder := lockAt(t, db, 0, acquireOp("/f", false, time.Minute, keyA)).Lock.Granted
	ids := make([]uint64, n)
	err := db.Update(func(tx *bbolt.Tx) error {
		for i := range ids {
			op := waitOp("/f", 0, keyB)
			r, err := applyOp(tx, &op, int64(time.Second))
			if err != nil {
				return err
			}
			if r.Code != meta.CodeOK || r.Lock.Waiter == 0 {
				return fmt.Errorf("waiter %d: %+v", i, r)
			}
			ids[i] = r.Lock.Waiter
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := int64(2 * time.Second)
	err = db.Update(func(tx *bbolt.Tx) error {
		rel := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: holder.Token, Key: holder.Key}}
		if r, err := applyOp(tx, &rel, at); err != nil || r.Code != meta.CodeOK {
			return fmt.Errorf("release: %v %s", err, r.Code)
		}
		for i, id := range ids {
			// The last waiter asks first each round, and is refused
			// until its turn.
			if i < n-1 {
				late := waitOp("/f", ids[n-1], keyC)
				if r, err := applyOp(tx, &late, at); err != nil || r.Lock.Granted != nil {
					return fmt.Errorf("round %d: the last waiter overtook: %v %+v", i, err, r)
				}
			}
			op := waitOp("/f", id, keyB)
			r, err := applyOp(tx, &op, at)
			if err != nil || r.Lock == nil || r.Lock.Granted == nil {
				return fmt.Errorf("waiter %d in its turn: %v %+v", i, err, r)
			}
			rel := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRelease, Token: r.Lock.Granted.Token, Key: keyB}}
			if r, err := applyOp(tx, &rel, at); err != nil || r.Code != meta.CodeOK {
				return fmt.Errorf("release %d: %v %s", i, err, r.Code)
			}
		}
		if n := nsKeyCount(tx, bucketLocks) + nsKeyCount(tx, bucketLockTokens) + nsKeyCount(tx, bucketLockWaits); n != 0 {
			return fmt.Errorf("%d lock records left after every waiter had its turn", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rangeOp(action meta.LockAction, session string, start, end uint64, shared bool) meta.Op {
	return meta.Op{Kind: meta.OpLock, Path: "/f", Lock: &meta.LockOp{Action: action, Session: session, Start: start, End: end,
		Shared: shared, TTL: int64(5 * time.Second)}}
}

// Byte-range locks of sessions (a mount's fcntl and flock locks): they
// exclude each other only where they overlap, a session's new lock
// replaces its own on the same bytes, and they exclude the lock API's
// whole-file locks as those exclude them.
func TestLockRanges(t *testing.T) {
	db := lockedFile(t)
	const a, b = "session-a-0123456789", "session-b-0123456789"
	want := func(what string, op meta.Op, code meta.Code) meta.Result {
		t.Helper()
		r := lockAt(t, db, time.Second, op)
		if r.Code != code {
			t.Fatalf("%s: %q, want %q", what, r.Code, code)
		}
		return r
	}
	want("a writes [0,10)", rangeOp(meta.LockRange, a, 0, 10, false), meta.CodeOK)
	want("b writes [5,15)", rangeOp(meta.LockRange, b, 5, 15, false), meta.CodeLocked)
	want("b reads [9,10)", rangeOp(meta.LockRange, b, 9, 10, true), meta.CodeLocked)
	want("b writes [10,20)", rangeOp(meta.LockRange, b, 10, 20, false), meta.CodeOK)
	want("a reads [30,40)", rangeOp(meta.LockRange, a, 30, 40, true), meta.CodeOK)
	want("b reads [35,45)", rangeOp(meta.LockRange, b, 35, 45, true), meta.CodeOK)
	want("a writes to the end", rangeOp(meta.LockRange, a, 0, meta.LockEOF, false), meta.CodeLocked)
	want("an API lock", acquireOp("/f", true, time.Minute, keyA), meta.CodeLocked)
	// A session's own locks never stand in its way: a turns [0,10) into
	// a read lock on [0,5) and keeps [5,10) for writing.
	r := want("a reads [0,5)", rangeOp(meta.LockRange, a, 0, 5, true), meta.CodeOK)
	var mine []string
	for _, h := range r.Lock.Holders {
		if h.Session == a {
			mine = append(mine, fmt.Sprintf("%d-%d:%v", h.Start, h.End, h.Shared))
		}
	}
	slices.Sort(mine)
	if fmt.Sprint(mine) != "[0-5:true 30-40:true 5-10:false]" {
		t.Fatalf("a's locks after a read lock on [0,5): %v", mine)
	}
	want("b reads [0,5)", rangeOp(meta.LockRange, b, 0, 5, true), meta.CodeOK)
	want("a unlocks [5,8)", rangeOp(meta.LockUnrange, a, 5, 8, false), meta.CodeOK)
	want("b writes [5,8)", rangeOp(meta.LockRange, b, 5, 8, false), meta.CodeOK)
	// Dropping a session frees all it held; b's leases, never renewed,
	// run out.
	drop := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockDropSession, Session: a, Inos: []uint64{r.Lock.Ino}}}
	want("drop a", drop, meta.CodeOK)
	renew := meta.Op{Kind: meta.OpLock, Lock: &meta.LockOp{Action: meta.LockRenewSession, Session: b, Inos: []uint64{r.Lock.Ino}}}
	if c := lockAt(t, db, 4*time.Second, renew).Code; c != meta.CodeOK {
		t.Fatalf("renew b: %s", c)
	}
	if c := lockAt(t, db, 8*time.Second, acquireOp("/f", false, time.Minute, keyA)).Code; c != meta.CodeLocked {
		t.Fatalf("API lock while b's renewed leases hold: %s", c)
	}
	if c := lockAt(t, db, 9*time.Second, acquireOp("/f", false, time.Minute, keyA)).Code; c != meta.CodeOK {
		t.Fatalf("API lock once b's leases ran out: %s", c)
	}
	for _, bad := range []meta.Op{rangeOp(meta.LockRange, "short", 0, 1, false), rangeOp(meta.LockRange, a, 5, 5, false),
		rangeOp(meta.LockUnrange, a, 9, 3, false)} {
		if c := lockAt(t, db, 9*time.Second, bad).Code; c != meta.CodeInvalid {
			t.Errorf("%+v: %s, want invalid", bad.Lock, c)
		}
	}
}

// A session that holds a range is not kept from more by the lock API's
// queue, which waits on it anyway (refusing it would leave both waiting
// for each other); a session that holds nothing waits behind the queue.
func TestLockRangesBesideTheQueue(t *testing.T) {
	db := lockedFile(t)
	const a, b = "session-a-0123456789", "session-b-0123456789"
	if c := lockAt(t, db, 0, rangeOp(meta.LockRange, a, 0, 10, false)).Code; c != meta.CodeOK {
		t.Fatalf("a writes [0,10): %s", c)
	}
	if r := lockAt(t, db, 0, waitOp("/f", 0, keyA)); r.Code != meta.CodeOK || r.Lock.Waiter == 0 {
		t.Fatalf("an API waiter: %+v", r)
	}
	if c := lockAt(t, db, time.Second, rangeOp(meta.LockRange, a, 20, 30, false)).Code; c != meta.CodeOK {
		t.Fatalf("a, holding [0,10), writes [20,30) while the API waits: %s", c)
	}
	if c := lockAt(t, db, time.Second, rangeOp(meta.LockRange, b, 40, 50, false)).Code; c != meta.CodeLocked {
		t.Fatalf("b, holding nothing, writes [40,50) while the API waits: %s, want locked", c)
	}
}
