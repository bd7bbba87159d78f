package replication

import (
	"context"
	"fmt"
	"sync"

	"shoal/meta"
	"shoal/wire"
)

// readRound is one confirmation that this node still leads: every read
// that joined before the round started is linearizable once it succeeds.
type readRound struct {
	done chan struct{}
	err  error
}

// Read serves a namespace read that reflects every write acknowledged
// before it began (the ReadIndex method): note the commit index, confirm
// with a majority that no higher ballot exists, wait until the entries up
// to that index are applied, then read locally.
func (n *Node) Read(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	if m.Kind == wire.ReadChunkGroups {
		located, err := n.db.ChunkGroups(m.Hashes)
		if err != nil {
			return nil, err
		}
		return &wire.ReadResp{Located: located}, nil
	}
	if err := n.readBarrier(ctx); err != nil {
		return nil, err
	}
	resp := &wire.ReadResp{}
	var err error
	switch m.Kind {
	case wire.ReadLookup:
		resp.Inode, err = n.db.LookupAt(m.Dir, m.Path, m.Cred, m.Want)
	case wire.ReadReadDir:
		resp.Entries, err = n.db.ReadDirAt(m.Dir, m.Path, m.Cred)
	case wire.ReadCheckPut:
		err = n.db.CheckPut(m.Dir, m.Path, m.Cred)
	case wire.ReadUser, wire.ReadUserNamed:
		var u meta.User
		var ok bool
		if m.Kind == wire.ReadUser {
			u, ok, err = n.db.UserByToken(m.Token)
		} else {
			u, ok, err = n.db.UserByName(m.Name)
		}
		if ok {
			resp.User = &u
		}
	case wire.ReadUsers:
		resp.Users, err = n.db.Users()
	case wire.ReadOwned:
		resp.Owned, resp.Next, err = n.db.Owned(m.Uid, m.After, m.Limit)
	case wire.ReadChunkRefs:
		if resp.Referenced, err = n.db.ChunkReferenced(m.Hashes, m.Groups...); err != nil {
			return nil, err
		}
		return resp, nil
	default:
		return nil, fmt.Errorf("%w: unknown read kind %d", wire.ErrBadMessage, m.Kind)
	}
	// A namespace error is the answer; any other is a failure to read.
	if err != nil && meta.CodeOf(err) == meta.CodeInvalid {
		return nil, err
	}
	resp.Code = meta.CodeOf(err)
	return resp, nil
}

func (n *Node) readBarrier(ctx context.Context) error {
	n.mu.Lock()
	l := n.lead
	if l == nil || !l.ready {
		err := n.notPrimaryLocked()
		n.mu.Unlock()
		return err
	}
	readIndex := n.commit
	r := l.round
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		l.round = r
		go n.confirm(l, r)
	}
	n.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: leadership not confirmed in time", wire.ErrNoQuorum)
	}
	if r.err != nil {
		return r.err
	}
	return n.waitApplied(ctx, readIndex)
}

// confirm asks the voters whether this ballot is still the highest.
func (n *Node) confirm(l *leader, r *readRound) {
	defer close(r.done)
	n.mu.Lock()
	if l.round == r {
		l.round = nil
	}
	var addrs []string
	for _, m := range n.config {
		if m.ID != n.cfg.ID {
			addrs = append(addrs, n.addrOfLocked(m.ID))
		}
	}
	need := confirmNeed(n.config, n.cfg.ID)
	n.mu.Unlock()
	if need <= 0 {
		return
	}
	// The probes outlive the round: one that a majority has made
	// unnecessary still completes (within the RPC timeout), so its
	// connection goes back to the pool rather than being torn down, and
	// the next round does not pay for a new one (a TLS handshake).
	ctx, cancel := context.WithTimeout(l.ctx, n.cfg.RPCTimeout)
	var probes sync.WaitGroup
	defer func() {
		go func() {
			probes.Wait()
			cancel()
		}()
	}()
	type answer struct{ resp *wire.AppendResp }
	ch := make(chan answer, len(addrs))
	for _, a := range addrs {
		probes.Go(func() {
			ar, err := wire.Call[*wire.AppendResp](ctx, n.cfg.Transport, a, &wire.Append{Group: n.cfg.Group, Ballot: l.ballot, Leader: n.cfg.Addr, Probe: true})
			if err != nil {
				ar = nil
			}
			ch <- answer{ar}
		})
	}
	t := confirmTally{ballot: l.ballot, need: need}
	for range addrs {
		done, higher := t.add((<-ch).resp)
		if higher != nil {
			n.mu.Lock()
			n.observeBallotLocked(*higher)
			n.mu.Unlock()
			r.err = fmt.Errorf("%w: a member promised %s", wire.ErrDeposed, *higher)
			return
		}
		if done {
			return
		}
	}
	r.err = fmt.Errorf("%w: leadership confirmed by %d of %d other voters", wire.ErrNoQuorum, t.got, len(addrs))
}

// waitApplied blocks until the entries through index are applied.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		n.mu.Lock()
		applied, ch := n.applied, n.appliedCh
		n.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for entry %d to apply", wire.ErrNoQuorum, index)
		}
	}
}
