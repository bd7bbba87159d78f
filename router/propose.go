package router

import (
	"context"
	"fmt"

	"shoal/meta"
	"shoal/wire"
)

// propose commits op in the meta group, in a batch with others when it
// may be (batchable). The op carries the HTTP request's ID, so the
// retries of the call (after a primary died or a call timed out, when
// the first try may have committed) are applied once: every mutation is
// safe to retry, and retrying keeps a failover from surfacing as errors.
func (s *Server) propose(ctx context.Context, op meta.Op) (meta.Result, error) {
	if op.ReqID == "" {
		op.ReqID = requestID(ctx)
	}
	if op.ReqSum == nil {
		op.ReqSum = requestSum(ctx)
	}
	if op.Cred == nil {
		op.Cred = credOf(ctx)
	}
	if op.Fence == 0 {
		op.Fence = fenceOf(ctx)
	}
	var res meta.Result
	var err error
	if batchable(op) {
		res, err = s.props.do(ctx, op)
	} else {
		s.metrics.opCall(1)
		res, err = s.proposeAlone(ctx, op)
	}
	if err != nil {
		return meta.Result{}, err
	}
	if err := res.Err(); err != nil {
		if op.Path == "" && op.Dir == 0 {
			return res, err // not about a path: the caller says what it was
		}
		return res, fmt.Errorf("%s: %w", target{op.Dir, op.Path}, err)
	}
	return res, nil
}

// maxBatchedChunks bounds the chunk list of an op that may go in a batch:
// 64 ops of that many chunk references stay far under wire.MaxFrame,
// which one file of a few hundred thousand chunks comes near alone.
const maxBatchedChunks = 1024

// batchable reports whether op may go to the primary in a batch: it
// carries its request's ID, which makes sending it again safe, is small,
// and is quick to apply (a copy of a tree or a recursive delete would
// hold up every answer of its batch, and could make the batch's call
// outlast its deadline and be sent again whole).
func batchable(op meta.Op) bool {
	return op.ReqID != "" && (op.File == nil || len(op.File.Chunks) <= maxBatchedChunks) &&
		op.Kind != meta.OpCopy && !op.Recursive
}

// proposeAlone sends op to the meta group's primary in a call of its own.
func (s *Server) proposeAlone(ctx context.Context, op meta.Op) (meta.Result, error) {
	pr, err := wire.As[*wire.ProposeResp](s.be.metaCall(ctx, func(g string) wire.Message { return &wire.Propose{Group: g, Op: op} }, op.ReqID != ""))
	if err != nil {
		return meta.Result{}, err
	}
	return pr.Result, nil
}

// proposeBatch sends ops, each with its request ID, to the meta group's
// primary in one call, sent again whole when the primary did not take it
// or the outcome is unknown (each op is applied once however often it is
// sent).
func (s *Server) proposeBatch(ctx context.Context, ops []meta.Op) ([]meta.Result, []error, error) {
	resp, err := wire.As[*wire.ProposeBatchResp](s.be.metaCall(ctx, func(g string) wire.Message {
		return &wire.ProposeBatch{Group: g, Ops: ops}
	}, true))
	if err != nil {
		return nil, nil, err
	}
	return resp.Results, wire.BatchErrors(resp.Errs), nil
}
