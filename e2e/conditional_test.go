package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"shoal/api"
	"shoal/harness"
)

// curlResult is what curl printed of one exchange.
type curlResult struct {
	status int
	header http.Header
	body   []byte
}

// curl runs the curl command line with args against the router, with the
// cluster's CA and the admin's token, and returns the answer.
func (c *cluster) curl(args ...string) curlResult {
	c.t.Helper()
	dir := c.t.TempDir()
	head, body := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	all := append([]string{"-sS", "--max-time", "30", "--cacert", c.Creds.CA, "-H", "Authorization: Bearer " + c.Creds.Token,
		"-D", head, "-o", body, "-w", "%{http_code}"}, args...)
	for i, a := range all {
		if strings.HasPrefix(a, "/v1/") {
			all[i] = c.API + a
		}
	}
	out, err := exec.Command("curl", all...).Output()
	if err != nil {
		c.t.Fatalf("curl %q: %v (%s)", args, err, out)
	}
	r := curlResult{header: http.Header{}}
	r.status, _ = strconv.Atoi(string(out))
	h, _ := os.ReadFile(head)
	for _, line := range strings.Split(string(h), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.header.Add(k, strings.TrimSpace(v))
		}
	}
	r.body, _ = os.ReadFile(body)
	return r
}

// want checks an exchange's status and, for an error, its code.
func (r curlResult) want(t *testing.T, what string, status int, code api.Code) curlResult {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
	}
	if code != "" {
		var e api.ErrorBody
		if err := json.Unmarshal(r.body, &e); err != nil || e.Code != code {
			t.Fatalf("%s: body %s, want error %q", what, r.body, code)
		}
	}
	return r
}

// An application builds on the HTTP API with curl alone: create only if
// absent, compare and swap, conditional reads, media types, paged
// listings and CORS, on the real binary.
func TestConditionalRequestsWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("SKIPPED: curl is not installed (apt-get install curl); the conditional requests are not checked with a real HTTP client")
	}
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}},
		RouterFlags: []string{"--cors-origin", "https://app.example.com"}})
	dir := t.TempDir()
	local := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Two writers race to create the same lock: one wins.
	r := c.curl("-T", local("a", "owner: a\n"), "-H", "If-None-Match: *", "/v1/fs/jobs/lock").want(t, "create the lock", 201, "")
	var st api.Stat
	if err := json.Unmarshal(r.body, &st); err != nil || st.Path != "/jobs/lock" || st.Size != 9 || st.ModeOctal != "0644" {
		t.Fatalf("PUT answered %s (%v), want the file's stat", r.body, err)
	}
	etag := r.header.Get("ETag")
	if etag != `"`+st.Hash+`"` {
		t.Fatalf("ETag %s, stat hash %s", etag, st.Hash)
	}
	c.curl("-T", local("b", "owner: b\n"), "-H", "If-None-Match: *", "/v1/fs/jobs/lock").want(t, "create the lock again", 412, api.CodePreconditionFailed)

	// Compare and swap.
	r = c.curl("-T", local("c", "owner: a, renewed\n"), "-H", "If-Match: "+etag, "/v1/fs/jobs/lock").want(t, "renew with the current ETag", 200, "")
	renewed := r.header.Get("ETag")
	c.curl("-T", local("d", "owner: b\n"), "-H", "If-Match: "+etag, "/v1/fs/jobs/lock").want(t, "swap with a stale ETag", 412, api.CodePreconditionFailed)
	c.curl("-X", "DELETE", "-H", "If-Match: "+etag, "/v1/fs/jobs/lock").want(t, "delete with a stale ETag", 412, api.CodePreconditionFailed)
	if b := c.curl("/v1/fs/jobs/lock").want(t, "read the lock", 200, "").body; string(b) != "owner: a, renewed\n" {
		t.Fatalf("after failed writes the lock holds %q", b)
	}

	// A cache revalidates.
	c.curl("-H", "If-None-Match: "+renewed, "/v1/fs/jobs/lock").want(t, "GET If-None-Match current", 304, "")
	c.curl("-H", "If-None-Match: "+etag, "/v1/fs/jobs/lock").want(t, "GET If-None-Match stale", 200, "")
	lm := c.curl("-I", "/v1/fs/jobs/lock").header.Get("Last-Modified")
	c.curl("-H", "If-Modified-Since: "+lm, "/v1/fs/jobs/lock").want(t, "GET If-Modified-Since Last-Modified", 304, "")

	// Media types: as uploaded, else guessed from the name.
	c.curl("-T", local("e", "a,b\n1,2\n"), "-H", "Content-Type: text/csv", "/v1/fs/data/table").want(t, "PUT text/csv", 201, "")
	if ct := c.curl("-I", "/v1/fs/data/table").header.Get("Content-Type"); ct != "text/csv" {
		t.Fatalf("HEAD of a file uploaded as text/csv: Content-Type %q", ct)
	}
	c.curl("-T", local("f", "plain"), "/v1/fs/data/notes.txt").want(t, "PUT notes.txt", 201, "")
	if ct := c.curl("-I", "/v1/fs/data/notes.txt").header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("HEAD of notes.txt: Content-Type %q", ct)
	}

	// A listing read page by page gives every name once, in order.
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("f%02d", i)
		c.curl("-T", local(name, name), "/v1/fs/pages/"+name).want(t, "PUT "+name, 201, "")
		want = append(want, name)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging does not end: %q so far", got)
		}
		r := c.curl("--get", "--data-urlencode", "limit=3", "--data-urlencode", "after="+after, "/v1/fs/pages").want(t, "list a page", 200, "")
		var page api.Listing
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("page %s: %v", r.body, err)
		}
		for _, e := range page.Entries {
			got = append(got, e.Name)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paged listing %q, want %q", got, want)
	}
	// A cursor the router never gave is just a name to start after.
	r = c.curl("--get", "--data-urlencode", "limit=3", "--data-urlencode", "after=zzz", "/v1/fs/pages").want(t, "list after a forged cursor", 200, "")
	if strings.Contains(string(r.body), `"f0`) || strings.Contains(string(r.body), `"next"`) {
		t.Fatalf("listing after zzz: %s", r.body)
	}
	c.curl("/v1/fs/pages?limit=0").want(t, "list with limit 0", 400, api.CodeInvalidOp)

	// A page of the allowed origin may call the API from a browser.
	r = c.curl("-X", "OPTIONS", "-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: PUT", "/v1/fs/jobs/lock")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("CORS preflight: %d %v", r.status, r.header)
	}
	r = c.curl("-X", "OPTIONS", "-H", "Origin: https://evil.example.com", "-H", "Access-Control-Request-Method: PUT", "/v1/fs/jobs/lock")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS preflight from another origin: %d %v", r.status, r.header)
	}
}
