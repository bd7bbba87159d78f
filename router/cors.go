package router

import (
	"net/http"
	"slices"
	"strings"
)

// The headers a page from an allowed origin may send, and read back.
const (
	corsMethods = "GET, HEAD, PUT, PATCH, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Range, If-Match, If-None-Match, If-Modified-Since, Idempotency-Key, Shoal-Fence, Shoal-Lock-Key"
	corsExposed = "ETag, Last-Modified, Content-Length, Content-Range, Accept-Ranges, Retry-After, X-Shoal-Type, X-Shoal-Ino, X-Shoal-Target"
)

// cors lets pages from the configured origins (Config.CORSOrigins) call
// the API from a browser: it marks their requests' answers as readable by
// them and answers their preflights, which carry no token, itself. It
// reports whether it answered the request. A request from any other
// origin is served as before, without the headers, so the browser keeps
// its answer from the page. Tokens travel in the Authorization header,
// never in cookies, so no credentials mode is needed.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !slices.Contains(s.cfg.CORSOrigins, "*") && !slices.Contains(s.cfg.CORSOrigins, strings.TrimSuffix(origin, "/")) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		return false
	}
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
