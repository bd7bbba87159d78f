package router

// HTTP conditional requests (RFC 9110 section 13). A write's condition
// travels in its op (meta.Op.IfMatch, IfAbsent) and is checked by the meta
// group in the same step as the change, so nothing can come between the
// check and the write; a read's is checked against the inode it reads.

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"shoal/meta"
)

// conditions are a write's preconditions, read from its headers.
type conditions struct {
	ifMatch  string // a file's Hash, or "*"; "" for none
	ifAbsent bool   // If-None-Match: *
	// never: the condition can hold for no inode (only weak entity tags,
	// which a write compares strongly); the write fails with 412 at once.
	never bool
}

// writeConditions reads If-Match and If-None-Match from a write. Shoal
// checks one entity tag, or "*", atomically with the write: a list of
// several is refused rather than checked in part, and If-None-Match on a
// write takes only "*" (create only if absent).
func writeConditions(r *http.Request) (conditions, error) {
	var c conditions
	if v := strings.TrimSpace(r.Header.Get("If-Match")); v != "" {
		tags := entityTags(v)
		if len(tags) != 1 {
			return c, fmt.Errorf("%w: If-Match %q: give one entity tag (an ETag as a GET returns it) or *", ErrBadRequest, v)
		}
		switch t := tags[0]; {
		case t == "*":
			c.ifMatch = "*"
		case strings.HasPrefix(t, "W/"):
			c.never = true // strong comparison: a weak tag matches nothing
		case len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && len(t) > 2:
			c.ifMatch = t[1 : len(t)-1]
		default:
			return c, fmt.Errorf("%w: If-Match %q: an entity tag is quoted, as the ETag header gives it", ErrBadRequest, v)
		}
	}
	if v := strings.TrimSpace(r.Header.Get("If-None-Match")); v != "" {
		if v != "*" {
			return c, fmt.Errorf("%w: If-None-Match %q: a write takes only * (create only if nothing is there)", ErrBadRequest, v)
		}
		c.ifAbsent = true
	}
	return c, nil
}

// apply puts c in op; with never, it returns the 412 to answer instead.
func (c conditions) apply(op *meta.Op) error {
	if c.never {
		return fmt.Errorf("%s: %w: If-Match names a weak entity tag, which never matches a write", target{op.Dir, op.Path}, meta.ErrPrecondition)
	}
	op.IfMatch, op.IfAbsent = c.ifMatch, c.ifAbsent
	return nil
}

// holds reports whether c holds for what a path names now (found, and
// in). A write checks it early to refuse a body it would throw away; the
// meta group's check at commit is the one that counts.
func (c conditions) holds(in meta.Inode, found bool) bool {
	switch {
	case c.never:
		return false
	case c.ifAbsent && found:
		return false
	case c.ifMatch == "":
		return true
	}
	return found && (c.ifMatch == "*" || c.ifMatch == in.Hash)
}

// any reports whether the write has a condition at all.
func (c conditions) any() bool { return c.ifMatch != "" || c.ifAbsent || c.never }

// entityTags splits an If-Match or If-None-Match list into its entity
// tags, each as sent (quoted, with W/ for a weak one), or "*".
func entityTags(v string) []string {
	var tags []string
	for v = strings.TrimSpace(v); v != ""; v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ",")) {
		if v[0] == '*' {
			tags, v = append(tags, "*"), v[1:]
			continue
		}
		start := 0
		if strings.HasPrefix(v, "W/") {
			start = 2
		}
		if len(v) <= start || v[start] != '"' {
			// Not a quoted tag: take it up to the next comma, so it is
			// reported rather than read as something else.
			end := strings.IndexByte(v, ',')
			if end < 0 {
				end = len(v)
			}
			tags, v = append(tags, strings.TrimSpace(v[:end])), v[end:]
			continue
		}
		end := strings.IndexByte(v[start+1:], '"')
		if end < 0 {
			return append(tags, v)
		}
		end += start + 2
		tags, v = append(tags, v[:end]), v[end:]
	}
	return tags
}

// notModified reports whether a GET or HEAD of a file with entity tag
// etag, changed last at mtime, may be answered 304: If-None-Match lists
// its tag (compared weakly) or "*"; without If-None-Match, it has not
// changed since If-Modified-Since (to the second, as HTTP dates go).
// readMismatch reports whether a read's If-Match names no version the
// file is (RFC 9110, 13.1.1: strong comparison): a client reading a file
// in ranges sends the ETag of its first range, so a file replaced
// meanwhile answers 412 rather than splicing two versions.
func readMismatch(r *http.Request, etag string) bool {
	v := r.Header.Get("If-Match")
	if v == "" {
		return false
	}
	for _, t := range entityTags(v) {
		if t == "*" || t == etag {
			return false
		}
	}
	return true
}

func notModified(r *http.Request, etag string, mtime time.Time) bool {
	if v := r.Header.Get("If-None-Match"); v != "" {
		for _, t := range entityTags(v) {
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
		return false
	}
	if v := r.Header.Get("If-Modified-Since"); v != "" {
		since, err := http.ParseTime(v)
		return err == nil && !mtime.Truncate(time.Second).After(since)
	}
	return false
}
