package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"shoal/api"
	"shoal/gossip"
)

// FuzzServeHTTP sends arbitrary requests, parsed from bytes as the HTTP
// server parses them, to a router over a healthy test cluster. Whatever
// the method, path, query, headers or body, the router must not panic
// (http.ErrAbortHandler, the deliberate cut of a broken download, aside),
// must not answer 5xx (nothing in the cluster is failing, so a 5xx can
// only be the router mishandling the request), and every error answer
// other than to HEAD carries the JSON error shape. Every input starts
// from the same state (see fuzzClusters).
func FuzzServeHTTP(f *testing.F) {
	type seed struct{ method, target, rng, inm, length, body string }
	for _, s := range []seed{
		{"GET", "/v1/fs/f", "", "", "", ""},
		{"GET", "/v1/fs/f", "bytes=3-9", "", "", ""},
		{"GET", "/v1/fs/f", "bytes=5-9223372036854775807", "", "", ""},
		{"GET", "/v1/fs/small", "bytes=-9223372036854775808", "", "", ""},
		{"GET", "/v1/fs/small", "bytes=1-9223372036854775807", "", "", ""},
		{"GET", "/v1/fs/f", "bytes=99-", "", "", ""},
		{"GET", "/v1/fs/f", "", `"h"`, "", ""},
		{"GET", "/v1/fs/f", "", "*", "", ""},
		{"GET", "/v1/fs/f?op=stat", "", "", "", ""},
		{"GET", "/v1/fs/?op=explode", "", "", "", ""},
		{"HEAD", "/v1/fs/f", "", "", "", ""},
		{"HEAD", "/v1/fs/missing", "", "", "", ""},
		{"PUT", "/v1/fs/new", "", "", "5", "hello"},
		{"PUT", "/v1/fs/new", "", "", "50", "short"},
		{"PUT", "/v1/fs/new", "", "", "2", "longer"},
		{"PUT", "/v1/fs/new", "", "", "99999999999999", "x"},
		{"PUT", "/v1/fs/", "", "", "1", "x"},
		{"PUT", "/v1/fs/a/%2e%2e/b", "", "", "1", "x"},
		{"PUT", "/v1/fs/a%00b", "", "", "1", "x"},
		{"PUT", "/v1/fs/" + strings.Repeat("n", 300), "", "", "1", "x"},
		{"DELETE", "/v1/fs/f?recursive=1", "", "", "", ""},
		{"DELETE", "/v1/fs/f?recursive=maybe", "", "", "", ""},
		{"DELETE", "/v1/fs/", "", "", "", ""},
		{"POST", "/v1/fs/f?op=rename&to=/g", "", "", "", ""},
		{"POST", "/v1/fs/f?op=copy&to=../../etc", "", "", "", ""},
		{"POST", "/v1/fs/f?op=copy", "", "", "", ""},
		{"POST", "/v1/fs/d?op=mkdir&parents=1", "", "", "", ""},
		{"POST", "/v1/fs/d?op=mkdir&parents=2", "", "", "", ""},
		{"POST", "/v1/fs/f?op=explode", "", "", "", ""},
		{"BREW", "/v1/fs/f", "", "", "", ""},
		{"PATCH", "/v1/fs/f?offset=3", "", "", "5", "hello"},
		{"PATCH", "/v1/fs/small?offset=60", "", "", "2", "hi"},
		{"PATCH", "/v1/fs/f?offset=-1", "", "", "1", "x"},
		{"PATCH", "/v1/fs/f?offset=9223372036854775807", "", "", "1", "x"},
		{"PATCH", "/v1/fs/f", "", "", "1", "x"},
		{"POST", "/v1/fs/f?op=setattr&size=3&mode=0600&mtime=now&atime=5", "", "", "", ""},
		{"POST", "/v1/fs/f?op=setattr&size=99999999999", "", "", "", ""},
		{"POST", "/v1/fs/f?op=setattr&uid=-1", "", "", "", ""},
		{"POST", "/v1/fs/n?op=create&mode=0644&excl=1&uid=1&gid=2", "", "", "", ""},
		{"POST", "/v1/fs/l?op=symlink&target=f", "", "", "", ""},
		{"POST", "/v1/fs/l?op=symlink&target=", "", "", "", ""},
		{"POST", "/v1/fs/f?op=link&to=/h&to_at=1", "", "", "", ""},
		{"POST", "/v1/fs/?at=2&op=release", "", "", "", ""},
		{"POST", "/v1/fs/f?op=rename&to=/g&noreplace=1&orphan=1", "", "", "", ""},
		{"GET", "/v1/fs/?at=1&op=stat", "", "", "", ""},
		{"GET", "/v1/fs/?at=x", "", "", "", ""},
		{"GET", "/v1/fs/?at=0", "", "", "", ""},
		{"DELETE", "/v1/fs/f?only=dir&orphan=1", "", "", "", ""},
		{"GET", "/v1/statfs", "", "", "", ""},
		{"GET", "/v1/cluster", "", "", "", ""},
		{"POST", "/v1/cluster", "", "", "", ""},
		{"GET", "/healthz", "", "", "", ""},
		{"GET", "/v1/../v1/fs/f", "", "", "", ""},
		{"GET", "*", "", "", "", ""}, // the mux answered a bare 400
		{"GET", "/v1/fs/a%2F..%2Fb?to=%zz", "", "", "", ""},
		{"GET", `/v1/fs/..\..\x`, "", "", "", ""},
	} {
		f.Add(s.method, s.target, s.rng, s.inm, s.length, []byte(s.body))
	}
	clusters := newFuzzClusters(f)
	f.Fuzz(func(t *testing.T, method, target, rng, inm, length string, body []byte) {
		var raw bytes.Buffer
		raw.WriteString(method + " " + target + " HTTP/1.1\r\nHost: router\r\n")
		if rng != "" {
			raw.WriteString("Range: " + rng + "\r\n")
		}
		if inm != "" {
			raw.WriteString("If-None-Match: " + inm + "\r\n")
		}
		if length != "" {
			raw.WriteString("Content-Length: " + length + "\r\n")
		}
		raw.WriteString("\r\n")
		raw.Write(body)
		r, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil {
			return // net/http answers 400 itself: the router never sees it
		}
		s := clusters.router(t)
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					t.Fatalf("%s %q panicked: %v", r.Method, r.RequestURI, v)
				}
			}()
			s.ServeHTTP(w, r)
		}()
		if w.Code >= 500 {
			t.Fatalf("%s %q (Range %q, Content-Length %q, %d body bytes) = %d on a healthy cluster: %s",
				r.Method, r.RequestURI, rng, length, len(body), w.Code, w.Body)
		}
		if w.Code < 400 || r.Method == http.MethodHead {
			return
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q = %d with Content-Type %q, want JSON", r.Method, r.RequestURI, w.Code, ct)
		}
		var e api.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
			t.Fatalf("%s %q = %d with body %q: want {\"error\",\"message\"} (%v)", r.Method, r.RequestURI, w.Code, w.Body, err)
		}
	})
}

// fuzzRouter returns a router over a fresh fuzzCluster.
func fuzzRouter(t *testing.T) *Server {
	c, _ := fuzzCluster(t)
	return c.router(fuzzConfig)
}

// fuzzCluster makes a healthy one-group cluster holding a chunked file /f
// and an inline file /small, and returns it with its meta group's primary.
func fuzzCluster(t testEnv) (*testCluster, *testNode) {
	c := newTestCluster(t)
	g1 := c.group("g1", 1, fuzzFree)
	putFileOn(t, g1[0], "/f", content(40), "g1", g1)
	commitFile(t, g1[0], "/small", *c.router(fuzzConfig).newInline([]byte("small file")))
	return c, g1[0]
}

// fuzzFree is the room the node of a fuzzCluster publishes.
const fuzzFree = 1 << 20

func fuzzConfig(cfg *Config) {
	cfg.InlineMax = 32
	cfg.MaxFileSize = 1 << 20
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fuzzClusters gives each input of one fuzzing process a new router over
// a fuzzCluster as it was made. Making one costs tens of milliseconds,
// fsyncs mostly, so the process makes one once, keeps its store, and
// starts each cluster it hands out over a copy of that store. And most
// inputs leave a cluster as they found it, so the inputs share one until
// an input changes it (appends to the meta group's log or stores a
// chunk), and the next input gets a new one.
type fuzzClusters struct {
	made  *fuzzEnv  // owns the cluster made first, and its store
	env   *fuzzEnv  // owns the cluster in use
	proto *testNode // the only node of the cluster made first, closed

	c      *testCluster
	mn     *testNode // c's only node
	last   uint64    // mn's last log index as started
	chunks int       // how many chunks mn held as started
}

func newFuzzClusters(f *testing.F) *fuzzClusters {
	p := &fuzzClusters{made: &fuzzEnv{base: f.TempDir()}, env: &fuzzEnv{base: f.TempDir()}}
	f.Cleanup(func() {
		p.env.release()
		p.made.release()
	})
	return p
}

func (p *fuzzClusters) router(t *testing.T) *Server {
	p.env.t, p.made.t = t, t
	if p.c == nil {
		p.start()
	}
	s := p.c.newRouter(fuzzConfig)
	t.Cleanup(func() {
		s.Close()
		if p.mn.repl.Status().LastIndex != p.last || len(p.mn.held()) != p.chunks {
			p.env.release()
			p.c = nil
		}
	})
	return s
}

// start starts a cluster of one node over a copy of the store of the
// cluster made first, making that first if need be.
func (p *fuzzClusters) start() {
	if p.proto == nil {
		_, mn := fuzzCluster(p.made)
		mn.repl.Close()
		mn.db.Close()
		p.proto = mn
	}
	dir := p.env.TempDir()
	if err := os.CopyFS(dir, os.DirFS(p.proto.db.Dir())); err != nil {
		p.env.Fatalf("copy the store of %s: %v", p.proto.name, err)
	}
	c := newTestCluster(p.env)
	mn := c.startReplica(p.proto.name, p.proto.group, p.proto.id, 1, dir)
	c.join(mn, gossip.RolePrimary, fuzzFree)
	c.form([]*testNode{mn})
	p.c, p.mn = c, mn
	p.last, p.chunks = mn.repl.Status().LastIndex, len(mn.held())
}

// fuzzEnv owns the clusters the inputs of one fuzzing process share: it
// reports a failure to the input being run, and keeps the clusters'
// directories and cleanups until release.
type fuzzEnv struct {
	t        *testing.T // the input being run
	base     string     // the fuzz target's temporary directory
	cleanups []func()
}

var _ testEnv = (*fuzzEnv)(nil)

func (e *fuzzEnv) Helper() {}

func (e *fuzzEnv) Fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format, args...)
}

func (e *fuzzEnv) Errorf(format string, args ...any) {
	e.t.Helper()
	e.t.Errorf(format, args...)
}

// Log drops the clusters' logs: they outlive the input that made them.
func (e *fuzzEnv) Log(...any) {}

func (e *fuzzEnv) TempDir() string {
	dir, err := os.MkdirTemp(e.base, "node")
	if err != nil {
		e.Fatalf("make a node's directory: %v", err)
	}
	e.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (e *fuzzEnv) Cleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// release runs the cleanups, last registered first, as a test's are.
func (e *fuzzEnv) release() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// FuzzParseRange checks that a Range header yields a range inside the
// file: [0, size) when whole, a non-empty part of it when partial.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"", "bytes=0-", "bytes=3-9", "bytes=-5", "bytes=-0", "bytes=9-3", "bytes=0-0,2-3",
		"bytes= 1 - 2", "bytes=5-9223372036854775807", "bytes=-9223372036854775808",
		"bytes=+1-+2", "bytes=--1", "items=0-1", "bytes=99-",
	} {
		f.Add(s, int64(10))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return // sizes come from inodes, never negative
		}
		start, end, partial, err := parseRange(h, size)
		switch {
		case err != nil:
			return // 416
		case !partial && (start != 0 || end != size):
			t.Fatalf("parseRange(%q, %d) = [%d, %d) whole: want [0, %d)", h, size, start, end, size)
		case partial && !(0 <= start && start < end && end <= size):
			t.Fatalf("parseRange(%q, %d) = [%d, %d) partial: outside the file or empty", h, size, start, end)
		}
	})
}

// Request targets the mux would redirect or answer without the JSON
// error are refused by the router itself.
func TestOddTargets(t *testing.T) {
	s := fuzzRouter(t)
	for _, target := range []string{"*", "/v1/../v1/fs/f", "//v1/fs/f", "/v1/./cluster", "/v1//cluster"} {
		r := httptest.NewRequest("PUT", "/", strings.NewReader("x"))
		r.URL.Path, r.RequestURI = target, target
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var e api.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); w.Code != http.StatusBadRequest || err != nil || e.Code != "invalid_path" {
			t.Errorf("PUT %s = %d %s, want 400 invalid_path", target, w.Code, w.Body)
		}
	}
	if w := do(s, "GET", "/v1/cluster/", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET /v1/cluster/ = %d %s, want 404", w.Code, w.Body)
	}
}
