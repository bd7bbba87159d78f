package router

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"shoal/gossip"
	"shoal/wire"
)

// clusterJSON is the answer of GET /v1/cluster:
//
//	{
//	  "nodes": [{"id": 3, "name": "n3", "role": "primary", "group": "g1", "term": 4,
//	             "status": "alive", "addr": "10.0.0.3:7000", "in_sync": true,
//	             "used": 1048576, "cap": 10737418240}],
//	  "groups": [{
//	    "name": "g1", "meta": true, "primary": "n3", "term": 4,
//	    "members": ["n2", "n3"],
//	    "used": 1048576,          // the fullest live member's chunk bytes
//	    "free": 10736369664,      // room as placement sees it; null: no capacity published
//	    "chunks": 12,             // distinct chunks held by any member
//	    "under_replicated": 0,    // chunks some voting member lacks
//	    "repair": {"copied": 0, "copied_bytes": 0, "collected": 3, "last_round": "2024-05-01T12:30:45Z"},
//	    "member_details": [{"id": 3, "name": "n3", "addr": "10.0.0.3:7000", "voter": true,
//	                        "live": true, "synced": true, "chunks": 12, "used": 1048576}],
//	    "error": "..."            // only when the primary's status could not be read
//	  }],
//	  "standbys": ["n5"]
//	}
//
// nodes and the group's name, meta, primary, term, members, used and free
// come from this router's gossip view; chunks, under_replicated, repair
// and member_details from the group's primary (a GroupStatus call), and
// are zero or empty when "error" is set.
type clusterJSON struct {
	Nodes    []nodeJSON  `json:"nodes"`
	Groups   []groupJSON `json:"groups"`
	Standbys []string    `json:"standbys"`
}

type nodeJSON struct {
	ID     uint64 `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Group  string `json:"group"`
	Term   uint64 `json:"term"`
	Status string `json:"status"`
	Addr   string `json:"addr"`
	InSync bool   `json:"in_sync"`
	Used   uint64 `json:"used"`
	Cap    uint64 `json:"cap"`
}

type groupJSON struct {
	Name            string       `json:"name"`
	Meta            bool         `json:"meta"`
	Primary         string       `json:"primary"`
	Term            uint64       `json:"term"`
	Members         []string     `json:"members"`
	Used            int64        `json:"used"`
	Free            *int64       `json:"free"`
	Chunks          int          `json:"chunks"`
	UnderReplicated int          `json:"under_replicated"`
	Repair          repairJSON   `json:"repair"`
	MemberDetails   []memberJSON `json:"member_details"`
	Error           string       `json:"error,omitempty"`
}

type repairJSON struct {
	Copied      int    `json:"copied"`
	CopiedBytes int64  `json:"copied_bytes"`
	Collected   int    `json:"collected"`
	LastRound   string `json:"last_round,omitempty"`
}

type memberJSON struct {
	ID     uint64 `json:"id"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`
	Live   bool   `json:"live"`
	Synced bool   `json:"synced"`
	Chunks int    `json:"chunks"`
	Used   int64  `json:"used"`
}

func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	ms := s.cfg.Members()
	out := clusterJSON{Nodes: []nodeJSON{}, Groups: []groupJSON{}, Standbys: []string{}}
	groups := map[string]*groupJSON{}
	group := func(name string) *groupJSON {
		g := groups[name]
		if g == nil {
			g = &groupJSON{Name: name, Meta: name == s.be.metaGroup(), Members: []string{}, MemberDetails: []memberJSON{}}
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
		out.Nodes = append(out.Nodes, nodeJSON{ID: m.ID, Name: m.Name, Role: string(m.Role), Group: m.Group, Term: m.Term,
			Status: m.Status.String(), Addr: addr, InSync: m.InSync, Used: m.Used, Cap: m.Cap})
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
	for _, g := range groups {
		out.Groups = append(out.Groups, *g)
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].Name < out.Nodes[j].Name })
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].Name < out.Groups[j].Name })
	sort.Strings(out.Standbys)
	writeJSON(w, http.StatusOK, out)
}

// groupStatus fills g with what the group's primary reports, or g.Error.
func (s *Server) groupStatus(ctx context.Context, g *groupJSON, primary *gossip.Member) {
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
	g.Chunks = info.Chunks
	g.UnderReplicated = info.Repair.UnderReplicated
	g.Repair = repairJSON{Copied: info.Repair.Copied, CopiedBytes: info.Repair.CopiedBytes, Collected: info.Repair.Collected}
	if info.Repair.LastRound != 0 {
		g.Repair.LastRound = rfc3339(info.Repair.LastRound)
	}
	for _, m := range info.Members {
		g.MemberDetails = append(g.MemberDetails, memberJSON{ID: m.ID, Name: m.Name, Addr: m.Addr, Voter: m.Voter,
			Live: m.Live, Synced: m.Synced, Chunks: m.Chunks, Used: m.Used})
	}
	sort.Slice(g.MemberDetails, func(i, j int) bool { return g.MemberDetails[i].Name < g.MemberDetails[j].Name })
}
