package wire

import (
	"testing"
	"time"
)

func TestChunkTimeout(t *testing.T) {
	for _, tt := range []struct {
		size int
		want time.Duration
	}{
		{0, 2 * time.Second},
		{MinChunkRate / 2, 2500 * time.Millisecond},
		{4 << 20, 6 * time.Second},
		{64 << 20, 66 * time.Second},
	} {
		if got := ChunkTimeout(2*time.Second, tt.size); got != tt.want {
			t.Errorf("ChunkTimeout(2s, %d) = %v, want %v", tt.size, got, tt.want)
		}
	}
}
