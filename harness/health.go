package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/client"
)

// queryLimit bounds one question to the router while polling it: a router
// that hangs is asked again, not waited on.
const queryLimit = 2 * time.Second

// View asks the router for /v1/cluster as the admin.
func (c *Cluster) View(ctx context.Context) (client.Cluster, error) {
	c.mu.Lock()
	if c.viewer == nil {
		cl, err := c.Client(queryLimit, -1)
		if err != nil {
			c.mu.Unlock()
			return client.Cluster{}, err
		}
		c.viewer = cl
	}
	cl := c.viewer
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, queryLimit)
	defer cancel()
	return cl.Cluster(ctx)
}

// Primary returns the storage node the router shows as group's primary,
// or nil (and why) if it shows none that is a node of the cluster.
func (c *Cluster) Primary(ctx context.Context, group string) (*Proc, error) {
	view, err := c.View(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the primary of %s: %w", group, err)
	}
	g, ok := groupOf(view, group)
	if !ok || g.Primary == "" {
		return nil, fmt.Errorf("the router shows no primary of group %s", group)
	}
	p := c.Node(g.Primary)
	if p == nil {
		return nil, fmt.Errorf("the router shows %s as primary of %s, and the cluster has no such node", g.Primary, group)
	}
	return p, nil
}

// WaitGroup waits until the router shows group with a primary (other than
// notPrimary, if given) and at least n members alive and in sync, and
// returns the group as shown then. ctx bounds the wait (see WaitFor).
func (c *Cluster) WaitGroup(ctx context.Context, group string, n int, notPrimary string) (client.Group, error) {
	var g client.Group
	what := fmt.Sprintf("group %s with a primary and %d members alive and in sync", group, n)
	if notPrimary != "" {
		what = fmt.Sprintf("group %s with a primary other than %s and %d members alive and in sync", group, notPrimary, n)
	}
	err := WaitFor(ctx, what, func() (bool, error) {
		view, err := c.View(ctx)
		if err != nil {
			return false, fmt.Errorf("the router did not answer: %w", err)
		}
		var ok bool
		g, ok = groupOf(view, group)
		if err := groupReady(view, g, ok, n, notPrimary); err != nil {
			return false, err
		}
		return true, nil
	})
	return g, err
}

// WaitCaughtUp waits until group's primary reports member name live and
// holding the group's log up to its commit index on disk. A node just
// restarted needs this rather than WaitGroup: until its new process's
// gossip arrives, the router may still show the killed one's tags, in
// sync. ctx bounds the wait (see WaitFor).
func (c *Cluster) WaitCaughtUp(ctx context.Context, group, name string) error {
	return WaitFor(ctx, fmt.Sprintf("%s to hold group %s's committed log", name, group), func() (bool, error) {
		view, err := c.View(ctx)
		if err != nil {
			return false, fmt.Errorf("the router did not answer: %w", err)
		}
		g, ok := groupOf(view, group)
		switch {
		case !ok:
			return false, errors.New("the router does not list the group")
		case g.Error != "":
			return false, errors.New(g.Error)
		}
		for _, m := range g.MemberDetails {
			if m.Name == name {
				if !m.Live || m.Match < g.Commit {
					return false, fmt.Errorf("the primary %s reports %s live %v, holding the log to %d of %d", g.Primary, name, m.Live, m.Match, g.Commit)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("the primary %s does not list %s", g.Primary, name)
	})
}

// WaitHealthy waits until every group of the spec has a primary and all
// its members alive and in sync. ctx bounds the wait (see WaitFor).
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for _, g := range c.spec.Groups {
		if _, err := c.WaitGroup(ctx, g.Name, g.Size, ""); err != nil {
			return err
		}
	}
	return nil
}

// groupReady says what view lacks for group g (found: ok) to have a
// primary other than notPrimary and n members alive and in sync.
func groupReady(view client.Cluster, g client.Group, ok bool, n int, notPrimary string) error {
	if !ok {
		return errors.New("the router does not list the group")
	}
	inSync := 0
	for _, nd := range view.Nodes {
		if nd.Group == g.Name && nd.InSync && nd.Status == "alive" {
			inSync++
		}
	}
	switch {
	case g.Primary == "":
		return fmt.Errorf("no primary yet, %d of %d members in sync", inSync, n)
	case g.Primary == notPrimary:
		return fmt.Errorf("%s is still primary, %d of %d members in sync", g.Primary, inSync, n)
	case inSync < n:
		return fmt.Errorf("primary %s, %d of %d members in sync", g.Primary, inSync, n)
	}
	return nil
}

// groupOf returns the group named name in view.
func groupOf(view client.Cluster, name string) (client.Group, bool) {
	for _, g := range view.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return client.Group{}, false
}
