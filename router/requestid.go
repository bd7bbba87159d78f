package router

// Request IDs: every request that changes something carries an ID its
// ops are applied once under (store/requests.go), made from the client's
// Idempotency-Key or by the router, with a digest of the request so that
// a key reused for another request is refused.
//
// Every member keeps a record of each ID for 15 minutes, in a B-tree
// ordered by ID. IDs that begin with the time they were made land at the
// end of it, next to the ones before them, and expire from its start: a
// batch of changes then rewrites a few pages of records rather than one
// page per change, scattered over the whole tree. So the IDs made here
// begin with the time, and a client's key is kept in front of the hash
// that makes it the user's own: the shoal client's keys begin with the
// time too (client.newIdempotencyKey). Order only makes the records
// cheaper to write: an ID is found by its whole value either way.

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"shoal/api"
	"shoal/meta"
)

// requestIDKey holds a request's ID in its context.
type requestIDKey struct{}

// withRequestID gives r its ID: made from the client's Idempotency-Key,
// so the client's own retries are applied once too, or a new one. A key comes
// with a digest of the request (see requestDigest), so that a key reused
// for a different request is refused rather than answered as a retry.
func withRequestID(r *http.Request) (*http.Request, error) {
	id := ""
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if len(k) > meta.MaxRequestID-2 || strings.IndexFunc(k, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
			return r, fmt.Errorf("%w: Idempotency-Key must be 1 to %d printable ASCII characters", ErrBadRequest, meta.MaxRequestID-2)
		}
		id = "k:" + k
		if c := callerOf(r.Context()); c != nil {
			// Each user's keys are their own: another user's retry with
			// the same key is another request, and never learns the
			// first one's answer.
			sum := sha256.Sum256([]byte(c.user.Name + "\x00" + k))
			id = "u:" + k[:min(len(k), keyOrderPrefix)] + "/" + hex.EncodeToString(sum[:20])
		}
		d := newRequestDigest(r)
		r.Body = d
		r = r.WithContext(context.WithValue(r.Context(), requestDigestKey{}, d))
	} else {
		id = orderedID("r:")
	}
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)), nil
}

// keyOrderPrefix is how much of a client's Idempotency-Key leads the ID
// made from it: the 16 hex digits of the time the shoal client's keys
// begin with.
const keyOrderPrefix = 16

// orderedID returns prefix, then the time in nanoseconds and 64 random
// bits, in hex: unique, and in the order the IDs were made.
func orderedID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	crand.Read(b[8:])
	return prefix + hex.EncodeToString(b[:])
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestDigestKey holds a keyed request's *requestDigest in its context.
type requestDigestKey struct{}

// requestDigest hashes what identifies a request under its idempotency
// key: the method, the path and query, the headers that change what it
// does (its conditions and media type), and the SHA-256 of the body bytes
// the handler read, taken as they pass (or handed over by a handler that
// hashes the whole body itself: see takeBody). A retry sends the same
// request, so it reads the same bytes and gets the same digest; what
// changes between tries (the time, the chunk keys of sealed content, the
// generation a change starts from) is left out because it is not in the
// request. Ops carry it as meta.Op.ReqSum.
type requestDigest struct {
	body io.ReadCloser
	head []byte    // method, escaped path, query
	h    hash.Hash // the body as it passes
	// bodySum is the body's SHA-256 as a handler handed it over; nil
	// while h is used.
	bodySum []byte
}

func newRequestDigest(r *http.Request) *requestDigest {
	d := &requestDigest{body: r.Body, h: sha256.New()}
	if d.body == nil {
		d.body = http.NoBody
	}
	d.head = fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00", r.Method, r.URL.EscapedPath(), r.URL.RawQuery,
		r.Header.Get("If-Match"), r.Header.Get("If-None-Match"), r.Header.Get("Content-Type"))
	if f := r.Header.Get(api.FenceHeader); f != "" {
		d.head = fmt.Appendf(d.head, "fence=%s\x00", f)
	}
	return d
}

func (d *requestDigest) Read(p []byte) (int, error) {
	n, err := d.body.Read(p)
	d.h.Write(p[:n])
	return n, err
}

func (d *requestDigest) Close() error { return d.body.Close() }

// takeBody returns r's body for a handler that reads it whole and hashes
// it with SHA-256 itself (an upload names its file by that hash), and
// the function it then hands that hash to: the request's digest takes it
// rather than hashing every byte a second time. Without an idempotency
// key the body is r's own and the function does nothing.
func takeBody(r *http.Request) (io.Reader, func(sum []byte)) {
	d, _ := r.Context().Value(requestDigestKey{}).(*requestDigest)
	if d == nil || r.Body != io.ReadCloser(d) {
		return r.Body, func([]byte) {}
	}
	return d.body, func(sum []byte) { d.bodySum = sum }
}

// requestSum returns the digest of the request ctx serves so far, or nil
// for a request without an idempotency key.
func requestSum(ctx context.Context) []byte {
	d, _ := ctx.Value(requestDigestKey{}).(*requestDigest)
	if d == nil {
		return nil
	}
	body := d.bodySum
	if body == nil {
		body = d.h.Sum(nil)
	}
	sum := sha256.Sum256(append(slices.Clip(d.head), body...))
	return sum[:16]
}
