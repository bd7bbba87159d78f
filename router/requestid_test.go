package router

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"shoal/meta"
)

// TestRequestIDsInOrder: the IDs the router makes begin with the time,
// so that members write their records in order (see requestid.go); a
// client's key leads the ID made from it, which is still the user's own.
func TestRequestIDsInOrder(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = orderedID("r:")
	}
	times := func(ids []string, at int) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = id[at : at+16]
		}
		return out
	}
	if ts := times(ids, 2); !slices.IsSorted(ts) {
		t.Fatalf("IDs made one after another do not begin with times in order: %q ... %q", ts[0], ts[len(ts)-1])
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Fatal("two of 1,000 IDs are the same")
	}

	keyed := func(user, key string) string {
		t.Helper()
		r := httptest.NewRequest("PUT", "/f", nil)
		r.Header.Set("Idempotency-Key", key)
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, &caller{user: meta.User{Name: user}}))
		r, err := withRequestID(r)
		if err != nil {
			t.Fatal(err)
		}
		return requestID(r.Context())
	}
	a1, a2 := keyed("ann", "0000000000000001abc"), keyed("ann", "0000000000000002abc")
	if !strings.HasPrefix(a1, "u:0000000000000001/") || a1 >= a2 {
		t.Errorf("keys in order made IDs %q and %q: want the key's first 16 characters first, in the same order", a1, a2)
	}
	if b1 := keyed("bob", "0000000000000001abc"); b1 == a1 {
		t.Errorf("two users' identical keys made one ID, %q", a1)
	}
	if again := keyed("ann", "0000000000000001abc"); again != a1 {
		t.Errorf("a retry with the same key made another ID: %q, then %q", a1, again)
	}
	if short := keyed("ann", "k1"); !strings.HasPrefix(short, "u:k1/") || len(short) > meta.MaxRequestID {
		t.Errorf("short key: ID %q", short)
	}
}
