// Package wait pauses for a while unless a context ends first. It imports
// nothing of Shoal, so every package (client, replication, bench, harness)
// can use its one sleep without an import cycle.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends, and then returns ctx's error if
// it ended. A d of zero or less only checks ctx, so callers with an
// optional pause (a network delay of none) need no branch.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
