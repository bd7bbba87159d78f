package router

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"shoal/meta"
)

// The headers describing an inode are set under their canonical keys,
// one value each in a slice of its own: a client looking one up finds it,
// and adding a value to one changes no other.
func TestFileHeadersAreCanonical(t *testing.T) {
	for _, c := range []struct {
		in   meta.Inode
		want map[string]string
	}{
		{meta.Inode{Ino: 7, Type: meta.TypeFile, Size: 12, Hash: "abc", MTime: 1e18},
			map[string]string{"ETag": `"abc"`, "Content-Length": "12", "Content-Type": "text/plain; charset=utf-8",
				"Accept-Ranges": "bytes", "X-Shoal-Ino": "7", "X-Shoal-Type": "file", "Last-Modified": "Sun, 09 Sep 2001 01:46:40 GMT"}},
		{meta.Inode{Ino: 8, Type: meta.TypeSymlink, Target: "a b"},
			map[string]string{"X-Shoal-Target": "a%20b", "X-Shoal-Ino": "8", "X-Shoal-Type": "symlink", "ETag": "", "Content-Length": ""}},
		{meta.Inode{Ino: 9, Type: meta.TypeDir},
			map[string]string{"X-Shoal-Ino": "9", "X-Shoal-Type": "dir", "X-Shoal-Target": "", "ETag": ""}},
	} {
		w := httptest.NewRecorder()
		setFileHeaders(w, target{path: "/x.txt"}, c.in)
		h := w.Header()
		for k, v := range h {
			if k != http.CanonicalHeaderKey(k) || len(v) != 1 || cap(v) != 1 {
				t.Errorf("%s: header %q = %q: want a canonical key with one value in a slice of its own", c.in.Type, k, v)
			}
		}
		c.want["X-Content-Type-Options"], c.want["Content-Security-Policy"] = "nosniff", "sandbox"
		for k, v := range c.want {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.in.Type, k, got, v)
			}
		}
		// X-Shoal-Ino is set just before Content-Type (a file) or
		// X-Shoal-Target (a symlink): a value added to it must not land
		// in theirs.
		h.Add("X-Shoal-Ino", "other")
		if got := h.Values("X-Shoal-Ino"); len(got) != 2 {
			t.Errorf("%s: X-Shoal-Ino after a value was added: %q", c.in.Type, got)
		}
		for k, v := range c.want {
			if got := h.Get(k); k != "X-Shoal-Ino" && got != v {
				t.Errorf("%s: after a value was added to X-Shoal-Ino, %s = %q, want %q", c.in.Type, k, got, v)
			}
		}
	}
}
