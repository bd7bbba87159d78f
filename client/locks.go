package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/api"
)

// LockInfo is who holds a lock and who waits for it.
type LockInfo = api.LockInfo

// LockOptions is how Lock takes a lock.
type LockOptions struct {
	// Shared takes a shared (read) lock, which others may hold at the
	// same time; otherwise the lock is exclusive.
	Shared bool
	// TTL is the lease: the lock is lost this long after the last grant
	// or renewal unless renewed (Hold renews it). Zero means 30s; the
	// cluster takes 1s to 24h.
	TTL time.Duration
	// Wait is how long to queue for a lock that is held; zero fails at
	// once with ErrLocked. Waiters get the lock in the order they came.
	Wait time.Duration
	// Owner labels the holder for whoever looks at the lock (LockInfo);
	// empty: the user's name.
	Owner string
}

// LeaseMargin is how much earlier than the cluster a client counts its
// lease as lost: a tenth of the TTL, at least 200ms. The client counts
// the lease from before it sent the request, and the cluster from when
// it granted it, by a clock that never runs ahead of real time, so the
// margin only has to cover how much faster this machine's clock may run
// than the cluster's over one TTL.
func LeaseMargin(ttl time.Duration) time.Duration { return max(ttl/10, 200*time.Millisecond) }

// Lease is a lock held. Its Token is the fencing token: pass it with
// WithFence so that the cluster refuses the changes once the lease is
// over, and a holder that was paused past its lease cannot overwrite
// its successor's work.
type Lease struct {
	c      *Client
	Path   string
	Token  uint64
	Key    string
	Shared bool
	TTL    time.Duration

	mu    sync.Mutex
	until time.Time // when this client takes the lease as lost
}

// Lock takes the lock of the file or directory at path (which must
// exist, and which the caller must be able to read), waiting up to
// o.Wait. A lock follows its file through renames, as flock(2) does.
func (c *Client) Lock(ctx context.Context, path string, o LockOptions) (*Lease, error) {
	if o.TTL == 0 {
		o.TTL = 30 * time.Second
	}
	q := url.Values{"op": {"acquire"}, "ttl": {o.TTL.String()}}
	if o.Shared {
		q.Set("mode", api.LockShared)
	}
	if o.Wait > 0 {
		q.Set("wait", o.Wait.String())
	}
	if o.Owner != "" {
		q.Set("owner", o.Owner)
	}
	sent := time.Now()
	var got api.Lease
	resp, err := c.send(ctx, request{method: http.MethodPost, what: path, url: c.lockURL(path, q), bound: boundWhole, extra: o.Wait})
	if err == nil {
		err = decodeJSON(resp, path, &got)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lease{c: c, Path: path, Token: got.Token, Key: got.Key, Shared: got.Mode == api.LockShared, TTL: o.TTL}
	l.until = l.countFrom(sent, got)
	return l, nil
}

// countFrom is when the lease got from a request sent at sent ends, as
// this client counts it. The cluster granted it no earlier than the
// router's last try, which started got.WaitedSeconds after the request
// arrived (so after sent), and counts the TTL from the grant: the lease
// lasts at least until sent + waited + TTL, less the margin.
func (l *Lease) countFrom(sent time.Time, got api.Lease) time.Time {
	ttl := time.Duration(got.TTLSeconds * float64(time.Second))
	left := time.Duration(got.ExpiresInSeconds * float64(time.Second))
	if left > ttl || left <= 0 {
		left = ttl
	}
	waited := time.Duration(got.WaitedSeconds * float64(time.Second))
	return sent.Add(waited + left - LeaseMargin(ttl))
}

// Valid reports whether the lease may still hold, as this client counts.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.until)
}

// ValidUntil is when this client takes the lease as lost unless renewed.
func (l *Lease) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Renew extends the lease by its TTL from now. It fails with
// ErrLeaseLost once the lease ran out or was released.
func (l *Lease) Renew(ctx context.Context) error {
	sent := time.Now()
	q := url.Values{"op": {"renew"}, "token": {strconv.FormatUint(l.Token, 10)}}
	var got api.Lease
	resp, err := l.c.send(ctx, request{method: http.MethodPost, what: l.Path, url: l.c.lockURL(l.Path, q),
		header: http.Header{"Shoal-Lock-Key": {l.Key}}, bound: boundWhole})
	if err == nil {
		err = decodeJSON(resp, l.Path, &got)
	}
	if err != nil {
		return fmt.Errorf("renew the lock of %s: %w", l.Path, err)
	}
	l.mu.Lock()
	l.until = l.countFrom(sent, got)
	l.mu.Unlock()
	return nil
}

// Release gives the lock up. A lease already lost is not an error.
func (l *Lease) Release(ctx context.Context) error {
	q := url.Values{"op": {"release"}, "token": {strconv.FormatUint(l.Token, 10)}}
	resp, err := l.c.send(ctx, request{method: http.MethodPost, what: l.Path, url: l.c.lockURL(l.Path, q),
		header: http.Header{"Shoal-Lock-Key": {l.Key}}, bound: boundWhole})
	if err == nil {
		drainClose(resp.Body)
	}
	l.mu.Lock()
	l.until = time.Time{}
	l.mu.Unlock()
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("release the lock of %s: %w", l.Path, err)
	}
	return nil
}

// Hold renews the lease in the background, at a third of its TTL, until
// stop is called or the lease is lost. The returned context is cancelled
// when the lease is lost (a renew refused, or none succeeded before the
// lease's end as this client counts it): work done under the lock should
// run under it and send its changes WithFence. stop ends the renewals
// and releases the lock.
func (l *Lease) Hold(ctx context.Context) (held context.Context, stop func() error) {
	held, cancel := context.WithCancelCause(WithFence(ctx, l.Token))
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			wait := l.TTL / 3
			if left := time.Until(l.ValidUntil()); left < wait {
				wait = max(left/2, 10*time.Millisecond)
			}
			t := time.NewTimer(wait)
			select {
			case <-done:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				cancel(ctx.Err())
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithDeadline(ctx, l.ValidUntil())
			err := l.Renew(rctx)
			rcancel()
			switch {
			case err == nil:
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case !l.Valid():
				cancel(fmt.Errorf("lock of %s: %w: no renewal got through before its end (%v)", l.Path, ErrLeaseLost, err))
				return
			}
		}
	}()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			close(done)
			<-finished
			cancel(context.Canceled)
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			stopErr = l.Release(rctx)
			rcancel()
		})
		return stopErr
	}
	return held, stop
}

// LockState returns who holds the lock of path and who waits for it.
func (c *Client) LockState(ctx context.Context, path string) (LockInfo, error) {
	var info LockInfo
	err := c.callURL(ctx, http.MethodGet, path, c.lockURL(path, nil), &info)
	return info, err
}

func (c *Client) lockURL(p string, q url.Values) string {
	u := c.base + "/v1/locks" + escapePath(p)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// fenceKey holds a fencing token in a context.
type fenceKey struct{}

// WithFence returns a context whose changes (puts, deletes, renames, ...)
// carry the fencing token: the cluster applies each only while the
// token's lease holds its lock, and otherwise refuses it with ErrFenced.
func WithFence(ctx context.Context, token uint64) context.Context {
	return context.WithValue(ctx, fenceKey{}, token)
}

func fenceOf(ctx context.Context) uint64 {
	t, _ := ctx.Value(fenceKey{}).(uint64)
	return t
}

// isLockURL reports whether u is of the lock API, whose calls a fence
// does not apply to (a lease is renewed and released by its key).
func isLockURL(c *Client, u string) bool {
	return strings.HasPrefix(u, c.base+"/v1/locks/")
}

// LockRange sets the byte-range lock of session on bytes [start, end) of
// the file ino (end LockEOF: to any end of file), as fcntl(F_SETLK)
// does: mode is api.LockShared, api.LockExclusive or "unlock". The
// session's own locks on those bytes are replaced; another session's
// that conflict make it fail at once with ErrLocked. A mount's locks
// are its sessions' (a secret of the mount and the kernel's lock
// owner); they last ttl unless renewed with LockSession.
func (c *Client) LockRange(ctx context.Context, ino uint64, session, mode string, start, end uint64, ttl time.Duration, pid uint32) error {
	q := url.Values{"op": {"setlk"}, "mode": {mode}, "start": {strconv.FormatUint(start, 10)}, "pid": {strconv.FormatUint(uint64(pid), 10)}}
	if end != LockEOF {
		q.Set("end", strconv.FormatUint(end, 10))
	}
	if mode != "unlock" {
		q.Set("ttl", ttl.String())
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, what: what(ino, ""), url: c.lockInoURL(ino, q),
		header: http.Header{api.LockSessionHeader: {session}}, bound: boundWhole})
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

// LockEOF is the end of a byte range that reaches past any end of file.
const LockEOF = ^uint64(0)

// LockStateIno returns who holds the lock of the file ino, marking the
// locks of session (if given) as Mine.
func (c *Client) LockStateIno(ctx context.Context, ino uint64, session string) (LockInfo, error) {
	var info LockInfo
	h := http.Header{}
	if session != "" {
		h.Set(api.LockSessionHeader, session)
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, what: what(ino, ""), url: c.lockInoURL(ino, nil), header: h, bound: boundWhole})
	if err == nil {
		err = decodeJSON(resp, what(ino, ""), &info)
	}
	return info, err
}

// LockSession renews (drop false) or drops every lock of session on the
// files inos.
func (c *Client) LockSession(ctx context.Context, session string, inos []uint64, drop bool) error {
	op := "renew_session"
	if drop {
		op = "drop_session"
	}
	body, err := json.Marshal(api.LockSessionBody{Inos: inos})
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, what: "lock session", url: c.base + "/v1/locks/?op=" + op,
		header: http.Header{api.LockSessionHeader: {session}, "Content-Type": {"application/json"}},
		body:   bytes.NewReader(body), size: int64(len(body)), bound: boundWhole})
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

func (c *Client) lockInoURL(ino uint64, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("at", strconv.FormatUint(ino, 10))
	return c.lockURL("/", q)
}
