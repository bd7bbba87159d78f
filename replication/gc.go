package replication

import (
	"context"
	"fmt"
	"sync"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// Garbage collection of chunks. A chunk may go once no file references it
// and it has been idle (neither written nor touched) for GCGrace on the
// member that removes it. The idle rule is what keeps in-flight writes
// safe: a router writes or touches every chunk of a file just before it
// commits the file, so a chunk that a commit is about to reference is
// fresh on a majority, and each member judges idleness by its own clock
// on its own copy. The reference check is a linearizable read of the meta
// group made after the chunk was found idle: a commit it misses came after
// it, hence after a touch that made the chunk fresh again.

// gcBatch bounds the hashes asked about in one reference query.
const gcBatch = 4096

// collect runs one collection round as the primary of ballot l.
func (n *Node) collect(l *term) error {
	v := n.view.Load()
	if n.term.Load() != l || !v.status.Ready {
		return nil
	}
	var addrs []string
	for _, p := range v.peers {
		addrs = append(addrs, p.Addr)
	}
	idle := n.db.Chunks.Idle(n.cfg.GCGrace, time.Now())
	removed := 0
	for len(idle) > 0 {
		batch := idle[:min(len(idle), gcBatch)]
		idle = idle[len(batch):]
		ctx, cancel := context.WithTimeout(l.ctx, n.cfg.RPCTimeout)
		refs, err := n.cfg.ChunkRefs(ctx, batch)
		cancel()
		if err != nil {
			return fmt.Errorf("ask the meta group which chunks are referenced: %w", err)
		}
		if len(refs) != len(batch) {
			return fmt.Errorf("%w: %d answers for %d chunks", wire.ErrBadMessage, len(refs), len(batch))
		}
		var garbage []meta.Hash
		for i, h := range batch {
			if !refs[i] {
				garbage = append(garbage, h)
			}
		}
		if len(garbage) == 0 {
			continue
		}
		n.deleteOnMembers(l.ctx, addrs, garbage)
		now := time.Now()
		for _, h := range garbage {
			ok, err := n.db.Chunks.RemoveIfIdle(h, n.cfg.GCGrace, now)
			if err != nil {
				return err
			}
			if ok {
				removed++
			}
		}
	}
	if removed > 0 {
		n.log.Info("collected unreferenced chunks", "chunks", removed)
		l.mu.Lock()
		l.progress.Collected += removed
		l.mu.Unlock()
	}
	return nil
}

// deleteOnMembers asks every live member to drop the chunks idle there.
// A member that misses the request keeps its copies; the next repair
// round spreads them again, fresh, and a later round collects them.
func (n *Node) deleteOnMembers(ctx context.Context, addrs []string, hs []meta.Hash) {
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
			defer cancel()
			if _, err := n.cfg.Transport.Call(cctx, a, &wire.DeleteChunks{Group: n.cfg.Group, Hashes: hs, Idle: n.cfg.GCGrace}); err != nil {
				n.log.Debug("delete chunks on member", "addr", a, "err", err)
			}
		}()
	}
	wg.Wait()
}

// minDeleteIdle refuses a delete request that would treat chunks written
// moments ago as idle: whatever a peer sends, a fresh chunk stays.
const minDeleteIdle = time.Second

func (n *Node) handleDeleteChunks(m *wire.DeleteChunks) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	if m.Idle < minDeleteIdle {
		return nil, fmt.Errorf("%w: delete of chunks idle for only %s (minimum %s)", wire.ErrBadMessage, m.Idle, minDeleteIdle)
	}
	now := time.Now()
	for _, h := range m.Hashes {
		if _, err := n.db.Chunks.RemoveIfIdle(h, m.Idle, now); err != nil {
			return nil, err
		}
	}
	return &wire.OKMsg{}, nil
}
