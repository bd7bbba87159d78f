package wire

import (
	"context"
	"fmt"
	"time"
)

// Call sends req to addr and returns the answer as a T. An answer of
// another type is an error wrapping ErrBadMessage that names both types,
// so no caller type-asserts an answer by hand.
func Call[T Message](ctx context.Context, tr Transport, addr string, req Message) (T, error) {
	resp, err := tr.Call(ctx, addr, req)
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](resp, addr)
}

// As returns resp as a T, for answers that came through a caller's own
// retry loop: As[*ProposeResp](call(...)). err, when not nil, is returned
// as it is.
func As[T Message](resp Message, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](resp, "")
}

func as[T Message](resp Message, addr string) (T, error) {
	t, ok := resp.(T)
	if !ok {
		var zero T
		from := ""
		if addr != "" {
			from = " from " + addr
		}
		return zero, fmt.Errorf("%w: answer of type %d%s where %T was expected", ErrBadMessage, typeOf(resp), from, zero)
	}
	return t, nil
}

// typeOf is m's wire type, 0 for no message at all.
func typeOf(m Message) MsgType {
	if m == nil {
		return 0
	}
	return m.Type()
}

// MinChunkRate is the slowest a call carrying a chunk may move its bytes
// before it counts as failed: 1 MiB/s, far below any disk or network,
// so that a node that is slow because it is loaded is waited for.
const MinChunkRate = 1 << 20

// ChunkTimeout is the deadline of one call that carries a chunk of size
// bytes, on top of rpc, the deadline of a call that carries nothing: a
// large chunk takes longer to send, to write and to copy to the group's
// members, most of all while the node is storing many others.
func ChunkTimeout(rpc time.Duration, size int) time.Duration {
	return rpc + time.Duration(size)*time.Second/MinChunkRate
}
