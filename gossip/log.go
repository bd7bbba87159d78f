package gossip

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
)

// stdLogger adapts l to the *log.Logger that serf and memberlist take.
// Their lines start with a level in brackets ("[WARN] memberlist: ...");
// every line goes to Debug with that level kept as an attribute, because
// the libraries warn about conditions (a failed probe, a node leaving) that
// this package reports through Members and Changes already. When l drops
// Debug at construction, the libraries write to io.Discard, which the log
// package short-circuits, so a busy cluster formats nothing.
func stdLogger(l *slog.Logger) *log.Logger {
	if !l.Enabled(context.Background(), slog.LevelDebug) {
		return log.New(io.Discard, "", 0)
	}
	return log.New(slogWriter{l}, "", 0)
}

// slogWriter forwards each line written by a *log.Logger to a slog.Logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	w.l.Debug(line, "lib_level", level)
	return len(p), nil
}
