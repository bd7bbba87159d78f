package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// do sends one HTTP request to the router and returns status and body.
func (c *cluster) do(method, path string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.API+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.Creds.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Creds.Token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (c *cluster) expect(method, path string, body io.Reader, want int) []byte {
	c.t.Helper()
	got, _, b := c.do(method, path, body)
	if got != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, b)
	}
	return b
}

func TestHTTPAPI(t *testing.T) {
	c := newCluster(t, 3)
	c.expect("PUT", "/v1/fs/docs/a.txt", strings.NewReader("hello"), 201)
	c.expect("PUT", "/v1/fs/docs/a.txt", strings.NewReader("hello, world"), 200)
	if b := c.expect("GET", "/v1/fs/docs/a.txt", nil, 200); string(b) != "hello, world" {
		t.Fatalf("GET = %q", b)
	}
	c.expect("PUT", "/v1/fs/empty", strings.NewReader(""), 201)
	if b := c.expect("GET", "/v1/fs/empty", nil, 200); len(b) != 0 {
		t.Fatalf("empty file read back %d bytes", len(b))
	}
	// Range and ETag.
	st, h, b := c.do("GET", "/v1/fs/docs/a.txt", nil, "Range", "bytes=7-")
	if st != 206 || string(b) != "world" || h.Get("Content-Range") != "bytes 7-11/12" {
		t.Fatalf("range read: %d %q %q", st, b, h.Get("Content-Range"))
	}
	if st, _, _ := c.do("GET", "/v1/fs/docs/a.txt", nil, "If-None-Match", h.Get("ETag")); st != 304 {
		t.Fatalf("conditional GET with matching ETag: %d, want 304", st)
	}
	// HEAD of a file and a directory, and of nothing.
	st, h, _ = c.do("HEAD", "/v1/fs/docs/a.txt", nil)
	if st != 200 || h.Get("X-Shoal-Type") != "file" || h.Get("Content-Length") != "12" {
		t.Fatalf("HEAD file: %d %v", st, h)
	}
	if st, h, _ = c.do("HEAD", "/v1/fs/docs", nil); st != 200 || h.Get("X-Shoal-Type") != "dir" {
		t.Fatalf("HEAD dir: %d %v", st, h)
	}
	c.expect("HEAD", "/v1/fs/nothing", nil, 404)
	// Listing and stat.
	var listing struct {
		Path    string `json:"path"`
		Entries []struct {
			Name, Type string
			Size       int64
		} `json:"entries"`
	}
	if err := json.Unmarshal(c.expect("GET", "/v1/fs/docs", nil, 200), &listing); err != nil {
		t.Fatal(err)
	}
	if listing.Path != "/docs" || len(listing.Entries) != 1 || listing.Entries[0].Name != "a.txt" || listing.Entries[0].Size != 12 {
		t.Fatalf("listing %+v", listing)
	}
	var stat struct {
		Path, Type, Hash string
		Size             int64
		Mode             uint32
	}
	json.Unmarshal(c.expect("GET", "/v1/fs/docs/a.txt?op=stat", nil, 200), &stat)
	if stat.Type != "file" || stat.Size != 12 || len(stat.Hash) != 64 || stat.Mode != 0o644 {
		t.Fatalf("stat %+v", stat)
	}
	// Copy, rename (file and directory), mkdir, delete.
	c.expect("POST", "/v1/fs/docs/a.txt?op=copy&to=/docs/b.txt", nil, 201)
	c.expect("POST", "/v1/fs/docs/b.txt?op=rename&to=/docs/c.txt", nil, 204)
	c.expect("POST", "/v1/fs/x/y/z?op=mkdir", nil, 404)
	c.expect("POST", "/v1/fs/x/y/z?op=mkdir&parents=1", nil, 201)
	c.expect("POST", "/v1/fs/x?op=mkdir", nil, 409)
	c.expect("POST", "/v1/fs/docs?op=rename&to=/x/y/docs", nil, 204)
	if b := c.expect("GET", "/v1/fs/x/y/docs/c.txt", nil, 200); string(b) != "hello, world" {
		t.Fatalf("renamed directory's file = %q", b)
	}
	c.expect("GET", "/v1/fs/docs/a.txt", nil, 404)
	c.expect("DELETE", "/v1/fs/x", nil, 409)
	c.expect("DELETE", "/v1/fs/x?recursive=1", nil, 204)
	c.expect("DELETE", "/v1/fs/x", nil, 404)
	// Bad input: clear 4xx, nothing changes.
	c.expect("GET", "/v1/fs/a/%2e%2e/b", nil, 400)
	c.expect("PUT", "/v1/fs/"+strings.Repeat("n", 256), strings.NewReader("x"), 400)
	c.expect("POST", "/v1/fs/empty?op=explode", nil, 400)
	c.expect("POST", "/v1/fs/empty?op=copy", nil, 400)
	c.expect("PUT", "/v1/fs/empty/child", strings.NewReader("x"), 409)
	c.expect("BREW", "/v1/fs/empty", nil, 405)
	var e struct{ Error, Message string }
	json.Unmarshal(c.expect("GET", "/v1/fs/missing", nil, 404), &e)
	if e.Error != "not_found" || e.Message == "" {
		t.Fatalf("error body %+v", e)
	}
	if b := c.expect("GET", "/v1/fs/", nil, 200); !strings.Contains(string(b), `"empty"`) || strings.Contains(string(b), "explode") {
		t.Fatalf("root listing after bad requests: %s", b)
	}
	c.expect("GET", "/healthz", nil, 200)
}

func TestLargeFileAcrossChunks(t *testing.T) {
	c := newCluster(t, 3)
	data := make([]byte, 9<<20+123) // three 4 MiB chunks, the last partial
	rand.Read(data)
	c.expect("PUT", "/v1/fs/big.bin", bytes.NewReader(data), 201)
	if b := c.expect("GET", "/v1/fs/big.bin", nil, 200); !bytes.Equal(b, data) {
		t.Fatalf("large file differs after round trip (%d bytes back)", len(b))
	}
	// A range that spans the first chunk boundary.
	st, _, b := c.do("GET", "/v1/fs/big.bin", nil, "Range", "bytes=4194300-4194310")
	if st != 206 || !bytes.Equal(b, data[4194300:4194311]) {
		t.Fatalf("range across a chunk boundary: %d, %d bytes", st, len(b))
	}
}

func TestCLI(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	local := filepath.Join(dir, "in.txt")
	os.WriteFile(local, []byte("from the cli\n"), 0o644)
	steps := []struct {
		args   []string
		code   int
		out    string // a substring of stdout
		errOut string // a substring of stderr
	}{
		{args: []string{"put", local, "/cli/in.txt"}},
		{[]string{"put", "--no-clobber", local, "/cli/in.txt"}, 1, "", "--no-clobber keeps it"},
		{[]string{"put", "-n", "--content-type", "text/csv", local, "/cli/table"}, 0, "", ""},
		{[]string{"stat", "/cli/table"}, 0, "content-type: text/csv", ""},
		{[]string{"put", "--if-match", "0000", local, "/cli/table"}, 1, "", "no longer the version"},
		{[]string{"put", "-r", "--if-match", "0000", dir, "/cli/tree"}, 1, "", "cannot go with -r"},
		{[]string{"cat", "/cli/in.txt"}, 0, "from the cli", ""},
		{[]string{"ls", "/cli"}, 0, "in.txt", ""},
		{[]string{"stat", "/cli/in.txt"}, 0, "0644", ""},
		{[]string{"cp", "/cli/in.txt", "/cli/copy.txt"}, 0, "", ""},
		{[]string{"mv", "/cli/copy.txt", "/cli/moved.txt"}, 0, "", ""},
		{[]string{"exists", "/cli/moved.txt"}, 0, "", ""},
		{[]string{"exists", "/cli/copy.txt"}, 1, "", ""},
		{[]string{"mkdir", "-p", "/cli/a/b"}, 0, "", ""},
		{[]string{"get", "/cli/moved.txt", filepath.Join(dir, "out.txt")}, 0, "", ""},
		{[]string{"rm", "/cli"}, 1, "", ""},
		{[]string{"rm", "-r", "/cli"}, 0, "", ""},
		{[]string{"cat", "/cli/in.txt"}, 1, "", ""},
		{[]string{"status"}, 0, "g1", ""},
		{[]string{"df"}, 0, "SIZE", ""},
	}
	for _, s := range steps {
		out, errOut, code := c.run(s.args...)
		if code != s.code || !strings.Contains(out, s.out) || !strings.Contains(errOut, s.errOut) {
			t.Fatalf("shoal %s: exit %d, stdout %q, stderr %q; want exit %d, %q and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out, s.errOut)
		}
		if code != 0 && s.code == 1 && s.args[0] != "exists" && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("shoal %s: error should be one line, got %q", strings.Join(s.args, " "), errOut)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "from the cli\n" {
		t.Fatalf("shoal get wrote %q", b)
	}
}
