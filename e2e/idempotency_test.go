package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
)

// An Idempotency-Key makes a client's retries apply once, and is bound to
// the request it was first used for: the same key on a different request
// (another body, path or method) is refused with 422 key_reused and
// changes nothing, instead of being answered 201/204 as if it were a
// retry.
func TestIdempotencyKeyBoundToRequest(t *testing.T) {
	c := newCluster(t, 3)
	c.expect("POST", "/v1/fs/k?op=mkdir", nil, 201)
	put := func(path, body, key string) (int, []byte) {
		st, _, b := c.do("PUT", "/v1/fs"+path, strings.NewReader(body), "Idempotency-Key", key)
		return st, b
	}
	wantReused := func(what string, st int, b []byte) {
		t.Helper()
		var e struct{ Error, Message string }
		json.Unmarshal(b, &e)
		if st != 422 || e.Error != "key_reused" || e.Message == "" {
			t.Fatalf("%s: %d %s, want 422 key_reused", what, st, b)
		}
	}
	if st, b := put("/k/a", "one", "key-1"); st != 201 {
		t.Fatalf("first PUT: %d %s", st, b)
	}
	// The retry is answered with the first try's outcome (201, not 204).
	if st, b := put("/k/a", "one", "key-1"); st != 201 {
		t.Fatalf("retried PUT: %d %s, want the first try's 201", st, b)
	}
	st, b := put("/k/a", "two", "key-1")
	wantReused("same key, another body", st, b)
	st, b = put("/k/other", "one", "key-1")
	wantReused("same key, another path", st, b)
	st, _, b = c.do("DELETE", "/v1/fs/k/a", nil, "Idempotency-Key", "key-1")
	wantReused("same key, another method", st, b)
	if got := c.expect("GET", "/v1/fs/k/a", nil, 200); string(got) != "one" {
		t.Fatalf("after refused reuses /k/a holds %q, want %q", got, "one")
	}
	c.expect("GET", "/v1/fs/k/other", nil, 404)

	// A retried rename after the name was taken again is not applied a
	// second time.
	mv := func() int {
		st, _, _ := c.do("POST", "/v1/fs/k/a?op=rename&to=/k/b", nil, "Idempotency-Key", "key-mv")
		return st
	}
	if st := mv(); st != 204 {
		t.Fatalf("rename: %d", st)
	}
	c.expect("PUT", "/v1/fs/k/a", strings.NewReader("three"), 201)
	if st := mv(); st != 204 {
		t.Fatalf("retried rename: %d, want the first try's 204", st)
	}
	if got := c.expect("GET", "/v1/fs/k/a", nil, 200); string(got) != "three" {
		t.Fatalf("retried rename moved the new /k/a: it holds %q", got)
	}

	// A file in chunks: its retry stores the chunks again and is still
	// the same request.
	big := make([]byte, 3<<20)
	rand.Read(big)
	for try := range 2 {
		st, _, b := c.do("PUT", "/v1/fs/k/big", bytes.NewReader(big), "Idempotency-Key", "key-big")
		if st != 201 {
			t.Fatalf("chunked PUT try %d: %d %s, want 201", try, st, b)
		}
	}
	big[0] ^= 1
	st, _, b = c.do("PUT", "/v1/fs/k/big", bytes.NewReader(big), "Idempotency-Key", "key-big")
	wantReused("same key, another large body", st, b)
	big[0] ^= 1
	if got := c.expect("GET", "/v1/fs/k/big", nil, 200); !bytes.Equal(got, big) {
		t.Fatalf("/k/big read back %d bytes differing from what was written", len(got))
	}
}
