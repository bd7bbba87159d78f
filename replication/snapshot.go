package replication

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"shoal/meta"
	"shoal/store"
	"shoal/wire"
)

// snapPiece is the most snapshot data sent in one message.
const snapPiece = 4 << 20

// snapKeep is how long a served snapshot file stays for a slow receiver.
const snapKeep = 10 * time.Minute

// snapshotServer keeps the snapshot files being read by receivers: each is
// cut once and read piece by piece, so every piece comes from one
// consistent image.
type snapshotServer struct {
	mu    sync.Mutex
	files map[string]servedSnap
}

// servedSnap is a snapshot file being served: when it was cut and the
// SHA-256 of its content, sent with every piece.
type servedSnap struct {
	cut time.Time
	sum []byte
}

func (s *snapshotServer) add(db *store.DB, name string, sum []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string]servedSnap{}
	}
	for n, f := range s.files {
		if now.Sub(f.cut) > snapKeep {
			db.RemoveSnapshot(n)
			delete(s.files, n)
		}
	}
	s.files[name] = servedSnap{cut: now, sum: sum}
}

// sum returns the SHA-256 of the snapshot file name, if it is served.
func (s *snapshotServer) sum(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[name]
	return f.sum, ok
}

func (s *snapshotServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = nil
}

func (n *Node) handleFetchSnap(m *wire.FetchSnap) (wire.Message, error) {
	if err := n.checkGroup(m.Group); err != nil {
		return nil, err
	}
	name := m.Name
	sum, ok := n.snaps.sum(name)
	if name == "" {
		cut, s, err := n.db.CutSnapshot(time.Now())
		if err != nil {
			return nil, n.storeErr(err)
		}
		name, sum = cut, s[:]
		n.snaps.add(n.db, name, sum, time.Now())
	} else if !ok || filepath.Base(name) != name {
		return nil, fmt.Errorf("%w: no snapshot %q being served", meta.ErrNotFound, name)
	}
	data, size, err := n.db.ReadSnapshot(name, m.Offset, snapPiece)
	if err != nil {
		return nil, err
	}
	return &wire.FetchSnapResp{Name: name, Size: size, Data: data, Sum: sum}, nil
}

// startTransfer pulls a snapshot from the member at addr, and every chunk
// it references, in the background; the run goroutine installs it
// (install), so a node never holds metadata whose content it cannot
// serve.
func (n *Node) startTransfer(addr string) {
	n.transfers.Add(1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.transfers.Add(-1)
		snap, err := n.transfer(n.ctx, addr)
		select {
		case n.events <- event{xfer: &transfer{snap: snap, from: addr, err: err}}:
		case <-n.ctx.Done():
			if snap != nil {
				snap.Discard()
			}
		}
	}()
}

func (n *Node) transfer(ctx context.Context, addr string) (*store.IncomingSnapshot, error) {
	snap, err := n.db.ReceiveSnapshot(time.Now())
	if err != nil {
		return nil, err
	}
	if err := n.pullSnapshot(ctx, addr, snap); err != nil {
		snap.Discard()
		return nil, err
	}

	err = snap.Chunks(func(c meta.ChunkRef) error {
		if !ownsChunk(n.cfg.Group, c) {
			return nil
		}
		return n.fetchChunk(ctx, c.Hash, addr)
	})
	if err != nil {
		snap.Discard()
		return nil, fmt.Errorf("fetch chunks of snapshot from %s: %w", addr, err)
	}
	return snap, nil
}

// install replaces this node's state with a transferred snapshot and
// tells the machine.
func (n *Node) install(t transfer) {
	err := t.err
	if err == nil {
		var st store.LogState
		st, err = t.snap.Install()
		t.snap.Discard()
		if err == nil {
			n.log.Info("installed snapshot", "from", t.from, "applied", st.Applied, "last_index", st.LastIndex)
			if st.Applied > n.commitIdx.Load() {
				n.commitIdx.Store(st.Applied)
			}
			n.setApplied(st.Applied)
		}
	}
	if err != nil {
		err = fmt.Errorf("install snapshot from %s: %w", t.from, err)
	}
	promised, perr := n.db.Promised()
	if err == nil && perr != nil {
		err = perr
	}
	n.step(InRestored{Promised: promised, Err: err})
}

// pullSnapshot copies the snapshot of the member at addr into snap, piece
// by piece, closes it, which makes it durable, and verifies it against
// the SHA-256 the member sent and record by record.
func (n *Node) pullSnapshot(ctx context.Context, addr string, snap *store.IncomingSnapshot) error {
	var sum []byte
	err := n.pullPieces(ctx, addr, snap, &sum)
	if err == nil && sum == nil {
		n.log.Warn("a snapshot came without its SHA-256 (its sender runs an older version): it is checked record by record only", "from", addr)
	}
	if err == nil {
		err = snap.Close()
	}
	if err == nil {
		err = snap.Verify(sum)
	}
	if err != nil {
		return fmt.Errorf("snapshot from %s: %w", addr, err)
	}
	return nil
}

// pullPieces copies the pieces of a snapshot of the member at addr into
// w, and the SHA-256 the member sent with them into sum.
func (n *Node) pullPieces(ctx context.Context, addr string, w io.Writer, sum *[]byte) error {
	var name string
	var off int64
	for {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout*4)
		r, err := wire.Call[*wire.FetchSnapResp](cctx, n.cfg.Transport, addr, &wire.FetchSnap{Group: n.cfg.Group, Name: name, Offset: off})
		cancel()
		if err != nil {
			return fmt.Errorf("fetch snapshot from %s at %d: %w", addr, off, err)
		}
		name, *sum = r.Name, r.Sum
		if _, err := w.Write(r.Data); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		off += int64(len(r.Data))
		if off >= r.Size {
			break
		}
		if len(r.Data) == 0 {
			return fmt.Errorf("fetch snapshot from %s: no progress at %d of %d", addr, off, r.Size)
		}
	}
	return nil
}
