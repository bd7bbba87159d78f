package router

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConsoleServed checks what a browser gets from /ui/ on a router that
// demands tokens: the pages without one, with headers that keep them from
// loading anything from elsewhere or being framed; the API they call
// still refuses a request without a token.
func TestConsoleServed(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) {
		cfg.Insecure = false
		cfg.AuthTTL = time.Second
	})
	for _, f := range []struct{ path, ctype, has string }{
		{"/ui/", "text/html", "<title>Shoal console</title>"},
		{"/ui/app.js", "text/javascript", "/v1/cluster"},
		{"/ui/style.css", "text/css", ".group"},
	} {
		w := do(s, "GET", f.path, nil)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), f.ctype) || !strings.Contains(w.Body.String(), f.has) {
			t.Errorf("GET %s: %d %s, %.80q; want %s holding %q", f.path, w.Code, w.Header().Get("Content-Type"), w.Body, f.ctype, f.has)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", f.path, csp)
		}
	}
	for _, r := range []struct {
		method, path string
		header       []string
		want         int
	}{
		{"GET", "/ui", nil, http.StatusFound},
		{"GET", "/", []string{"Accept", "text/html,application/xhtml+xml"}, http.StatusFound},
		{"GET", "/", nil, http.StatusUnauthorized},
		{"PUT", "/ui/app.js", nil, http.StatusMethodNotAllowed},
		{"GET", "/ui/missing.js", nil, http.StatusNotFound},
		{"GET", "/v1/events", nil, http.StatusUnauthorized},
		{"GET", "/v1/stats", nil, http.StatusUnauthorized},
		{"GET", "/v1/cluster", nil, http.StatusUnauthorized},
	} {
		if w := do(s, r.method, r.path, nil, r.header...); w.Code != r.want {
			t.Errorf("%s %s: %d, want %d (%s)", r.method, r.path, w.Code, r.want, w.Body)
		}
	}
}

// A stored file is served so that a browser neither guesses its type nor
// runs it as a page on the router's origin, where the console keeps its
// token: an uploaded HTML page is inert.
func TestFilesNeverRunInTheBrowser(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(nil)
	page := "<html><script>fetch('/v1/cluster')</script></html>"
	if w := do(s, "PUT", "/v1/fs/page.html", strings.NewReader(page)); w.Code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	for _, method := range []string{"GET", "HEAD"} {
		w := do(s, method, "/v1/fs/page.html", nil)
		h := w.Header()
		if w.Code != http.StatusOK || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "sandbox" {
			t.Errorf("%s: %d, X-Content-Type-Options %q, Content-Security-Policy %q; want 200, nosniff, sandbox",
				method, w.Code, h.Get("X-Content-Type-Options"), h.Get("Content-Security-Policy"))
		}
		if h.Get("Content-Type") != "application/octet-stream" || method == "GET" && w.Body.String() != page {
			t.Errorf("%s: Content-Type %q, body %q; want the page as bytes: the type guessed from a name is never one a browser runs", method, h.Get("Content-Type"), w.Body)
		}
	}
	// Said to be a page, it is served as one, but sandboxed: no script runs
	// and it has no origin to read the console's token from.
	if w := do(s, "PUT", "/v1/fs/said.html", strings.NewReader(page), "Content-Type", "text/html"); w.Code != http.StatusCreated {
		t.Fatalf("PUT with Content-Type: %d %s", w.Code, w.Body)
	}
	w := do(s, "GET", "/v1/fs/said.html", nil)
	if h := w.Header(); h.Get("Content-Type") != "text/html" || h.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("GET said.html: Content-Type %q, Content-Security-Policy %q; want text/html, sandbox", h.Get("Content-Type"), h.Get("Content-Security-Policy"))
	}
}
