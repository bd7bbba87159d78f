package replication

import (
	"context"
	"fmt"
	"sync"
	"time"

	"shoal/meta"
	"shoal/wire"
)

// Every member keeps every chunk of its group. Chunks reach a majority when
// written (WriteChunk); the primary's repair rounds bring them to everyone
// else: a member that was down, one whose corrupt copy was dropped, one
// that joined with an empty disk. A round compares per-bucket digests of
// the members' chunk sets (256 buckets by the first hash byte), lists only
// the buckets that differ, and copies each missing chunk from a holder.
// Rounds and garbage collection run one after the other in one goroutine,
// so the primary never copies a chunk it is collecting.

// memberChunks is what the last repair round learned of a member.
type memberChunks struct {
	Chunks int
	Used   int64
}

// repairCopiers bounds the chunk copies one round runs at once.
const repairCopiers = 4

// chunkLoop runs repair rounds, garbage collection and the collection of
// orphans while l leads.
func (n *Node) chunkLoop(l *term) {
	defer n.wg.Done()
	repair := time.NewTicker(n.cfg.RepairInterval)
	defer repair.Stop()
	orphans := time.NewTicker(orphanSweep)
	defer orphans.Stop()
	var gc <-chan time.Time
	if n.cfg.GCInterval > 0 && n.cfg.ChunkRefs != nil {
		t := time.NewTicker(n.cfg.GCInterval)
		defer t.Stop()
		gc = t.C
	}
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-repair.C:
		case <-l.repairWake:
		case <-gc:
			if err := n.collect(l); err != nil && l.ctx.Err() == nil {
				n.log.Warn("chunk garbage collection stopped early; will retry", "err", err)
			}
			continue
		case <-orphans.C:
			n.collectOrphans(l)
			continue
		}
		n.repairRound(l)
	}
}

// holdings is one member's answer in a round.
type holdings struct {
	id     uint64
	addr   string
	digest *wire.DigestResp
	diff   []uint8 // buckets that differ from the primary's
	held   map[meta.Hash]bool
}

func (n *Node) repairRound(l *term) {
	v := n.view.Load()
	// A forming group repairs too: a member joins its configuration
	// only once a round found it holding every chunk.
	if n.term.Load() != l || !v.status.Ready && !v.status.Forming {
		return
	}
	targets := map[uint64]string{}
	for id, p := range v.peers {
		targets[id] = p.Addr
	}
	voters := voterIDs(v.status.Voters)
	start := time.Now()
	local := n.db.Chunks.Digest()
	localUsed := n.db.Chunks.Used()
	members := n.gatherDigests(l.ctx, targets, local)
	plan := planRepair(n.cfg.ID, members, n.db.Chunks.List)
	holders, lacks := plan.holders, plan.lacks
	var failed sync.Map
	var copied int
	var copiedBytes int64
	var mu sync.Mutex
	work := make(chan meta.Hash)
	var wg sync.WaitGroup
	for range repairCopiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				k, bytes, ok := n.repairChunk(l.ctx, h, holders[h], members, lacks, targets, start)
				mu.Lock()
				copied += k
				copiedBytes += bytes
				mu.Unlock()
				if !ok {
					failed.Store(h, true)
				}
			}
		}()
	}
	for h := range holders {
		select {
		case work <- h:
		case <-l.ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	n.forgetSends(start)

	isFailed := func(h meta.Hash) bool { _, bad := failed.Load(h); return bad }
	under := plan.underReplicated(n.cfg.ID, voters, members, local, isFailed)
	if n.term.Load() != l {
		return
	}
	synced := map[uint64]uint64{}
	l.mu.Lock()
	defer func() {
		l.mu.Unlock()
		n.post(InRepaired{Synced: synced})
	}()
	// Every member's figures, the primary's own included, are those of
	// the digests taken at the start of this round, so a status report
	// shows one moment of the group rather than the primary's live count
	// beside its members' older ones. A member that did not answer keeps
	// what an earlier round learned.
	l.chunks[n.cfg.ID] = memberChunks{Chunks: digestCount(local[:]), Used: localUsed}
	for id, m := range members {
		if plan.holdsAll(m, isFailed) {
			synced[id] = m.digest.Start
		}
		l.chunks[id] = memberChunks{Chunks: digestCount(m.digest.Buckets), Used: m.digest.Used}
	}
	l.progress.UnderReplicated = under
	l.progress.Copied += copied
	l.progress.CopiedBytes += copiedBytes
	l.progress.LastRound = time.Now().UnixNano()
	if copied > 0 {
		n.log.Info("repaired chunks", "copies", copied, "bytes", copiedBytes, "took", time.Since(start).Round(time.Millisecond), "under_replicated", under)
	}
}

// digestCount is the number of chunks a digest covers.
func digestCount(buckets []meta.BucketDigest) int {
	count := 0
	for _, d := range buckets {
		count += int(d.Count)
	}
	return count
}

// gatherDigests asks every live member for its digest, and for the
// hashes of the buckets where it differs from local.
func (n *Node) gatherDigests(ctx context.Context, targets map[uint64]string, local [256]meta.BucketDigest) map[uint64]*holdings {
	var mu sync.Mutex
	out := map[uint64]*holdings{}
	var wg sync.WaitGroup
	for id, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := n.memberHoldings(ctx, id, addr, local)
			if err != nil {
				n.log.Debug("chunk digest", "member", id, "err", err)
				return
			}
			mu.Lock()
			out[id] = m
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (n *Node) memberHoldings(ctx context.Context, id uint64, addr string, local [256]meta.BucketDigest) (*holdings, error) {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	d, err := wire.Call[*wire.DigestResp](cctx, n.cfg.Transport, addr, &wire.ChunkDigest{Group: n.cfg.Group})
	if err != nil {
		return nil, err
	}
	if len(d.Buckets) != len(local) {
		return nil, fmt.Errorf("%w: digest of %d buckets from %s, want %d", wire.ErrBadMessage, len(d.Buckets), addr, len(local))
	}
	m := &holdings{id: id, addr: addr, digest: d}
	for b := range local {
		if d.Buckets[b] != local[b] {
			m.diff = append(m.diff, uint8(b))
		}
	}
	if len(m.diff) == 0 {
		return m, nil
	}
	l, err := wire.Call[*wire.ChunkList](cctx, n.cfg.Transport, addr, &wire.ListChunks{Group: n.cfg.Group, Buckets: m.diff})
	if err != nil {
		return nil, err
	}
	m.held = make(map[meta.Hash]bool, len(l.Hashes))
	for _, h := range l.Hashes {
		m.held[h] = true
	}
	return m, nil
}

// repairChunk gives chunk h to the primary and every member lacking it.
// It returns the copies made, their bytes, and whether all succeeded.
// start is when the round began, before it asked for the members' digests.
func (n *Node) repairChunk(ctx context.Context, h meta.Hash, holders map[uint64]bool, members map[uint64]*holdings,
	lacks func(*holdings, meta.Hash) bool, targets map[uint64]string, start time.Time) (int, int64, bool) {
	copies, bytes := 0, int64(0)
	if !n.db.Chunks.Has(h) {
		var srcs []string
		for id := range holders {
			if a, ok := targets[id]; ok {
				srcs = append(srcs, a)
			}
		}
		if err := n.fetchFromAny(ctx, h, srcs); err != nil {
			n.log.Warn("repair: no member could supply a chunk", "chunk", h, "err", err)
			return 0, 0, false
		}
		copies++
	}
	data, err := n.db.Chunks.Get(h)
	if err != nil {
		n.log.Warn("repair: read chunk", "chunk", h, "err", err)
		return copies, bytes, false
	}
	if copies > 0 {
		bytes += int64(len(data))
	}
	ok := true
	for _, m := range members {
		if !lacks(m, h) {
			continue
		}
		if n.sentSince(m.id, h, start) {
			// A write is sending it (a slow member, behind the majority
			// that answered), or sent it after the member's digest was
			// taken: a copy now would send it twice. The member counts as
			// lacking it until a round finds it there.
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, wire.ChunkTimeout(n.cfg.RPCTimeout, len(data)))
		_, err := n.cfg.Transport.Call(cctx, m.addr, &wire.StoreChunk{Hash: h, Data: data})
		cancel()
		if err != nil {
			n.log.Debug("repair: copy chunk", "chunk", h, "member", m.id, "err", err)
			ok = false
			continue
		}
		copies++
		bytes += int64(len(data))
	}
	return copies, bytes, ok
}

// fetchFromAny copies chunk h from the first of addrs that has it intact.
func (n *Node) fetchFromAny(ctx context.Context, h meta.Hash, addrs []string) error {
	err := fmt.Errorf("chunk %s: %w on any live member", h, meta.ErrNotFound)
	for _, a := range addrs {
		if err = n.fetchChunk(ctx, h, a); err == nil {
			return nil
		}
	}
	return err
}
