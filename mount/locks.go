package mount

// File locks through the mount: flock(2) and fcntl(2) byte-range locks
// (F_SETLK, F_SETLKW, F_GETLK) are the cluster's, so two hosts' mounts
// exclude each other. Each lock is held by a session: this mount's
// secret and the kernel's lock owner (the process's files for fcntl
// locks, the open file for flock), so locks of two processes on one host
// exclude each other too, and a process's own locks never stand in its
// way. A session's locks are leases (Config.LockTTL) that the mount
// renews in one request per session while it runs: a mount that dies,
// or is cut off from the cluster, loses its locks when their leases end.
//
// Locks taken through an open file go at its last close (when every
// process sharing it closed it). POSIX drops a process's fcntl locks on a
// file when it closes any descriptor of that file; here they stay until
// the open file they were taken through is closed for the last time.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/api"
	"shoal/client"
)

// Locker is what the mount asks of the cluster for file locks; a
// *client.Client does it. A Client that is no Locker makes locks local
// to this host, as the kernel keeps them.
type Locker interface {
	LockRange(ctx context.Context, ino uint64, session, mode string, start, end uint64, ttl time.Duration, pid uint32) error
	LockStateIno(ctx context.Context, ino uint64, session string) (client.LockInfo, error)
	LockSession(ctx context.Context, session string, inos []uint64, drop bool) error
}

// The waits of F_SETLKW between two tries.
const (
	lockRetryMin = 10 * time.Millisecond
	lockRetryMax = 250 * time.Millisecond
)

// mountLocks is the locks this mount's sessions hold, for renewal.
type mountLocks struct {
	l      Locker
	secret string
	ttl    time.Duration
	log    func(msg string, args ...any)

	mu   sync.Mutex
	held map[string]map[uint64]bool // session -> inodes it has locked
	stop chan struct{}
}

func newMountLocks(l Locker, ttl time.Duration, log func(string, ...any)) *mountLocks {
	var b [16]byte
	rand.Read(b[:])
	ml := &mountLocks{l: l, secret: hex.EncodeToString(b[:]), ttl: ttl, log: log, held: map[string]map[uint64]bool{}, stop: make(chan struct{})}
	go ml.renew()
	return ml
}

func (ml *mountLocks) session(owner uint64) string { return fmt.Sprintf("%s:%x", ml.secret, owner) }

func (ml *mountLocks) note(session string, ino uint64) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.held[session] == nil {
		ml.held[session] = map[uint64]bool{}
	}
	ml.held[session][ino] = true
}

// renew keeps the leases of every session alive, a third of the TTL at
// a time.
func (ml *mountLocks) renew() {
	t := time.NewTicker(ml.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ml.stop:
			return
		case <-t.C:
		}
		ml.mu.Lock()
		work := map[string][]uint64{}
		for s, inos := range ml.held {
			for ino := range inos {
				work[s] = append(work[s], ino)
			}
		}
		ml.mu.Unlock()
		for s, inos := range work {
			ctx, cancel := context.WithTimeout(context.Background(), ml.ttl/3)
			if err := ml.l.LockSession(ctx, s, inos, false); err != nil {
				ml.log("could not renew file locks; they are lost if no renewal gets through before their leases end", "files", len(inos), "err", err)
			}
			cancel()
		}
	}
}

// drop gives up the locks of session on ino (a close).
func (ml *mountLocks) drop(session string, ino uint64) {
	ml.mu.Lock()
	if inos := ml.held[session]; inos != nil {
		delete(inos, ino)
		if len(inos) == 0 {
			delete(ml.held, session)
		}
	}
	ml.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ml.ttl)
	defer cancel()
	if err := ml.l.LockSession(ctx, session, []uint64{ino}, true); err != nil {
		ml.log("could not release file locks at close; they go when their leases end", "ino", ino, "err", err)
	}
}

func (ml *mountLocks) close() { close(ml.stop) }

// lockRange converts a FUSE lock's range (End inclusive, OFFSET_MAX for
// the end of the file) to the cluster's [start, end).
func lockRange(lk *fuse.FileLock, flags uint32) (start, end uint64) {
	if flags&fuse.FUSE_LK_FLOCK != 0 {
		return 0, client.LockEOF
	}
	if lk.End >= math.MaxInt64 {
		return lk.Start, client.LockEOF
	}
	return lk.Start, lk.End + 1
}

// heldLock is a session this handle took locks in, to give them up when
// the handle is closed.
type heldLock struct {
	session string
}

var (
	_ fs.NodeGetlker  = (*node)(nil)
	_ fs.NodeSetlker  = (*node)(nil)
	_ fs.NodeSetlkwer = (*node)(nil)
)

func (n *node) Setlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	ml := n.m.locks
	if ml == nil {
		return syscall.ENOTSUP
	}
	start, end := lockRange(lk, flags)
	mode := api.LockExclusive
	switch lk.Typ {
	case syscall.F_RDLCK:
		mode = api.LockShared
	case syscall.F_UNLCK:
		mode = "unlock"
	case syscall.F_WRLCK:
	default:
		return syscall.EINVAL
	}
	session := ml.session(owner)
	err := ml.l.LockRange(n.m.as(ctx), n.ino, session, mode, start, end, ml.ttl, lk.Pid)
	if errors.Is(err, client.ErrLocked) {
		return syscall.EAGAIN
	}
	if err != nil {
		return n.m.errno(err)
	}
	if mode != "unlock" {
		ml.note(session, n.ino)
		if h, ok := f.(*handle); ok {
			h.noteLock(heldLock{session: session})
		}
	}
	return 0
}

func (n *node) Setlkw(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	wait := lockRetryMin
	for {
		e := n.Setlk(ctx, f, owner, lk, flags)
		if e != syscall.EAGAIN {
			return e
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return syscall.EINTR
		}
		wait = min(2*wait, lockRetryMax)
	}
}

func (n *node) Getlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	ml := n.m.locks
	if ml == nil {
		return syscall.ENOTSUP
	}
	info, err := ml.l.LockStateIno(n.m.as(ctx), n.ino, ml.session(owner))
	if err != nil {
		return n.m.errno(err)
	}
	start, end := lockRange(lk, flags)
	shared := lk.Typ == syscall.F_RDLCK
	*out = fuse.FileLock{Typ: syscall.F_UNLCK}
	for _, h := range info.Holders {
		hs, he := h.Start, client.LockEOF
		if h.End != nil {
			he = *h.End
		}
		if h.Mine || he <= start || end <= hs || shared && h.Mode == api.LockShared {
			continue
		}
		out.Start, out.End, out.Pid, out.Typ = hs, math.MaxInt64, h.Pid, syscall.F_WRLCK
		if he != client.LockEOF {
			out.End = he - 1
		}
		if h.Mode == api.LockShared {
			out.Typ = syscall.F_RDLCK
		}
		break
	}
	return 0
}
