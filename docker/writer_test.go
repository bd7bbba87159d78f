package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"shoal/client"
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

// writer keeps writing distinct files through the router, one at a time,
// and records each acknowledged one with its content's hash.
type writer struct {
	cl     *client.Client
	prefix string
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex // guards the fields below, written by the loop
	acked map[string][32]byte
	times [][2]time.Time // start and end of each acknowledged write, in order
	fails int
}

// startWriter starts writing prefix/000000, prefix/000001, ... A failed
// write is not retried: its path may or may not exist afterwards, and
// nothing is promised about it.
func startWriter(cfg client.Config, prefix string) (*writer, error) {
	// No 503 retries inside the client: the loop itself goes on with the
	// next file, so each attempt is timed separately.
	cfg.Timeout, cfg.Retry503 = 10*time.Second, -1
	cl, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	w := &writer{cl: cl, prefix: prefix, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string][32]byte{}}
	go w.loop()
	return w, nil
}

func (w *writer) loop() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		p := fmt.Sprintf("%s/%06d", w.prefix, i)
		b := content(i)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		began := time.Now()
		_, err := w.cl.Put(ctx, p, bytes.NewReader(b), int64(len(b)))
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked[p] = sha256.Sum256(b)
			w.times = append(w.times, [2]time.Time{began, time.Now()})
		} else {
			w.fails++
		}
		w.mu.Unlock()
	}
}

// counts returns how many writes were acknowledged and how many failed.
func (w *writer) counts() (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked), w.fails
}

// ackedAfter returns when the first write that started after t was
// acknowledged, if one was: a write already in flight at t may have
// committed before it.
func (w *writer) ackedAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.times {
		if a[0].After(t) {
			return a[1], true
		}
	}
	return time.Time{}, false
}

// snapshot copies the acknowledged writes so far.
func (w *writer) snapshot() map[string][32]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string][32]byte, len(w.acked))
	for p, h := range w.acked {
		m[p] = h
	}
	return m
}

// halt stops the loop after the write in flight and returns every
// acknowledged write.
func (w *writer) halt() map[string][32]byte {
	close(w.stop)
	<-w.done
	return w.snapshot()
}

// verify reads every file of want through the router and fails the test
// on any that is missing or differs.
func verify(t *testing.T, cl *client.Client, want map[string][32]byte, when string) {
	t.Helper()
	began := time.Now()
	for p, h := range want {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := cl.ReadFile(ctx, p)
		cancel()
		if err != nil {
			t.Fatalf("%s: acknowledged write %s cannot be read: %v", when, p, err)
		}
		if sha256.Sum256(b) != h {
			t.Fatalf("%s: acknowledged write %s reads back different content (%d bytes)", when, p, len(b))
		}
	}
	t.Logf("%s: all %d acknowledged files read back intact in %v", when, len(want), time.Since(began).Round(time.Millisecond))
}
