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
	files map[string]time.Time // name → when cut
}

func (s *snapshotServer) add(db *store.DB, name string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string]time.Time{}
	}
	for n, t := range s.files {
		if now.Sub(t) > snapKeep {
			db.RemoveSnapshot(n)
			delete(s.files, n)
		}
	}
	s.files[name] = now
}

func (s *snapshotServer) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[name]
	return ok
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
	if name == "" {
		var err error
		if name, err = n.db.CutSnapshot(time.Now()); err != nil {
			return nil, err
		}
		n.snaps.add(n.db, name, time.Now())
	} else if !n.snaps.has(name) || filepath.Base(name) != name {
		return nil, fmt.Errorf("%w: no snapshot %q being served", meta.ErrNotFound, name)
	}
	data, size, err := n.db.ReadSnapshot(name, m.Offset, snapPiece)
	if err != nil {
		return nil, err
	}
	return &wire.FetchSnapResp{Name: name, Size: size, Data: data}, nil
}

// installSnapshot runs when the primary says this node is behind its
// compacted log.
func (n *Node) installSnapshot(from string) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		n.installing = false
		n.mu.Unlock()
		n.notifyChanged()
	}()
	n.notifyChanged()
	if err := n.restoreFrom(n.ctx, from, false); err != nil {
		n.log.Warn("install snapshot", "from", from, "err", err)
	}
}

// restoreFrom pulls a snapshot from the member at addr, fetches every chunk
// it references, and only then replaces this node's state with it: a node
// never holds metadata whose content it cannot serve. The transfer runs
// without logMu; the swap takes it unless the caller already holds it.
func (n *Node) restoreFrom(ctx context.Context, addr string, holdsLogMu bool) error {
	snap, err := n.db.ReceiveSnapshot(time.Now())
	if err != nil {
		return err
	}
	defer snap.Discard()
	if err := n.pullSnapshot(ctx, addr, snap); err != nil {
		return err
	}
	err = snap.Chunks(func(c meta.ChunkRef) error {
		if !n.ownsChunk(c) {
			return nil
		}
		return n.fetchChunk(ctx, c.Hash, addr)
	})
	if err != nil {
		return fmt.Errorf("fetch chunks of snapshot from %s: %w", addr, err)
	}
	if !holdsLogMu {
		n.logMu.Lock()
		defer n.logMu.Unlock()
	}
	st, err := snap.Install()
	if err != nil {
		return err
	}
	n.log.Info("installed snapshot", "from", addr, "applied", st.Applied, "last_index", st.LastIndex)
	n.mu.Lock()
	n.commit = st.Applied
	n.mu.Unlock()
	return n.reload()
}

// pullSnapshot copies the snapshot of the member at addr into w, piece by
// piece, and closes w, which makes it durable.
func (n *Node) pullSnapshot(ctx context.Context, addr string, w io.WriteCloser) error {
	var name string
	var off int64
	for {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.RPCTimeout*4)
		r, err := wire.Call[*wire.FetchSnapResp](cctx, n.cfg.Transport, addr, &wire.FetchSnap{Group: n.cfg.Group, Name: name, Offset: off})
		cancel()
		if err != nil {
			return fmt.Errorf("fetch snapshot from %s at %d: %w", addr, off, err)
		}
		name = r.Name
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
	return w.Close()
}
