package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// hostileCase is one request sent byte for byte, bypassing net/http's
// client, which would clean paths, escape bytes and fix lengths.
type hostileCase struct {
	name   string
	method string
	target string
	header []string // "Name: value" lines
	body   string
	raw    string // the whole request instead of method, target, header and body
	// hangUp closes the sending side after the body: a client that dies
	// mid-upload. Without it, a body shorter than its length stalls.
	hangUp bool
	status int
	// code is the router's JSON error code; "" for an answer that is
	// not a router error (net/http's own plain-text 400, a redirect).
	code string
	// check, if set, looks further at a successful answer.
	check func(t *testing.T, h http.Header, body []byte)
}

// bytes is the request as sent, with the caller's token unless raw.
func (hc hostileCase) bytes(token string) string {
	if hc.raw != "" {
		return hc.raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n", hc.method, hc.target)
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	for _, h := range hc.header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + hc.body)
	return b.String()
}

// sendRaw writes req to the cluster's router (over TLS unless it runs
// insecure) and reads the answer, failing if none comes within limit.
func (c *cluster) sendRaw(t *testing.T, req string, hangUp bool, limit time.Duration) (*http.Response, []byte) {
	t.Helper()
	conn, closeWrite := c.dialRaw(t, limit)
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("send: %v", err)
	}
	if hangUp {
		closeWrite()
	}
	return readAnswer(t, conn, limit)
}

// dialRaw connects to the cluster's router (over TLS unless it runs
// insecure), with a deadline of limit for everything on the connection,
// and returns it with a function that closes its sending side.
func (c *cluster) dialRaw(t *testing.T, limit time.Duration) (net.Conn, func()) {
	t.Helper()
	u, err := url.Parse(c.API)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(limit))
	if u.Scheme != "https" {
		return raw, func() { raw.(*net.TCPConn).CloseWrite() }
	}
	cfg := c.clientConfig(0, 0).TLS.Clone()
	cfg.ServerName = u.Hostname()
	tc := tls.Client(raw, cfg)
	return tc, func() { tc.CloseWrite() }
}

// readAnswer reads an answer from conn, failing if none comes within
// limit.
func readAnswer(t *testing.T, conn net.Conn, limit time.Duration) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", limit, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer %d: reading its body: %v", resp.StatusCode, err)
	}
	return resp, body
}

// clusterState is what a request could change: every path with its type,
// size, mtime and content hash, and the chunk files on every node's disk.
type clusterState struct {
	tree   map[string]string
	chunks map[string]map[string]bool
}

func (c *cluster) state() clusterState {
	c.t.Helper()
	st := clusterState{tree: map[string]string{}, chunks: map[string]map[string]bool{}}
	var walk func(dir string)
	walk = func(dir string) {
		var l struct {
			Entries []struct {
				Name, Type, MTime string
				Size              int64
			} `json:"entries"`
		}
		if err := json.Unmarshal(c.expect("GET", "/v1/fs"+dir, nil, 200), &l); err != nil {
			c.t.Fatalf("listing %s: %v", dir, err)
		}
		for _, e := range l.Entries {
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			st.tree[p] = fmt.Sprintf("%s %d %s", e.Type, e.Size, e.MTime)
			if e.Type == "dir" {
				walk(p)
				continue
			}
			var s struct{ Hash string }
			json.Unmarshal(c.expect("GET", "/v1/fs"+escapePath(p)+"?op=stat", nil, 200), &s)
			st.tree[p] += " " + s.Hash
		}
	}
	walk("/")
	for _, p := range c.Nodes {
		st.chunks[p.Name] = c.chunkFiles(p)
	}
	return st
}

func escapePath(p string) string { return (&url.URL{Path: p}).EscapedPath() }

// TestHostileRequests sends malformed and malicious requests to the real
// router: each gets a clear 4xx (the router's JSON error, or net/http's
// own 400 for what it cannot parse) within a bounded time, and none
// changes the namespace or any chunk on disk.
func TestHostileRequests(t *testing.T) {
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--body-timeout", "1s", "--max-file-size", "1048576", "--body-min-rate", "1KiB", "--body-rate-window", "2s"}})
	data := randomBytes(7, 100<<10) // one chunk, not inline
	c.expect("PUT", "/v1/fs/keep/data.bin", strings.NewReader(string(data)), 201)
	c.expect("PUT", "/v1/fs/keep/note.txt", strings.NewReader("hello"), 201)
	c.expect("POST", "/v1/fs/keep/sub?op=mkdir", nil, 201)
	want := c.fileChunks("/keep/data.bin")[0]
	harness.Await(t, 20*time.Second, "every member to hold the file's chunk", func() bool {
		for _, p := range c.Nodes {
			if !c.chunkFiles(p)[want] {
				return false
			}
		}
		return true
	})
	before := c.state()
	long := "/v1/fs" + strings.Repeat("/"+strings.Repeat("n", 255), 17) // 4352 bytes
	put := func(name, target string, status int, code string) hostileCase {
		return hostileCase{name: name, method: "PUT", target: target, header: []string{"Content-Length: 1"}, body: "x", status: status, code: code}
	}
	post := func(name, target string, status int, code string) hostileCase {
		return hostileCase{name: name, method: "POST", target: target, status: status, code: code}
	}
	patch := func(name, target, body string, status int, code string) hostileCase {
		return hostileCase{name: name, method: "PATCH", target: target, header: []string{fmt.Sprintf("Content-Length: %d", len(body))},
			body: body, status: status, code: code}
	}
	get := func(name, target string, status int, code string, header ...string) hostileCase {
		return hostileCase{name: name, method: "GET", target: target, header: header, status: status, code: code}
	}
	tests := []hostileCase{
		// Paths that climb, spelled every way.
		put("dot-dot", "/v1/fs/../x", 400, "invalid_path"),
		put("dot-dot at the end", "/v1/fs/keep/..", 400, "invalid_path"),
		put("encoded dot-dot", "/v1/fs/a/%2e%2e/b", 400, "invalid_path"),
		put("encoded dot-dot upper case", "/v1/fs/keep/%2E%2E/%2E%2E/x", 400, "invalid_path"),
		put("encoded slashes", "/v1/fs/keep%2F..%2F..%2Fx", 400, "invalid_path"),
		put("dot", "/v1/fs/./keep/x", 400, "invalid_path"),
		put("empty component", "/v1/fs/keep//x", 400, "invalid_path"),
		// Not redirected to the clean path: a 307 would replay the PUT.
		put("dot-dot before /v1/fs", "/v1/../v1/fs/x", 400, "invalid_path"),
		put("empty component before /v1/fs", "//v1/fs/x", 400, "invalid_path"),
		// A backslash is a byte of a name, not a separator.
		get("backslash dot-dot", `/v1/fs/keep\..\..\etc\passwd`, 404, "not_found"),
		{name: "delete through backslashes", method: "DELETE", target: `/v1/fs/keep\sub\..?recursive=1`, status: 404, code: "not_found"},
		// NUL, percent-encoded and raw.
		put("encoded NUL", "/v1/fs/keep/a%00b", 400, "invalid_path"),
		{name: "raw NUL in the request line", raw: "GET /v1/fs/a\x00b HTTP/1.1\r\nHost: shoal\r\n\r\n", status: 400},
		put("name over 255 bytes", "/v1/fs/"+strings.Repeat("n", 256), 400, "invalid_path"),
		put("path over 4096 bytes", long, 400, "invalid_path"),
		put("write the root", "/v1/fs/", 409, "is_dir"),
		{name: "delete the root", method: "DELETE", target: "/v1/fs/?recursive=1", status: 400, code: "invalid_op"},
		{name: "delete without recursive", method: "DELETE", target: "/v1/fs/keep", status: 409, code: "not_empty"},
		{name: "bad recursive flag", method: "DELETE", target: "/v1/fs/keep?recursive=yes", status: 400, code: "invalid_op"},
		// Bodies that lie.
		{name: "body shorter than Content-Length", method: "PUT", target: "/v1/fs/lie",
			header: []string{"Content-Length: 200000"}, body: strings.Repeat("x", 100), hangUp: true, status: 400, code: "invalid_op"},
		{name: "small body shorter than Content-Length", method: "PUT", target: "/v1/fs/lie",
			header: []string{"Content-Length: 1000"}, body: "0123456789", hangUp: true, status: 400, code: "invalid_op"},
		{name: "chunked body cut off", method: "PUT", target: "/v1/fs/lie",
			header: []string{"Transfer-Encoding: chunked"}, body: "5\r\nhello\r\n", hangUp: true, status: 400, code: "invalid_op"},
		{name: "Content-Length over --max-file-size", method: "PUT", target: "/v1/fs/huge",
			header: []string{"Content-Length: 1000000000000"}, body: "xxxx", status: 413, code: "too_large"},
		{name: "stalled body", method: "PUT", target: "/v1/fs/slow",
			header: []string{"Content-Length: 100"}, body: "0123456789", status: 408, code: "timeout"},
		{name: "stalled body on a bad path", method: "PUT", target: "/v1/fs/../slow",
			header: []string{"Content-Length: 100"}, body: "0123456789", status: 400, code: "invalid_path"},
		{name: "negative Content-Length", method: "PUT", target: "/v1/fs/neg", header: []string{"Content-Length: -1"}, status: 400},
		{name: "two Content-Lengths", method: "PUT", target: "/v1/fs/two",
			header: []string{"Content-Length: 1", "Content-Length: 2"}, body: "xx", status: 400},
		{name: "Content-Length over int64", method: "PUT", target: "/v1/fs/big",
			header: []string{"Content-Length: 99999999999999999999"}, status: 400},
		// Operations and methods that do not exist.
		post("unknown op", "/v1/fs/keep/note.txt?op=explode", 400, "invalid_op"),
		get("unknown op on GET", "/v1/fs/keep/note.txt?op=explode", 400, "invalid_op"),
		{name: "garbage method", method: "BREW", target: "/v1/fs/keep/note.txt", status: 405, code: "method_not_allowed"},
		{name: "method that is not a token", raw: "BR(EW /v1/fs/x HTTP/1.1\r\nHost: shoal\r\n\r\n", status: 400},
		{name: "asterisk target", method: "GET", target: "*", status: 400, code: "invalid_path"},
		// Ranges.
		get("range beyond the end", "/v1/fs/keep/data.bin", 416, "bad_range", "Range: bytes=999999999-"),
		get("empty suffix range", "/v1/fs/keep/data.bin", 416, "bad_range", "Range: bytes=-0"),
		{name: "range end at MaxInt64", method: "GET", target: "/v1/fs/keep/note.txt",
			header: []string{"Range: bytes=1-9223372036854775807"}, status: 206,
			check: func(t *testing.T, h http.Header, body []byte) {
				if string(body) != "ello" || h.Get("Content-Range") != "bytes 1-4/5" {
					t.Errorf("body %q, Content-Range %q; want \"ello\", bytes 1-4/5", body, h.Get("Content-Range"))
				}
			}},
		// Rename and copy destinations that climb or make no sense.
		post("rename to dot-dot", "/v1/fs/keep/note.txt?op=rename&to=../x", 400, "invalid_path"),
		post("rename through encoded dot-dot", "/v1/fs/keep/note.txt?op=rename&to=%2Fkeep%2F..%2F..%2Fx", 400, "invalid_path"),
		post("copy to dot-dot", "/v1/fs/keep/data.bin?op=copy&to=/keep/../../x", 400, "invalid_path"),
		post("copy to NUL", "/v1/fs/keep/data.bin?op=copy&to=/keep/a%00b", 400, "invalid_path"),
		post("copy to nowhere", "/v1/fs/keep/data.bin?op=copy&to=", 400, "invalid_op"),
		post("rename onto the root", "/v1/fs/keep/note.txt?op=rename&to=/", 400, "invalid_op"),
		post("rename a directory into itself", "/v1/fs/keep?op=rename&to=/keep/sub/keep", 400, "invalid_op"),
		post("mkdir through dot-dot", "/v1/fs/keep/../evil?op=mkdir&parents=1", 400, "invalid_path"),
		post("mkdir with a bad flag", "/v1/fs/evil?op=mkdir&parents=please", 400, "invalid_op"),
		// The requests a mount makes, malformed.
		patch("write without an offset", "/v1/fs/keep/note.txt", "x", 400, "invalid_op"),
		patch("write at a negative offset", "/v1/fs/keep/note.txt?offset=-1", "x", 400, "invalid_op"),
		patch("write past --max-file-size", "/v1/fs/keep/note.txt?offset=1048576", "x", 413, "too_large"),
		patch("write into a directory", "/v1/fs/keep?offset=0", "x", 409, "is_dir"),
		patch("write to a missing file", "/v1/fs/keep/nope?offset=0", "x", 404, "not_found"),
		patch("write by inode 0", "/v1/fs/?at=0&offset=0", "x", 400, "invalid_op"),
		patch("write by a garbage inode", "/v1/fs/?at=one&offset=0", "x", 400, "invalid_op"),
		patch("write by an inode that never was", "/v1/fs/?at=987654321&offset=0", "x", 404, "not_found"),
		patch("write climbing from an inode", "/v1/fs/../x?at=1&offset=0", "x", 400, "invalid_path"),
		{name: "write body shorter than Content-Length", method: "PATCH", target: "/v1/fs/keep/note.txt?offset=0",
			header: []string{"Content-Length: 1000"}, body: "0123456789", hangUp: true, status: 400, code: "invalid_op"},
		{name: "write body over the write limit", method: "PATCH", target: "/v1/fs/keep/note.txt?offset=0",
			header: []string{"Content-Length: 100000000"}, body: "xxxx", status: 413, code: "too_large"},
		{name: "stalled write body", method: "PATCH", target: "/v1/fs/keep/note.txt?offset=0",
			header: []string{"Content-Length: 100"}, body: "0123456789", status: 408, code: "timeout"},
		post("setattr of nothing", "/v1/fs/keep/note.txt?op=setattr", 400, "invalid_op"),
		post("setattr with a mode that is not octal", "/v1/fs/keep/note.txt?op=setattr&mode=0999", 400, "invalid_op"),
		post("setattr with a file type in the mode", "/v1/fs/keep/note.txt?op=setattr&mode=100644", 400, "invalid_op"),
		post("setattr with a negative uid", "/v1/fs/keep/note.txt?op=setattr&uid=-1", 400, "invalid_op"),
		post("setattr with a bad time", "/v1/fs/keep/note.txt?op=setattr&mtime=tomorrow", 400, "invalid_op"),
		post("truncate a directory", "/v1/fs/keep?op=setattr&size=0", 409, "is_dir"),
		post("truncate past --max-file-size", "/v1/fs/keep/note.txt?op=setattr&size=1048577", 413, "too_large"),
		post("symlink without a target", "/v1/fs/keep/l?op=symlink", 400, "invalid_op"),
		post("symlink to a NUL", "/v1/fs/keep/l?op=symlink&target=a%00b", 400, "invalid_op"),
		post("symlink target over 4096 bytes", "/v1/fs/keep/l?op=symlink&target="+strings.Repeat("t", 4097), 400, "invalid_op"),
		post("symlink over a name", "/v1/fs/keep/note.txt?op=symlink&target=x", 409, "exists"),
		post("hard link to a directory", "/v1/fs/keep/sub?op=link&to=/keep/sub2", 403, "not_permitted"),
		post("hard link through dot-dot", "/v1/fs/keep/note.txt?op=link&to=/keep/../../x", 400, "invalid_path"),
		post("hard link over a name", "/v1/fs/keep/note.txt?op=link&to=/keep/data.bin", 409, "exists"),
		post("create over a directory", "/v1/fs/keep/sub?op=create", 409, "is_dir"),
		post("exclusive create of a file there", "/v1/fs/keep/note.txt?op=create&excl=1", 409, "exists"),
		post("create with a bad mode", "/v1/fs/keep/new?op=create&mode=rwx", 400, "invalid_op"),
		post("create in a missing directory", "/v1/fs/nope/new?op=create", 404, "not_found"),
		post("rename without replacing onto a name", "/v1/fs/keep/note.txt?op=rename&to=/keep/data.bin&noreplace=1", 409, "exists"),
		post("rename to a bad inode", "/v1/fs/keep/note.txt?op=rename&to=/x&to_at=-3", 400, "invalid_op"),
		{name: "unlink a directory", method: "DELETE", target: "/v1/fs/keep/sub?only=file", status: 409, code: "is_dir"},
		{name: "rmdir a file", method: "DELETE", target: "/v1/fs/keep/note.txt?only=dir", status: 409, code: "not_dir"},
		{name: "rmdir a full directory", method: "DELETE", target: "/v1/fs/keep?only=dir&recursive=1", status: 409, code: "not_empty"},
		{name: "release a file that has its names", method: "POST", target: "/v1/fs/keep/note.txt?op=release", status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, body := c.sendRaw(t, tc.bytes(c.Creds.Token), tc.hangUp, 10*time.Second)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200q", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error != tc.code || e.Message == "" {
					t.Fatalf("body %.200q: want JSON error %q with a message", body, tc.code)
				}
				t.Logf("%d %s: %s (%v)", resp.StatusCode, e.Error, e.Message, time.Since(start).Round(time.Millisecond))
			} else if tc.status == 400 && !strings.HasPrefix(string(body), "400 Bad Request") {
				t.Fatalf("body %.200q: want net/http's own 400", body)
			}
			if tc.check != nil {
				tc.check(t, resp.Header, body)
			}
			if after := c.state(); !reflect.DeepEqual(before, after) {
				t.Fatalf("the request changed the cluster:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// A body that never stalls, a byte every 200ms, is far below the
	// --body-min-rate floor: it is cut off once the first window is over.
	t.Run("trickled body", func(t *testing.T) {
		const window, limit = 2 * time.Second, 15 * time.Second
		conn, _ := c.dialRaw(t, limit)
		defer conn.Close()
		head := hostileCase{method: "PUT", target: "/v1/fs/trickled", header: []string{"Content-Length: 1000"}}
		start := time.Now()
		if _, err := io.WriteString(conn, head.bytes(c.Creds.Token)); err != nil {
			t.Fatalf("send: %v", err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := io.WriteString(conn, "x"); err != nil {
					return // the router answered and hung up
				}
			}
		}()
		resp, body := readAnswer(t, conn, limit)
		took := time.Since(start)
		var e struct{ Error, Message string }
		if resp.StatusCode != 408 || json.Unmarshal(body, &e) != nil || e.Error != "timeout" || !strings.Contains(e.Message, "--body-min-rate") {
			t.Fatalf("status %d, body %.300q; want 408 timeout naming --body-min-rate", resp.StatusCode, body)
		}
		if took > window+3*time.Second {
			t.Fatalf("answered after %v, with a rate window of %v", took, window)
		}
		t.Logf("%d %s: %s (%v)", resp.StatusCode, e.Error, e.Message, took.Round(time.Millisecond))
		if after := c.state(); !reflect.DeepEqual(before, after) {
			t.Fatalf("the trickled upload changed the cluster:\nbefore %v\nafter  %v", before, after)
		}
	})
	if b := c.expect("GET", "/v1/fs/keep/data.bin", nil, 200); string(b) != string(data) {
		t.Fatal("the file read back differs after the hostile requests")
	}
}
