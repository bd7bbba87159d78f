package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/api"
	"shoal/harness"
)

func leaseBody(t *testing.T, w *httptest.ResponseRecorder) api.Lease {
	t.Helper()
	var l api.Lease
	if w.Code != http.StatusOK {
		t.Fatalf("acquire: %d %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Token == 0 || len(l.Key) != 32 {
		t.Fatalf("answer %q is not a lease: %v", w.Body, err)
	}
	return l
}

func TestLockAPI(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/job", strings.NewReader("v0"))

	a := leaseBody(t, do(s, "POST", "/v1/locks/job?op=acquire&ttl=30s&owner=alpha", nil))
	if a.Mode != api.LockExclusive || a.TTLSeconds != 30 || a.ExpiresInSeconds <= 25 || a.ExpiresInSeconds > 30 {
		t.Fatalf("lease %+v", a)
	}
	w := do(s, "POST", "/v1/locks/job?op=acquire", nil)
	wantCode(t, "acquire of a held lock", w, http.StatusConflict, api.CodeLocked)
	var locked api.LockedBody
	if err := json.Unmarshal(w.Body.Bytes(), &locked); err != nil || len(locked.Lock.Holders) != 1 || locked.Lock.Holders[0].Owner != "alpha" {
		t.Fatalf("409 body %s", w.Body)
	}
	w = do(s, "GET", "/v1/locks/job", nil)
	var info api.LockInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil || len(info.Holders) != 1 || info.Holders[0].Token != a.Token || strings.Contains(w.Body.String(), a.Key) {
		t.Fatalf("GET lock: %d %s", w.Code, w.Body)
	}

	// Fenced writes go through while the lease holds, on any path.
	fence := fmt.Sprint(a.Token)
	wantCode(t, "fenced PUT", do(s, "PUT", "/v1/fs/job", strings.NewReader("v1"), api.FenceHeader, fence), http.StatusOK, "")
	wantCode(t, "fenced mkdir", do(s, "POST", "/v1/fs/out?op=mkdir", nil, api.FenceHeader, fence), http.StatusCreated, "")
	wantCode(t, "fenced GET", do(s, "GET", "/v1/fs/job", nil, api.FenceHeader, fence), http.StatusBadRequest, api.CodeInvalidOp)
	wantCode(t, "bad fence", do(s, "PUT", "/v1/fs/job", strings.NewReader("x"), api.FenceHeader, "-3"), http.StatusBadRequest, api.CodeInvalidOp)

	// Renew and release need the key.
	w = do(s, "POST", "/v1/locks/job?op=renew&token="+fence, nil, "Shoal-Lock-Key", "0123456789abcdef0123456789abcdef")
	wantCode(t, "renew with a wrong key", w, http.StatusConflict, api.CodeNotHolder)
	w = do(s, "POST", "/v1/locks/job?op=renew&token="+fence+"&ttl=60", nil, "Shoal-Lock-Key", a.Key)
	if r := leaseBody(t, w); r.TTLSeconds != 60 || r.Token != a.Token {
		t.Fatalf("renewed lease %+v", r)
	}

	// A waiter queues, and gets the lock when it is released.
	var wg sync.WaitGroup
	var waited *httptest.ResponseRecorder
	wg.Add(1)
	go func() {
		defer wg.Done()
		waited = do(s, "POST", "/v1/locks/job?op=acquire&wait=20s&owner=beta", nil)
	}()
	harness.Await(t, 10*time.Second, "the waiter to queue", func() bool {
		var info api.LockInfo
		json.Unmarshal(do(s, "GET", "/v1/locks/job", nil).Body.Bytes(), &info)
		return info.Waiting == 1 && len(info.Queue) == 1 && info.Queue[0].Owner == "beta"
	})
	wantCode(t, "acquire while another waits", do(s, "POST", "/v1/locks/job?op=acquire", nil), http.StatusConflict, api.CodeLocked)
	wantCode(t, "release", do(s, "POST", "/v1/locks/job?op=release&token="+fence, nil, "Shoal-Lock-Key", a.Key), http.StatusNoContent, "")
	wg.Wait()
	b := leaseBody(t, waited)
	if b.Token <= a.Token {
		t.Fatalf("the waiter's token %d is not above the first's %d", b.Token, a.Token)
	}
	wantCode(t, "write fenced by the released lease", do(s, "PUT", "/v1/fs/job", strings.NewReader("stale"), api.FenceHeader, fence),
		http.StatusConflict, api.CodeFenced)
	if got := do(s, "GET", "/v1/fs/job", nil).Body.String(); got != "v1" {
		t.Fatalf("after a fenced write was refused the file holds %q", got)
	}
	wantCode(t, "release twice", do(s, "POST", "/v1/locks/job?op=release&token="+fence, nil, "Shoal-Lock-Key", a.Key), http.StatusConflict, api.CodeNotHolder)

	// A wait that runs out answers locked and leaves no place behind.
	w = do(s, "POST", "/v1/locks/job?op=acquire&wait=0.3", nil)
	wantCode(t, "a wait that ran out", w, http.StatusConflict, api.CodeLocked)
	harness.Await(t, 5*time.Second, "the lapsed waiter's place to go", func() bool {
		var info api.LockInfo
		json.Unmarshal(do(s, "GET", "/v1/locks/job", nil).Body.Bytes(), &info)
		return info.Waiting == 0
	})

	for _, bad := range []string{"ttl=0", "ttl=-5s", "ttl=200h", "ttl=soon", "mode=both", "wait=2h", "owner=" + strings.Repeat("o", 300)} {
		wantCode(t, "acquire with "+bad[:min(len(bad), 20)], do(s, "POST", "/v1/locks/job?op=acquire&"+bad, nil), http.StatusBadRequest, api.CodeInvalidOp)
	}
	wantCode(t, "lock of nothing", do(s, "POST", "/v1/locks/nothing?op=acquire", nil), http.StatusNotFound, api.CodeNotFound)
	wantCode(t, "lock of an escaping path", do(s, "POST", "/v1/locks/a/../job?op=acquire", nil), http.StatusBadRequest, api.CodeInvalidPath)
	wantCode(t, "renew without a token", do(s, "POST", "/v1/locks/job?op=renew", nil), http.StatusBadRequest, api.CodeInvalidOp)
	wantCode(t, "unknown op", do(s, "POST", "/v1/locks/job?op=steal", nil), http.StatusBadRequest, api.CodeInvalidOp)
	wantCode(t, "DELETE", do(s, "DELETE", "/v1/locks/job", nil), http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
}

// Many waiters on one lock through one router each get it in turn, none
// starved, with one poller and one keeper between them.
func TestLockManyWaitersThroughTheAPI(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/busy", strings.NewReader("x"))
	first := leaseBody(t, do(s, "POST", "/v1/locks/busy?op=acquire&ttl=60s", nil))
	const n = 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	var tokens []uint64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := do(s, "POST", "/v1/locks/busy?op=acquire&ttl=60s&wait=60s", nil)
			if w.Code != http.StatusOK {
				t.Errorf("a waiter: %d %s", w.Code, w.Body)
				return
			}
			var l api.Lease
			json.Unmarshal(w.Body.Bytes(), &l)
			mu.Lock()
			tokens = append(tokens, l.Token)
			mu.Unlock()
			do(s, "POST", fmt.Sprintf("/v1/locks/busy?op=release&token=%d", l.Token), nil, "Shoal-Lock-Key", l.Key)
		}()
	}
	harness.Await(t, 30*time.Second, "every waiter to queue", func() bool {
		var info api.LockInfo
		json.Unmarshal(do(s, "GET", "/v1/locks/busy", nil).Body.Bytes(), &info)
		return info.Waiting == n
	})
	do(s, "POST", fmt.Sprintf("/v1/locks/busy?op=release&token=%d", first.Token), nil, "Shoal-Lock-Key", first.Key)
	wg.Wait()
	if len(tokens) != n {
		t.Fatalf("%d of %d waiters got the lock", len(tokens), n)
	}
	var info api.LockInfo
	json.Unmarshal(do(s, "GET", "/v1/locks/busy", nil).Body.Bytes(), &info)
	if len(info.Holders) != 0 || info.Waiting != 0 {
		t.Fatalf("after every waiter had its turn: %+v", info)
	}
}

// A client that goes away while its acquire waits gives its place up at
// once: the lock comes free to others well before the place would lapse
// (meta.LockWaiterTTL, 3 s).
func TestLockAbandonedWait(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/f", strings.NewReader("x"))
	held := leaseBody(t, do(s, "POST", "/v1/locks/f?op=acquire&ttl=60s", nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := httptest.NewRequest("POST", "/v1/locks/f?op=acquire&ttl=60s&wait=60s", nil).WithContext(ctx)
		s.ServeHTTP(httptest.NewRecorder(), r)
	}()
	harness.Await(t, 10*time.Second, "the second acquire to queue", func() bool {
		var info api.LockInfo
		json.Unmarshal(do(s, "GET", "/v1/locks/f", nil).Body.Bytes(), &info)
		return info.Waiting == 1
	})
	cancel()
	<-done
	do(s, "POST", fmt.Sprintf("/v1/locks/f?op=release&token=%d", held.Token), nil, "Shoal-Lock-Key", held.Key)
	harness.Await(t, 2*time.Second, "a newcomer to get the lock the gone client waited for", func() bool {
		return do(s, "POST", "/v1/locks/f?op=acquire&ttl=60s", nil).Code == http.StatusOK
	})
}
