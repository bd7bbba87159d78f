package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Requests go to the next router of the list when one cannot be reached,
// and stay there.
func TestClientFailsOverBetweenRouters(t *testing.T) {
	f := newFakeRouter(t)
	dead := deadAddr(t)
	c, err := New(Config{Router: "http://" + dead + ", " + f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "/f", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatalf("Put with the first router down: %v", err)
	}
	if got, err := c.ReadFile(t.Context(), "/f"); err != nil || string(got) != "x" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if c.cur.Load() != 1 {
		t.Errorf("the client went back to the router that was down (in use: %d)", c.cur.Load())
	}
	if c.Router() != "http://"+dead {
		t.Errorf("Router() = %q, want the first of the list", c.Router())
	}

	// Every router down, and no RetryUnreachable: an error at once.
	c, err = New(Config{Router: "http://" + dead + ",http://" + deadAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	if err := c.Healthy(t.Context()); !errors.Is(err, ErrUnreachable) || len(clock.sleeps) != 0 {
		t.Errorf("Healthy with every router down = %v after waits %v, want ErrUnreachable at once", err, clock.sleeps)
	}
	for _, bad := range []string{"http://a:1,", ",http://a:1", "http://a:1,ftp://b"} {
		if err := (Config{Router: bad}).Validate(); err == nil {
			t.Errorf("Validate(%q) = nil, want an error", bad)
		}
	}
}

// A router that restarts: requests wait for it, within RetryUnreachable.
func TestClientWaitsForARouterThatRestarts(t *testing.T) {
	f := newFakeRouter(t)
	addr := deadAddr(t)
	c, err := New(Config{Router: "http://" + addr, RetryUnreachable: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	var back *httptest.Server
	c.sleep = func(ctx context.Context, d time.Duration) error {
		clock.sleeps = append(clock.sleeps, d)
		clock.now = clock.now.Add(d)
		if len(clock.sleeps) == 3 { // the router is back after three waits
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			back = httptest.NewUnstartedServer(f.srv.Config.Handler)
			back.Listener = ln
			back.Start()
		}
		return nil
	}
	defer func() {
		if back != nil {
			back.Close()
		}
	}()
	if _, err := c.Put(t.Context(), "/f", bytes.NewReader([]byte("after the restart")), 17); err != nil {
		t.Fatalf("Put while the router restarts: %v (waits %v)", err, clock.sleeps)
	}
	want := []time.Duration{firstRetryWait, 2 * firstRetryWait, 4 * firstRetryWait}
	if !equalDurations(clock.sleeps, want) {
		t.Errorf("waited %v, want %v", clock.sleeps, want)
	}

	// Past RetryUnreachable, the error.
	c, err = New(Config{Router: "http://" + deadAddr(t), RetryUnreachable: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock = fakeClock{}
	clock.install(c)
	if _, err := c.Stat(t.Context(), "/f"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Stat with the router gone = %v, want ErrUnreachable", err)
	}
	var waited time.Duration
	for _, d := range clock.sleeps {
		waited += d
	}
	if waited > 3*time.Second || waited < 2*time.Second {
		t.Errorf("waited %v in all (%v), want close to RetryUnreachable (3s) and not past it", waited, clock.sleeps)
	}
}

// A change whose connection closed before the answer is sent again with
// the same Idempotency-Key (the cluster applies it once); a body that
// cannot be replayed is not sent again.
func TestClientRetriesAChangeCutOff(t *testing.T) {
	f := newFakeRouter(t)
	c, err := New(Config{Router: f.srv.URL, RetryUnreachable: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	var cut atomic.Int32
	var mu sync.Mutex
	var keys []string
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), keys...) }
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut {
			return false
		}
		mu.Lock()
		keys = append(keys, r.Header.Get(IdempotencyHeader))
		mu.Unlock()
		if cut.Add(1) > 2 {
			return false
		}
		io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		conn.Close() // the router died before answering
		return true
	})
	if _, err := c.Put(t.Context(), "/f", bytes.NewReader([]byte("once")), 4); err != nil {
		t.Fatalf("Put cut off twice, then answered: %v", err)
	}
	if keys := seen(); len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("the tries carried keys %q, want one key three times", keys)
	}
	cut.Store(0)
	mu.Lock()
	keys = nil
	mu.Unlock()
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("stream")); pw.Close() }()
	if _, err := c.Put(t.Context(), "/g", pr, -1); err == nil || len(seen()) != 1 {
		t.Errorf("a streamed Put cut off = %v after %d tries, want an error after one", err, len(seen()))
	}
}

// closingTransport fails its first tries as http.Transport does when the
// router closed a kept-alive connection just as a request was handed to
// it, then sends the rest.
type closingTransport struct {
	fails atomic.Int32 // tries still to fail
	next  http.RoundTripper
}

func (t *closingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.fails.Add(-1) >= 0 {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, net.ErrClosed
	}
	return t.next.RoundTrip(r)
}

// A change whose connection the router closed under it (a router killed
// between two calls of a kept-alive connection) is sent again, at the
// next router, with the same Idempotency-Key.
func TestClientRetriesOnAConnectionClosedUnderIt(t *testing.T) {
	f := newFakeRouter(t)
	tr := &closingTransport{next: http.DefaultTransport}
	tr.fails.Store(2)
	c, err := New(Config{Router: f.srv.URL + "," + f.srv.URL, RetryUnreachable: 10 * time.Second,
		HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	if _, err := c.Put(t.Context(), "/f", bytes.NewReader([]byte("once")), 4); err != nil {
		t.Fatalf("Put whose connection closed twice under it: %v", err)
	}
	if got, err := c.ReadFile(t.Context(), "/f"); err != nil || string(got) != "once" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if tr.fails.Load() >= 0 {
		t.Errorf("the transport was asked %d times fewer than it fails", tr.fails.Load()+1)
	}
}

// A request whose answer carries a secret made for it (a user's token) is
// not sent again once it may have reached a router: the retry would
// answer a token the cluster does not keep.
func TestClientSendsASecretOnce(t *testing.T) {
	f := newFakeRouter(t)
	c, err := New(Config{Router: f.srv.URL, RetryUnreachable: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	var tries atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		tries.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	if _, err := c.AddUser(t.Context(), NewUser{Name: "ann"}); err == nil || tries.Load() != 1 {
		t.Errorf("AddUser cut off = %v after %d tries, want an error after one", err, tries.Load())
	}
	if _, err := c.RotateToken(t.Context(), "ann"); err == nil || tries.Load() != 2 {
		t.Errorf("RotateToken cut off = %v after %d tries in all, want an error after one more", err, tries.Load())
	}
}
