package nemesis

import (
	"context"
	"fmt"
	"os/exec"

	"shoal/harness"
)

// group is the one storage group of a campaign's cluster.
const group = "g1"

// Cluster is one group of storage nodes and a router, each a shoal
// process in a host of its own, so that faults hit real processes over
// real links. The processes are harness processes: Kill, Pause, Resume
// and Start them directly.
type Cluster struct {
	*harness.Cluster
	Net *Net
}

// StartCluster starts n storage nodes of group g1 and a router on nt's
// hosts (it needs n+1 of them; the router gets the last), with data and
// logs under dir. WaitHealthy says when it serves.
func StartCluster(ctx context.Context, nt *Net, bin, dir string, n int, nodeFlags, routerFlags []string) (*Cluster, error) {
	return StartGroups(ctx, nt, bin, dir, []harness.Group{{Name: group, Size: n}}, 0, nodeFlags, routerFlags)
}

// StartGroups starts the storage nodes of groups (the first is the meta
// group), standbys and a router, each on a host of nt of its own: the
// nodes in group order, then the standbys, then the router.
func StartGroups(ctx context.Context, nt *Net, bin, dir string, groups []harness.Group, standbys int, nodeFlags, routerFlags []string) (*Cluster, error) {
	n := standbys
	for _, g := range groups {
		n += g.Size
	}
	if len(nt.Hosts) < n+1 {
		return nil, fmt.Errorf("nemesis: %d hosts for %d nodes and a router", len(nt.Hosts), n)
	}
	hosts := make([]harness.Host, n+1)
	for i := range hosts {
		h := nt.Hosts[i]
		hosts[i] = harness.Host{IP: h.IP, Command: func(name string, args ...string) *exec.Cmd { return nt.Command(h, name, args...) }}
	}
	hc, err := harness.Start(ctx, harness.Spec{Binary: bin, Dir: dir, Groups: groups, Standbys: standbys,
		NodeFlags: nodeFlags, RouterFlags: routerFlags, Hosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("nemesis: %w", err)
	}
	return &Cluster{Cluster: hc, Net: nt}, nil
}

// Host returns the host p runs in: node i in host i, the router in the
// one after the nodes.
func (c *Cluster) Host(p *harness.Proc) *Host {
	if p == c.Router {
		return c.Net.Hosts[len(c.Nodes)]
	}
	for i, q := range c.Nodes {
		if q == p {
			return c.Net.Hosts[i]
		}
	}
	return nil
}

// Restore resumes paused processes and starts again those killed. One
// that exited by itself stays down, for WaitHealthy to report.
func (c *Cluster) Restore() error {
	for _, p := range c.Servers() {
		if err := p.Resume(); err != nil {
			return err
		}
		if err := p.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Primary returns the node the router sees as g1's primary, or nil.
func (c *Cluster) Primary(ctx context.Context) *harness.Proc {
	p, _ := c.Cluster.Primary(ctx, group)
	return p
}
