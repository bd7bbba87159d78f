package replication

import (
	"context"
	"fmt"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Promote makes this node the primary with ballot b, which the caller chose
// from its gossip view (no election messages). Before it accepts writes it
// gathers promises from a majority of the voters, adopts the most
// up-to-date log among them (which holds every committed entry, since any
// two majorities meet), and commits a first entry of its own ballot
// (invariant 3). It returns once leading, or with the reason it cannot.
func (n *Node) Promote(ctx context.Context, b meta.Ballot) error {
	if b.Node != n.cfg.ID {
		// Two promoters sharing a ballot could both gather a majority.
		return fmt.Errorf("replication: ballot %s names node %d; node %d must promote with its own ID", b, b.Node, n.cfg.ID)
	}
	n.mu.Lock()
	if b.Less(n.promised) || b == n.promised && n.role != Follower {
		p := n.promised
		n.mu.Unlock()
		return fmt.Errorf("%w: ballot %s is not above promised %s", wire.ErrStaleBallot, b, p)
	}
	if err := n.observeBallotLocked(b); err != nil {
		n.mu.Unlock()
		return err
	}
	n.role = Recovering
	n.notifyChanged()
	n.mu.Unlock()
	err := n.recoverLog(ctx, b)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil && (n.role != Recovering || n.promised != b) {
		err = fmt.Errorf("%w: a higher ballot %s appeared during recovery", wire.ErrDeposed, n.promised)
	}
	if err != nil {
		if n.role == Recovering {
			n.role = Follower
			n.notifyChanged()
		}
		return err
	}
	n.becomeLeaderLocked(b)
	return nil
}

// promiseReply is one member's answer during recovery.
type promiseReply struct {
	id   uint64
	addr string
	resp *wire.PromiseResp
}

// recoverLog runs until the promises come from a majority of the
// configuration found in the adopted log itself: adopting a log can bring
// a newer configuration, whose majority must then be asked again.
func (n *Node) recoverLog(ctx context.Context, b meta.Ballot) error {
	for range 8 {
		n.mu.Lock()
		config := append([]meta.Member(nil), n.config...)
		n.mu.Unlock()
		if len(config) == 0 {
			// A group that never had a configuration: only its first node
			// bootstraps it, alone, so there is nothing to adopt.
			return nil
		}
		if !isVoter(config, n.cfg.ID) {
			return fmt.Errorf("%w: node %d is not among the %d voters", wire.ErrNotMember, n.cfg.ID, len(config))
		}
		promises, err := n.gatherPromises(ctx, b, config)
		if err != nil {
			return err
		}
		if err := n.adopt(ctx, b, promises.best()); err != nil {
			return err
		}
		n.mu.Lock()
		same := sameMembers(config, n.config)
		n.mu.Unlock()
		if same {
			return nil
		}
	}
	return fmt.Errorf("%w: the configuration kept changing during recovery", wire.ErrNoQuorum)
}

// gatherPromises asks every voter for a promise and returns once a
// majority (this node included) gave one.
func (n *Node) gatherPromises(ctx context.Context, b meta.Ballot, config []meta.Member) (*promiseTally, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	n.mu.Lock()
	own := promiseReply{id: n.cfg.ID, addr: n.cfg.Addr, resp: &wire.PromiseResp{OK: true, Promised: b, LastIndex: n.last, LastBallot: n.lastBallot}}
	var asks []promiseReply
	for _, m := range config {
		if m.ID != n.cfg.ID {
			asks = append(asks, promiseReply{id: m.ID, addr: n.addrOfLocked(m.ID)})
		}
	}
	n.mu.Unlock()
	ch := make(chan promiseReply, len(asks))
	for _, a := range asks {
		go func() {
			if r, err := wire.Call[*wire.PromiseResp](ctx, n.cfg.Transport, a.addr, &wire.Promise{Group: n.cfg.Group, Ballot: b}); err == nil {
				a.resp = r
			}
			ch <- a
		}()
	}
	t := newPromiseTally(len(config), own)
	for range asks {
		if t.done() {
			break
		}
		higher, err := t.add(<-ch)
		if err != nil {
			n.mu.Lock()
			oerr := n.observeBallotLocked(*higher)
			n.mu.Unlock()
			if oerr != nil {
				return nil, oerr
			}
			return nil, err
		}
	}
	if !t.done() {
		return nil, fmt.Errorf("%w: %d of %d voters promised ballot %s", wire.ErrNoQuorum, len(t.got), len(config), b)
	}
	return t, nil
}

// adopt copies best's log, the most up-to-date among the promises, into
// this node's log, unless it is this node's own.
func (n *Node) adopt(ctx context.Context, b meta.Ballot, best promiseReply) error {
	if best.id == n.cfg.ID {
		return nil
	}
	n.log.Info("adopting log", "from", best.id, "last_index", best.resp.LastIndex, "last_ballot", best.resp.LastBallot)
	n.logMu.Lock()
	defer n.logMu.Unlock()
	st, err := n.db.State()
	if err != nil {
		return err
	}
	// Entries up to the applied index are committed, so equal on both
	// sides: fetch from just after it.
	from := st.Applied + 1
	for from <= best.resp.LastIndex {
		rctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout)
		resp, err := n.cfg.Transport.Call(rctx, best.addr, &wire.FetchLog{Group: n.cfg.Group, Ballot: b, From: from, MaxBytes: n.cfg.MaxBatchBytes})
		cancel()
		if errCompacted(err) {
			if err := n.restoreFrom(ctx, best.addr, true); err != nil {
				return err
			}
			if st, err = n.db.State(); err != nil {
				return err
			}
			from = st.LastIndex + 1
			continue
		}
		if err != nil {
			return fmt.Errorf("fetch log from member %d: %w", best.id, err)
		}
		fr, ok := resp.(*wire.FetchLogResp)
		if !ok || len(fr.Entries) == 0 {
			return fmt.Errorf("%w: member %d sent no entries to adopt", wire.ErrNoQuorum, best.id)
		}
		if st, err = n.db.State(); err != nil {
			return err
		}
		if err := n.adoptEntries(ctx, fr.Entries, best.addr, st); err != nil {
			return err
		}
		from = fr.Entries[len(fr.Entries)-1].Index + 1
	}
	return nil
}

// adoptEntries writes fetched entries over this node's log from the first
// one that differs.
func (n *Node) adoptEntries(ctx context.Context, es []meta.Entry, from string, st store.LogState) error {
	// The chunks of entries already held too: this node will count itself
	// as holding them once it leads.
	if err := n.ensureChunks(ctx, es, from); err != nil {
		return err
	}
	es, err := newEntries(es, st.LastIndex, n.db.BallotAt)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return nil
	}
	if err := n.db.Append(es); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	tail := es[len(es)-1]
	n.last, n.lastBallot = tail.Index, tail.Ballot
	n.refreshConfigLocked()
	return nil
}
