package wire

import (
	"context"
	"fmt"
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
