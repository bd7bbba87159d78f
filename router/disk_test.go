package router

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/api"
	"shoal/client"
	"shoal/gossip"
	"shoal/harness"
	"shoal/meta"
	"shoal/replication"
)

// setPrimary makes the gossip view show name as its group's primary at
// term, and every other member of the group as a replica; a member whose
// disk refuses writes shows out of sync, as it publishes itself.
func (c *testCluster) setPrimary(name string, term uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var group string
	for _, m := range c.members {
		if m.Name == name {
			group = m.Group
		}
	}
	for i := range c.members {
		m := &c.members[i]
		if m.Group != group {
			continue
		}
		m.Role, m.Term = gossip.RoleReplica, term
		if m.Name == name {
			m.Role = gossip.RolePrimary
		}
		if n := c.nodes[m.Addr]; n != nil && n.repl != nil {
			m.InSync = n.repl.Status().InSync
		}
	}
}

// A primary whose disk turns read-only answers an upload with a retryable
// 503 and Retry-After, not a 500, and steps down; the client library
// retries the 503 and lands the upload once a member that can write
// leads.
func TestPrimaryDiskReadOnly(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) { cfg.RequestTimeout = 500 * time.Millisecond })
	data := content(40) // three chunks

	g1[0].disk.Fail(syscall.EROFS)
	w := do(s, "PUT", "/v1/fs/refused", bytes.NewReader(data))
	e := decodeError(t, w.Body.Bytes())
	if w.Code != http.StatusServiceUnavailable || e.Code != api.CodeUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(e.Message, "read-only file system") {
		t.Fatalf("upload to a primary whose disk is read-only: %d %+v, Retry-After %q; want 503 unavailable with Retry-After, saying why",
			w.Code, e, w.Header().Get("Retry-After"))
	}
	t.Logf("%d %s: %s", w.Code, e.Code, e.Message)
	harness.Await(t, 5*time.Second, "the read-only primary to step down and count itself out of sync", func() bool {
		st := g1[0].repl.Status()
		return st.Role == replication.Follower && !st.InSync && strings.Contains(st.DiskError, "read-only file system")
	})

	// The client's first try meets the group without a primary; the
	// member that can write takes over, as gossip would have it, once
	// the client was answered 503.
	var mu sync.Mutex
	var statuses []int
	answered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sr := &statusRecorder{ResponseWriter: w}
		s.ServeHTTP(sr, r)
		mu.Lock()
		statuses = append(statuses, sr.status)
		mu.Unlock()
		select {
		case answered <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	failover := make(chan error, 1)
	go func() {
		<-answered
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := g1[2].repl.Promote(ctx, meta.Ballot{Term: 2, Node: g1[2].id})
		c.setPrimary(g1[2].name, 2)
		failover <- err
	}()
	cl, err := client.New(client.Config{Router: srv.URL, Timeout: 5 * time.Second, Retry503: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "/after", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("the client's upload across the failover: %v", err)
	}
	if err := <-failover; err != nil {
		t.Fatalf("promote %s: %v", g1[2].name, err)
	}
	mu.Lock()
	got := append([]int(nil), statuses...)
	mu.Unlock()
	if len(got) < 2 || got[0] != http.StatusServiceUnavailable || got[len(got)-1] != http.StatusCreated {
		t.Fatalf("the router answered the client's tries %v; want 503 first and 201 last", got)
	}
	if in, ok := g1[2].file("/after"); !ok || in.Size != int64(len(data)) {
		t.Fatalf("the upload committed %+v, %v at the new primary", in, ok)
	}
	if _, ok := g1[2].file("/refused"); ok {
		t.Fatal("the refused upload was committed")
	}
}
