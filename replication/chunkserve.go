package replication

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"shoal/meta"
	"shoal/wire"
)

func (n *Node) handleDigest(m *wire.ChunkDigest) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	d := n.db.Chunks.Digest()
	return &wire.DigestResp{Buckets: d[:], Used: n.db.Chunks.Used(), Start: n.start}, nil
}

func (n *Node) handleListChunks(m *wire.ListChunks) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	if len(m.Buckets) > 256 {
		return nil, fmt.Errorf("%w: %d buckets asked, there are 256", wire.ErrBadMessage, len(m.Buckets))
	}
	out := &wire.ChunkList{}
	for _, b := range m.Buckets {
		out.Hashes = append(out.Hashes, n.db.Chunks.List(int(b))...)
	}
	return out, nil
}

func (n *Node) handleTouch(ctx context.Context, m *wire.TouchChunks) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	if m.Local {
		return &wire.TouchResp{Missing: n.touchLocal(m.Hashes)}, nil
	}
	missing, err := n.TouchChunks(ctx, m.Hashes)
	if err != nil {
		return nil, err
	}
	return &wire.TouchResp{Missing: missing}, nil
}

func (n *Node) touchLocal(hs []meta.Hash) []meta.Hash {
	now := time.Now()
	var missing []meta.Hash
	for _, h := range hs {
		if !n.db.Chunks.Touch(h, now) {
			missing = append(missing, h)
		}
	}
	return missing
}

// TouchChunks marks chunks as freshly written on this primary and on a
// majority of the voters, so garbage collection spares them for its grace
// period; a router calls it just before it commits a file naming them. A
// member lacking one gets a copy. It returns the chunks no live member
// holds: the file must not be committed.
func (n *Node) TouchChunks(ctx context.Context, hs []meta.Hash) ([]meta.Hash, error) {
	v := n.view.Load()
	if !v.status.Ready {
		return nil, n.notPrimaryIn(v)
	}
	voters := v.status.Voters
	var addrs []string
	ids := map[string]uint64{}
	for id, p := range v.peers {
		addrs = append(addrs, p.Addr)
		ids[p.Addr] = id
	}
	var missing []meta.Hash
	for _, h := range n.touchLocal(hs) {
		// A new primary may lack a chunk a majority holds.
		if err := n.fetchFromAny(ctx, h, addrs); err != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return missing, nil
	}
	held := 0
	if isVoter(voters, n.cfg.ID) || len(voters) == 0 {
		held++
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.touchMember(ctx, a, hs) == nil && isVoter(voters, ids[a]) {
				mu.Lock()
				held++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	need := max(1, Majority(len(voters)))
	if held < need {
		return nil, fmt.Errorf("touch %d chunks: %w (%d of %d voters)", len(hs), wire.ErrNoQuorum, held, len(voters))
	}
	return nil, nil
}

// touchMember touches chunks on one member and gives it those it lacks.
func (n *Node) touchMember(ctx context.Context, addr string, hs []meta.Hash) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	tr, err := wire.Call[*wire.TouchResp](cctx, n.cfg.Transport, addr, &wire.TouchChunks{Group: n.cfg.Group, Hashes: hs, Local: true})
	if err != nil {
		return err
	}
	for _, h := range tr.Missing {
		data, err := n.db.Chunks.Get(h)
		if err != nil {
			return err
		}
		if _, err := n.cfg.Transport.Call(cctx, addr, &wire.StoreChunk{Hash: h, Data: data}); err != nil {
			return err
		}
	}
	return nil
}

// GroupInfo describes the group as this primary sees it. Its chunk
// figures, the primary's own included, are those of the last repair round
// (Repair.LastRound), all taken at that round's start.
func (n *Node) GroupInfo() (*wire.GroupInfo, error) {
	var info *wire.GroupInfo
	var err error
	t := n.term.Load()
	selfDisk := ""
	if err := n.disk.failure(); err != nil {
		selfDisk = err.Error()
	}
	ok := n.inspect(func(m *Machine) {
		l := m.lead
		if l == nil || !l.ready || t == nil || t.ballot != l.ballot {
			err = m.notPrimary()
			return
		}
		info = &wire.GroupInfo{Ballot: l.ballot, Commit: m.commit}
		t.mu.Lock()
		defer t.mu.Unlock()
		info.Repair = t.progress
		seen := map[uint64]bool{}
		add := func(c meta.Member, voter bool) {
			if seen[c.ID] {
				return
			}
			seen[c.ID] = true
			_, live := m.peers[c.ID]
			mi := wire.MemberInfo{ID: c.ID, Name: c.Name, Addr: c.Addr, Voter: voter, Live: live || c.ID == n.cfg.ID,
				Synced: l.isSynced(c.ID), Match: l.match[c.ID], DiskError: l.diskErr[c.ID]}
			if c.ID == n.cfg.ID {
				mi.Synced, mi.DiskError = selfDisk == "", selfDisk
			}
			if ch, ok := t.chunks[c.ID]; ok {
				mi.Chunks, mi.Used = ch.Chunks, ch.Used
			}
			info.Chunks = max(info.Chunks, mi.Chunks)
			info.Members = append(info.Members, mi)
		}
		for _, c := range m.config {
			add(c, true)
		}
		for _, p := range m.peers {
			add(p, false)
		}
	})
	if !ok {
		return nil, errClosed
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].ID < info.Members[j].ID })
	return info, nil
}
