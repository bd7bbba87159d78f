package router

import (
	"net/http"
	"strings"
	"testing"
)

// Pages from an allowed origin may call the API from a browser: their
// preflights are answered without a token, and their answers carry the
// headers that let the page read them. Pages from elsewhere get none.
func TestCORS(t *testing.T) {
	c := newTestCluster(t)
	c.group("g1", 3, 1<<20)
	s := c.router(func(cfg *Config) {
		cfg.Insecure = false
		cfg.CORSOrigins = []string{"https://app.example.com"}
	})
	preflight := []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization, if-none-match"}
	w := do(s, "OPTIONS", "/v1/fs/a/b", nil, preflight...)
	h := w.Header()
	if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "If-None-Match") {
		t.Fatalf("preflight from an allowed origin: %d %v", w.Code, h)
	}
	w = do(s, "GET", "/v1/cluster", nil, "Origin", "https://app.example.com")
	if h := w.Header(); w.Code != http.StatusUnauthorized || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("a request from an allowed origin without a token: %d %v; want 401 the page can read", w.Code, h)
	}

	preflight[1] = "https://evil.example.com"
	w = do(s, "OPTIONS", "/v1/fs/a/b", nil, preflight...)
	if h := w.Header(); w.Code == http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v; want no CORS headers", w.Code, h)
	}
	w = do(s, "GET", "/v1/cluster", nil, "Origin", "https://evil.example.com")
	if h := w.Header(); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "Origin" {
		t.Fatalf("a request from another origin: %v; want no Allow-Origin, Vary: Origin", h)
	}

	// Without the option, nothing changes.
	plain := c.router(nil)
	if h := do(plain, "GET", "/v1/cluster", nil, "Origin", "https://app.example.com").Header(); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a router without CORS origins answered %v", h)
	}
}
