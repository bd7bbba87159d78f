package wire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"shoal/wait"
)

// MemNetwork is an in-memory network for tests of the protocol: nodes
// register handlers by address, and the test cuts links, drops messages
// at random and delays them (which reorders them). Messages are encoded
// and decoded as on the wire, so no state is shared by reference.
type MemNetwork struct {
	mu       sync.Mutex
	handlers map[string]Handler
	cut      map[[2]string]bool // directed from→to
	dropRate float64
	maxDelay time.Duration
	rng      *rand.Rand
}

// NewMemNetwork returns a network whose randomness comes from seed.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{
		handlers: map[string]Handler{},
		cut:      map[[2]string]bool{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// ErrUnreachable is returned for calls across a cut or dropped link.
var ErrUnreachable = errors.New("unreachable")

// Register serves addr with h; a nil h removes it (the node is down).
func (n *MemNetwork) Register(addr string, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		delete(n.handlers, addr)
		return
	}
	n.handlers[addr] = h
}

// Cut blocks messages from a to b (one direction).
func (n *MemNetwork) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{a, b}] = true
}

// Partition cuts every link between the two sides, both ways.
func (n *MemNetwork) Partition(side1, side2 []string) {
	for _, a := range side1 {
		for _, b := range side2 {
			n.Cut(a, b)
			n.Cut(b, a)
		}
	}
}

// Heal restores every link.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
}

// SetFaults drops each message (request or response) with probability
// drop and delays each by up to maxDelay.
func (n *MemNetwork) SetFaults(drop float64, maxDelay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate, n.maxDelay = drop, maxDelay
}

// Transport returns the transport a node at addr calls through.
func (n *MemNetwork) Transport(from string) Transport { return &memTransport{net: n, from: from} }

type memTransport struct {
	net  *MemNetwork
	from string
}

var _ Transport = (*memTransport)(nil)

// leg decides the fate of one message from a to b.
func (n *MemNetwork) leg(a, b string) (time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut[[2]string{a, b}] || n.rng.Float64() < n.dropRate {
		return 0, false
	}
	var d time.Duration
	if n.maxDelay > 0 {
		d = time.Duration(n.rng.Int64N(int64(n.maxDelay)))
	}
	return d, true
}

func (t *memTransport) Call(ctx context.Context, addr string, req Message) (Message, error) {
	n := t.net
	body, err := Encode(req)
	if err != nil {
		return nil, err
	}
	d, ok := n.leg(t.from, addr)
	if !ok {
		<-ctx.Done() // a lost message looks like silence
		return nil, fmt.Errorf("call %s: %w", addr, ErrUnreachable)
	}
	if err := wait.Sleep(ctx, d); err != nil {
		return nil, err
	}
	n.mu.Lock()
	h := n.handlers[addr]
	n.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("call %s: connection refused: %w", addr, ErrUnreachable)
	}
	in, err := Decode(body)
	if err != nil {
		return nil, err
	}
	resp, err := h.Handle(ctx, in)
	if err != nil {
		resp = asErrorMsg(err)
	}
	out, err := Encode(resp)
	released(resp)
	if err != nil {
		return nil, err
	}
	d, ok = n.leg(addr, t.from)
	if !ok {
		<-ctx.Done()
		return nil, fmt.Errorf("reply from %s: %w", addr, ErrUnreachable)
	}
	if err := wait.Sleep(ctx, d); err != nil {
		return nil, err
	}
	m, err := Decode(out)
	if err != nil {
		return nil, err
	}
	if em, ok := m.(*ErrorMsg); ok {
		return nil, remoteError(em)
	}
	return m, nil
}
