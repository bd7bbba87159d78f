package router

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"shoal/api"
)

// TestChangesAnswerTheirDirs: a change of names asked with ?dirs=1
// answers with the directories whose entries it changed, as a stat of
// them shows them after it; a delete or rename answers 200 to carry
// them. Without it the answers are as before, and a bad value is refused
// before anything changes.
func TestChangesAnswerTheirDirs(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	stat := func(p string) api.Stat {
		t.Helper()
		w := do(s, "GET", "/v1/fs"+p+"?op=stat", nil)
		wantCode(t, "stat "+p, w, http.StatusOK, "")
		return statBody(t, w)
	}
	changed := func(what string, w *httptest.ResponseRecorder, status int, dirs ...string) api.Changed {
		t.Helper()
		resp := w.Result()
		var ch api.Changed
		if resp.StatusCode != status {
			t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
			t.Fatalf("%s: decode the answer: %v", what, err)
		}
		if len(ch.Dirs) != len(dirs) {
			t.Fatalf("%s: %d directories in the answer, want %d (%v)", what, len(ch.Dirs), len(dirs), dirs)
		}
		for i, p := range dirs {
			want := stat(p).Attr
			if got := ch.Dirs[i]; got.Ino != want.Ino || !got.MTime.Equal(want.MTime) || !got.CTime.Equal(want.CTime) || got.Nlink != want.Nlink || got.Type != "dir" {
				t.Fatalf("%s: directory %s answered as %+v, a stat shows %+v", what, p, got, want)
			}
		}
		return ch
	}
	wantCode(t, "mkdir /a", do(s, "POST", "/v1/fs/a?op=mkdir", nil), http.StatusCreated, "")
	wantCode(t, "mkdir /b", do(s, "POST", "/v1/fs/b?op=mkdir", nil), http.StatusCreated, "")

	ch := changed("create", do(s, "POST", "/v1/fs/a/f?op=create&dirs=1", nil), http.StatusCreated, "/a")
	if ch.Stat == nil || ch.Path != "/a/f" || ch.Type != "file" {
		t.Fatalf("create: the answer's own stat is %+v, want the new file's", ch.Stat)
	}
	changed("mkdir", do(s, "POST", "/v1/fs/a/sub?op=mkdir&dirs=1", nil), http.StatusCreated, "/a")
	changed("rename between directories", do(s, "POST", "/v1/fs/a/f?op=rename&to=/b/g&dirs=1", nil), http.StatusOK, "/a", "/b")
	changed("unlink", do(s, "DELETE", "/v1/fs/b/g?only=file&dirs=1", nil), http.StatusOK, "/b")
	changed("a failed-to-change create of a name already there", do(s, "POST", "/v1/fs/a/sub?op=mkdir&parents=1&dirs=1", nil), http.StatusOK)

	// A copy does not answer with its directories (a tree's would be one
	// per directory copied).
	w := do(s, "POST", "/v1/fs/a?op=copy&to=/c&dirs=1", nil)
	wantCode(t, "copy with dirs", w, http.StatusCreated, "")
	if w.Body.Len() != 0 {
		t.Fatalf("copy with dirs answered %s, want no body, as without", w.Body)
	}
	var raw map[string]any

	// Without it: as before.
	wantCode(t, "rmdir without dirs", do(s, "DELETE", "/v1/fs/a/sub?only=dir", nil), http.StatusNoContent, "")
	w = do(s, "POST", "/v1/fs/a/h?op=create", nil)
	wantCode(t, "create without dirs", w, http.StatusCreated, "")
	raw = nil
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil || raw["path"] != "/a/h" || raw["dirs"] != nil {
		t.Fatalf("create without dirs answered %s (%v), want its stat alone", w.Body, err)
	}

	before := stat("/a")
	w = do(s, "DELETE", "/v1/fs/a/h?dirs=yes", nil)
	wantCode(t, "dirs=yes", w, http.StatusBadRequest, api.CodeInvalidOp)
	if after := stat("/a"); !after.MTime.Equal(before.MTime) {
		t.Fatalf("a refused request changed the directory: mtime %v, was %v", after.MTime, before.MTime)
	}
	stat("/a/h")
}
