package role

import (
	"context"
	"fmt"

	"shoal/replication"
)

// ready reports whether this storage node does its part, for /readyz: it
// has joined the cluster's gossip and, in a group, leads it or is a
// voting member in sync (its log whole, its disk taking writes). A
// standby is ready once joined: it waits to be claimed.
func (n *Node) ready(context.Context) (bool, string) {
	n.mu.Lock()
	r, group, joined := n.repl, n.group, n.gossip != nil
	n.mu.Unlock()
	if !joined {
		return false, "starting: not joined to the cluster's gossip yet"
	}
	if r == nil {
		return true, "standby: joined, waiting to be claimed by a group"
	}
	st := r.Status()
	voter := isVoter(st.Voters, n.cfg.ID)
	switch {
	case st.DiskError != "":
		return false, fmt.Sprintf("member of %s whose disk refuses writes (%s): it takes no writes until the disk is fixed", group, st.DiskError)
	case st.Rebuilding:
		return false, fmt.Sprintf("member of %s rebuilding its log from the group", group)
	case st.Ready:
		return true, fmt.Sprintf("primary of %s, term %d", group, st.Ballot.Term)
	case st.Role != replication.Follower:
		return false, fmt.Sprintf("leading %s at term %d but not taking requests yet (recovering the log or forming the group)", group, st.Ballot.Term)
	case !voter:
		return false, fmt.Sprintf("member of %s catching up: not a voting member yet", group)
	case !st.InSync:
		return false, fmt.Sprintf("voting member of %s out of sync (installing a snapshot or behind its primary)", group)
	}
	return true, fmt.Sprintf("replica of %s in sync, term %d", group, st.Ballot.Term)
}
