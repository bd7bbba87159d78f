package router

import (
	"context"
	"fmt"
	"sync"

	"shoal/secure"
)

// Backpressure. Memory and load are bounded in two places, so that many
// uploads at once slow each other down instead of failing or exhausting
// the router:
//
//   - uploadSlots: every chunk an upload reads from its client holds a
//     slot, with its buffers, from before the read until it is stored;
//     the slots are Config.UploadMemory divided by what one chunk costs
//     (chunkCost).
//     An upload that finds none waits, reading no more of its body, so
//     its client is slowed by TCP flow control.
//   - readSlots: every chunk a read fetches holds a slot from before the
//     fetch until it is written to the client; the slots are
//     Config.ReadMemory divided by what one chunk costs (readCost). A
//     read takes slots for chunks ahead only when one is free, and waits
//     for one only when it holds none, so reads never wait on each other
//     in a circle.
//   - sendSlots: each group takes at most groupSends chunk writes at once
//     from this router; the others wait here, where waiting costs
//     nothing, and a write's deadline starts once it is sent.

// chunkCost is the memory one chunk of an upload holds while it is in
// flight: the buffer it is read into, its sealed copy when content is
// sealed at rest, and the frame it is sent in.
func (c Config) chunkCost() int64 {
	cost := 2 * int64(c.ChunkSize+frameSlack)
	if c.Sealer != nil {
		cost += int64(c.ChunkSize + secure.ChunkOverhead)
	}
	return cost
}

// readCost is the memory one chunk a read fetches holds until it is
// written: the frame it arrives in, its decoded copy and, sealed, its
// opened copy.
func (c Config) readCost() int64 {
	cost := 2 * int64(c.ChunkSize+frameSlack)
	if c.Sealer != nil {
		cost += int64(c.ChunkSize)
	}
	return cost
}

// frameSlack is what a frame adds to a chunk: the length, the message
// type, the group's name and the hash.
const frameSlack = 1 << 10

// chunkSlot is one chunk's share of the upload memory. Its buffers are
// made the first time it is used and stay with it, so that uploads
// reuse the same memory however many come and go, and the collector
// never sees chunk buffers as garbage (the heap it lets grow is about
// twice what it finds live, garbage included).
type chunkSlot struct {
	plain  []byte // the chunk as read, ChunkSize long
	sealed []byte // its sealed form, with a data key
}

// newUploadSlots returns the slots of c's upload memory, their buffers
// not made yet.
func newUploadSlots(c Config) chan *chunkSlot {
	slots := make(chan *chunkSlot, c.UploadMemory/c.chunkCost())
	for range cap(slots) {
		slots <- &chunkSlot{}
	}
	return slots
}

// takeChunkSlot waits for a slot of the upload memory, its buffers made;
// give it back with putChunkSlot.
func (s *Server) takeChunkSlot(ctx context.Context) (*chunkSlot, error) {
	var slot *chunkSlot
	select {
	case slot = <-s.uploadSlots:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for upload memory (--upload-memory) to read the next chunk: %w", ErrUnavailable, ctx.Err())
	}
	if slot.plain == nil {
		slot.plain = make([]byte, s.cfg.ChunkSize)
		if s.cfg.Sealer != nil {
			slot.sealed = make([]byte, 0, s.cfg.ChunkSize+secure.ChunkOverhead)
		}
	}
	return slot, nil
}

func (s *Server) putChunkSlot(slot *chunkSlot) { s.uploadSlots <- slot }

// groupSends is how many chunk writes one router has in flight to one
// group. A group's primary takes a few at once (its --chunk-writes);
// more from here would only wait there, holding a connection and the
// frame's memory on the node, with their deadlines running.
const groupSends = 8

// sendSlots bounds the chunk writes in flight to each group. The zero
// value is ready to use.
type sendSlots struct {
	mu sync.Mutex
	by map[string]chan struct{}
}

// take waits for a slot of group g; release gives it back.
func (q *sendSlots) take(ctx context.Context, g string) (release func(), err error) {
	q.mu.Lock()
	if q.by == nil {
		q.by = map[string]chan struct{}{}
	}
	c, ok := q.by[g]
	if !ok {
		c = make(chan struct{}, groupSends)
		q.by[g] = c
	}
	q.mu.Unlock()
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting to send a chunk to group %q: %w", ErrUnavailable, g, ctx.Err())
	}
}
