package router

// The lock API (/v1/locks/PATH): leases on a file's lock, kept by the
// meta group (store/locks.go decides; meta/locks.go says what holds).
// An acquire that may wait queues in the meta group and then waits here:
// one poller per lock reads its state for every waiter this router has
// on it and wakes the waiter at the head when the lock fits it, and one
// keeper renews every waiter's place in a single op, so ten thousand
// waiters cost one read per poll and one op per keep, not ten thousand.

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/api"
	"shoal/meta"
	"shoal/wire"
)

// Defaults and pacing of the lock API.
const (
	defaultLockTTL = 30 * time.Second
	// lockPollMin and lockPollMax bound the wait between two reads of a
	// lock someone here waits for; a release through this router wakes
	// its poller at once.
	lockPollMin = 20 * time.Millisecond
	lockPollMax = 250 * time.Millisecond
	// lockKeepEvery is how often the keeper renews the waiters' places.
	lockKeepEvery = meta.LockWaiterTTL / 4
	// lockKeepBatch bounds the waiters one keep op names.
	lockKeepBatch = 10_000
)

func (s *Server) serveLocks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t, err := parseTarget(strings.TrimPrefix(r.URL.Path, "/v1/locks"), q.Get("at"))
	if err == nil {
		r, err = withRequestID(r)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	switch op := q.Get("op"); {
	case r.Method == http.MethodGet && op == "":
		s.lockInfo(w, r, t)
	case r.Method == http.MethodPost && op == "setlk":
		s.setRangeLock(w, r, t, q)
	case r.Method == http.MethodPost && (op == "renew_session" || op == "drop_session"):
		s.lockSession(w, r, op)
	case r.Method == http.MethodPost && op == "acquire":
		s.acquireLock(w, r, t, q)
	case r.Method == http.MethodPost && (op == "renew" || op == "release"):
		s.renewLock(w, r, t, op, q)
	case r.Method != http.MethodGet && r.Method != http.MethodPost:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Code: api.CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %q is not supported on /v1/locks (GET to look, POST op=acquire, renew or release)", r.Method)})
	default:
		writeError(w, fmt.Errorf("%w: %s with op=%q is not a lock operation (GET; POST op=acquire, renew, release, setlk, renew_session, drop_session)", ErrBadRequest, r.Method, op))
	}
}

// lockParams are an acquire's or a renew's query parameters.
type lockParams struct {
	shared bool
	ttl    time.Duration
	wait   time.Duration
	owner  string
}

func parseLockParams(q url.Values, r *http.Request) (lockParams, error) {
	p := lockParams{ttl: defaultLockTTL}
	switch m := q.Get("mode"); m {
	case "", api.LockExclusive:
	case api.LockShared:
		p.shared = true
	default:
		return p, fmt.Errorf("%w: mode=%q: use exclusive or shared", ErrBadRequest, m)
	}
	var err error
	if v := q.Get("ttl"); v != "" {
		if p.ttl, err = parseSeconds("ttl", v); err != nil {
			return p, err
		}
		if p.ttl < meta.MinLockTTL || p.ttl > meta.MaxLockTTL {
			return p, fmt.Errorf("%w: ttl=%s: a lease lasts from %s to %s", ErrBadRequest, v, meta.MinLockTTL, meta.MaxLockTTL)
		}
	}
	if v := q.Get("wait"); v != "" {
		if p.wait, err = parseSeconds("wait", v); err != nil {
			return p, err
		}
		if p.wait < 0 || p.wait > meta.MaxLockWait {
			return p, fmt.Errorf("%w: wait=%s: wait from 0 to %s", ErrBadRequest, v, meta.MaxLockWait)
		}
	}
	p.owner = q.Get("owner")
	if p.owner == "" {
		if c := callerOf(r.Context()); c != nil {
			p.owner = c.user.Name
		}
	}
	if len(p.owner) > meta.MaxLockOwner {
		return p, fmt.Errorf("%w: owner is %d bytes, over the limit of %d", ErrBadRequest, len(p.owner), meta.MaxLockOwner)
	}
	return p, nil
}

// parseSeconds reads a duration as Go writes one ("30s", "1m30s") or as
// a number of seconds ("30", "0.5").
func parseSeconds(name, v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f > float64(meta.MaxLockTTL/time.Second)*10 || f < -1e9 {
		return 0, fmt.Errorf("%w: %s=%q is not a duration (30s, 1m, or seconds)", ErrBadRequest, name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func newLeaseKey() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// subRequestID names the n-th op of one request (n > 0), each applied
// once however often it is retried.
func subRequestID(ctx context.Context, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", requestID(ctx), n))
	return "s:" + hex.EncodeToString(sum[:20])
}

func (s *Server) acquireLock(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	p, err := parseLockParams(q, r)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	arrived := time.Now()
	op := meta.Op{Kind: meta.OpLock, Dir: t.at, Path: t.path, ReqID: requestID(ctx), ReqSum: requestSum(ctx), Cred: credOf(ctx),
		Lock: &meta.LockOp{Action: meta.LockAcquire, Shared: p.shared, TTL: int64(p.ttl), Key: newLeaseKey(), Owner: p.owner, Wait: p.wait > 0}}
	res, err := s.propose(ctx, op)
	tried, last := arrived, op
	if err == nil && res.Lock != nil && res.Lock.Granted == nil && res.Lock.Waiter != 0 {
		res, tried, err = s.waitLock(ctx, op, res.Lock, p.wait, &last)
	}
	if ctx.Err() != nil {
		// The client went away: a lease it was granted (or a place it
		// was given) as it left would hold up everyone until it ran out.
		s.abandon(last)
		return
	}
	switch {
	case errors.Is(err, meta.ErrLocked) && res.Lock != nil:
		writeJSON(w, http.StatusConflict, api.LockedBody{
			ErrorBody: api.ErrorBody{Code: api.CodeLocked, Message: lockedMessage(t, res.Lock, p.wait)},
			Lock:      lockInfo(t.path, res.Lock.Public(""))})
	case err != nil:
		writeError(w, err)
	case res.Lock == nil || res.Lock.Granted == nil:
		writeError(w, fmt.Errorf("lock %s: the meta group answered an acquire with no lease", t))
	default:
		l := leaseOf(t.path, res.Lock)
		l.WaitedSeconds = tried.Sub(arrived).Seconds()
		writeJSON(w, http.StatusOK, l)
	}
}

func lockedMessage(t target, st *meta.LockState, wait time.Duration) string {
	who := fmt.Sprintf("%d holder(s)", len(st.Holders))
	if len(st.Holders) == 1 && st.Holders[0].Owner != "" {
		who = fmt.Sprintf("%q (token %d)", st.Holders[0].Owner, st.Holders[0].Token)
	}
	if len(st.Holders) == 0 {
		who = "no one, but others wait for it first"
	}
	msg := fmt.Sprintf("lock %s: %v: held by %s", t, meta.ErrLocked, who)
	if wait > 0 {
		return msg + fmt.Sprintf("; still not free after waiting %s", wait)
	}
	return msg + "; add wait=30s to queue for it"
}

// waitLock waits up to wait for the lock op asked for, queued as
// st.Waiter, and takes it when its turn comes. It returns the time its
// last try started: a grant comes no earlier.
// last is set to each try as it is made.
func (s *Server) waitLock(ctx context.Context, op meta.Op, st *meta.LockState, wait time.Duration, last *meta.Op) (meta.Result, time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ino, waiter := st.Ino, st.Waiter
	wake := s.lockWaits.add(ino, waiter)
	defer func() { s.lockWaits.remove(ino, waiter) }()
	seen := meta.Result{Code: meta.CodeLocked, Lock: st}
	for n := 1; ; n++ {
		select {
		case <-wake:
		case <-wctx.Done():
			// Give the place up, so the waiters behind need not wait
			// for it to lapse; it does lapse if this fails.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RPCTimeout)
			c := meta.Op{Kind: meta.OpLock, ReqID: subRequestID(ctx, -n), Lock: &meta.LockOp{Action: meta.LockCancel,
				Keep: []meta.LockWaiterRef{{Ino: ino, Waiter: waiter}}}}
			if _, err := s.propose(cctx, c); err != nil {
				s.cfg.Logger.Debug("could not give up a place in a lock's queue; it lapses by itself", "ino", ino, "err", err)
			}
			cancel()
			if ctx.Err() != nil {
				return meta.Result{}, time.Time{}, ctx.Err()
			}
			return seen, time.Time{}, meta.ErrLocked
		}
		try := op
		try.Dir, try.Path = ino, "/" // the lock waited for, wherever its file moved
		l := *op.Lock
		l.Waiter = waiter
		try.Lock, try.ReqID = &l, subRequestID(ctx, n)
		*last = try
		tried := time.Now()
		res, err := s.propose(ctx, try)
		if err != nil {
			return res, tried, err
		}
		if res.Lock == nil {
			return res, tried, fmt.Errorf("lock of inode %d: the meta group answered an acquire with no state", ino)
		}
		if res.Lock.Granted != nil {
			return res, tried, nil
		}
		seen.Lock = res.Lock
		if res.Lock.Waiter != waiter {
			// The place lapsed (the keeper could not reach the meta
			// group in time) and the op queued anew, at the back.
			s.lockWaits.remove(ino, waiter)
			waiter = res.Lock.Waiter
			wake = s.lockWaits.add(ino, waiter)
		}
	}
}

// abandon settles an acquire whose client went away while it was in
// flight: it asks again under the same request ID, which the meta group
// applies at most once and otherwise answers as it did, and gives back
// the lease or the place in the queue it got.
func (s *Server) abandon(op meta.Op) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		res, err := s.propose(ctx, op)
		var undo *meta.LockOp
		switch {
		case err != nil || res.Lock == nil:
		case res.Lock.Granted != nil:
			undo = &meta.LockOp{Action: meta.LockRelease, Token: res.Lock.Granted.Token, Key: res.Lock.Granted.Key}
		case res.Lock.Waiter != 0:
			undo = &meta.LockOp{Action: meta.LockCancel, Keep: []meta.LockWaiterRef{{Ino: res.Lock.Ino, Waiter: res.Lock.Waiter}}}
		}
		if undo == nil {
			return
		}
		if _, err := s.propose(ctx, meta.Op{Kind: meta.OpLock, ReqID: "l:" + newLeaseKey(), Lock: undo}); err != nil {
			s.cfg.Logger.Info("could not give back the lock of a client that went away; it lapses at the end of its lease", "err", err)
			return
		}
		s.lockWaits.kick(res.Lock.Ino)
	}()
}

func (s *Server) renewLock(w http.ResponseWriter, r *http.Request, t target, op string, q url.Values) {
	token, err := strconv.ParseUint(q.Get("token"), 10, 64)
	if err != nil || token == 0 {
		writeError(w, fmt.Errorf("%w: %s needs the lease's token=N (a positive integer)", ErrBadRequest, op))
		return
	}
	key := r.Header.Get("Shoal-Lock-Key")
	if key == "" {
		key = q.Get("key")
	}
	if key == "" {
		writeError(w, fmt.Errorf("%w: %s needs the lease's key, in the Shoal-Lock-Key header (or key=)", ErrBadRequest, op))
		return
	}
	l := &meta.LockOp{Action: meta.LockRenew, Token: token, Key: key}
	if op == "release" {
		l.Action = meta.LockRelease
	} else if q.Get("ttl") != "" {
		p, err := parseLockParams(url.Values{"ttl": {q.Get("ttl")}}, r)
		if err != nil {
			writeError(w, err)
			return
		}
		l.TTL = int64(p.ttl)
	}
	res, err := s.propose(r.Context(), meta.Op{Kind: meta.OpLock, Lock: l})
	if err != nil {
		writeError(w, fmt.Errorf("%s %s token %d: %w", op, t, token, err))
		return
	}
	if res.Lock != nil {
		s.lockWaits.kick(res.Lock.Ino)
	}
	if op == "release" || res.Lock == nil || res.Lock.Granted == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, leaseOf(t.path, res.Lock))
}

func (s *Server) lockInfo(w http.ResponseWriter, r *http.Request, t target) {
	rr, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadLock, Dir: t.at, Path: t.path, Cred: credOf(r.Context()),
		Name: r.Header.Get(api.LockSessionHeader)})
	if err != nil && rr != nil {
		err = fmt.Errorf("%s: %w", t, err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if rr.Lock == nil {
		writeError(w, fmt.Errorf("lock %s: the meta group answered with no state", t))
		return
	}
	writeJSON(w, http.StatusOK, lockInfo(t.path, *rr.Lock))
}

func modeName(shared bool) string {
	if shared {
		return api.LockShared
	}
	return api.LockExclusive
}

func seconds(ns int64) float64 { return time.Duration(ns).Seconds() }

func leaseOf(path string, st *meta.LockState) api.Lease {
	h := st.Granted
	return api.Lease{Path: path, Ino: st.Ino, Token: h.Token, Key: h.Key, Mode: modeName(h.Shared),
		TTLSeconds: seconds(h.TTL), ExpiresInSeconds: seconds(h.Expires - st.Clock)}
}

func lockInfo(path string, st meta.LockState) api.LockInfo {
	info := api.LockInfo{Path: path, Ino: st.Ino, Holders: []api.LockHolder{}, Waiting: st.Waiting}
	for _, h := range st.Holders {
		lh := api.LockHolder{Token: h.Token, Mode: modeName(h.Shared), Owner: h.Owner, Uid: h.Uid,
			TTLSeconds: seconds(h.TTL), ExpiresInSeconds: seconds(h.Expires - st.Clock), HeldSeconds: seconds(st.Clock - h.Granted),
			Pid: h.Pid, Mine: h.Mine}
		if start, end := h.Range(); end != meta.LockEOF {
			lh.Start, lh.End = start, &end
		} else {
			lh.Start = start
		}
		info.Holders = append(info.Holders, lh)
	}
	for _, q := range st.Queue {
		info.Queue = append(info.Queue, api.LockWaiter{Mode: modeName(q.Shared), Owner: q.Owner, Uid: q.Uid})
	}
	return info
}

// lockWaits is what a router's waiting acquires wait on: per lock, the
// waiters here and one poller that wakes the one whose turn it is.
type lockWaits struct {
	s    *Server
	mu   sync.Mutex
	inos map[uint64]*lockWatch
	// keeping runs the keeper while anyone waits.
	keeping bool
}

type lockWatch struct {
	waiters map[uint64]chan struct{}
	kick    chan struct{}
}

// add registers waiter on ino and returns the channel its turn is
// signalled on.
func (lw *lockWaits) add(ino, waiter uint64) <-chan struct{} {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.inos == nil {
		lw.inos = map[uint64]*lockWatch{}
	}
	wt := lw.inos[ino]
	if wt == nil {
		wt = &lockWatch{waiters: map[uint64]chan struct{}{}, kick: make(chan struct{}, 1)}
		lw.inos[ino] = wt
		go lw.poll(ino, wt)
	}
	ch := make(chan struct{}, 1)
	wt.waiters[waiter] = ch
	if !lw.keeping {
		lw.keeping = true
		go lw.keep()
	}
	return ch
}

func (lw *lockWaits) remove(ino, waiter uint64) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if wt := lw.inos[ino]; wt != nil {
		delete(wt.waiters, waiter)
	}
}

// kick makes ino's poller read the lock now: it was released here.
func (lw *lockWaits) kick(ino uint64) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if wt := lw.inos[ino]; wt != nil {
		select {
		case wt.kick <- struct{}{}:
		default:
		}
	}
}

// poll reads ino's lock while anyone here waits for it, and wakes the
// waiter at the head of its queue when the lock fits it. A waiter whose
// place is gone from the queue (it lapsed) is woken to queue anew.
func (lw *lockWaits) poll(ino uint64, wt *lockWatch) {
	s := lw.s
	pause := lockPollMin
	for {
		lw.mu.Lock()
		if len(wt.waiters) == 0 {
			delete(lw.inos, ino)
			lw.mu.Unlock()
			return
		}
		lw.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RPCTimeout)
		rr, err := s.metaRead(ctx, &wire.Read{Kind: wire.ReadLock, Dir: ino, Path: "/"})
		cancel()
		next := pause
		switch {
		case err != nil && rr != nil:
			lw.wakeAll(wt) // the file is gone: let the waiters hear it
		case err == nil && rr.Lock != nil:
			st := rr.Lock
			switch {
			case len(st.Queue) > 0 && fitsHolders(st.Holders, st.Queue[0].Shared):
				lw.wake(wt, st.Queue[0].Waiter)
			case len(st.Queue) == 0 && st.Waiting > 0:
				// Every place a read looks at lapsed (their router died):
				// one waiter's try clears them away.
				lw.wakeFirst(wt)
			}
			if len(st.Queue) < meta.LockQueueShown {
				// The whole live queue is in view: a waiter here whose
				// place is not in it lapsed, and queues anew.
				lw.wakeMissing(wt, st.Queue)
			}
			for _, h := range st.Holders {
				if left := time.Duration(h.Expires-st.Clock) + time.Millisecond; left < next {
					next = max(left, lockPollMin)
				}
			}
		}
		pause = min(pause*2, lockPollMax)
		timer := time.NewTimer(next)
		select {
		case <-timer.C:
		case <-wt.kick:
			timer.Stop()
			pause = lockPollMin
		case <-s.stop:
			timer.Stop()
			return
		}
	}
}

func fitsHolders(holders []meta.LockHolder, shared bool) bool {
	for _, h := range holders {
		if !shared || !h.Shared {
			return false
		}
	}
	return len(holders) < meta.MaxLockHolders
}

func (lw *lockWaits) wake(wt *lockWatch, waiter uint64) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if ch := wt.waiters[waiter]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (lw *lockWaits) wakeAll(wt *lockWatch) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, ch := range wt.waiters {
		signal(ch)
	}
}

// wakeFirst wakes the waiter here that queued first.
func (lw *lockWaits) wakeFirst(wt *lockWatch) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	first := uint64(0)
	for w := range wt.waiters {
		if first == 0 || w < first {
			first = w
		}
	}
	if first != 0 {
		signal(wt.waiters[first])
	}
}

// wakeMissing wakes the waiters here whose place is not in queue.
func (lw *lockWaits) wakeMissing(wt *lockWatch, queue []meta.LockWaiter) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for w, ch := range wt.waiters {
		if !slices.ContainsFunc(queue, func(q meta.LockWaiter) bool { return q.Waiter == w }) {
			signal(ch)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// keep renews the places of every waiter here, in batched ops, while
// there are any.
func (lw *lockWaits) keep() {
	s := lw.s
	ticker := time.NewTicker(lockKeepEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-s.stop:
			return
		}
		lw.mu.Lock()
		var refs []meta.LockWaiterRef
		for ino, wt := range lw.inos {
			for waiter := range wt.waiters {
				refs = append(refs, meta.LockWaiterRef{Ino: ino, Waiter: waiter})
			}
		}
		if len(refs) == 0 {
			lw.keeping = false
			lw.mu.Unlock()
			return
		}
		lw.mu.Unlock()
		for len(refs) > 0 {
			batch := refs[:min(len(refs), lockKeepBatch)]
			refs = refs[len(batch):]
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
			_, err := s.propose(ctx, meta.Op{Kind: meta.OpLock, ReqID: "l:" + newLeaseKey(), Lock: &meta.LockOp{Action: meta.LockKeep, Keep: batch}})
			cancel()
			if err != nil {
				s.cfg.Logger.Warn("could not keep the places of the lock waiters here; they lapse unless the next try succeeds",
					"waiters", len(batch), "err", err)
			}
		}
	}
}

// fenceKey holds a request's fencing token in its context.
type fenceKey struct{}

// withFence reads the request's Shoal-Fence header: every op the request
// proposes then carries the token (see meta.Op.Fence).
func withFence(r *http.Request) (*http.Request, error) {
	v := r.Header.Get(api.FenceHeader)
	if v == "" {
		return r, nil
	}
	token, err := strconv.ParseUint(v, 10, 64)
	if err != nil || token == 0 {
		return r, fmt.Errorf("%w: %s: %q is not a fencing token (the positive integer a lock's lease gave)", ErrBadRequest, api.FenceHeader, v)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r, fmt.Errorf("%w: %s fences changes; a %s changes nothing", ErrBadRequest, api.FenceHeader, r.Method)
	}
	return r.WithContext(context.WithValue(r.Context(), fenceKey{}, token)), nil
}

func fenceOf(ctx context.Context) uint64 {
	token, _ := ctx.Value(fenceKey{}).(uint64)
	return token
}

// lockSessionOf reads the session of a byte-range lock request.
func lockSessionOf(r *http.Request) (string, error) {
	session := r.Header.Get(api.LockSessionHeader)
	if len(session) < meta.MinLockSession || len(session) > 256 {
		return "", fmt.Errorf("%w: a byte-range lock needs its session in %s (%d to 256 bytes)", ErrBadRequest, api.LockSessionHeader, meta.MinLockSession)
	}
	return session, nil
}

// setRangeLock is fcntl(F_SETLK) on a file: mode=shared, exclusive or
// unlock on bytes [start, end) (end absent: to the end of the file) for
// the request's session. It never waits: a conflicting lock answers 409
// "locked" with the lock's holders, which the caller retries to wait.
func (s *Server) setRangeLock(w http.ResponseWriter, r *http.Request, t target, q url.Values) {
	session, err := lockSessionOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	l := &meta.LockOp{Action: meta.LockRange, Session: session, End: meta.LockEOF}
	switch m := q.Get("mode"); m {
	case api.LockExclusive:
	case api.LockShared:
		l.Shared = true
	case "unlock":
		l.Action = meta.LockUnrange
	default:
		writeError(w, fmt.Errorf("%w: mode=%q: use shared, exclusive or unlock", ErrBadRequest, m))
		return
	}
	num := func(name string, dst *uint64) {
		if v := q.Get(name); v != "" && err == nil {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				err = fmt.Errorf("%w: %s=%q is not a byte offset", ErrBadRequest, name, v)
			}
		}
	}
	num("start", &l.Start)
	num("end", &l.End)
	var pid uint64
	num("pid", &pid)
	l.Pid = uint32(pid)
	if err == nil && l.Start >= l.End {
		err = fmt.Errorf("%w: start=%d is not before end=%d", ErrBadRequest, l.Start, l.End)
	}
	if err == nil && l.Action == meta.LockRange {
		var p lockParams
		if p, err = parseLockParams(url.Values{"ttl": {q.Get("ttl")}, "owner": {q.Get("owner")}}, r); err == nil {
			l.TTL, l.Owner = int64(p.ttl), p.owner
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.propose(r.Context(), meta.Op{Kind: meta.OpLock, Dir: t.at, Path: t.path, Lock: l})
	switch {
	case errors.Is(err, meta.ErrLocked) && res.Lock != nil:
		writeJSON(w, http.StatusConflict, api.LockedBody{
			ErrorBody: api.ErrorBody{Code: api.CodeLocked, Message: fmt.Sprintf("lock %s bytes %d-%d: %v", t, l.Start, l.End, meta.ErrLocked)},
			Lock:      lockInfo(t.path, res.Lock.Public(session))})
	case err != nil:
		writeError(w, err)
	case res.Lock == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, lockInfo(t.path, res.Lock.Public(session)))
	}
}

// lockSession renews or drops every lock of the request's session on
// the inodes its body lists.
func (s *Server) lockSession(w http.ResponseWriter, r *http.Request, op string) {
	session, err := lockSessionOf(r)
	var body api.LockSessionBody
	if err == nil {
		if err = json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body); err != nil {
			err = fmt.Errorf("%w: the body is not {\"inos\": [...]}: %v", ErrBadRequest, err)
		}
	}
	if err == nil && len(body.Inos) > meta.MaxLockKeep {
		err = fmt.Errorf("%w: %d inodes, over the limit of %d", ErrBadRequest, len(body.Inos), meta.MaxLockKeep)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	l := &meta.LockOp{Action: meta.LockRenewSession, Session: session, Inos: body.Inos}
	if op == "drop_session" {
		l.Action = meta.LockDropSession
	}
	if _, err := s.propose(r.Context(), meta.Op{Kind: meta.OpLock, Lock: l}); err != nil {
		writeError(w, err)
		return
	}
	for _, ino := range body.Inos {
		s.lockWaits.kick(ino)
	}
	w.WriteHeader(http.StatusNoContent)
}
