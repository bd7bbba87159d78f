package meta

import "time"

// Locks with leases. A lock belongs to an inode (named by a path when it
// is taken, and following the file through renames, as flock(2) follows
// an open file). A holder keeps it for a TTL, measured by the group's
// clock (Op.Clock), and renews it before the TTL ends; one that vanishes
// loses it when the lease ends. Every grant carries a fencing token, a
// number that only grows (one counter for the whole namespace): an op
// that carries Op.Fence applies only while that token still holds its
// lock, so a holder paused past its lease cannot overwrite the work of
// the one that took the lock after it.
//
// Waiters queue in order: a lock that is free goes to the first waiter
// whose mode fits, and a newcomer never overtakes a waiter. A waiter's
// place lasts LockWaiterTTL unless its router keeps it (LockKeep), so a
// waiter whose router died stops blocking the queue soon after.

// LockAction is what an OpLock does.
type LockAction uint8

// The lock actions.
const (
	// LockAcquire takes the lock at Path for Lock.TTL, or, when it is
	// not free for the caller and Lock.Wait is set, queues (or keeps the
	// place of) the waiter Lock.Waiter.
	LockAcquire LockAction = 1
	// LockRenew extends the lease of Lock.Token (with Lock.Key) by its
	// TTL (or Lock.TTL, when set) from now.
	LockRenew LockAction = 2
	// LockRelease gives up the lease of Lock.Token (with Lock.Key).
	LockRelease LockAction = 3
	// LockKeep keeps the places of the waiters Lock.Keep for another
	// LockWaiterTTL; LockCancel takes the waiter Lock.Waiter out of the
	// queue (its client gave up).
	LockKeep   LockAction = 4
	LockCancel LockAction = 5
	// The byte-range locks of a mount (fcntl and flock through FUSE),
	// held by a session: a secret of the mount and the kernel's lock
	// owner. LockRange sets the session's lock on [Start, End) to
	// Shared or exclusive, replacing what the session held there, as
	// fcntl(F_SETLK) does, or fails with CodeLocked at once (it never
	// queues); LockUnrange takes the session's locks off [Start, End).
	// LockRenewSession renews every lease of Session on the inodes Inos,
	// and LockDropSession drops them (the mount closed the file).
	LockRange        LockAction = 6
	LockUnrange      LockAction = 7
	LockRenewSession LockAction = 8
	LockDropSession  LockAction = 9
)

// LockEOF is the End of a range that reaches past any end of file.
const LockEOF = ^uint64(0)

// MinLockSession is the shortest session a byte-range lock takes: it is
// what renews and releases the lock, so it must not be guessable.
const MinLockSession = 16

// Bounds on locks.
const (
	// MinLockTTL and MaxLockTTL bound a lease: shorter could not be
	// renewed in time across a failover; longer would leave a lock whose
	// holder died unusable for too long.
	MinLockTTL = time.Second
	MaxLockTTL = 24 * time.Hour
	// MaxLockWait bounds how long one acquire may wait in the queue.
	MaxLockWait = time.Hour
	// LockWaiterTTL is how long a waiter keeps its place in the queue
	// without its router keeping it.
	LockWaiterTTL = 3 * time.Second
	// MaxLockHolders bounds the shared holders of one lock, and
	// MaxLockWaiters its queue.
	MaxLockHolders = 1024
	MaxLockWaiters = 100_000
	// MaxLockOwner bounds the label a holder gives itself.
	MaxLockOwner = 256
	// MaxLockKeep bounds the waiters one LockKeep names.
	MaxLockKeep = 100_000
)

// LockOp is what an OpLock carries besides the path.
type LockOp struct {
	Action LockAction `msgpack:"a"`
	Shared bool       `msgpack:"s,omitempty"`
	TTL    int64      `msgpack:"t,omitempty"` // nanoseconds
	// Wait: queue when the lock is not free (LockAcquire), as the waiter
	// Waiter (0: a new waiter, numbered by the op's apply).
	Wait   bool   `msgpack:"w,omitempty"`
	Waiter uint64 `msgpack:"wi,omitempty"`
	// Token and Key name a lease (LockRenew, LockRelease). Key is the
	// lease's secret, chosen by the router that took it: the token is a
	// plain counter others can guess, and a fenced write needs only it.
	Token uint64 `msgpack:"tk,omitempty"`
	Key   string `msgpack:"ky,omitempty"`
	// Owner is the holder's label, shown to whoever looks at the lock.
	Owner string `msgpack:"o,omitempty"`
	// Keep lists the waiters LockKeep keeps in their queues.
	Keep []LockWaiterRef `msgpack:"kp,omitempty"`
	// Session, Start, End and Pid are a byte-range lock's (LockRange,
	// LockUnrange); Inos the inodes of LockRenewSession and
	// LockDropSession.
	Session string   `msgpack:"se,omitempty"`
	Start   uint64   `msgpack:"st,omitempty"`
	End     uint64   `msgpack:"en,omitempty"`
	Pid     uint32   `msgpack:"pi,omitempty"`
	Inos    []uint64 `msgpack:"is,omitempty"`
}

// LockWaiterRef names one waiter: the inode of its lock and its number.
type LockWaiterRef struct {
	Ino    uint64 `msgpack:"i"`
	Waiter uint64 `msgpack:"w"`
}

// LockHolder is one lease on a lock.
type LockHolder struct {
	Token  uint64 `msgpack:"tk"`
	Key    string `msgpack:"ky"`
	Shared bool   `msgpack:"s,omitempty"`
	TTL    int64  `msgpack:"t"`
	// Expires is the group clock at which the lease ends.
	Expires int64  `msgpack:"e"`
	Owner   string `msgpack:"o,omitempty"`
	Uid     uint32 `msgpack:"u,omitempty"`
	// Granted is the group clock of the grant.
	Granted int64 `msgpack:"g"`
	// A byte-range lock's session and range (Start, End exclusive);
	// a lock taken through the lock API has no session and the whole
	// range. Mine marks, in a state read for a session, its own.
	Session string `msgpack:"se,omitempty"`
	Start   uint64 `msgpack:"st,omitempty"`
	End     uint64 `msgpack:"en,omitempty"`
	Pid     uint32 `msgpack:"pi,omitempty"`
	Mine    bool   `msgpack:"mi,omitempty"`
}

// Range returns the bytes h covers, [start, end): all of them for a
// lock of the lock API.
func (h LockHolder) Range() (start, end uint64) {
	if h.End == 0 {
		return 0, LockEOF
	}
	return h.Start, h.End
}

// Conflicts reports whether h excludes a lock of mode shared on [start,
// end) for session (""): a lease of another session, or of none, on
// bytes in common, either of them exclusive.
func (h LockHolder) Conflicts(session string, start, end uint64, shared bool) bool {
	if session != "" && h.Session == session {
		return false
	}
	hs, he := h.Range()
	return hs < end && start < he && !(shared && h.Shared)
}

// LockWaiter is one place in a lock's queue.
type LockWaiter struct {
	Waiter  uint64 `msgpack:"w"`
	Shared  bool   `msgpack:"s,omitempty"`
	Expires int64  `msgpack:"e"` // the group clock at which the place lapses
	Owner   string `msgpack:"o,omitempty"`
	Uid     uint32 `msgpack:"u,omitempty"`
}

// LockState is a lock as an acquire, a renew or a read leaves it.
type LockState struct {
	Ino     uint64       `msgpack:"i"`
	Holders []LockHolder `msgpack:"h,omitempty"`
	// Queue is the first waiters, in order (at most LockQueueShown), and
	// Waiting how many there are in all.
	Queue   []LockWaiter `msgpack:"q,omitempty"`
	Waiting int          `msgpack:"n,omitempty"`
	// Clock is the group's clock the state was computed at: a holder's
	// lease has Expires - Clock left.
	Clock int64 `msgpack:"c"`
	// Granted is the lease an acquire or renew gave, nil when the caller
	// was queued (Waiter then names its place) or refused.
	Granted *LockHolder `msgpack:"gr,omitempty"`
	Waiter  uint64      `msgpack:"w,omitempty"`
}

// LockQueueShown bounds the waiters a LockState lists.
const LockQueueShown = 16

// Public returns s without the holders' keys and sessions, for whoever
// reads it; session (if any) is the reader's, whose own leases are
// marked Mine.
func (s LockState) Public(session string) LockState {
	hs := make([]LockHolder, len(s.Holders))
	for i, h := range s.Holders {
		h.Mine = session != "" && h.Session == session
		h.Key, h.Session = "", ""
		hs[i] = h
	}
	s.Holders = hs
	return s
}
