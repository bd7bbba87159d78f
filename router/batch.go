package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// batcher sends the meta group's primary the calls of one kind this router
// makes for its clients (quick reads, or ops to commit), and gathers
// those that arrive while enough are already on their way into one batch.
// Each call is a write and a read of a socket at both ends and a
// hand-over to a goroutine on the primary: under many clients, much of
// what a small read or op costs. A call that finds fewer than flights
// out goes alone at once, as it would without batching, so a lone client
// waits for nothing; one that finds them all out waits, and when a call
// comes back those waiting (up to max) go in the next, sent on a
// goroutine of its own. Each waits for its answer only as long as its
// caller does.
//
// A read batch is linearizable as a single read is: the primary confirms
// that it leads after the batch arrived, so after each of its reads
// began, and each then sees every write acknowledged before it began. An
// op batch is committed as its ops would be one by one, in one batch of
// the primary's log.
type batcher[Q, A any] struct {
	// flights bounds the calls out at once; the rest wait.
	flights int
	// max bounds a batch (wire.MaxReadBatch, wire.MaxProposeBatch).
	max int
	// timeout bounds a batch's call from the time its first item began
	// to wait (Config.RequestTimeout): items that waited behind a call
	// to a primary that did not answer get no longer than one call.
	timeout time.Duration
	// one sends a single item. many sends a batch: an answer per item,
	// with the error of each item that failed in errs (nil when none
	// did), or an error for the whole batch.
	one  func(ctx context.Context, q Q) (A, error)
	many func(ctx context.Context, qs []Q) (as []A, errs []error, err error)
	// again, if set, says of an item's own error that the item is to be
	// sent once more, alone (one retries as a lone call would), unless
	// its caller has stopped waiting.
	again func(error) bool
	// sent, if set, counts each call with the items it carries.
	sent func(items int)

	mu    sync.Mutex
	out   int             // calls out
	queue []*queued[Q, A] // waiting for a call to come back, in arrival order
	// refused, in Unix nanoseconds, is until when the primary is taken
	// for one that knows no batches and every item goes alone.
	refused atomic.Int64
}

// The batchers of a router: its quick reads, and its ops.
type (
	readBatcher    = batcher[*wire.Read, *wire.ReadResp]
	proposeBatcher = batcher[meta.Op, meta.Result]
)

// batchFlights is how many calls to the primary each batcher of a router
// has out at once. Two keep the primary busy while an answer is on its
// way back; more would send smaller batches.
const batchFlights = 2

// refusedFor is how long a primary that refused a batch (a version
// without them) is sent every item alone before a batch is tried again.
const refusedFor = time.Minute

// queued is an item waiting for a call to come back: ans and err hold
// its answer once done is closed.
type queued[Q, A any] struct {
	q     Q
	since time.Time
	ans   A
	err   error
	done  chan struct{}
	gone  atomic.Bool // its caller stopped waiting: not sent again alone
}

// do sends q, alone or in a batch, and returns its answer as one call
// would.
func (b *batcher[Q, A]) do(ctx context.Context, q Q) (A, error) {
	if until := b.refused.Load(); until != 0 && time.Now().UnixNano() < until {
		b.count(1)
		return b.one(ctx, q)
	}
	b.mu.Lock()
	if b.out < b.flights {
		b.out++
		b.mu.Unlock()
		defer b.handOn()
		b.count(1)
		return b.one(ctx, q)
	}
	w := &queued[Q, A]{q: q, since: time.Now(), done: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	select {
	case <-w.done:
		return w.ans, w.err
	case <-ctx.Done():
		// Out of the queue if still in it; taken into a batch already,
		// the batch goes on for the others and its answer is dropped.
		w.gone.Store(true)
		b.mu.Lock()
		if i := slices.Index(b.queue, w); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
		}
		b.mu.Unlock()
		var none A
		return none, fmt.Errorf("%w: gave up waiting for a call to the meta group's primary: %w", ErrUnavailable, ctx.Err())
	}
}

// send sends batch, answers each of its items and hands the call on to
// the items waiting. It runs on a goroutine of its own: the batch is its
// items' together, and none of their callers going away gives it up.
func (b *batcher[Q, A]) send(batch []*queued[Q, A]) {
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
	qs := make([]Q, len(batch))
	for i, w := range batch {
		qs[i] = w.q
	}
	as, errs, err := b.many(ctx, qs)
	err = b.unavailable(ctx, err)
	if err == nil && (len(as) != len(batch) || errs != nil && len(errs) != len(batch)) {
		err = fmt.Errorf("%w: %d answers and %d errors to a batch of %d", wire.ErrBadMessage, len(as), len(errs), len(batch))
	}
	if errors.Is(err, wire.ErrBadMessage) {
		// A primary of a version without batches: each item alone, for
		// a while.
		b.refused.Store(time.Now().Add(refusedFor).UnixNano())
		b.alone(ctx, batch)
		return
	}
	b.count(len(batch))
	var again []*queued[Q, A]
	for i, w := range batch {
		switch {
		case err != nil:
			w.err = err
		case errs != nil && errs[i] != nil:
			if b.again != nil && b.again(errs[i]) && !w.gone.Load() {
				again = append(again, w)
				continue
			}
			w.err = errs[i]
		default:
			w.ans = as[i]
		}
		close(w.done)
	}
	b.alone(ctx, again)
}

// alone sends each item of batch in a call of its own, all at once, and
// answers them.
func (b *batcher[Q, A]) alone(ctx context.Context, batch []*queued[Q, A]) {
	var wg sync.WaitGroup
	for _, w := range batch {
		wg.Go(func() { b.sendAlone(ctx, w) })
	}
	wg.Wait()
}

// sendAlone sends w in a call of its own and answers it.
func (b *batcher[Q, A]) sendAlone(ctx context.Context, w *queued[Q, A]) {
	b.count(1)
	w.ans, w.err = b.one(ctx, w.q)
	w.err = b.unavailable(ctx, w.err)
	close(w.done)
}

// unavailable says so of a call that failed as the batch's time ran out.
func (b *batcher[Q, A]) unavailable(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: no answer from the meta group's primary within %v: %w", ErrUnavailable, b.timeout, err)
	}
	return err
}

func (b *batcher[Q, A]) count(items int) {
	if b.sent != nil {
		b.sent(items)
	}
}

// handOn ends a call: the items waiting, if any, go in the next one;
// otherwise one more may go at once.
func (b *batcher[Q, A]) handOn() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.out--
		b.mu.Unlock()
		return
	}
	n := min(len(b.queue), b.max)
	next := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()
	go b.send(next)
}
