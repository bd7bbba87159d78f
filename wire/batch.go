package wire

import "shoal/meta"

// ReadBatch is several reads a router sends its meta group's primary
// together, which answers them as one: one confirmation that it still
// leads, one wait for what it applied, one answer. Each read is one a primary
// serves in a few lookups (Batchable); at most MaxReadBatch.
type ReadBatch struct {
	Group string `msgpack:"g"`
	Reads []Read `msgpack:"r"`
}

// ReadBatchResp answers ReadBatch: Resps one per read, in order. Errs is
// nil when every read was answered; otherwise it has one entry per read,
// nil for those answered and the error for those that failed (a
// namespace error is a ReadResp's Code, as for one Read). An error for
// the whole batch (this node does not lead) is an ErrorMsg instead.
type ReadBatchResp struct {
	Resps []ReadResp  `msgpack:"r"`
	Errs  []*ErrorMsg `msgpack:"e,omitempty"`
}

// MaxReadBatch bounds the reads of one ReadBatch: a primary reads them
// one after the other, from the apply transaction it holds open when it
// holds one (so a batch holds the apply up for as long as it reads).
const MaxReadBatch = 64

// Batchable reports whether a read of kind may go in a ReadBatch: it
// reads a few records (a lookup, a put's check, a user, a lock).
func Batchable(kind ReadKind) bool {
	switch kind {
	case ReadLookup, ReadCheckPut, ReadUser, ReadUserNamed, ReadLock:
		return true
	}
	return false
}

// Err is the error of read i of the batch b answered, nil when it was
// answered (whatever its Code).
func (b *ReadBatchResp) Err(i int) error { return batchErr(b.Errs, i) }

func batchErr(errs []*ErrorMsg, i int) error {
	if i >= len(errs) || errs[i] == nil {
		return nil
	}
	return remoteError(errs[i])
}

// BatchErrors is the error of each item of a batch answered with errs
// (the Errs of a ReadBatchResp or a ProposeBatchResp), nil when none
// failed.
func BatchErrors(errs []*ErrorMsg) []error {
	if errs == nil {
		return nil
	}
	out := make([]error, len(errs))
	for i := range errs {
		out[i] = batchErr(errs, i)
	}
	return out
}

// BatchError is what the Errs of a ReadBatchResp or a ProposeBatchResp
// hold for a read or an op that failed with err.
func BatchError(err error) *ErrorMsg { return errorMessage(err, "") }

// ProposeBatch is several ops a router sends its meta group's primary
// together, which proposes them as one would each alone, in one batch of
// its log, and answers them in one message; at most MaxProposeBatch. Each
// op carries the request ID that makes it safe to send again.
type ProposeBatch struct {
	Group string    `msgpack:"g"`
	Ops   []meta.Op `msgpack:"o"`
}

// ProposeBatchResp answers ProposeBatch: Results one per op, in order.
// Errs is nil when every op was committed and applied; otherwise it has
// one entry per op, nil for those and the error for those that failed (a
// namespace error is a Result's Code, as for one Propose). An error for
// the whole batch (this node does not lead) is an ErrorMsg instead.
type ProposeBatchResp struct {
	Results []meta.Result `msgpack:"r"`
	Errs    []*ErrorMsg   `msgpack:"e,omitempty"`
}

// MaxProposeBatch bounds the ops of one ProposeBatch: a primary's log
// batch holds several such batches.
const MaxProposeBatch = 64

// Err is the error of op i of the batch b answered, nil when it was
// committed (whatever its Result's Code).
func (b *ProposeBatchResp) Err(i int) error { return batchErr(b.Errs, i) }
