package router

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"

	"shoal/api"
	"shoal/gossip"
	"shoal/wire"
)

// serveCluster answers GET /v1/cluster. Nodes and each group's name, meta,
// primary, term, members, used and free come from this router's gossip
// view; chunks, under_replicated, repair and member_details from the
// group's primary (a GroupStatus call), and are zero or empty when "error"
// is set.
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	ms := s.cfg.Members()
	out := api.Cluster{Nodes: []api.Node{}, Groups: []api.Group{}, Standbys: []string{}, Departed: []api.Departed{}}
	groups := map[string]*api.Group{}
	group := func(name string) *api.Group {
		g := groups[name]
		if g == nil {
			g = &api.Group{Name: name, Meta: name == s.be.metaGroup(), Members: []string{}, MemberDetails: []api.GroupMember{}}
			groups[name] = g
		}
		return g
	}
	group(s.be.metaGroup()) // listed even with no member, to show it is missing
	for _, m := range ms {
		addr := m.Addr
		if m.Role == gossip.RoleRouter {
			addr = m.HTTP
		}
		out.Nodes = append(out.Nodes, api.Node{ID: nodeID(m.ID), Name: m.Name, Role: string(m.Role), Group: m.Group, Term: m.Term,
			Status: m.Status.String(), Addr: addr, InSync: m.InSync && m.Live(), Used: m.Used, Cap: m.Cap})
		if m.Role == gossip.RoleStandby && m.Group == "" {
			out.Standbys = append(out.Standbys, m.Name)
		}
		if m.Group != "" {
			g := group(m.Group)
			g.Members = append(g.Members, m.Name)
		}
	}
	for _, sp := range GroupSpaces(ms) {
		g := group(sp.Name)
		g.Used = sp.Used
		if sp.Free != Unlimited {
			g.Free = &sp.Free
		}
	}
	var wg sync.WaitGroup
	for name, g := range groups {
		d := gossip.Elect(ms, name)
		if d.Primary != nil {
			g.Primary, g.Term = d.Primary.Name, d.Primary.Term
		} else {
			g.Term = d.MaxTerm
		}
		sort.Strings(g.Members)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.groupStatus(r.Context(), g, d.Primary)
		}()
	}
	wg.Wait()
	out.Nodes = s.dropDeparted(out.Nodes, groups, &out.Departed)
	for _, g := range groups {
		out.Groups = append(out.Groups, *g)
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].Name < out.Nodes[j].Name })
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	sort.Strings(out.Standbys)
	sort.Slice(out.Departed, func(i, j int) bool { return out.Departed[i].Name < out.Departed[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// dropDeparted moves out of nodes, and out of their group's members, the
// nodes that gossip sees as failed or left and that their group's primary
// no longer lists (they were replaced or removed), into departed with when
// and why, as this router's events saw it. A group whose primary did not
// report keeps its nodes: nothing says they left.
func (s *Server) dropDeparted(nodes []api.Node, groups map[string]*api.Group, departed *[]api.Departed) []api.Node {
	kept := nodes[:0]
	for _, n := range nodes {
		g := groups[n.Group]
		if g == nil || g.Error != "" {
			kept = append(kept, n)
			continue
		}
		if n.Status == gossip.StatusAlive.String() || n.Status == gossip.StatusSuspect.String() ||
			slices.ContainsFunc(g.MemberDetails, func(m api.GroupMember) bool { return m.Name == n.Name }) {
			kept = append(kept, n)
			continue
		}
		d, ok := s.events.departure(n.Name)
		if !ok || d.Group != n.Group {
			d = api.Departed{Name: n.Name, Group: n.Group, Why: fmt.Sprintf("%s is %s and no longer a member of group %s", n.Name, n.Status, n.Group)}
		}
		*departed = append(*departed, d)
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == n.Name })
	}
	return kept
}

// groupStatus fills g with what the group's primary reports, or g.Error.
func (s *Server) groupStatus(ctx context.Context, g *api.Group, primary *gossip.Member) {
	if primary == nil {
		if len(g.Members) == 0 {
			g.Error = s.be.noMember(g.Name).Error()
		} else {
			g.Error = fmt.Sprintf("%v for group %q: an election may be in progress", ErrNoPrimary, g.Name)
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
	defer cancel()
	info, err := wire.Call[*wire.GroupInfo](ctx, s.cfg.Transport, primary.Addr, &wire.GroupStatus{Group: g.Name})
	if err != nil {
		g.Error = fmt.Sprintf("status of group %q from its primary %s: %v", g.Name, primary.Name, err)
		return
	}
	g.Commit, g.Chunks = info.Commit, info.Chunks
	g.UnderReplicated = info.Repair.UnderReplicated
	g.Repair = api.RepairProgress{Copied: info.Repair.Copied, CopiedBytes: info.Repair.CopiedBytes, Collected: info.Repair.Collected}
	if info.Repair.LastRound != 0 {
		g.Repair.LastRound = utc(info.Repair.LastRound)
	}
	for _, m := range info.Members {
		g.MemberDetails = append(g.MemberDetails, api.GroupMember{ID: nodeID(m.ID), Name: m.Name, Addr: m.Addr, Voter: m.Voter,
			Live: m.Live, Synced: m.Synced, Match: m.Match, Chunks: m.Chunks, Used: m.Used, DiskError: m.DiskError})
	}
	sort.Slice(g.MemberDetails, func(i, j int) bool { return g.MemberDetails[i].Name < g.MemberDetails[j].Name })
}

// nodeID is a node's ID as the API writes it.
func nodeID(id uint64) api.NodeID { return api.NodeID(strconv.FormatUint(id, 10)) }
