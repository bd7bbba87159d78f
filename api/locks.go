package api

// Locks with leases, under /v1/locks/PATH (see docs/api.md, "Locks").
// Durations are in seconds, as decimals; remaining times are measured
// when the router answered, by the cluster's clock: a client counts its
// own lease from before it sent the request, and takes it as lost
// LeaseMargin before its TTL ends.

// FenceHeader carries a fencing token on a change of the file API: the
// change applies only while the token's lease holds its lock, and fails
// with 409 CodeFenced otherwise.
const FenceHeader = "Shoal-Fence"

// Lease is a lock granted (or renewed): what its holder needs to renew,
// release and fence with.
type Lease struct {
	Path string `json:"path"`
	Ino  uint64 `json:"ino"` // the lock's inode: a lock follows its file through renames
	// Token is the fencing token: a number that grows with every grant,
	// sent with a write as the Shoal-Fence header.
	Token uint64 `json:"token"`
	// Key is the lease's secret: renew and release need it with Token.
	Key        string  `json:"key"`
	Mode       string  `json:"mode"` // LockExclusive or LockShared
	TTLSeconds float64 `json:"ttl_seconds"`
	// ExpiresInSeconds is the lease's time left as the cluster counts it,
	// from the grant.
	ExpiresInSeconds float64 `json:"expires_in_seconds"`
	// WaitedSeconds is how long after the request arrived the router made
	// the try that was granted (it waited in the queue meanwhile): the
	// grant came no earlier, so a client counts its lease from its own
	// send plus this.
	WaitedSeconds float64 `json:"waited_seconds,omitempty"`
}

// The lock modes.
const (
	LockExclusive = "exclusive"
	LockShared    = "shared"
)

// LockInfo is what GET /v1/locks/PATH answers, and the body of a 409
// "locked" answer to an acquire: who holds the lock and who waits.
type LockInfo struct {
	Path    string       `json:"path"`
	Ino     uint64       `json:"ino"`
	Holders []LockHolder `json:"holders"`
	// Waiting counts the waiters in the queue; Queue shows the first.
	Waiting int          `json:"waiting"`
	Queue   []LockWaiter `json:"queue,omitempty"`
}

// LockHolder is one lease on a lock, as anyone who may read the file
// sees it (without its key).
type LockHolder struct {
	Token            uint64  `json:"token"`
	Mode             string  `json:"mode"`
	Owner            string  `json:"owner,omitempty"`
	Uid              uint32  `json:"uid"`
	TTLSeconds       float64 `json:"ttl_seconds"`
	ExpiresInSeconds float64 `json:"expires_in_seconds"`
	HeldSeconds      float64 `json:"held_seconds"`
	// A byte-range lock (a mount's fcntl or flock lock) covers bytes
	// Start up to End, exclusive; End is absent for "to the end of the
	// file", as it is for a lock taken through this API (Start 0). Pid
	// is the process that took it on its mount's host; Mine marks the
	// locks of the session named in the request's Shoal-Lock-Session.
	Start uint64  `json:"start"`
	End   *uint64 `json:"end,omitempty"`
	Pid   uint32  `json:"pid,omitempty"`
	Mine  bool    `json:"mine,omitempty"`
}

// LockSessionHeader names the session of a byte-range lock request: a
// secret of the mount and the kernel's lock owner, which renews and
// releases the session's locks.
const LockSessionHeader = "Shoal-Lock-Session"

// LockSessionBody is the body of op=renew_session and op=drop_session:
// the inodes on which the session's locks are renewed or dropped.
type LockSessionBody struct {
	Inos []uint64 `json:"inos"`
}

// LockWaiter is one place in a lock's queue.
type LockWaiter struct {
	Mode  string `json:"mode"`
	Owner string `json:"owner,omitempty"`
	Uid   uint32 `json:"uid"`
}

// LockedBody is the body of a 409 "locked" answer: the error and the
// lock as it stood.
type LockedBody struct {
	ErrorBody
	Lock LockInfo `json:"lock"`
}
