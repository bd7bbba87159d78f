package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"shoal/wire"
)

// readBatcher sends the meta group's primary the quick reads (lookups,
// put checks, users, locks: wire.Batchable) this router serves, and
// gathers those that arrive while enough are already on their way into
// one wire.ReadBatch. The primary answers a batch with one confirmation
// that it leads and one answer, and each call is a write and a
// read of a socket at both ends and a hand-over to a goroutine on the
// primary: under many clients, most of what a small read costs. A read
// that finds fewer than flights calls out goes alone at once, as it
// would without batching, so a lone client waits for nothing; one that
// finds them all out waits for the first to come back, and the read
// first in line then sends every read waiting (up to wire.MaxReadBatch)
// for all of them.
//
// A batch is linearizable as a single read is: the primary confirms that
// it leads after the batch arrived, so after each of its reads began,
// and each then sees every write acknowledged before it began.
type readBatcher struct {
	// flights bounds the calls out at once; the reads beyond wait.
	flights int
	// one sends a single read, many a batch of them (the answer has one
	// ReadResp per read, or an error for the whole batch).
	one  func(ctx context.Context, m *wire.Read) (*wire.ReadResp, error)
	many func(ctx context.Context, reads []wire.Read) (*wire.ReadBatchResp, error)
	// sent, if set, counts each call with the reads it carries.
	sent func(reads int)

	mu    sync.Mutex
	out   int           // calls out
	queue []*queuedRead // waiting for a call to come back, in arrival order
}

// readFlights is how many calls to the primary a router's quick reads
// have out at once. Two keep the primary busy while an answer is on its
// way back; more would send smaller batches.
const readFlights = 2

// queuedRead is a read waiting for a call to come back. done gets, once,
// the batch it is to send (it is first in it) or nil when another read
// sent it and resp and err hold its answer.
type queuedRead struct {
	m    *wire.Read
	resp *wire.ReadResp
	err  error
	done chan []*queuedRead
}

// read sends m, alone or in a batch, and returns its answer as one call
// would (a namespace error is the answer's Code, not an error).
func (b *readBatcher) read(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	b.mu.Lock()
	if b.out < b.flights {
		b.out++
		b.mu.Unlock()
		b.count(1)
		resp, err := b.one(ctx, m)
		b.handOn()
		return resp, err
	}
	q := &queuedRead{m: m, done: make(chan []*queuedRead, 1)}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	var batch []*queuedRead
	select {
	case batch = <-q.done:
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.queue, q); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
			b.mu.Unlock()
			return nil, ctx.Err()
		}
		b.mu.Unlock()
		// Taken into a batch already: it is answered, or sends it, within
		// the call's own deadlines.
		batch = <-q.done
	}
	if batch != nil {
		b.send(ctx, batch)
	}
	return q.resp, q.err
}

// send sends batch, whose first read is the caller's, answers the others
// and hands the call on to the reads waiting.
func (b *readBatcher) send(ctx context.Context, batch []*queuedRead) {
	b.count(len(batch))
	if len(batch) == 1 {
		batch[0].resp, batch[0].err = b.one(ctx, batch[0].m)
		b.handOn()
		return
	}
	reads := make([]wire.Read, len(batch))
	for i, q := range batch {
		reads[i] = *q.m
	}
	// The batch is the others' as much as the caller's: it is not given
	// up when the caller goes away (the call has deadlines of its own).
	ctx = context.WithoutCancel(ctx)
	resp, err := b.many(ctx, reads)
	if err == nil && len(resp.Resps) != len(batch) {
		err = fmt.Errorf("%w: %d answers to a batch of %d reads", wire.ErrBadMessage, len(resp.Resps), len(batch))
	}
	if errors.Is(err, wire.ErrBadMessage) {
		// A primary of a version without batches: each read alone.
		b.alone(ctx, batch)
		return
	}
	b.handOn()
	for i, q := range batch {
		if q.err = err; q.err == nil {
			if q.err = resp.Err(i); q.err == nil {
				q.resp = &resp.Resps[i]
			}
		}
		if i > 0 {
			q.done <- nil
		}
	}
}

// alone sends each read of batch in a call of its own, all at once,
// answers the others and hands the call on.
func (b *readBatcher) alone(ctx context.Context, batch []*queuedRead) {
	var wg sync.WaitGroup
	for _, q := range batch {
		wg.Go(func() { q.resp, q.err = b.one(ctx, q.m) })
	}
	wg.Wait()
	b.handOn()
	for _, q := range batch[1:] {
		q.done <- nil
	}
}

func (b *readBatcher) count(reads int) {
	if b.sent != nil {
		b.sent(reads)
	}
}

// handOn ends a call: the reads waiting, if any, go in the next batch,
// sent by the first of them; otherwise one more read may go at once.
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
	next[0].done <- next
}
