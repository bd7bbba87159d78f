package router

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/api"
)

func TestEntityTags(t *testing.T) {
	for v, want := range map[string][]string{
		`"a"`:             {`"a"`},
		`*`:               {`*`},
		`"a", W/"b" ,"c"`: {`"a"`, `W/"b"`, `"c"`},
		`"a,b", "c"`:      {`"a,b"`, `"c"`},
		`bare, "x"`:       {`bare`, `"x"`},
		`"unterminated`:   {`"unterminated`},
		`  "a"  ,  `:      {`"a"`},
		`W/"weak"`:        {`W/"weak"`},
		`"a" "b"`:         {`"a"`, `"b"`},
		`*, "a"`:          {`*`, `"a"`},
		``:                nil,
		`W/`:              {`W/`},
		`"",`:             {`""`},
		"\"tab\"\t,\"x\"": {`"tab"`, `"x"`},
	} {
		if got := entityTags(v); !slices.Equal(got, want) {
			t.Errorf("entityTags(%q) = %q, want %q", v, got, want)
		}
	}
}

// stat decodes the stat JSON a request answered with.
func statBody(t *testing.T, w *httptest.ResponseRecorder) api.Stat {
	t.Helper()
	var st api.Stat
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("answer %d %q is not a stat: %v", w.Code, w.Body, err)
	}
	return st
}

// wantCode checks a request's status and, for an error, its JSON code.
func wantCode(t *testing.T, what string, w *httptest.ResponseRecorder, status int, code api.Code) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: %d %s, want %d", what, w.Code, w.Body, status)
	}
	if code == "" {
		return
	}
	var e api.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != code {
		t.Fatalf("%s: body %q, want error %q", what, w.Body, code)
	}
}

// A write with If-Match or If-None-Match: * applies only while its
// condition holds, and otherwise answers 412 and changes nothing.
func TestConditionalWrites(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	body := func(s string) *strings.Reader { return strings.NewReader(s) }
	read := func(p string) string {
		t.Helper()
		w := do(s, "GET", "/v1/fs"+p, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
		}
		return w.Body.String()
	}

	// Create only if absent: the first wins, the second changes nothing.
	w := do(s, "PUT", "/v1/fs/lock", body("first, and long enough for chunks"), "If-None-Match", "*")
	wantCode(t, "PUT If-None-Match: * on nothing", w, http.StatusCreated, "")
	st := statBody(t, w)
	etag := w.Header().Get("ETag")
	if st.Path != "/lock" || st.Size != 33 || st.ModeOctal != "0644" || `"`+st.Hash+`"` != etag || st.Type != "file" {
		t.Fatalf("PUT answered %+v (ETag %s)", st, etag)
	}
	w = do(s, "PUT", "/v1/fs/lock", body("second"), "If-None-Match", "*")
	wantCode(t, "PUT If-None-Match: * on a file", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	if got := read("/lock"); got != "first, and long enough for chunks" {
		t.Fatalf("after a failed create the file holds %q", got)
	}

	// Compare and swap: only the writer holding the current tag wins.
	w = do(s, "PUT", "/v1/fs/lock", body("swapped"), "If-Match", etag)
	wantCode(t, "PUT If-Match current", w, http.StatusOK, "")
	next := w.Header().Get("ETag")
	w = do(s, "PUT", "/v1/fs/lock", body("lost the race, and long enough for chunks"), "If-Match", etag)
	wantCode(t, "PUT If-Match stale", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	w = do(s, "PUT", "/v1/fs/lock", body("weak"), "If-Match", "W/"+next)
	wantCode(t, "PUT If-Match weak", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	w = do(s, "PUT", "/v1/fs/absent", body("x"), "If-Match", "*")
	wantCode(t, "PUT If-Match * on nothing", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	if got := read("/lock"); got != "swapped" {
		t.Fatalf("after failed swaps the file holds %q", got)
	}
	for _, h := range [][]string{{"If-Match", `"a", "b"`}, {"If-Match", "unquoted"}, {"If-None-Match", next}} {
		w = do(s, "PUT", "/v1/fs/lock", body("x"), h...)
		wantCode(t, "PUT "+h[0]+": "+h[1], w, http.StatusBadRequest, api.CodeInvalidOp)
	}

	// In place: PATCH compares too.
	w = do(s, "PATCH", "/v1/fs/lock?offset=0", body("S"), "If-Match", etag)
	wantCode(t, "PATCH If-Match stale", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	w = do(s, "PATCH", "/v1/fs/lock?offset=0", body("S"), "If-Match", next)
	wantCode(t, "PATCH If-Match current", w, http.StatusOK, "")
	if got := read("/lock"); got != "Swapped" {
		t.Fatalf("after PATCH the file holds %q", got)
	}
	next = `"` + statBody(t, w).Hash + `"`

	// Rename: If-Match is about the source, If-None-Match: * the destination.
	do(s, "PUT", "/v1/fs/other", body("other"))
	w = do(s, "POST", "/v1/fs/lock?op=rename&to=/other", nil, "If-None-Match", "*")
	wantCode(t, "rename If-None-Match: * onto a file", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	w = do(s, "POST", "/v1/fs/lock?op=rename&to=/moved", nil, "If-Match", etag)
	wantCode(t, "rename If-Match stale", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	w = do(s, "POST", "/v1/fs/lock?op=rename&to=/moved", nil, "If-Match", next, "If-None-Match", "*")
	wantCode(t, "rename If-Match current", w, http.StatusNoContent, "")

	// Delete only the version one has seen.
	w = do(s, "DELETE", "/v1/fs/moved", nil, "If-Match", etag)
	wantCode(t, "DELETE If-Match stale", w, http.StatusPreconditionFailed, api.CodePreconditionFailed)
	read("/moved")
	w = do(s, "DELETE", "/v1/fs/moved", nil, "If-Match", next)
	wantCode(t, "DELETE If-Match current", w, http.StatusNoContent, "")
	if w := do(s, "HEAD", "/v1/fs/moved", nil); w.Code != http.StatusNotFound {
		t.Fatalf("HEAD after a conditional delete: %d", w.Code)
	}

	// A condition an op cannot check is refused, not ignored.
	for _, q := range []string{"op=mkdir", "op=create", "op=setattr&mode=0600", "op=symlink&target=x"} {
		w = do(s, "POST", "/v1/fs/cond-"+strings.Split(q, "&")[0][3:]+"?"+q, nil, "If-None-Match", "*")
		wantCode(t, "POST "+q+" with If-None-Match", w, http.StatusBadRequest, api.CodeInvalidOp)
	}
	if w := do(s, "HEAD", "/v1/fs/cond-mkdir", nil); w.Code != http.StatusNotFound {
		t.Fatalf("a refused conditional mkdir made the directory: %d", w.Code)
	}
}

// A GET or HEAD that names what the client holds answers 304.
func TestConditionalReads(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	w := do(s, "PUT", "/v1/fs/f.txt", strings.NewReader("hello, conditional world"))
	wantCode(t, "PUT", w, http.StatusCreated, "")
	etag := w.Header().Get("ETag")
	mtime := statBody(t, w).MTime
	for _, r := range []struct {
		header []string
		want   int
	}{
		{[]string{"If-None-Match", etag}, http.StatusNotModified},
		{[]string{"If-None-Match", `"other", W/` + etag}, http.StatusNotModified},
		{[]string{"If-None-Match", "*"}, http.StatusNotModified},
		{[]string{"If-None-Match", `"other"`}, http.StatusOK},
		{[]string{"If-Modified-Since", mtime.Add(time.Second).Format(http.TimeFormat)}, http.StatusNotModified},
		{[]string{"If-Modified-Since", mtime.Format(http.TimeFormat)}, http.StatusNotModified},
		{[]string{"If-Modified-Since", mtime.Add(-time.Second).Format(http.TimeFormat)}, http.StatusOK},
		{[]string{"If-Modified-Since", "not a date"}, http.StatusOK},
		// If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
		{[]string{"If-None-Match", `"other"`, "If-Modified-Since", mtime.Add(time.Hour).Format(http.TimeFormat)}, http.StatusOK},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			w := do(s, method, "/v1/fs/f.txt", nil, r.header...)
			if w.Code != r.want {
				t.Errorf("%s %q: %d, want %d", method, r.header, w.Code, r.want)
			}
			if w.Code == http.StatusNotModified && (w.Body.Len() != 0 || w.Header().Get("ETag") != etag) {
				t.Errorf("%s %q: 304 with body %q, ETag %q", method, r.header, w.Body, w.Header().Get("ETag"))
			}
		}
	}
}

// A file is served with the media type it was uploaded with, else one its
// name suggests; PUT takes its mode and mtime from the query.
func TestContentTypeModeAndTime(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	put := func(p, ct string) *httptest.ResponseRecorder {
		var h []string
		if ct != "" {
			h = []string{"Content-Type", ct}
		}
		return do(s, "PUT", "/v1/fs"+p, strings.NewReader("some bytes"), h...)
	}
	for _, f := range []struct{ path, sent, want string }{
		{"/a.bin", "Application/JSON; Charset=UTF-8", "application/json; charset=UTF-8"},
		{"/notes.txt", "", "text/plain; charset=utf-8"},
		{"/photo.png", "", "image/png"},
		{"/noext", "", "application/octet-stream"},
		{"/image.svg", "", "application/octet-stream"}, // a guess never names a type that runs
	} {
		wantCode(t, "PUT "+f.path, put(f.path, f.sent), http.StatusCreated, "")
		for _, method := range []string{"GET", "HEAD"} {
			if got := do(s, method, "/v1/fs"+f.path, nil).Header().Get("Content-Type"); got != f.want {
				t.Errorf("%s %s (sent %q): Content-Type %q, want %q", method, f.path, f.sent, got, f.want)
			}
		}
	}
	wantCode(t, "PUT a bad Content-Type", put("/bad", "text/"), http.StatusBadRequest, api.CodeInvalidOp)
	wantCode(t, "PUT an oversize Content-Type", put("/bad", "text/plain; x="+strings.Repeat("y", 300)), http.StatusBadRequest, api.CodeInvalidOp)
	if w := do(s, "HEAD", "/v1/fs/bad", nil); w.Code != http.StatusNotFound {
		t.Errorf("a refused PUT left a file: HEAD %d", w.Code)
	}
	// Replacing the content replaces the type: it describes these bytes.
	put("/a.bin", "")
	if got := do(s, "GET", "/v1/fs/a.bin", nil).Header().Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("replaced without a type: Content-Type %q", got)
	}

	mtime := time.Date(2020, 2, 29, 12, 0, 0, 5, time.UTC)
	w := do(s, "PUT", "/v1/fs/kept?mode=0600&mtime="+strconv.FormatInt(mtime.UnixNano(), 10), strings.NewReader("x"))
	wantCode(t, "PUT with mode and mtime", w, http.StatusCreated, "")
	if st := statBody(t, w); st.ModeOctal != "0600" || st.Mode != 0o600 || !st.MTime.Equal(mtime) {
		t.Errorf("PUT with mode and mtime answered %+v", st)
	}
	if !strings.HasPrefix(do(s, "HEAD", "/v1/fs/kept", nil).Header().Get("Last-Modified"), "Sat, 29 Feb 2020 12:00:00") {
		t.Errorf("Last-Modified does not follow the mtime given")
	}
	for _, q := range []string{"mode=999", "mode=10000", "mtime=yesterday"} {
		wantCode(t, "PUT ?"+q, do(s, "PUT", "/v1/fs/kept?"+q, strings.NewReader("y")), http.StatusBadRequest, api.CodeInvalidOp)
	}
}

// Every error the API answers has the same JSON shape, whatever refused
// the request: a wrong method, a path with no API, a bad path, a bad
// operation, a failed condition.
func TestOneErrorShape(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	do(s, "PUT", "/v1/fs/f", strings.NewReader("x"))
	for _, r := range []struct {
		method, path string
		header       []string
		status       int
		code         api.Code
	}{
		{"POST", "/v1/cluster", nil, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed},
		{"PUT", "/ui/app.js", nil, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed},
		{"GET", "/v1/nope", nil, http.StatusNotFound, api.CodeNotFound},
		{"GET", "/v1/fs/a/../f", nil, http.StatusBadRequest, api.CodeInvalidPath},
		{"POST", "/v1/fs/f?op=bogus", nil, http.StatusBadRequest, api.CodeInvalidOp},
		{"DELETE", "/v1/fs/f", []string{"If-Match", `"stale"`}, http.StatusPreconditionFailed, api.CodePreconditionFailed},
	} {
		w := do(s, r.method, r.path, nil, r.header...)
		wantCode(t, r.method+" "+r.path, w, r.status, r.code)
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", r.method, r.path, ct)
		}
		if r.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", r.method, r.path)
		}
	}
}
