package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"shoal/client"
)

// writeLimit bounds one write of a Writer: a write that takes longer
// fails, and the next one begins.
const writeLimit = 30 * time.Second

// Ack is one write the cluster acknowledged.
type Ack struct {
	// Path is the file written.
	Path string
	// Sum is the SHA-256 of the content written.
	Sum [32]byte
	// Start is when the write was sent and End when it was acknowledged.
	Start, End time.Time
}

// Writer writes distinct files one after the other, as fast as the
// cluster acknowledges them, and records each acknowledged one: the
// writes that a fault must not lose. A failed write is not retried (its
// file may or may not exist afterwards; nothing was promised), only
// counted.
type Writer struct {
	cl     *client.Client
	prefix string
	body   func(i int) []byte
	stop   chan struct{}
	done   chan struct{}
	halt   sync.Once

	mu     sync.Mutex // guards the fields below, written by the loop
	acks   []Ack      // in order of acknowledgement
	failed int
}

// StartWriter starts writing prefix/000000, prefix/000001, ... through cl
// until Halt or until ctx ends. File i holds body(i); a nil body writes a
// line naming the file. Give cl no 503 retries (a negative Retry503), so
// that each attempt is timed on its own.
func StartWriter(ctx context.Context, cl *client.Client, prefix string, body func(i int) []byte) *Writer {
	if body == nil {
		body = func(i int) []byte { return fmt.Appendf(nil, "write %d of %s", i, prefix) }
	}
	w := &Writer{cl: cl, prefix: prefix, body: body, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(ctx)
	return w
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		p := fmt.Sprintf("%s/%06d", w.prefix, i)
		b := w.body(i)
		wctx, cancel := context.WithTimeout(ctx, writeLimit)
		start := time.Now()
		_, err := w.cl.Put(wctx, p, bytes.NewReader(b), int64(len(b)))
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acks = append(w.acks, Ack{Path: p, Sum: sha256.Sum256(b), Start: start, End: time.Now()})
		} else {
			w.failed++
		}
		w.mu.Unlock()
	}
}

// Counts returns how many writes were acknowledged and how many failed.
func (w *Writer) Counts() (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks), w.failed
}

// FirstAckAfter returns when the first acknowledged write that started
// after t was acknowledged, if one was. A write already in flight at t
// does not count: it may have been committed before t (by a primary
// killed at t, say).
func (w *Writer) FirstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if a.Start.After(t) {
			return a.End, true
		}
	}
	return time.Time{}, false
}

// Acked returns the acknowledged writes so far.
func (w *Writer) Acked() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Halt stops the writer after the write in flight and returns every
// acknowledged write. It may be called more than once.
func (w *Writer) Halt() []Ack {
	w.halt.Do(func() { close(w.stop) })
	<-w.done
	return w.Acked()
}

// Lost reads every write of acks back through cl, eight at a time, and
// returns those missing or holding other content. Any other failure to
// read is an error, since it says nothing of whether the write was kept.
func Lost(ctx context.Context, cl *client.Client, acks []Ack) ([]Ack, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		lost []Ack
		errs []error
		next int
		wg   sync.WaitGroup
	)
	take := func() (Ack, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next == len(acks) || len(errs) > 0 {
			return Ack{}, false
		}
		next++
		return acks[next-1], true
	}
	for range 8 {
		wg.Go(func() {
			for a, ok := take(); ok; a, ok = take() {
				got, err := cl.ReadFile(ctx, a.Path)
				mu.Lock()
				switch {
				case errors.Is(err, client.ErrNotFound), err == nil && sha256.Sum256(got) != a.Sum:
					lost = append(lost, a)
				case err != nil:
					errs = append(errs, fmt.Errorf("read back %s: %w", a.Path, err))
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(lost, func(a, b Ack) int { return strings.Compare(a.Path, b.Path) })
	if len(errs) > 0 {
		return lost, errs[0]
	}
	return lost, ctx.Err()
}
