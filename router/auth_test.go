package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/meta"
	"shoal/secure"
)

// fakeUsers answers token lookups from a map, counting them.
type fakeUsers struct {
	mu      sync.Mutex
	byHash  map[[32]byte]meta.User
	lookups atomic.Int64
	err     error
	block   chan struct{} // when set, lookups wait for it to close
	hang    atomic.Bool   // when set, lookups wait for their context to end
}

func (f *fakeUsers) lookup(ctx context.Context, h [32]byte) (*meta.User, error) {
	f.lookups.Add(1)
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if u, ok := f.byHash[h]; ok {
		return &u, nil
	}
	return nil, nil
}

func (f *fakeUsers) add(name string) string {
	tok := secure.NewToken()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byHash[secure.HashToken(tok)] = meta.User{Name: name, Uid: 1000, Gid: 1000, TokenHash: secure.HashToken(tok)}
	return tok
}

func authReq(tok, from string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/fs/x", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	r.RemoteAddr = from + ":1234"
	return r
}

func TestAuthenticate(t *testing.T) {
	users := &fakeUsers{byHash: map[[32]byte]meta.User{}}
	a := newAuthenticator(users.lookup, time.Second)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	alice := users.add("alice")

	for _, tc := range []struct{ name, header string }{
		{"no header", ""}, {"basic auth", "Basic YWxpY2U6cHc="}, {"garbage", "Bearer x"},
		{"a token of another kind", "Bearer shoal_" + "short"},
	} {
		r := httptest.NewRequest("GET", "/v1/fs/x", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if _, err := a.authenticate(r); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if users.lookups.Load() != 0 {
		t.Fatal("a malformed header cost a lookup")
	}
	u, err := a.authenticate(authReq(alice, "10.0.0.1"))
	if err != nil || u.Name != "alice" {
		t.Fatalf("alice: %v %v", u, err)
	}
	for range 10 {
		a.authenticate(authReq(alice, "10.0.0.1"))
	}
	if n := users.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for one known user within the TTL", n)
	}
	// Past the TTL the user is asked for again; a removed user is refused.
	now = now.Add(2 * time.Second)
	users.mu.Lock()
	clear(users.byHash)
	users.mu.Unlock()
	if _, err := a.authenticate(authReq(alice, "10.0.0.1")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a removed user's token: %v", err)
	}
	// While the meta group cannot answer, a user known a moment ago is kept.
	bob := users.add("bob")
	if _, err := a.authenticate(authReq(bob, "10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	users.err = errors.New("no primary")
	if u, err := a.authenticate(authReq(bob, "10.0.0.2")); err != nil || u.Name != "bob" {
		t.Fatalf("bob during a failover: %v %v", u, err)
	}
	now = now.Add(authStale)
	if _, err := a.authenticate(authReq(bob, "10.0.0.2")); err == nil {
		t.Fatal("a user was kept long after the meta group stopped answering")
	}
	users.err = nil
	// A token tried before its user existed works once the user is made:
	// at once on the router that made it, within the TTL elsewhere.
	early := secure.NewToken()
	if _, err := a.authenticate(authReq(early, "10.0.0.3")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal(err)
	}
	users.mu.Lock()
	users.byHash[secure.HashToken(early)] = meta.User{Name: "carol", TokenHash: secure.HashToken(early)}
	users.mu.Unlock()
	if _, err := a.authenticate(authReq(early, "10.0.0.3")); err == nil {
		t.Fatal("a token refused a moment ago was looked up again within the TTL")
	}
	a.issued(secure.HashToken(early))
	if u, err := a.authenticate(authReq(early, "10.0.0.3")); err != nil || u.Name != "carol" {
		t.Fatalf("a token issued here after it was refused: %v %v", u, err)
	}
	// forget makes a change on this router count at once.
	now = now.Add(time.Minute)
	a.authenticate(authReq(bob, "10.0.0.2"))
	users.mu.Lock()
	clear(users.byHash)
	users.mu.Unlock()
	a.forget("bob")
	if _, err := a.authenticate(authReq(bob, "10.0.0.2")); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("bob after forget: %v", err)
	}
}

// TestKnownUserServedWhenMetaGroupHangs: past the TTL, a request of a
// known user whose lookup gets no answer (the meta group lost its
// majority) is served as that user after authRefreshWait, not after the
// request's whole timeout, and only within authStale.
func TestKnownUserServedWhenMetaGroupHangs(t *testing.T) {
	users := &fakeUsers{byHash: map[[32]byte]meta.User{}}
	a := newAuthenticator(users.lookup, time.Second)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	dave := users.add("dave")
	if _, err := a.authenticate(authReq(dave, "10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	users.hang.Store(true)
	now = now.Add(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a request's own deadline
	defer cancel()
	start := time.Now()
	u, err := a.authenticate(authReq(dave, "10.0.0.4").WithContext(ctx))
	if took := time.Since(start); err != nil || u.Name != "dave" || took > authRefreshWait+2*time.Second {
		t.Fatalf("dave with the lookup hanging: %v %v after %v; want dave after about %v", u, err, took, authRefreshWait)
	}
	now = now.Add(authStale)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*authRefreshWait)
	defer cancel2()
	if _, err := a.authenticate(authReq(dave, "10.0.0.4").WithContext(ctx2)); err == nil {
		t.Fatal("dave was served long after the meta group stopped answering")
	}
}

// TestBadTokenFlood: a source sending bad tokens soon gets 429 without a
// lookup, and a known user is served meanwhile, even with every lookup
// slot held by unknown tokens.
func TestBadTokenFlood(t *testing.T) {
	users := &fakeUsers{byHash: map[[32]byte]meta.User{}}
	a := newAuthenticator(users.lookup, time.Second)
	alice := users.add("alice")
	if _, err := a.authenticate(authReq(alice, "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	limited := 0
	for range 200 {
		_, err := a.authenticate(authReq(secure.NewToken(), "10.6.6.6"))
		if errors.Is(err, ErrTooManyRequests) {
			limited++
		} else if !errors.Is(err, ErrUnauthenticated) {
			t.Fatal(err)
		}
	}
	if n := users.lookups.Load(); limited == 0 || n > failureBurst+5 {
		t.Fatalf("200 bad tokens from one source: %d limited, %d lookups", limited, n)
	}
	// Hold every lookup slot with unknown tokens from many sources.
	users.block = make(chan struct{})
	base := users.lookups.Load()
	var wg sync.WaitGroup
	for i := range authLookups + 4 {
		wg.Go(func() { a.authenticate(authReq(secure.NewToken(), fmt.Sprintf("10.7.0.%d", i))) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for users.lookups.Load() < base+authLookups {
		if time.Now().After(deadline) {
			t.Fatal("unknown tokens did not take the lookup slots")
		}
		runtime.Gosched()
	}
	start := time.Now()
	if u, err := a.authenticate(authReq(alice, "10.0.0.1")); err != nil || u.Name != "alice" {
		t.Fatalf("alice while the slots are full: %v %v", u, err)
	}
	if d := time.Since(start); d > authQueue {
		t.Errorf("alice waited %v behind unknown tokens", d)
	}
	close(users.block)
	wg.Wait()
}

func TestActAs(t *testing.T) {
	for _, v := range []string{"", "1", "a:b", "1:2:x", "1:2:3:4", "-1:2", "4294967296:1"} {
		if _, err := parseActAs(v); err == nil {
			t.Errorf("%q parsed", v)
		}
	}
	c, err := parseActAs("1000:100:4,27")
	if err != nil || c.Uid != 1000 || c.Gid != 100 || len(c.Groups) != 2 || c.Groups[1] != 27 {
		t.Fatalf("%+v %v", c, err)
	}
	r := authReq("", "10.0.0.1")
	r.Header.Set(ActAsHeader, "0:0")
	plain := meta.User{Name: "alice", Uid: 1000}
	if _, err := actAs(r, plain); !errors.Is(err, ErrDenied) {
		t.Fatalf("a plain user acted for root: %v", err)
	}
	mounter := meta.User{Name: "host", Uid: 1001, Mount: true}
	if _, err := actAs(r, mounter); !errors.Is(err, ErrDenied) {
		t.Fatalf("a mount token without a host certificate acted for others: %v", err)
	}
	// With a verified client certificate of the client role.
	caPEM, caKey, _ := secure.NewCA("ca", time.Hour)
	certPEM, _, err := secure.IssueCert(caPEM, caKey, secure.CertRequest{Name: "h", Role: secure.RoleClient, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	c, err = actAs(r, mounter)
	if err != nil || !c.Host || !c.Root || c.Uid != 0 {
		t.Fatalf("a mount host acting for root: %+v %v", c, err)
	}
	r.Header.Set(ActAsHeader, "1000:1000")
	if c, err = actAs(r, mounter); err != nil || c.Root || c.Uid != 1000 {
		t.Fatalf("a mount host acting for 1000: %+v %v", c, err)
	}
}

// FuzzParseActAs: any header value is refused or parsed into an identity
// that prints back the same way.
func FuzzParseActAs(f *testing.F) {
	for _, s := range []string{"0:0", "1000:100:4,27", "1:2:", "a:b", "1:2:3:4", "4294967295:4294967295:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseActAs(v)
		if err != nil {
			return
		}
		again, err := parseActAs(fmt.Sprintf("%d:%d:%s", c.Uid, c.Gid, joinIDs(c.Groups)))
		if err != nil || again.Uid != c.Uid || again.Gid != c.Gid || len(again.Groups) != len(c.Groups) {
			t.Fatalf("%q parsed to %+v, which does not read back (%+v, %v)", v, c, again, err)
		}
		if len(c.Groups) > maxGroups {
			t.Fatalf("%q: %d groups", v, len(c.Groups))
		}
	})
}

func joinIDs(ids []uint32) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", id)
	}
	return string(b)
}
