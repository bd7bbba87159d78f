package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock replaces a client's retry clock: sleeping advances time at
// once and records the wait.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (fc *fakeClock) install(c *Client) {
	fc.now = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return fc.now }
	c.sleep = func(ctx context.Context, d time.Duration) error {
		fc.sleeps = append(fc.sleeps, d)
		fc.now = fc.now.Add(d)
		return ctx.Err()
	}
}

func TestClientEscapesOddNames(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	ctx := t.Context()
	if err := c.Mkdir(ctx, "/odd dir", false); err != nil {
		t.Fatal(err)
	}
	names := []struct{ name, escaped string }{
		{"a b.txt", "a%20b.txt"},
		{"what?.txt", "what%3F.txt"},
		{"#1", "%231"},
		{"100%", "100%25"},
		{"p%20c", "p%2520c"},
		{"日本.txt", "%E6%97%A5%E6%9C%AC.txt"},
		{`back\slash`, "back%5Cslash"},
		{"...", "..."},
	}
	for _, n := range names {
		p := "/odd dir/" + n.name
		content := []byte("content of " + n.name)
		created, err := c.Put(ctx, p, bytes.NewReader(content), int64(len(content)))
		if err != nil || !created {
			t.Fatalf("Put(%q) = %v, %v; want created", p, created, err)
		}
		if got, want := f.last().EscapedPath, "/v1/fs/odd%20dir/"+n.escaped; got != want {
			t.Errorf("Put(%q) sent path %s, want %s", p, got, want)
		}
		got, err := c.ReadFile(ctx, p)
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", p, got, err, content)
		}
	}

	// Copy's destination travels in the query and must survive it too.
	if err := c.Copy(ctx, "/odd dir/#1", "odd dir/a&b=c?.txt"); err != nil {
		t.Fatal(err)
	}
	if got, want := f.last().RawQuery, "op=copy&to=%2Fodd+dir%2Fa%26b%3Dc%3F.txt"; got != want {
		t.Errorf("Copy sent query %s, want %s", got, want)
	}
	if ok, err := c.Exists(ctx, "/odd dir/a&b=c?.txt"); !ok || err != nil {
		t.Errorf("Exists(copy) = %v, %v; want true", ok, err)
	}

	// Dot components reach the router encoded, to be rejected there rather
	// than resolved on the way.
	_, err := c.Stat(ctx, "/odd dir/../etc")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Stat(/odd dir/../etc) error = %v, want ErrInvalid", err)
	}
	if got, want := f.last().EscapedPath, "/v1/fs/odd%20dir/%2E%2E/etc"; got != want {
		t.Errorf("Stat(..) sent path %s, want %s", got, want)
	}
}

func TestClientErrorSentinels(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	c.retry503 = -1 // this test is about decoding; retries have their own
	all := []error{ErrNotFound, ErrExists, ErrNotEmpty, ErrNotDir, ErrIsDir, ErrConflict,
		ErrInvalid, ErrTooLarge, ErrNoSpace, ErrUnavailable, ErrUnreachable, ErrTimeout}
	tests := []struct {
		status  int
		body    string
		want    []error
		wantMsg string
	}{
		{404, `{"error":"not_found","message":"/a: no such file or directory"}`, []error{ErrNotFound}, "/a: no such file or directory (not_found)"},
		{409, `{"error":"exists","message":"already exists"}`, []error{ErrExists, ErrConflict}, "already exists (exists)"},
		{409, `{"error":"not_empty","message":"directory not empty"}`, []error{ErrNotEmpty, ErrConflict}, "directory not empty (not_empty)"},
		{409, `{"error":"not_dir","message":"not a directory"}`, []error{ErrNotDir, ErrConflict}, "not a directory (not_dir)"},
		{409, `{"error":"is_dir","message":"is a directory"}`, []error{ErrIsDir, ErrConflict}, "is a directory (is_dir)"},
		{409, `{"error":"conflict","message":"changed meanwhile"}`, []error{ErrConflict}, "changed meanwhile (conflict)"},
		{400, `{"error":"invalid_path","message":"bad"}`, []error{ErrInvalid}, "bad (invalid_path)"},
		{400, `{"error":"invalid_op","message":"no such op"}`, []error{ErrInvalid}, "no such op (invalid_op)"},
		{413, `{"error":"too_large","message":"body over 1 GiB"}`, []error{ErrTooLarge}, "body over 1 GiB (too_large)"},
		{503, `{"error":"unavailable","message":"no primary for meta"}`, []error{ErrUnavailable}, "no primary for meta (unavailable)"},
		{507, `{"error":"no_space","message":"cluster full"}`, []error{ErrNoSpace}, "cluster full (no_space)"},
		// Not from a router: a proxy's pages still match by status.
		{502, "<html><body>Bad Gateway</body></html>", nil, "Bad Gateway (HTTP 502)"},
		{503, "upstream connect error\nmore detail", []error{ErrUnavailable}, "upstream connect error (HTTP 503)"},
		{404, "", []error{ErrNotFound}, "Not Found (HTTP 404)"},
	}
	// The case to answer is named by the path, so the handler shares no
	// variable with the loop below.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v1/fs/"))
		w.WriteHeader(tests[i].status)
		io.WriteString(w, tests[i].body)
		return true
	})
	for i, tt := range tests {
		_, err := c.Stat(t.Context(), strconv.Itoa(i))
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Status != tt.status {
			t.Errorf("%d %s: error %v, want an *Error with status %d", tt.status, tt.body, err, tt.status)
			continue
		}
		if err.Error() != tt.wantMsg {
			t.Errorf("%d %s: message %q, want %q", tt.status, tt.body, err.Error(), tt.wantMsg)
		}
		for _, s := range all {
			want := false
			for _, w := range tt.want {
				want = want || w == s
			}
			if errors.Is(err, s) != want {
				t.Errorf("%d %s: errors.Is(err, %q) = %v, want %v", tt.status, tt.body, s, !want, want)
			}
		}
	}
}

func TestClientRetries503ThenSucceeds(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	var clock fakeClock
	clock.install(c)
	retryAfter := []string{"2", "0", ""} // capped to 1s; floored; absent: backoff
	var tries atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		try := int(tries.Add(1)) - 1
		if try >= len(retryAfter) {
			return false
		}
		if ra := retryAfter[try]; ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "electing a primary")
		return true
	})
	content := []byte("replayed body")
	created, err := c.Put(t.Context(), "/f", bytes.NewReader(content), int64(len(content)))
	if err != nil || !created {
		t.Fatalf("Put = %v, %v; want created after retries", created, err)
	}
	wantSleeps := []time.Duration{maxRetryWait, minRetryWait, 4 * firstRetryWait}
	if !equalDurations(clock.sleeps, wantSleeps) {
		t.Errorf("waited %v between tries, want %v", clock.sleeps, wantSleeps)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("router saw %d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		if !bytes.Equal(r.Body, content) {
			t.Errorf("try %d sent body %q, want %q", i, r.Body, content)
		}
	}
	if got, err := c.ReadFile(t.Context(), "/f"); err != nil || !bytes.Equal(got, content) {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
}

func TestClient503GivesUpAfterRetry503(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	var clock fakeClock
	clock.install(c)
	c.retry503 = 3 * time.Second
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "no primary")
		return true
	})
	_, err := c.Stat(t.Context(), "/f")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Stat error = %v, want ErrUnavailable", err)
	}
	if want := []time.Duration{time.Second, time.Second, time.Second}; !equalDurations(clock.sleeps, want) {
		t.Errorf("waited %v, want %v", clock.sleeps, want)
	}

	// A body that cannot be replayed is not retried at all.
	clock.sleeps = nil
	n := len(f.requests())
	_, err = c.Put(t.Context(), "/f", io.MultiReader(strings.NewReader("once")), -1)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put error = %v, want ErrUnavailable", err)
	}
	if got := len(f.requests()) - n; got != 1 || len(clock.sleeps) != 0 {
		t.Errorf("unreplayable Put made %d requests and %d waits, want 1 and 0", got, len(clock.sleeps))
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClientRetryWait(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", firstRetryWait},
		{"0", minRetryWait},
		{"1", time.Second},
		{"120", maxRetryWait},
		{"junk", firstRetryWait},
		{"-3", firstRetryWait},
		{now.Add(500 * time.Millisecond).Format(http.TimeFormat), minRetryWait}, // dates have whole seconds
		{now.Add(time.Hour).Format(http.TimeFormat), maxRetryWait},
	}
	for _, tt := range tests {
		if got := retryWait(tt.header, firstRetryWait, now); got != tt.want {
			t.Errorf("retryWait(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestClientGetRangeSendsRange(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	ctx := t.Context()
	if _, err := c.Put(ctx, "/r", strings.NewReader("0123456789"), 10); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off, n    int64
		wantRange string
		want      string
	}{
		{2, 3, "bytes=2-4", "234"},
		{7, -1, "bytes=7-", "789"},
		{8, 100, "bytes=8-107", "89"},
		{0, 1, "bytes=0-0", "0"},
		{10, 5, "bytes=10-14", ""}, // past the end: 416 from the router, empty here
	}
	for _, tt := range tests {
		rc, err := c.GetRange(ctx, "/r", tt.off, tt.n)
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", tt.off, tt.n, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != tt.want {
			t.Errorf("GetRange(%d, %d) = %q, %v; want %q", tt.off, tt.n, got, err, tt.want)
		}
		if r := f.last().Header.Get("Range"); r != tt.wantRange {
			t.Errorf("GetRange(%d, %d) sent Range %q, want %q", tt.off, tt.n, r, tt.wantRange)
		}
	}

	// A router that ignores Range still yields just the range.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		io.WriteString(w, "0123456789")
		return true
	})
	rc, err := c.GetRange(ctx, "/r", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "3456" {
		t.Errorf("GetRange over a 200 answer = %q, want 3456", got)
	}
}

func TestClientPutUnknownSizeStreamsChunked(t *testing.T) {
	part1 := bytes.Repeat([]byte("a"), 100<<10)
	part2 := []byte("the rest, written only after the router has the first part")
	gotFirst := make(chan struct{})
	type received struct {
		te   []string
		body []byte
		err  error
	}
	done := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, len(part1))
		if _, err := io.ReadFull(r.Body, first); err != nil {
			done <- received{err: err}
			return
		}
		close(gotFirst)
		rest, err := io.ReadAll(r.Body)
		done <- received{te: r.TransferEncoding, body: append(first, rest...), err: err}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c, err := New(Config{Router: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	go func() {
		pw.Write(part1)
		// The second part exists only once the router has read the first:
		// a client that buffered the body would deadlock here.
		select {
		case <-gotFirst:
			pw.Write(part2)
			pw.Close()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("router never received the first part: body not streamed"))
		}
	}()
	created, err := c.Put(t.Context(), "/stream", pr, -1)
	if err != nil || !created {
		t.Fatalf("Put = %v, %v", created, err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if len(got.te) != 1 || got.te[0] != "chunked" {
		t.Errorf("Transfer-Encoding = %v, want [chunked]", got.te)
	}
	if want := append(append([]byte(nil), part1...), part2...); !bytes.Equal(got.body, want) {
		t.Errorf("router received %d bytes, want the exact %d sent", len(got.body), len(want))
	}
}

func TestClientPutKnownSizeSendsContentLength(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	// A reader of unknown type with its size given: Content-Length, not chunked.
	body := io.MultiReader(strings.NewReader("abc"), strings.NewReader("def"))
	if _, err := c.Put(t.Context(), "/k", body, 6); err != nil {
		t.Fatal(err)
	}
	r := f.last()
	if r.ContentLength != 6 || len(r.TransferEncoding) != 0 || string(r.Body) != "abcdef" {
		t.Errorf("router saw Content-Length %d, Transfer-Encoding %v, body %q", r.ContentLength, r.TransferEncoding, r.Body)
	}
	created, err := c.Put(t.Context(), "/k", nil, 0)
	if err != nil || created {
		t.Errorf("Put(nil) over a file = %v, %v; want replaced", created, err)
	}
	if r := f.last(); r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		t.Errorf("empty Put: Content-Length %d, Transfer-Encoding %v", r.ContentLength, r.TransferEncoding)
	}
}

func TestClientFileOperations(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	ctx := t.Context()
	if err := c.Mkdir(ctx, "/a/b", true); err != nil {
		t.Fatal(err)
	}
	if got := f.last().RawQuery; got != "op=mkdir&parents=1" {
		t.Errorf("Mkdir -p query %q", got)
	}
	if err := c.Mkdir(ctx, "/a/b", false); !errors.Is(err, ErrExists) {
		t.Errorf("Mkdir existing = %v, want ErrExists", err)
	}
	if _, err := c.Put(ctx, "a/b/f.txt", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if got := f.last().EscapedPath; got != "/v1/fs/a/b/f.txt" {
		t.Errorf("relative path sent as %s", got)
	}

	body, info, err := c.Get(ctx, "/a/b/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(body)
	body.Close()
	if string(data) != "hello" || info.Size != 5 || info.ETag != `"e5"` {
		t.Errorf("Get = %q, %+v", data, info)
	}
	if _, _, err := c.Get(ctx, "/a"); !errors.Is(err, ErrIsDir) {
		t.Errorf("Get(dir) = %v, want ErrIsDir", err)
	}
	if _, err := c.List(ctx, "/a/b/f.txt"); !errors.Is(err, ErrNotDir) {
		t.Errorf("List(file) = %v, want ErrNotDir", err)
	}

	st, err := c.Stat(ctx, "/a/b/f.txt")
	want := Stat{Path: "/a/b/f.txt", Attr: Attr{Ino: 10, Type: TypeFile, Size: 5, Mode: 0o644, Nlink: 1, Uid: 10, Gid: 20, MTime: fakeMTime, CTime: fakeMTime}, Hash: "h5"}
	if err != nil || st != want {
		t.Errorf("Stat = %+v, %v; want %+v", st, err, want)
	}
	entries, err := c.List(ctx, "/a")
	if err != nil || len(entries) != 1 || entries[0].Name != "b" || entries[0].Type != TypeDir {
		t.Errorf("List(/a) = %+v, %v", entries, err)
	}

	if err := c.Rename(ctx, "/a/b/f.txt", "/a/g.txt"); err != nil {
		t.Fatal(err)
	}
	if got := f.last().RawQuery; got != "op=rename&to=%2Fa%2Fg.txt" {
		t.Errorf("Rename query %q", got)
	}
	if ok, err := c.Exists(ctx, "/a/b/f.txt"); ok || err != nil {
		t.Errorf("Exists(renamed away) = %v, %v", ok, err)
	}
	if ok, err := c.Exists(ctx, "/a/g.txt"); !ok || err != nil {
		t.Errorf("Exists(renamed to) = %v, %v", ok, err)
	}
	if err := c.Delete(ctx, "/a", false); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Delete(non-empty) = %v, want ErrNotEmpty", err)
	}
	if err := c.Delete(ctx, "/a", true); err != nil {
		t.Fatal(err)
	}
	if got := f.last().RawQuery; got != "recursive=1" {
		t.Errorf("Delete -r query %q", got)
	}
	if err := c.Delete(ctx, "/a", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(absent) = %v, want ErrNotFound", err)
	}
}

func TestClientClusterAndHealth(t *testing.T) {
	f := newFakeRouter(t)
	c := f.client(t)
	if err := c.Healthy(t.Context()); err != nil {
		t.Fatal(err)
	}
	cl, err := c.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Nodes) != 4 || len(cl.Groups) != 2 {
		t.Fatalf("Cluster = %+v", cl)
	}
	n := cl.Nodes[0]
	if n.ID != "3" || n.Name != "n3" || n.Role != "primary" || n.Group != "g1" || n.Term != 4 || !n.InSync ||
		n.Addr != "10.0.0.3:7946" || n.Used != 1<<20 || n.Cap != 10<<30 {
		t.Errorf("node 0 = %+v", n)
	}
	if cl.Nodes[1].ID != "18446744073709551615" {
		t.Errorf("a string ID decoded as %q", cl.Nodes[1].ID)
	}
	g := cl.Groups[0]
	if g.Name != "g1" || !g.Meta || g.Primary != "n3" || g.Term != 4 || len(g.Members) != 2 || g.Used != 1<<20 ||
		g.Free == nil || *g.Free != 10<<30-1<<20 || g.Commit != 40 || g.Chunks != 12 || g.UnderReplicated != 2 || g.Error != "" {
		t.Errorf("group 0 = %+v", g)
	}
	wantRepair := RepairProgress{Copied: 5, CopiedBytes: 5120, Collected: 3, LastRound: time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC)}
	if !g.Repair.LastRound.Equal(wantRepair.LastRound) || g.Repair.Copied != 5 || g.Repair.CopiedBytes != 5120 || g.Repair.Collected != 3 {
		t.Errorf("group 0 repair = %+v, want %+v", g.Repair, wantRepair)
	}
	if len(g.MemberDetails) != 2 || g.MemberDetails[0] != (GroupMember{ID: "18446744073709551615", Name: "n2", Addr: "10.0.0.2:7946",
		Voter: true, Live: true, Match: 33, Chunks: 10, Used: 900 << 10, DiskError: "disk refused a write: read-only file system"}) {
		t.Errorf("group 0 members = %+v", g.MemberDetails)
	}
	if g := cl.Groups[1]; g.Meta || g.Free != nil || g.Error == "" || len(g.MemberDetails) != 0 {
		t.Errorf("group 1 = %+v", g)
	}
	if len(cl.Standbys) != 1 || cl.Standbys[0] != "n1" {
		t.Errorf("standbys %v", cl.Standbys)
	}
}

func TestClientTimeout(t *testing.T) {
	f := newFakeRouter(t)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // a router that never answers
		return true
	})
	c, err := New(Config{Router: f.srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(t.Context(), "/x"); !errors.Is(err, ErrTimeout) {
		t.Errorf("Stat against a silent router = %v, want ErrTimeout", err)
	}
	if _, err := c.Put(t.Context(), "/x", strings.NewReader("abc"), 3); !errors.Is(err, ErrTimeout) {
		t.Errorf("Put against a silent router = %v, want ErrTimeout", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New(Config{Router: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Healthy(t.Context())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Healthy = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the router", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, good := range []string{"http://127.0.0.1:8080", "https://shoal.example/api/", "http://[::1]:80", "127.0.0.1:8080"} {
		c, err := New(Config{Router: good})
		if err != nil {
			t.Errorf("New(%q): %v", good, err)
			continue
		}
		if strings.HasSuffix(c.Router(), "/") {
			t.Errorf("Router() = %q keeps a trailing slash", c.Router())
		}
	}
	for _, bad := range []string{"", "ftp://h", "127.0.0.1:x", "http://", "http://h/?a=b", "http://h/#x", "http://h:x"} {
		if err := (Config{Router: bad}).Validate(); err == nil {
			t.Errorf("Validate(%q) = nil, want an error", bad)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
}

// writeCounter counts the writes made on the connections it dials and
// keeps what each carried.
type writeCounter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: conn, w: w}, nil
}

type countedConn struct {
	net.Conn
	w *writeCounter
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.writes = append(c.w.writes, bytes.Clone(p))
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// A small put leaves in one write, headers and body together, from any
// reader, and is replayed whole after a 503 even from a reader that cannot
// seek; a body shorter or longer than its stated size is refused before
// anything is sent.
func TestSmallPutIsSentInOneWriteAndReplayed(t *testing.T) {
	f := newFakeRouter(t)
	var wc writeCounter
	c, err := New(Config{Router: f.srv.URL, HTTPClient: &http.Client{Transport: &http.Transport{DialContext: wc.dial}}})
	if err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	clock.install(c)
	var tries atomic.Int32
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if tries.Add(1) > 1 {
			return false
		}
		writeAPIError(w, http.StatusServiceUnavailable, "unavailable", "electing a primary")
		return true
	})
	content := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	// A reader that is neither seekable nor one net/http knows.
	body := io.MultiReader(bytes.NewReader(content[:100]), bytes.NewReader(content[100:]))
	if _, err := c.Put(t.Context(), "/small", body, int64(len(content))); err != nil {
		t.Fatalf("Put after a 503: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("router saw %d requests, want 2 (a 503, then the put)", len(reqs))
	}
	for i, r := range reqs {
		if !bytes.Equal(r.Body, content) {
			t.Errorf("try %d sent a body of %d bytes, want the %d put", i, len(r.Body), len(content))
		}
	}
	wc.mu.Lock()
	writes := wc.writes
	wc.mu.Unlock()
	if len(writes) != 2 {
		t.Fatalf("the two tries took %d writes, want 2 (one each)", len(writes))
	}
	for i, w := range writes {
		if !bytes.HasPrefix(w, []byte("PUT /v1/fs/small")) || !bytes.HasSuffix(w, content) {
			t.Errorf("write %d (%d bytes) is not a whole request, headers and body", i, len(w))
		}
	}

	for _, tt := range []struct {
		name string
		size int64
		want string
	}{
		{"short", int64(len(content)) + 1, "the body ended after 1024 of the 1025 bytes"},
		{"long", int64(len(content)) - 1, "the body holds more than the 1023 bytes"},
	} {
		_, err := c.Put(t.Context(), "/"+tt.name, bytes.NewReader(content), tt.size)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Put of a %s body = %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("router saw %d requests after the refused puts, want still 2", n)
	}
}
