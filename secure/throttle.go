package secure

import (
	"sync"
	"time"
)

// Throttle says when a refusal is worth logging: once per key (a remote
// address) per window, so a peer retrying with a bad key or certificate,
// or a flood of bad tokens, leaves one line per source rather than one
// per attempt. It is safe for concurrent use.
type Throttle struct {
	Window time.Duration

	mu   sync.Mutex
	seen map[string]time.Time
}

// maxThrottleKeys bounds the memory of a Throttle under a flood from many
// addresses: past it, the memory is forgotten and starts again.
const maxThrottleKeys = 4096

// Allow reports whether key may be logged now, and if so remembers it.
func (t *Throttle) Allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.Window
	if w <= 0 {
		w = time.Hour
	}
	if last, ok := t.seen[key]; ok && now.Sub(last) < w {
		return false
	}
	if t.seen == nil || len(t.seen) >= maxThrottleKeys {
		t.seen = map[string]time.Time{}
	}
	t.seen[key] = now
	return true
}
