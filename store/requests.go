package store

// Exactly-once application of requests. A router retries a write whose
// outcome it does not know (its primary died, a call timed out), so the
// same request can reach the log twice, and applying it twice is not
// linearizable: another client's write may have come in between. Every
// op a router proposes carries the request's ID; the state machine applies
// the first entry with a given ID and answers later ones with the result
// it recorded. The record keeps the request's digest (Op.ReqSum) too: a
// later op with the same ID but another digest is another request reusing
// a client's idempotency key, and is refused with CodeKeyReused rather
// than answered with a result that is not its own. Buckets:
//
//	requests    request ID                       ->  msgpack reqRecord
//	reqtimes    8-byte big-endian clock + ID     ->  empty
//	state       "clock"                          ->  the group's clock
//
// Records expire requestTTL after they were made, measured by the group's
// clock (Op.Clock): the primaries' monotonic time, which no wall clock
// moves, so a record never expires early because some machine's clock is
// wrong; every member prunes alike because the clock is in the log. They
// are dropped a few at a time as new requests are applied.

import (
	"bytes"
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

// requestTTL is how long a request's result is kept for its retries, in
// the group's clock.
const requestTTL = 15 * time.Minute

// pruneBatch bounds the expired records dropped per applied request.
const pruneBatch = 8

// keyClock holds the group's clock in bucketState: the highest Op.Clock
// applied.
var keyClock = []byte("clock")

// reqRecord is what a request leaves behind for its retries. Records
// written before Sum existed decode with Sum empty and match any op.
type reqRecord struct {
	meta.Result `msgpack:",inline"`
	Sum         []byte `msgpack:"qs,omitempty"`
}

// applyOnce applies op unless an op with the same request ID was applied
// before, in which case it returns that op's result, or CodeKeyReused if
// the two ops come from different requests. clock is the group's clock
// with op applied.
func applyOnce(tx *bolt.Tx, op *meta.Op, clock int64) (meta.Result, error) {
	return applyEntry(tx, op, clock, nil)
}

// applyEntry is applyOnce, with the buckets of a, if not nil, the
// applies of one transaction share.
func applyEntry(tx *bolt.Tx, op *meta.Op, clock int64, a *applying) (meta.Result, error) {
	if op.ReqID == "" {
		return applyOpIn(tx, op, clock, a)
	}
	if len(op.ReqID) > meta.MaxRequestID {
		return meta.Result{}, fmt.Errorf("%w: request ID of %d bytes (limit %d)", meta.ErrInvalid, len(op.ReqID), meta.MaxRequestID)
	}
	reqs, times, err := a.requests(tx)
	if err != nil {
		return meta.Result{}, err
	}
	v, err := reqs.get([]byte(op.ReqID))
	if err != nil {
		return meta.Result{}, err
	}
	if v != nil {
		var rec reqRecord
		if err := msgpack.Unmarshal(v, &rec); err != nil {
			return meta.Result{}, fmt.Errorf("decode the result of request %q: %w", op.ReqID, meta.ErrCorrupt)
		}
		if len(rec.Sum) > 0 && len(op.ReqSum) > 0 && !bytes.Equal(rec.Sum, op.ReqSum) {
			return meta.Result{Code: meta.CodeKeyReused}, nil
		}
		return rec.Result, nil
	}
	r, err := applyOpIn(tx, op, clock, a)
	if err != nil {
		return r, err
	}
	kept := r
	kept.Dirs = nil // for the answer to this try only: not worth the room
	v, err = msgpack.Marshal(reqRecord{Result: kept, Sum: op.ReqSum})
	if err != nil {
		return r, err
	}
	if err := reqs.put([]byte(op.ReqID), v); err != nil {
		return r, err
	}
	tk := make([]byte, 8, 8+len(op.ReqID))
	binary.BigEndian.PutUint64(tk, uint64(clock))
	if err := times.put(append(tk, op.ReqID...), nil); err != nil {
		return r, err
	}
	if clock <= int64(requestTTL) {
		return r, nil // nothing can have expired yet
	}
	return r, pruneRequests(reqs, times, clock-int64(requestTTL))
}

// groupClock returns the group's clock recorded in tx.
func groupClock(tx *bolt.Tx) (int64, error) {
	c, err := getU64(bucketIn(tx, bucketState), keyClock)
	return int64(c), err
}

// Clock returns the highest group clock this member knows: the clock it
// applied or, if higher, the highest Op.Clock among the log entries it has
// not applied yet (up to clockScan of them, from the end). A new primary
// counts on from it. Every one of those clocks was read by some primary
// from its own monotonic time, committed or not, so none is ahead of real
// time.
func (d *DB) Clock() (int64, error) {
	var c int64
	err := d.viewLog(func(tx *bolt.Tx, tail []walEntry) error {
		var err error
		if c, err = groupClock(tx); err != nil {
			return err
		}
		for _, e := range tail[max(0, len(tail)-clockScan):] {
			c = max(c, e.Op.Clock)
		}
		return nil
	})
	return c, err
}

// clockScan bounds the unapplied entries Clock reads.
const clockScan = 4096

// pruneRequests drops a few records of requests older than cutoff.
func pruneRequests(reqs, times bucket, cutoff int64) error {
	for range pruneBatch {
		k, _, err := times.cursor().first()
		if err != nil || k == nil || len(k) < 8 || int64(binary.BigEndian.Uint64(k)) >= cutoff {
			return err
		}
		k = bytes.Clone(k) // the cursor's key does not survive the deletes
		if err := reqs.del(k[8:]); err != nil {
			return err
		}
		if err := times.del(k); err != nil {
			return err
		}
	}
	return nil
}
