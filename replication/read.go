package replication

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// Read serves a namespace read that reflects every write acknowledged
// before it began (the ReadIndex method): the machine notes the commit
// index and confirms with a majority that no higher ballot exists; the
// read then reads locally a state that has applied the entries up to
// that index (readAt).
func (n *Node) Read(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	resp, err := n.read(ctx, m)
	return resp, n.storeErr(err)
}

func (n *Node) read(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	if m.Kind == wire.ReadChunkGroups {
		located, err := n.db.ChunkGroups(m.Hashes)
		if err != nil {
			return nil, err
		}
		return &wire.ReadResp{Located: located}, nil
	}
	index, err := n.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	var resp *wire.ReadResp
	// A quick read (one a batch may hold, wire.Batchable) may read an
	// apply transaction held open, which waits for it; a directory page,
	// every user, a page of an owner's files or a batch of chunk
	// references have the transaction commit instead.
	if err := n.readAt(ctx, index, wire.Batchable(m.Kind), func(r store.Reader) { resp, err = n.readFrom(r, m) }); err != nil {
		return nil, err
	}
	return resp, err
}

// ReadBatch serves several quick reads as Read serves one, with one
// confirmation that this node leads and one wait for what it applied
// (readAt) for them all: each then reflects every write acknowledged
// before the batch arrived, so before each of them began. A read that
// fails has its error in the answer's Errs and the others are answered,
// unless the error is this node's rather than the read's (it no longer
// leads): then the batch fails whole, and the router sends it on.
func (n *Node) ReadBatch(ctx context.Context, m *wire.ReadBatch) (*wire.ReadBatchResp, error) {
	resp, err := n.readBatch(ctx, m)
	return resp, n.storeErr(err)
}

func (n *Node) readBatch(ctx context.Context, m *wire.ReadBatch) (*wire.ReadBatchResp, error) {
	if len(m.Reads) == 0 || len(m.Reads) > wire.MaxReadBatch {
		return nil, fmt.Errorf("%w: a read batch of %d reads: send 1 to %d", wire.ErrBadMessage, len(m.Reads), wire.MaxReadBatch)
	}
	for i := range m.Reads {
		if k := m.Reads[i].Kind; !wire.Batchable(k) {
			return nil, fmt.Errorf("%w: read kind %d cannot be batched: send it alone", wire.ErrBadMessage, k)
		}
	}
	index, err := n.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	resp := &wire.ReadBatchResp{Resps: make([]wire.ReadResp, len(m.Reads))}
	var deposed error
	err = n.readAt(ctx, index, true, func(r store.Reader) {
		for i := range m.Reads {
			rr, err := n.readFrom(r, &m.Reads[i])
			if errors.Is(err, wire.ErrNotPrimary) {
				deposed = err
				return
			}
			if err != nil {
				if resp.Errs == nil {
					resp.Errs = make([]*wire.ErrorMsg, len(m.Reads))
				}
				resp.Errs[i] = wire.BatchError(err)
				continue
			}
			resp.Resps[i] = *rr
		}
	})
	if err = cmp.Or(err, deposed); err != nil {
		return nil, err
	}
	if c := n.db.Corrupt(); c != nil {
		return nil, c // a store found corrupt while reading answers nothing
	}
	return resp, nil
}

// readFrom serves m from r: the store's last commit, or an apply
// transaction held open, lent to this read while the transaction's own
// goroutine waits (readAt). It must only read.
func (n *Node) readFrom(r store.Reader, m *wire.Read) (*wire.ReadResp, error) {
	resp := &wire.ReadResp{}
	var err error
	switch m.Kind {
	case wire.ReadLookup:
		resp.Inode, err = r.LookupAt(m.Dir, m.Path, m.Cred, m.Want)
	case wire.ReadReadDir:
		limit := m.Limit
		if limit <= 0 || limit > wire.MaxDirPage {
			limit = wire.MaxDirPage
		}
		resp.Entries, resp.More, err = r.ReadDirPage(m.Dir, m.Path, m.Cred, m.AfterName, limit)
	case wire.ReadCheckPut:
		err = r.CheckPut(m.Dir, m.Path, m.Cred)
	case wire.ReadUser, wire.ReadUserNamed:
		var u meta.User
		var ok bool
		if m.Kind == wire.ReadUser {
			u, ok, err = r.UserByToken(m.Token)
		} else {
			u, ok, err = r.UserByName(m.Name)
		}
		if ok {
			resp.User = &u
		}
	case wire.ReadUsers:
		resp.Users, err = r.Users()
	case wire.ReadOwned:
		resp.Owned, resp.Next, err = r.Owned(m.Uid, m.After, m.Limit)
	case wire.ReadLock:
		t := n.term.Load()
		if t == nil {
			return nil, n.notPrimaryIn(n.view.Load())
		}
		var s meta.LockState
		if s, err = r.LockState(m.Dir, m.Path, m.Cred, m.Name, t.clock()); err == nil {
			resp.Lock = &s
		}
	case wire.ReadChunkRefs:
		if resp.Referenced, err = r.ChunkReferenced(m.Hashes, m.Groups...); err != nil {
			return nil, err
		}
		return resp, nil
	default:
		return nil, fmt.Errorf("%w: unknown read kind %d", wire.ErrBadMessage, m.Kind)
	}
	// A namespace error is the answer; any other is a failure to read.
	if err != nil && (meta.CodeOf(err) == meta.CodeInvalid || n.db.Corrupt() != nil) {
		return nil, err
	}
	resp.Code = meta.CodeOf(err)
	return resp, nil
}

// readIndex returns the entry through which a read on this primary must
// see the log to see every write answered before it was called
// (linearizability): the machine confirms with a majority, after the
// call, that no higher ballot has been promised, so no later primary
// answered anything; the read must then see through the last entry whose
// result was computed here, which covers every write this primary
// answered (answerApplied records it before answering). Those of earlier
// primaries come before this one's first entry, applied before it was
// ready. Entries committed after the last one computed were answered to
// nobody: a read may see them or not, and is ordered before them if not.
// The commit index the machine returns bounds the index too (what it
// computed beyond was committed after the call).
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if v := n.view.Load(); !v.status.Ready {
		return 0, n.notPrimaryIn(v)
	}
	res, err := n.await(ctx, event{id: n.seq.Add(1), read: true, done: make(chan result, 1)})
	if err != nil {
		return 0, err
	}
	return min(res.index, n.computed.Load()), nil
}
