package role

// A node's metadata store found corrupt, at start or while serving, is
// never served from nor repaired in place: which of its records are still
// right cannot be known, and the group holds a whole copy. The node moves
// meta.db aside and rejoins its group with an empty one, marked
// rebuilding, which the group fills as it fills a wiped disk: the primary
// sends it the log or a snapshot, repair confirms it holds every chunk
// (kept: each is checked against its hash whenever it is read), and only
// then does it count toward a majority that recovers the log, or lead.

import (
	"errors"
	"fmt"
	"time"

	"shoal/meta"
	"shoal/store"
)

// openStore opens the node's store, replacing a corrupt meta.db with an
// empty one first.
func (n *Node) openStore() (*store.DB, error) {
	db, err := store.Open(n.cfg.DataDir)
	if !errors.Is(err, meta.ErrCorrupt) {
		return db, err
	}
	n.log.Error("meta.db is corrupt: this node will not serve from it; it moves the file aside and rebuilds its metadata from its group's other members",
		"err", err)
	q, qerr := store.Quarantine(n.cfg.DataDir, time.Now())
	if qerr != nil {
		return nil, fmt.Errorf("%w; moving it aside failed too: %w", err, qerr)
	}
	n.logQuarantine(q)
	return store.Open(n.cfg.DataDir)
}

// replaceStore handles a store that found meta.db corrupt while the node
// served: the group's replication (already refusing every request, see
// replication.Node) is closed, meta.db swapped for an empty one, and the
// node rejoins its group with a new process start, so the primary's
// verdicts about the old one (caught up, holding every chunk) do not
// carry over.
func (n *Node) replaceStore() {
	n.log.Error("meta.db is corrupt: this node stops serving its group, moves the file aside and rebuilds its metadata from the group's other members",
		"err", n.db.Corrupt())
	n.mu.Lock()
	r, group, boot := n.repl, n.group, n.boot
	n.mu.Unlock()
	// The group elects another primary only once gossip no longer shows
	// this node leading: say so now, and again once replication is shut.
	n.publishTags()
	if r != nil {
		r.Close()
	}
	n.publishTags()
	q, err := n.db.Quarantine(time.Now())
	if err != nil {
		n.storeLost = true
		n.log.Error("could not move the corrupt meta.db aside: this node serves nothing more until it is restarted", "err", err)
		return
	}
	n.logQuarantine(q)
	if group == "" {
		return
	}
	if err := n.joinGroup(group, boot); err != nil {
		n.log.Error("could not rejoin the group after replacing meta.db: this node serves nothing more until it is restarted", "group", group, "err", err)
	}
}

func (n *Node) logQuarantine(q store.Quarantined) {
	n.log.Warn("moved the corrupt meta.db aside and started an empty one: this member rejoins its group as after a wiped disk, catches up from the primary, and counts toward a majority or leads again only once the primary finds it whole",
		"moved_to", q.Moved, "promise", q.Promise, "promise_kept", q.PromiseKept)
	if !q.PromiseKept {
		n.log.Warn("the corrupt meta.db's promise could not be read back: until gossip shows this member the current primary, it could accept appends from a deposed one")
	}
}
