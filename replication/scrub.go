package replication

import (
	"errors"
	"time"

	"shoal/meta"
)

// scrubLoop re-reads every chunk at rest at ScrubRate bytes per second,
// forever. Reading verifies the hash; a corrupt copy is dropped by the
// store and fetched again from another member at once (the primary's
// repair round would bring it back too, within a round).
func (n *Node) scrubLoop() {
	defer n.wg.Done()
	if n.cfg.ScrubRate <= 0 {
		return
	}
	// Pausing for every small chunk would cost more than reading it: the
	// scrubber sleeps once its reads owe at least this much time.
	const minPause = 20 * time.Millisecond
	var owed time.Duration
	for {
		hs := n.db.Chunks.ListAll()
		if len(hs) == 0 {
			owed = time.Second
		}
		for _, h := range hs {
			size, ok := n.db.Chunks.Size(h)
			if !ok {
				continue // collected meanwhile
			}
			_, err := n.db.Chunks.Get(h)
			corrupt := errors.Is(err, meta.ErrCorrupt)
			n.cfg.Metrics.scrubbed(size, corrupt)
			if corrupt {
				n.scrubRepair(h)
			}
			owed += time.Duration(float64(size) / float64(n.cfg.ScrubRate) * float64(time.Second))
			if owed < minPause {
				continue
			}
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(owed):
			}
			owed = 0
		}
		if owed > 0 {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(owed):
			}
			owed = 0
		}
	}
}

// verifyLoop re-reads the metadata store at rest, a bucket at a time
// (each in one short read transaction), at ScrubRate bytes per second,
// a pass every MetaScrubEvery at most: every record against its checksum,
// every bucket against its sum. The first pass waits that long too: the
// store was checked whole when it was opened. A mismatch marks the store
// corrupt, which stops this node (see run) and has its owner move the
// store aside and rebuild it from the group.
func (n *Node) verifyLoop() {
	defer n.wg.Done()
	if n.cfg.ScrubRate <= 0 || n.cfg.MetaScrubEvery <= 0 {
		return
	}
	const minPause = 20 * time.Millisecond
	sleep := func(d time.Duration) bool {
		select {
		case <-n.ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	start := time.Now()
	for {
		if !sleep(n.cfg.MetaScrubEvery - time.Since(start)) {
			return
		}
		start = time.Now()
		var owed time.Duration
		names, err := n.db.Buckets()
		for _, name := range names {
			if err != nil {
				break
			}
			var read int64
			read, err = n.db.VerifyBucket(name)
			owed += time.Duration(float64(read) / float64(n.cfg.ScrubRate) * float64(time.Second))
			if owed >= minPause {
				if !sleep(owed) {
					return
				}
				owed = 0
			}
		}
		if n.db.Corrupt() != nil {
			return // run stops the node; its owner replaces the store
		}
		if err != nil {
			n.log.Warn("verify the metadata store", "err", err)
		}
		if !sleep(owed) {
			return
		}
	}
}

// scrubRepair fetches a chunk whose copy here was corrupt from a peer.
func (n *Node) scrubRepair(h meta.Hash) {
	v := n.view.Load()
	var addrs []string
	for _, p := range v.peers {
		addrs = append(addrs, p.Addr)
	}
	if l := v.status.Leader; l != "" && l != n.cfg.Addr {
		addrs = append(addrs, l)
	}
	if err := n.fetchFromAny(n.ctx, h, addrs); err != nil {
		n.log.Warn("scrub found a corrupt chunk and could not fetch it again yet; the primary's repair will", "chunk", h, "err", err)
		return
	}
	n.log.Warn("scrub found a corrupt chunk and replaced it from a peer", "chunk", h)
}
