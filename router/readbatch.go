package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"shoal/wire"
)

// readBatcher sends the meta group's primary the quick reads (lookups,
// put checks, users, locks: wire.Batchable) this router serves, and
// gathers those that arrive while enough are already on their way into
// one wire.ReadBatch. The primary answers a batch with one confirmation
// that it leads and one answer, and each call is a write and a read of a
// socket at both ends and a hand-over to a goroutine on the primary:
// under many clients, most of what a small read costs. A read that finds
// fewer than flights calls out goes alone at once, as it would without
// batching, so a lone client waits for nothing; one that finds them all
// out waits, and when a call comes back the reads waiting (up to
// wire.MaxReadBatch) go in the next, sent on a goroutine of its own.
// Each read waits for its answer only as long as its caller does.
//
// A batch is linearizable as a single read is: the primary confirms that
// it leads after the batch arrived, so after each of its reads began,
// and each then sees every write acknowledged before it began.
type readBatcher struct {
	// flights bounds the calls out at once; the reads beyond wait.
	flights int
	// timeout bounds a batch's call from the time its first read began
	// to wait (Config.RequestTimeout): reads that waited behind a call
	// to a primary that did not answer get no longer than one read.
	timeout time.Duration
	// one sends a single read, many a batch of them (the answer has one
	// ReadResp per read, with an error per read in Errs, or an error for
	// the whole batch).
	one  func(ctx context.Context, m *wire.Read) (*wire.ReadResp, error)
	many func(ctx context.Context, reads []wire.Read) (*wire.ReadBatchResp, error)
	// sent, if set, counts each call with the reads it carries.
	sent func(reads int)

	mu    sync.Mutex
	out   int           // calls out
	queue []*queuedRead // waiting for a call to come back, in arrival order
	// refused, in Unix nanoseconds, is until when the primary is taken
	// for one that knows no batches and every read goes alone.
	refused atomic.Int64
}

// readFlights is how many calls to the primary a router's quick reads
// have out at once. Two keep the primary busy while an answer is on its
// way back; more would send smaller batches.
const readFlights = 2

// refusedFor is how long a primary that refused a batch (a version
// without them) is sent every read alone before a batch is tried again.
const refusedFor = time.Minute

// queuedRead is a read waiting for a call to come back: resp and err
// hold its answer once done is closed.
type queuedRead struct {
	m     *wire.Read
	since time.Time
	resp  *wire.ReadResp
	err   error
	done  chan struct{}
}

// read sends m, alone or in a batch, and returns its answer as one call
// would (a namespace error is the answer's Code, not an error).
func (b *readBatcher) read(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	if until := b.refused.Load(); until != 0 && time.Now().UnixNano() < until {
		b.count(1)
		return b.one(ctx, m)
	}
	b.mu.Lock()
	if b.out < b.flights {
		b.out++
		b.mu.Unlock()
		defer b.handOn()
		b.count(1)
		return b.one(ctx, m)
	}
	q := &queuedRead{m: m, since: time.Now(), done: make(chan struct{})}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	select {
	case <-q.done:
		return q.resp, q.err
	case <-ctx.Done():
		// Out of the queue if still in it; taken into a batch already,
		// the batch goes on for the others and its answer is dropped.
		b.mu.Lock()
		if i := slices.Index(b.queue, q); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
		}
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

// send sends batch, answers each of its reads and hands the call on to
// the reads waiting. It runs on a goroutine of its own: the batch is its
// reads' together, and none of their callers going away gives it up.
func (b *readBatcher) send(batch []*queuedRead) {
	defer b.handOn()
	ctx, cancel := context.WithCancel(context.Background())
	if b.timeout > 0 {
		ctx, cancel = context.WithDeadline(ctx, batch[0].since.Add(b.timeout))
	}
	defer cancel()
	if len(batch) == 1 {
		b.sendAlone(ctx, batch[0])
		return
	}
	reads := make([]wire.Read, len(batch))
	for i, q := range batch {
		reads[i] = *q.m
	}
	resp, err := b.many(ctx, reads)
	err = b.unavailable(ctx, err)
	if err == nil && len(resp.Resps) != len(batch) {
		err = fmt.Errorf("%w: %d answers to a batch of %d reads", wire.ErrBadMessage, len(resp.Resps), len(batch))
	}
	if errors.Is(err, wire.ErrBadMessage) {
		// A primary of a version without batches: each read alone, for
		// a while.
		b.refused.Store(time.Now().Add(refusedFor).UnixNano())
		b.alone(ctx, batch)
		return
	}
	b.count(len(batch))
	for i, q := range batch {
		if q.err = err; q.err == nil {
			if q.err = resp.Err(i); q.err == nil {
				q.resp = &resp.Resps[i]
			}
		}
		close(q.done)
	}
}

// alone sends each read of batch in a call of its own, all at once, and
// answers them.
func (b *readBatcher) alone(ctx context.Context, batch []*queuedRead) {
	var wg sync.WaitGroup
	for _, q := range batch {
		wg.Go(func() { b.sendAlone(ctx, q) })
	}
	wg.Wait()
}

// sendAlone sends q in a call of its own and answers it.
func (b *readBatcher) sendAlone(ctx context.Context, q *queuedRead) {
	b.count(1)
	q.resp, q.err = b.one(ctx, q.m)
	q.err = b.unavailable(ctx, q.err)
	close(q.done)
}

// unavailable says so of a call that failed as the batch's time ran out.
func (b *readBatcher) unavailable(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: no answer from the meta group's primary within %v: %w", ErrUnavailable, b.timeout, err)
	}
	return err
}

func (b *readBatcher) count(reads int) {
	if b.sent != nil {
		b.sent(reads)
	}
}

// handOn ends a call: the reads waiting, if any, go in the next one;
// otherwise one more read may go at once.
func (b *readBatcher) handOn() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.out--
		b.mu.Unlock()
		return
	}
	n := min(len(b.queue), wire.MaxReadBatch)
	next := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()
	go b.send(next)
}
