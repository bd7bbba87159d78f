package gossip

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"time"

	"shoal/secure"
)

// stdLogger adapts l to the *log.Logger that serf and memberlist take.
// Their lines start with a level in brackets ("[WARN] memberlist: ...");
// every line goes to Debug with that level kept as an attribute, because
// the libraries warn about conditions (a failed probe, a node leaving) that
// this package reports through Members and Changes already. One kind of
// line is raised to Warn, once per sender and hour: a message that no
// gossip key opens, which is how a process with another key (or none)
// trying to join shows up.
func stdLogger(l *slog.Logger) *log.Logger {
	return log.New(&slogWriter{l: l, debug: l.Enabled(context.Background(), slog.LevelDebug)}, "", 0)
}

// slogWriter forwards each line written by a *log.Logger to a slog.Logger.
type slogWriter struct {
	l        *slog.Logger
	debug    bool
	refusals secure.Throttle
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	if (level == "ERR" || level == "ERROR") && keyMismatch(line) {
		from := ""
		if i := strings.LastIndex(line, "from="); i >= 0 {
			from = strings.TrimSpace(line[i+len("from="):])
		}
		if w.refusals.Allow(from, time.Now()) {
			w.l.Warn("gossip: refused a message no gossip key opens: the sender has another --gossip-key or none, and cannot join; further refusals from it are not logged for an hour",
				"remote", from, "detail", line)
		}
		return len(p), nil
	}
	if w.debug {
		w.l.Debug(line, "lib_level", level)
	}
	return len(p), nil
}

// keyMismatch recognises memberlist's complaints about a message that is
// encrypted with another key, or not encrypted when it must be.
func keyMismatch(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "decrypt") || strings.Contains(s, "encrypt")
}
