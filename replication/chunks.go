package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// WriteChunk stores a chunk on this primary and on the group's members in
// parallel, and returns once a majority of the voters holds it durably.
// Members that are slower keep receiving it in the background. At most
// ChunkWrites run at once; one more waits for its turn, and fails with
// wire.ErrBusy if none comes within RPCTimeout.
func (n *Node) WriteChunk(ctx context.Context, h meta.Hash, data []byte) error {
	if meta.HashOf(data) != h {
		return fmt.Errorf("write chunk %s: %w", h, meta.ErrCorrupt)
	}
	if n.view.Load().status.Role != Leader {
		return n.notPrimary() // at once, not after a wait for a turn
	}
	if err := n.takeChunkSlot(ctx); err != nil {
		return fmt.Errorf("write chunk %s: %w", h, err)
	}
	defer func() { <-n.chunkSlots }()
	// Read after the wait: the node may have stopped leading meanwhile.
	v, t := n.view.Load(), n.term.Load()
	if !v.status.Ready || t == nil {
		return n.notPrimaryIn(v)
	}
	voters := v.status.Voters
	targets := map[uint64]string{}
	for _, m := range voters {
		targets[m.ID] = m.Addr
	}
	for id, p := range v.peers {
		targets[id] = p.Addr
	}
	delete(targets, n.cfg.ID)
	lctx := t.ctx

	type ack struct {
		id  uint64
		err error
	}
	acks := make(chan ack, len(targets)+1)
	// Background sends outlive the request that started them, but not the
	// primary's term, and never the deadline of a call carrying a chunk.
	bctx, cancel := context.WithTimeout(lctx, wire.ChunkTimeout(n.cfg.RPCTimeout, len(data)))
	go func() {
		err := n.putChunk(h, data, true) // checked above
		if errors.Is(err, meta.ErrDiskFailed) {
			// A primary that cannot write leaves the group to a member
			// that can, even when the others hold this chunk already.
			n.post(InStepDown{Reason: StepDownDisk, Why: "the disk refused a chunk"})
		}
		acks <- ack{n.cfg.ID, err}
	}()
	pending := len(targets) + 1
	for id, addr := range targets {
		done := n.sendingChunk(id, h)
		go func() {
			_, err := n.cfg.Transport.Call(bctx, addr, &wire.StoreChunk{Hash: h, Data: data})
			done()
			acks <- ack{id, err}
		}()
	}
	go func() {
		<-bctx.Done()
		cancel()
	}()
	need := Majority(len(voters))
	if len(voters) == 0 {
		need = 1
	}
	held := 0
	var firstErr error
	for pending > 0 {
		var a ack
		select {
		case a = <-acks:
		case <-ctx.Done():
			return fmt.Errorf("write chunk %s: %w (%d of %d voters hold it)", h, wire.ErrNoQuorum, held, len(voters))
		}
		pending--
		if a.err != nil {
			if a.id == n.cfg.ID {
				return fmt.Errorf("write chunk %s locally: %w", h, a.err)
			}
			if firstErr == nil {
				firstErr = a.err
			}
			continue
		}
		if isVoter(voters, a.id) || len(voters) == 0 && a.id == n.cfg.ID {
			held++
		}
		if held >= need {
			return nil
		}
	}
	if errors.Is(firstErr, meta.ErrNoSpace) {
		return fmt.Errorf("write chunk %s: %w: %d of %d voters hold it; a member is full: %w", h, wire.ErrNoQuorum, held, len(voters), meta.ErrNoSpace)
	}
	return fmt.Errorf("write chunk %s: %w (%d of %d voters hold it; first failure: %v)", h, wire.ErrNoQuorum, held, len(voters), firstErr)
}

// chunkSend is a chunk on its way to a member.
type chunkSend struct {
	member uint64
	hash   meta.Hash
}

// sends is how many writes are sending a chunk to a member, and when the
// last one to end ended.
type sends struct {
	now   int
	ended time.Time
}

// sendingChunk records that chunk h is being sent to member until the
// function it returns is called.
func (n *Node) sendingChunk(member uint64, h meta.Hash) func() {
	k := chunkSend{member, h}
	n.sendingMu.Lock()
	defer n.sendingMu.Unlock()
	if n.sending == nil {
		n.sending = map[chunkSend]sends{}
	}
	s := n.sending[k]
	s.now++
	n.sending[k] = s
	return func() {
		n.sendingMu.Lock()
		defer n.sendingMu.Unlock()
		s := n.sending[k]
		s.now--
		s.ended = time.Now()
		n.sending[k] = s
	}
}

// sentSince reports whether a write is sending chunk h to member, or
// ended one at since or after: a member's digest taken at since may not
// show a chunk that has arrived since.
func (n *Node) sentSince(member uint64, h meta.Hash, since time.Time) bool {
	n.sendingMu.Lock()
	defer n.sendingMu.Unlock()
	s, ok := n.sending[chunkSend{member, h}]
	return ok && (s.now > 0 || !s.ended.Before(since))
}

// forgetSends drops what sentSince no longer needs: sends ended before
// since.
func (n *Node) forgetSends(since time.Time) {
	n.sendingMu.Lock()
	defer n.sendingMu.Unlock()
	for k, s := range n.sending {
		if s.now == 0 && s.ended.Before(since) {
			delete(n.sending, k)
		}
	}
}

// takeChunkSlot waits up to RPCTimeout for one of the ChunkWrites slots.
// Waiting here rather than writing at once keeps the disks' queue, and
// so every write's latency, short: the writes a node takes on beyond its
// disks' pace would all finish later, past their callers' deadlines.
func (n *Node) takeChunkSlot(ctx context.Context) error {
	select {
	case n.chunkSlots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(n.cfg.RPCTimeout)
	defer t.Stop()
	select {
	case n.chunkSlots <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %d chunk writes in progress for %v: retry shortly", wire.ErrBusy, n.cfg.ChunkWrites, n.cfg.RPCTimeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: waited for one of %d chunk writes in progress to end: %w", wire.ErrBusy, n.cfg.ChunkWrites, ctx.Err())
	}
}

// ensureChunks makes sure every chunk the entries refer to is stored here
// before the entries are: a member that acknowledges an entry must be able
// to serve its content, or a majority of acks would not protect the data.
func (n *Node) ensureChunks(ctx context.Context, entries []meta.Entry, from string) error {
	for _, e := range entries {
		if e.Op.Kind != meta.OpPut || e.Op.File == nil {
			continue
		}
		for _, c := range e.Op.File.Chunks {
			if !ownsChunk(n.cfg.Group, c) {
				continue
			}
			if err := n.fetchChunk(ctx, c.Hash, from); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
		}
	}
	return nil
}

// ownsChunk reports whether a file's chunk is kept by this group (a hole
// is kept by none). Chunks of other groups are on a majority of their
// own group before the file that names them commits.
func ownsChunk(group string, c meta.ChunkRef) bool {
	return !c.Hole() && (c.Group == group || c.Group == "")
}

// fetchChunk copies a chunk this node lacks from the member at addr.
func (n *Node) fetchChunk(ctx context.Context, h meta.Hash, addr string) error {
	if n.db.Chunks.Has(h) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	c, err := wire.Call[*wire.ChunkMsg](ctx, n.cfg.Transport, addr, &wire.GetChunk{Hash: h})
	if err != nil {
		return fmt.Errorf("fetch chunk %s from %s: %w", h, addr, err)
	}
	return n.putChunk(h, c.Data, false)
}
