package router

import (
	"shoal/api"

	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// The web console: plain HTML, CSS and JavaScript in ui/, embedded in the
// binary and served at /ui/ by every router. The pages themselves need no
// token (they hold no data); the script sends the token the user logs in
// with on every API call it makes, so the console can do exactly what
// that user may do through the API.
//
//go:embed ui
var consoleFiles embed.FS

// consoleHandler serves /ui/ from consoleFiles.
func consoleHandler() http.Handler {
	sub, err := fs.Sub(consoleFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Code: api.CodeMethodNotAllowed, Message: "the console's files are read-only"})
			return
		}
		h := w.Header()
		// The console loads nothing from elsewhere and runs no inline
		// script; it may not be framed (clickjacking).
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// isConsole reports whether r asks for the console's files, which are
// served without a token, or is a browser opening the router's address,
// which is sent to them.
func isConsole(r *http.Request) bool {
	return r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") || browsesRoot(r)
}

// browsesRoot reports whether r is a browser opening the router's address.
func browsesRoot(r *http.Request) bool {
	return r.URL.Path == "/" && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// serveStats answers GET /v1/stats.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.metrics.stats(time.Now()))
}
