package client

import (
	"slices"
	"testing"
)

// TestIdempotencyKeysInOrder: keys made one after another begin with the
// time, in order, so that the members write their records of requests
// next to each other; no two are the same.
func TestIdempotencyKeysInOrder(t *testing.T) {
	keys := make([]string, 1000)
	times := make([]string, len(keys))
	for i := range keys {
		keys[i] = newIdempotencyKey()
		if len(keys[i]) != 32 {
			t.Fatalf("key %q: want 32 hex digits", keys[i])
		}
		times[i] = keys[i][:16]
	}
	if !slices.IsSorted(times) {
		t.Fatalf("keys made one after another do not begin with times in order: %q ... %q", times[0], times[len(times)-1])
	}
	if len(slices.Compact(slices.Sorted(slices.Values(keys)))) != len(keys) {
		t.Fatal("two of 1,000 keys are the same")
	}
}
