package role

import (
	"fmt"

	"shoal/gossip"
)

// promotionWhy says, for the log, why this node promotes itself: what
// became of prev, the primary its last view followed (nil: none), as
// members (the view now) and gone (the ID of a primary this node proved
// gone, 0 if none) tell.
func promotionWhy(prev *gossip.Member, members []gossip.Member, gone uint64) string {
	if prev == nil {
		return "the group has no primary in the gossip view (it is forming, or every earlier primary is gone)"
	}
	who := fmt.Sprintf("the primary %s (term %d)", prev.Name, prev.Term)
	if gone == prev.ID {
		return who + " is gone: its peer port refuses connections, proven ahead of gossip"
	}
	for _, m := range members {
		if m.Name != prev.Name {
			continue
		}
		switch {
		case m.Status == gossip.StatusFailed:
			return who + " was declared dead by gossip (it stopped answering probes)"
		case m.Status == gossip.StatusLeft:
			return who + " left the cluster"
		case m.Role != gossip.RolePrimary:
			return fmt.Sprintf("%s no longer claims the primary role (it publishes %s)", who, m.Role)
		case m.Group != prev.Group:
			return fmt.Sprintf("%s now serves group %q", who, m.Group)
		case !m.InSync:
			return who + " is out of sync (its disk may refuse writes)"
		case m.Term > prev.Term:
			return fmt.Sprintf("%s moved to term %d", who, m.Term)
		}
		return fmt.Sprintf("%s is still in the view (%s), but no longer the one to follow", who, m.Status)
	}
	return who + " is no longer in the gossip view"
}
