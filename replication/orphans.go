package replication

import (
	"context"
	"time"

	"shoal/meta"
)

// orphanSweep is how often a primary looks for orphans (files unlinked
// while a mount had them open) whose lease ran out: a mount that died
// leaves them for at most its lease and this long.
const orphanSweep = 2 * time.Second

// collectOrphans has the group drop the orphans whose lease ran out by
// its clock (see store/orphans.go), when there are any.
func (n *Node) collectOrphans(l *term) {
	if n.term.Load() != l || !n.view.Load().status.Ready {
		return
	}
	due, err := n.db.OrphansDue(l.clock())
	if err != nil {
		n.log.Warn("could not look for orphans whose lease ran out; will look again", "err", err)
		return
	}
	if !due {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, n.cfg.RPCTimeout)
	defer cancel()
	if _, err := n.Propose(ctx, meta.Op{Kind: meta.OpCollectOrphans}); err != nil && l.ctx.Err() == nil {
		n.log.Warn("could not collect the orphans whose lease ran out; will try again", "err", err)
	}
}
