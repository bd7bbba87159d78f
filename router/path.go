package router

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on request paths. They bound the size of every key the meta group
// stores and match the usual POSIX limits, so a Shoal tree can be copied to a
// local disk and back.
const (
	// MaxPathBytes is the longest canonical path, in bytes.
	MaxPathBytes = 4096
	// MaxNameBytes is the longest single path component, in bytes.
	MaxNameBytes = 255
)

// quoteLimit bounds how much of an offending path or name an error quotes,
// so that rejecting a 4 KiB path does not produce a 4 KiB log line.
const quoteLimit = 64

// CleanPath validates the file-system path of an API request (the part after
// /v1/fs, already percent-decoded by net/http) and returns its canonical
// form: "/" for the root, else "/a/b" (no trailing slash).
//
// "" and "/" name the root. A missing leading slash and one trailing slash
// are tolerated because clients and shells add or drop them casually; any
// other empty component ("/a//b") is rejected rather than collapsed, as are
// "." and "..", so that one file has exactly one spelling and no request
// can climb out of the tree. Every error wraps ErrBadPath.
func CleanPath(p string) (string, error) {
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w %s: not valid UTF-8", ErrBadPath, quote(p))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w %s: contains a NUL byte", ErrBadPath, quote(p))
	}
	if p == "" || p == "/" {
		return "/", nil
	}
	body := strings.TrimPrefix(p, "/")
	body = strings.TrimSuffix(body, "/")
	// Checked on the canonical form so that the tolerated slashes do not
	// count against the limit, and the result always fits it.
	if n := len(body) + 1; n > MaxPathBytes {
		return "", fmt.Errorf("%w %s: %d bytes long, over the %d-byte limit",
			ErrBadPath, quote(p), n, MaxPathBytes)
	}
	for name := range strings.SplitSeq(body, "/") {
		switch {
		case name == "":
			return "", fmt.Errorf("%w %s: empty component (\"//\") is not allowed", ErrBadPath, quote(p))
		case name == "." || name == "..":
			return "", fmt.Errorf("%w %s: component %q is not allowed", ErrBadPath, quote(p), name)
		case len(name) > MaxNameBytes:
			return "", fmt.Errorf("%w %s: component %s is %d bytes long, over the %d-byte limit",
				ErrBadPath, quote(p), quote(name), len(name), MaxNameBytes)
		}
	}
	return "/" + body, nil
}

// quote returns s in Go quoted form, shortened to quoteLimit bytes (on a
// rune boundary when s is valid UTF-8) with an ellipsis when it is longer.
func quote(s string) string {
	if len(s) <= quoteLimit {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", s[:cut])
}
