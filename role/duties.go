package role

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"shoal/gossip"
	"shoal/meta"
	"shoal/replication"
	"shoal/wire"
)

// A primary's duties beyond replication: replace members that stay dead,
// fill a group short of members from the standby pool, and, on the meta
// group's primary, form a new group from standbys when every group is
// full. They run one at a time, off the election loop.

// duties is the primary's bookkeeping for them.
type duties struct {
	busy bool
	// deadSince is when each voter was first seen dead by this primary.
	deadSince map[uint64]time.Time
	// shortSince is when the group was first seen with fewer voters than
	// its size and no member waiting to join.
	shortSince time.Time
	// claimed is the standby last claimed for this group, and when; no
	// other claim goes out until it shows up or the claim goes stale.
	claimed   uint64
	claimedAt time.Time
	// formed is when this primary last formed a new group.
	formed time.Time
	// straySince is when each stray (a live member of the group that is
	// no voter while the group has its full size) was first seen.
	straySince map[uint64]time.Time
}

// claimPatience is how long a claimed standby has to show up in its new
// group (or a formed group to elect its primary) before another is tried.
const claimPatience = 20 * time.Second

// runDuties starts the duties due now, unless some are still running.
func (n *Node) runDuties(ctx context.Context, r *replication.Node, group string, st replication.Status, members []gossip.Member, now time.Time) {
	if n.cfg.ReplaceAfter < 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	d := &n.duties
	if d.busy {
		return
	}
	if d.deadSince == nil {
		d.deadSince = map[uint64]time.Time{}
	}
	dead := deadVoters(st.Voters, members, n.cfg.ID)
	for id := range d.deadSince {
		if !dead[id] {
			delete(d.deadSince, id)
		}
	}
	var overdue uint64
	for id := range dead {
		if d.deadSince[id].IsZero() {
			d.deadSince[id] = now
		}
		if now.Sub(d.deadSince[id]) >= n.cfg.ReplaceAfter && (overdue == 0 || id < overdue) {
			overdue = id
		}
	}
	short := len(st.Voters)-len(dead) < n.cfg.Replication.GroupSize && !hasJoiner(st.Voters, members, group)
	if !short {
		d.shortSince = time.Time{}
	} else if d.shortSince.IsZero() {
		d.shortSince = now
	}
	if d.claimed != 0 && (memberOf(members, d.claimed, group) || now.Sub(d.claimedAt) > claimPatience) {
		d.claimed = 0
	}
	var stray *gossip.Member
	strays := map[uint64]gossip.Member{}
	if len(dead) == 0 && len(st.Voters) >= n.cfg.Replication.GroupSize {
		strays = strayMembers(st.Voters, members, group, n.cfg.ID)
	}
	if d.straySince == nil {
		d.straySince = map[uint64]time.Time{}
	}
	for id := range d.straySince {
		if _, ok := strays[id]; !ok {
			delete(d.straySince, id)
		}
	}
	for id, m := range strays {
		if d.straySince[id].IsZero() {
			d.straySince[id] = now
		}
		if now.Sub(d.straySince[id]) >= n.cfg.ReplaceAfter && (stray == nil || id < stray.ID) {
			stray = &m
		}
	}
	switch {
	case overdue != 0:
		d.busy = true
		go n.replace(ctx, r, overdue)
	case short && d.claimed == 0 && now.Sub(d.shortSince) >= n.cfg.ReplaceAfter && len(dead) == 0:
		if s := pickStandbys(members, 1); len(s) == 1 {
			d.busy = true
			go n.fill(ctx, group, s[0])
		}
	case stray != nil:
		d.busy = true
		delete(d.straySince, stray.ID)
		go n.release(ctx, *stray, group)
	case group == n.cfg.MetaGroup && now.Sub(d.formed) > claimPatience:
		if ss, ok := planScaleOut(members, n.cfg.HighWater, n.cfg.Replication.GroupSize); ok {
			d.busy, d.formed = true, now
			go n.formGroup(ctx, ss)
		}
	}
}

func (n *Node) dutyDone() {
	n.mu.Lock()
	n.duties.busy = false
	n.mu.Unlock()
}

// replace removes a voter dead longer than ReplaceAfter through the log;
// the group is then short, and the next step claims a standby at once.
func (n *Node) replace(ctx context.Context, r *replication.Node, id uint64) {
	defer n.dutyDone()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Replication.RPCTimeout*2)
	defer cancel()
	n.log.Warn("member dead too long; removing it from the group", "member", id, "after", n.cfg.ReplaceAfter)
	if err := r.RemoveMember(ctx, id); err != nil {
		n.log.Warn("remove dead member", "member", id, "err", err)
		return
	}
	n.mu.Lock()
	delete(n.duties.deadSince, id)
	n.duties.shortSince = time.Now().Add(-n.cfg.ReplaceAfter)
	n.mu.Unlock()
}

// fill claims one standby for this group.
func (n *Node) fill(ctx context.Context, group string, s gossip.Member) {
	defer n.dutyDone()
	if err := n.claim(ctx, s, group, false); err != nil {
		n.log.Warn("claim standby", "standby", s.Name, "err", err)
		return
	}
	n.log.Info("claimed a standby to restore the group's size", "standby", s.Name, "group", group)
	n.mu.Lock()
	n.duties.claimed, n.duties.claimedAt = s.ID, time.Now()
	n.mu.Unlock()
}

// release returns a stray member to the standby pool.
func (n *Node) release(ctx context.Context, s gossip.Member, group string) {
	defer n.dutyDone()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Replication.RPCTimeout)
	defer cancel()
	if _, err := n.tr.Call(ctx, s.Addr, &wire.Release{Group: group, By: n.cfg.Name}); err != nil {
		n.log.Warn("release a member the group does not need", "member", s.Name, "err", err)
		return
	}
	n.log.Info("released a member the group does not need to the standby pool", "member", s.Name, "group", group)
}

// strayMembers lists the live members of group in the view, other than
// self, that are not voters: members removed while they were down, come
// back.
func strayMembers(voters []meta.Member, members []gossip.Member, group string, self uint64) map[uint64]gossip.Member {
	out := map[uint64]gossip.Member{}
	for _, m := range members {
		if m.ID != self && m.Live() && m.Serves(group) && !isVoter(voters, m.ID) {
			out[m.ID] = m
		}
	}
	return out
}

// formGroup turns standbys into a new group; the first bootstraps it.
func (n *Node) formGroup(ctx context.Context, ss []gossip.Member) {
	defer n.dutyDone()
	name := fmt.Sprintf("g-%x", ss[0].ID)
	n.log.Warn("every group is above the high-water mark; forming a new group from standbys", "group", name, "members", len(ss))
	boot := true
	for _, s := range ss {
		if err := n.claim(ctx, s, name, boot); err != nil {
			n.log.Warn("claim standby for a new group", "standby", s.Name, "group", name, "err", err)
			continue
		}
		boot = false
	}
}

func (n *Node) claim(ctx context.Context, s gossip.Member, group string, boot bool) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Replication.RPCTimeout)
	defer cancel()
	_, err := n.tr.Call(ctx, s.Addr, &wire.Claim{Group: group, Boot: boot, By: n.cfg.Name})
	if errors.Is(err, wire.ErrClaimed) {
		return fmt.Errorf("standby %s was taken by another group first: %w", s.Name, err)
	}
	return err
}

// deadVoters lists the voters, other than self, that the gossip view does
// not show alive or suspect in the group.
func deadVoters(voters []meta.Member, members []gossip.Member, self uint64) map[uint64]bool {
	dead := map[uint64]bool{}
	for _, v := range voters {
		if v.ID != self {
			dead[v.ID] = true
		}
	}
	for _, m := range members {
		if m.Live() && dead[m.ID] {
			delete(dead, m.ID)
		}
	}
	return dead
}

// hasJoiner reports whether a live member of the group is not a voter yet:
// it is catching up and will be added, so no standby is needed.
func hasJoiner(voters []meta.Member, members []gossip.Member, group string) bool {
	for _, m := range members {
		if m.Live() && m.Serves(group) && !isVoter(voters, m.ID) {
			return true
		}
	}
	return false
}

func memberOf(members []gossip.Member, id uint64, group string) bool {
	for _, m := range members {
		if m.ID == id && m.Group == group && m.Live() {
			return true
		}
	}
	return false
}

func isVoter(voters []meta.Member, id uint64) bool {
	return slices.ContainsFunc(voters, func(v meta.Member) bool { return v.ID == id })
}

// pickStandbys returns up to k live standbys, those with the most room
// first (ties by ID, so every primary would pick alike).
func pickStandbys(members []gossip.Member, k int) []gossip.Member {
	var ss []gossip.Member
	for _, m := range members {
		if m.Role == gossip.RoleStandby && m.Live() && m.Addr != "" {
			ss = append(ss, m)
		}
	}
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].Free() != ss[j].Free() {
			return ss[i].Free() > ss[j].Free()
		}
		return ss[i].ID > ss[j].ID
	})
	return ss[:min(k, len(ss))]
}

// planScaleOut decides whether to form a new group: when every group with
// a live member is above highWater of its capacity (a group is as full as
// its fullest live member) and size standbys are free. It returns them.
func planScaleOut(members []gossip.Member, highWater float64, size int) ([]gossip.Member, bool) {
	fullness := map[string]float64{}
	for _, m := range members {
		if m.Group == "" || !m.Live() || !m.Serves(m.Group) {
			continue
		}
		f := 0.0
		if m.Cap > 0 {
			f = float64(m.Used) / float64(m.Cap)
		}
		fullness[m.Group] = max(fullness[m.Group], f)
	}
	if len(fullness) == 0 {
		return nil, false
	}
	for _, f := range fullness {
		if f < highWater {
			return nil, false
		}
	}
	ss := pickStandbys(members, size)
	if len(ss) < size {
		return nil, false
	}
	return ss, true
}
