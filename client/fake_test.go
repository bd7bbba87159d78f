package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/api"
)

// fakeMTime is the modification time the fake router reports for
// everything, so outputs are fixed.
var fakeMTime = time.Date(2024, 5, 1, 12, 30, 45, 123456789, time.UTC)

// fakeRouter is a small in-memory implementation of the router's HTTP API,
// just enough to exercise the client: no chunks, no groups, no
// validation beyond what the client's behaviour depends on.
type fakeRouter struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	files map[string][]byte
	dirs  map[string]bool
	seen  []seenRequest
	// hook, when set, sees each request first and answers it itself by
	// returning true. It runs without mu held.
	hook func(w http.ResponseWriter, r *http.Request) bool
}

// seenRequest is what the fake recorded of one request.
type seenRequest struct {
	Method, Path, EscapedPath, RawQuery string
	Header                              http.Header
	TransferEncoding                    []string
	ContentLength                       int64
	Body                                []byte
}

func newFakeRouter(t *testing.T) *fakeRouter {
	f := &fakeRouter{t: t, files: map[string][]byte{}, dirs: map[string]bool{"/": true}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a client of the fake with a clock that never waits.
func (f *fakeRouter) client(t *testing.T) *Client {
	c, err := New(Config{Router: f.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeRouter) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// requests returns the requests seen so far.
func (f *fakeRouter) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// last returns the last request seen.
func (f *fakeRouter) last() seenRequest {
	reqs := f.requests()
	if len(reqs) == 0 {
		f.t.Fatal("the fake router saw no request")
	}
	return reqs[len(reqs)-1]
}

func (f *fakeRouter) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_op", err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{
		Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength, Body: body,
	})
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}

	switch {
	case r.URL.Path == "/healthz":
		io.WriteString(w, "ok")
	case r.URL.Path == "/v1/cluster":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fakeClusterJSON)
	case r.URL.Path == "/v1/statfs":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"capacity": 21474836480, "used": 5368709121, "free": 16106127359, "groups": 2, "chunk_size": 4194304}`)
	case strings.HasPrefix(r.URL.Path, "/v1/fs/"):
		f.serveFS(w, r, body)
	default:
		http.NotFound(w, r)
	}
}

const fakeClusterJSON = `{
 "nodes": [
  {"id": 3, "name": "n3", "role": "primary", "group": "g1", "term": 4, "status": "alive", "addr": "10.0.0.3:7946", "in_sync": true, "used": 1048576, "cap": 10737418240},
  {"id": "18446744073709551615", "name": "n2", "role": "replica", "group": "g1", "term": 4, "status": "alive", "addr": "10.0.0.2:7946", "in_sync": false, "used": 921600, "cap": 10737418240},
  {"id": 1, "name": "n1", "role": "standby", "group": "", "term": 0, "status": "suspect", "addr": "10.0.0.1:7946", "in_sync": false, "used": 0, "cap": 0},
  {"id": 5, "name": "n5", "role": "replica", "group": "g2", "term": 2, "status": "failed", "addr": "10.0.0.5:7946", "in_sync": true, "used": 0, "cap": 0}
 ],
 "groups": [
  {"name": "g1", "meta": true, "primary": "n3", "term": 4, "members": ["n2", "n3"],
   "used": 1048576, "free": 10736369664, "commit": 40, "chunks": 12, "under_replicated": 2,
   "repair": {"copied": 5, "copied_bytes": 5120, "collected": 3, "last_round": "2024-05-01T12:30:45Z"},
   "member_details": [
    {"id": "18446744073709551615", "name": "n2", "addr": "10.0.0.2:7946", "voter": true, "live": true, "synced": false, "match": 33, "chunks": 10, "used": 921600,
     "disk_error": "disk refused a write: read-only file system"},
    {"id": 3, "name": "n3", "addr": "10.0.0.3:7946", "voter": true, "live": true, "synced": true, "match": 40, "chunks": 12, "used": 1048576}
   ]},
  {"name": "g2", "meta": false, "primary": "", "term": 2, "members": ["n5"], "used": 0, "free": null,
   "chunks": 0, "under_replicated": 0, "repair": {"copied": 0, "copied_bytes": 0, "collected": 0},
   "member_details": [], "error": "no primary available for group \"g2\": an election may be in progress"}
 ],
 "standbys": ["n1"]
}`

func (f *fakeRouter) serveFS(w http.ResponseWriter, r *http.Request, body []byte) {
	p := strings.TrimPrefix(r.URL.Path, "/v1/fs")
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	for _, name := range strings.Split(p[1:], "/") {
		if name == "." || name == ".." {
			writeAPIError(w, http.StatusBadRequest, "invalid_path",
				fmt.Sprintf("invalid path %q: component %q is not allowed", p, name))
			return
		}
	}
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op := q.Get("op"); {
	case r.Method == http.MethodPut:
		f.put(w, p, body)
	case r.Method == http.MethodGet && op == "stat":
		f.stat(w, p)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		f.get(w, r, p)
	case r.Method == http.MethodDelete:
		f.delete(w, p, q.Get("recursive") == "1")
	case r.Method == http.MethodPost && op == "mkdir":
		f.mkdir(w, p, q.Get("parents") == "1")
	case r.Method == http.MethodPost && (op == "copy" || op == "rename"):
		f.move(w, p, q.Get("to"), op == "rename")
	default:
		writeAPIError(w, http.StatusBadRequest, "invalid_op", fmt.Sprintf("unknown operation %q", op))
	}
}

func (f *fakeRouter) put(w http.ResponseWriter, p string, body []byte) {
	if !f.dirs[path.Dir(p)] {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	if f.dirs[p] {
		writeAPIError(w, http.StatusConflict, "is_dir", "is a directory")
		return
	}
	_, existed := f.files[p]
	f.files[p] = body
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeRouter) stat(w http.ResponseWriter, p string) {
	st := map[string]any{"path": p, "mtime": fakeMTime.Format(time.RFC3339Nano), "ctime": fakeMTime.Format(time.RFC3339Nano),
		"ino": len(p), "nlink": 1, "uid": 10, "gid": 20}
	switch data, isFile := f.files[p]; {
	case isFile:
		st["type"], st["size"], st["mode"], st["hash"] = "file", len(data), 0o644, fmt.Sprintf("h%d", len(data))
	case f.dirs[p]:
		st["type"], st["size"], st["mode"], st["hash"] = "dir", 0, 0o755, ""
	default:
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	writeJSON(w, st)
}

func (f *fakeRouter) get(w http.ResponseWriter, r *http.Request, p string) {
	if data, ok := f.files[p]; ok {
		w.Header().Set("X-Shoal-Type", "file")
		w.Header().Set("ETag", fmt.Sprintf(`"e%d"`, len(data)))
		http.ServeContent(w, r, "", fakeMTime, bytes.NewReader(data))
		return
	}
	if !f.dirs[p] {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	w.Header().Set("X-Shoal-Type", "dir")
	if r.Method == http.MethodHead {
		return
	}
	l := api.Listing{Path: p, Entries: []DirEntry{}}
	for _, child := range f.children(p) {
		e := DirEntry{Name: path.Base(child), Attr: Attr{Type: "dir", MTime: fakeMTime}}
		if data, ok := f.files[child]; ok {
			e.Type, e.Size = "file", int64(len(data))
		}
		l.Entries = append(l.Entries, e)
	}
	writeJSON(w, l)
}

// children returns the sorted paths directly under dir.
func (f *fakeRouter) children(dir string) []string {
	var out []string
	for p := range f.files {
		if p != dir && path.Dir(p) == dir {
			out = append(out, p)
		}
	}
	for p := range f.dirs {
		if p != dir && path.Dir(p) == dir {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (f *fakeRouter) delete(w http.ResponseWriter, p string, recursive bool) {
	if _, ok := f.files[p]; ok {
		delete(f.files, p)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !f.dirs[p] {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	if len(f.children(p)) > 0 && !recursive {
		writeAPIError(w, http.StatusConflict, "not_empty", "directory not empty")
		return
	}
	for q := range f.files {
		if strings.HasPrefix(q, p+"/") {
			delete(f.files, q)
		}
	}
	for q := range f.dirs {
		if q == p || strings.HasPrefix(q, p+"/") {
			delete(f.dirs, q)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRouter) mkdir(w http.ResponseWriter, p string, parents bool) {
	if f.dirs[p] && parents {
		w.WriteHeader(http.StatusOK)
		return
	}
	if _, ok := f.files[p]; ok || f.dirs[p] {
		writeAPIError(w, http.StatusConflict, "exists", "already exists")
		return
	}
	if !f.dirs[path.Dir(p)] && !parents {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	for d := p; d != "/"; d = path.Dir(d) {
		f.dirs[d] = true
	}
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeRouter) move(w http.ResponseWriter, src, dst string, rename bool) {
	if _, ok := f.files[dst]; ok || f.dirs[dst] {
		writeAPIError(w, http.StatusConflict, "exists", "already exists")
		return
	}
	data, ok := f.files[src]
	if !ok {
		writeAPIError(w, http.StatusNotFound, "not_found", "no such file or directory")
		return
	}
	f.files[dst] = data
	if rename {
		delete(f.files, src)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
