package role

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"shoal/gossip"
	"shoal/replication"
)

// A follower finds out that its primary was killed well before gossip
// does: the primary's appends and heartbeats stop at once, and a
// connection to its address is then refused, since nothing listens there
// any more. Gossip needs a probe of the dead node to fail, then the
// suspicion to run out (about 350–450 ms with the default timings). The
// follower passes what it proved to the election (gossip.Self.Gone), so
// the candidate promotes without waiting for gossip. A timeout proves
// nothing (a busy or cut-off primary looks the same) and leaves the
// decision to gossip.

// goneDial bounds the connection attempt to a silent primary. A refusal
// comes back at once; waiting longer would prove nothing more.
const goneDial = 200 * time.Millisecond

// goneProbe is what a follower last found out about its primary's address.
type goneProbe struct {
	mu      sync.Mutex
	running bool
	addr    string    // the address probed
	started time.Time // when the last probe began
	refused bool      // it was refused: nothing listened there
	logged  string    // the address the proof was last logged for
	done    chan struct{}
}

// primaryGone returns the ID of the primary of this node's view when this
// node, a follower, has proof that it is not running; 0 otherwise. When
// the primary has been silent for more than a heartbeat and a half it
// starts a probe of its address in the background; done is signalled when
// the probe ends, so the loop decides again.
func (n *Node) primaryGone(ctx context.Context, r *replication.Node, st replication.Status, members []gossip.Member, group string) uint64 {
	if st.Role != replication.Follower {
		return 0
	}
	p := gossip.Elect(members, group).Primary
	if p == nil || p.ID == n.cfg.ID || p.Addr == "" {
		return 0
	}
	since, heard := r.SincePrimary()
	if !heard {
		return 0 // it never followed a primary: gossip decides
	}
	now := time.Now()
	lastHeard := now.Add(-since)
	beat := n.cfg.Replication.Heartbeat
	g := &n.gone
	g.mu.Lock()
	defer g.mu.Unlock()
	// A refusal counts for two heartbeats: a primary restarted on the
	// same address, or elected again later, must not be deposed by a
	// refusal from before (a new probe would connect). While the primary
	// stays silent a new probe starts every half heartbeat, so a dead one
	// stays proved gone.
	if g.addr == p.Addr && g.refused && !g.running && lastHeard.Before(g.started) && now.Sub(g.started) < 2*beat {
		if g.logged != p.Addr {
			g.logged = p.Addr
			n.log.Info("the primary's stream stopped and its address refuses connections: it is not running; electing without waiting for gossip",
				"primary", p.Name, "addr", p.Addr, "silent_ms", since.Milliseconds())
		}
		return p.ID
	}
	if since < beat*3/2 || g.running || g.addr == p.Addr && now.Sub(g.started) < beat/2 {
		return 0
	}
	g.running, g.addr, g.started, g.refused = true, p.Addr, now, false
	go func(addr string) {
		dctx, cancel := context.WithTimeout(ctx, goneDial)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		if c != nil {
			c.Close()
		}
		g.mu.Lock()
		g.running = false
		g.refused = errors.Is(err, syscall.ECONNREFUSED)
		if !g.refused {
			g.logged = ""
		}
		g.mu.Unlock()
		select {
		case g.done <- struct{}{}:
		default:
		}
	}(p.Addr)
	return 0
}
