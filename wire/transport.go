package wire

import (
	"context"
)

// Handler serves one request; a returned error travels back as an ErrorMsg.
type Handler interface {
	Handle(ctx context.Context, req Message) (Message, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req Message) (Message, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req Message) (Message, error) { return f(ctx, req) }

// Transport carries request/response messages between nodes. Call must
// honour ctx's deadline; every caller sets one.
type Transport interface {
	Call(ctx context.Context, addr string, req Message) (Message, error)
}
