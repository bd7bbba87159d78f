package docker

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// content is file i's bytes, made again from i when it is checked. Sizes
// cover the three ways a file is kept: inline in its metadata (up to 16
// KiB), one chunk, and several 4 MiB chunks.
func content(i int) []byte {
	var n int
	switch i % 8 {
	case 0:
		n = 5<<20 + i // two chunks
	case 1, 5:
		n = 300<<10 + i
	default:
		n = 100 + i*997%30000 // inline or just above
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

// startWriter starts writing prefix/000000, prefix/000001, ... with
// content(i), recording each acknowledged write. No 503 retries inside
// the client: the writer goes on with the next file, so each attempt is
// timed on its own.
func startWriter(cfg client.Config, prefix string) (*harness.Writer, error) {
	cfg.Timeout, cfg.Retry503 = 10*time.Second, -1
	cl, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	return harness.StartWriter(context.Background(), cl, prefix, content), nil
}

// verify reads every write of acks back through the router and fails the
// test on any that is missing or differs.
func verify(t *testing.T, cl *client.Client, acks []harness.Ack, when string) {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lost, err := harness.Lost(ctx, cl, acks)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	for _, a := range lost {
		t.Errorf("%s: acknowledged write %s is missing or reads back different content", when, a.Path)
	}
	if len(lost) > 0 {
		t.FailNow()
	}
	t.Logf("%s: all %d acknowledged files read back intact in %v", when, len(acks), time.Since(began).Round(time.Millisecond))
}
