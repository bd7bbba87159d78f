package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"

	"shoal/harness"
)

// Kind is one sort of fault the nemesis injects.
type Kind int

// The faults. Partitions are real (see Net); kills are SIGKILL; pauses are
// SIGSTOP, so a frozen primary keeps its sockets and wakes up deposed.
const (
	KillNode         Kind = iota // kill -9 a random storage node
	KillPrimary                  // kill -9 the primary
	KillRouter                   // kill -9 the router
	PausePrimary                 // SIGSTOP the primary
	IsolatePrimary               // the primary | everyone else
	SplitGroup                   // one random node | the other two
	CutRouterPrimary             // the router cannot reach the primary, both ways
	AsymmetricCut                // the primary's packets to the others are dropped, theirs reach it
	numKinds
)

var kindNames = [...]string{"kill-node", "kill-primary", "kill-router", "pause-primary",
	"isolate-primary", "split-1|2", "cut-router-primary", "asymmetric-cut"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Inject applies a fault of kind k and returns how to undo it. The
// primary is the one the router sees now; with none, a random node.
func (c *Cluster) Inject(ctx context.Context, k Kind, r *rand.Rand) (undo func() error, desc string, err error) {
	primary := c.Primary(ctx)
	if primary == nil {
		primary = c.Nodes[r.IntN(len(c.Nodes))]
	}
	others := func(p *harness.Proc) []*Host {
		var hs []*Host
		for _, q := range c.Nodes {
			if q != p {
				hs = append(hs, c.Host(q))
			}
		}
		return hs
	}
	switch k {
	case KillNode:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		p.Kill()
		return p.Start, "kill -9 " + p.Name, nil
	case KillPrimary:
		primary.Kill()
		return primary.Start, "kill -9 primary " + primary.Name, nil
	case KillRouter:
		c.Router.Kill()
		return c.Router.Start, "kill -9 router", nil
	case PausePrimary:
		if err := primary.Pause(); err != nil {
			return nil, "", err
		}
		return primary.Resume, "pause primary " + primary.Name, nil
	case IsolatePrimary:
		err := c.Net.Partition([]*Host{c.Host(primary)}, append(others(primary), c.Host(c.Router)))
		return c.Net.Heal, "isolate primary " + primary.Name, err
	case SplitGroup:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		err := c.Net.Partition([]*Host{c.Host(p)}, others(p))
		return c.Net.Heal, "split " + p.Name + " | the other two", err
	case CutRouterPrimary:
		err := c.Net.Partition([]*Host{c.Host(c.Router)}, []*Host{c.Host(primary)})
		return c.Net.Heal, "cut router | primary " + primary.Name, err
	case AsymmetricCut:
		for _, h := range others(primary) {
			if err := c.Net.Cut(c.Host(primary), h); err != nil {
				return c.Net.Heal, "", err
			}
		}
		return c.Net.Heal, "drop primary " + primary.Name + "'s packets to the others", nil
	}
	return nil, "", fmt.Errorf("nemesis: unknown fault %d", k)
}
