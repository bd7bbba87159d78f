package store

// Exactly-once application of requests. A router retries a write whose
// outcome it does not know (its primary died, a call timed out), so the
// same request can reach the log twice, and applying it twice is not
// linearizable: another client's write may have come in between. Every
// op a router proposes carries the request's ID; the state machine applies
// the first entry with a given ID and answers later ones with the result
// it recorded. Buckets:
//
//	requests    request ID                    ->  msgpack Result
//	reqtimes    8-byte big-endian op time + ID ->  empty
//
// Records older than requestTTL (by op time, which the primary fixes, so
// every member prunes alike) are dropped a few at a time as new requests
// are applied: a retry never comes that late.

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

var (
	bucketRequests = []byte("requests")
	bucketReqTimes = []byte("reqtimes")
)

// requestTTL is how long a request's result is kept for its retries.
const requestTTL = 15 * time.Minute

// pruneBatch bounds the expired records dropped per applied request.
const pruneBatch = 8

// applyOnce applies op unless an op with the same request ID was applied
// before, in which case it returns that op's result.
func applyOnce(tx *bolt.Tx, op *meta.Op) (meta.Result, error) {
	if op.ReqID == "" {
		return applyOp(tx, op)
	}
	if len(op.ReqID) > meta.MaxRequestID {
		return meta.Result{}, fmt.Errorf("%w: request ID of %d bytes (limit %d)", meta.ErrInvalid, len(op.ReqID), meta.MaxRequestID)
	}
	reqs, err := tx.CreateBucketIfNotExists(bucketRequests)
	if err != nil {
		return meta.Result{}, err
	}
	times, err := tx.CreateBucketIfNotExists(bucketReqTimes)
	if err != nil {
		return meta.Result{}, err
	}
	if v := reqs.Get([]byte(op.ReqID)); v != nil {
		var r meta.Result
		if err := msgpack.Unmarshal(v, &r); err != nil {
			return meta.Result{}, fmt.Errorf("decode the result of request %q: %w", op.ReqID, meta.ErrCorrupt)
		}
		return r, nil
	}
	r, err := applyOp(tx, op)
	if err != nil {
		return r, err
	}
	v, err := msgpack.Marshal(r)
	if err != nil {
		return r, err
	}
	if err := reqs.Put([]byte(op.ReqID), v); err != nil {
		return r, err
	}
	tk := make([]byte, 8, 8+len(op.ReqID))
	binary.BigEndian.PutUint64(tk, uint64(op.Time))
	if err := times.Put(append(tk, op.ReqID...), nil); err != nil {
		return r, err
	}
	return r, pruneRequests(reqs, times, op.Time-int64(requestTTL))
}

// pruneRequests drops a few records of requests older than cutoff.
func pruneRequests(reqs, times *bolt.Bucket, cutoff int64) error {
	c := times.Cursor()
	for i, k := 0, firstKey(c); i < pruneBatch && k != nil && len(k) >= 8; i, k = i+1, firstKey(c) {
		if int64(binary.BigEndian.Uint64(k)) >= cutoff {
			return nil
		}
		if err := reqs.Delete(k[8:]); err != nil {
			return err
		}
		if err := times.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func firstKey(c *bolt.Cursor) []byte {
	k, _ := c.First()
	return k
}
