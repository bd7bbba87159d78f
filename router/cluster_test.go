package router

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/gossip"
	"shoal/meta"
	"shoal/wire"
)

func TestClusterStatus(t *testing.T) {
	c := newTestCluster(t)
	g1 := c.group("g1", 2, 4000) // publishes used 1000, cap 5000
	g2 := c.group("g2", 2, 0)
	g2[0].hang.Store(true) // its status cannot be read in time
	c.addNode("spare", "", gossip.RoleStandby, 50, 1<<30)
	c.addDead("gone", "g1", 51)
	g1[0].info.Store(&wire.GroupInfo{
		Ballot: meta.Ballot{Term: 1, Node: 100}, Commit: 9, Chunks: 12,
		Members: []wire.MemberInfo{
			{ID: 101, Name: "g1-n2", Addr: "g1-n2:7000", Voter: true, Live: true, Synced: false, Match: 7, Chunks: 10, Used: 900,
				DiskError: "disk refused a write: read-only file system"},
			{ID: 100, Name: "g1-n1", Addr: "g1-n1:7000", Voter: true, Live: true, Synced: true, Match: 9, Chunks: 12, Used: 1000},
		},
		Repair: wire.RepairProgress{UnderReplicated: 2, Copied: 5, CopiedBytes: 5000, Collected: 3, LastRound: 1714566645000000000},
	})
	s := c.router(nil)
	w := do(s, "GET", "/v1/cluster", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /v1/cluster = %d %s", w.Code, w.Body)
	}
	var got api.Cluster
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 6 || len(got.Groups) != 2 {
		t.Fatalf("nodes %d, groups %d: %s", len(got.Nodes), len(got.Groups), w.Body)
	}
	if n := got.Nodes[0]; n.Name != "g1-n1" || n.Used != 1000 || n.Cap != 5000 {
		t.Errorf("node 0 = %+v", n)
	}
	if len(got.Standbys) != 1 || got.Standbys[0] != "spare" {
		t.Errorf("standbys %v", got.Standbys)
	}
	a := got.Groups[0]
	if a.Name != "g1" || !a.Meta || a.Primary != "g1-n1" || a.Term != 1 || a.Error != "" ||
		strings.Join(a.Members, ",") != "g1-n1,g1-n2,gone" || a.Used != 1000 || a.Free == nil || *a.Free != 4000 ||
		a.Commit != 9 || a.Chunks != 12 || a.UnderReplicated != 2 ||
		a.Repair.Copied != 5 || a.Repair.CopiedBytes != 5000 || a.Repair.Collected != 3 ||
		!a.Repair.LastRound.Equal(time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC)) ||
		!strings.Contains(w.Body.String(), `"last_round": "2024-05-01T12:30:45Z"`) {
		t.Errorf("group g1 = %+v", a)
	}
	if len(a.MemberDetails) != 2 || a.MemberDetails[0] != (api.GroupMember{ID: "100", Name: "g1-n1", Addr: "g1-n1:7000",
		Voter: true, Live: true, Synced: true, Match: 9, Chunks: 12, Used: 1000}) || a.MemberDetails[1].Match != 7 || !strings.Contains(w.Body.String(), `"id": 100,`) ||
		a.MemberDetails[1].Synced || a.MemberDetails[1].DiskError != "disk refused a write: read-only file system" {
		t.Errorf("g1 member details %+v", a.MemberDetails)
	}
	b := got.Groups[1]
	if b.Name != "g2" || b.Meta || b.Primary != "g2-n1" || b.Free != nil || b.Error == "" || len(b.MemberDetails) != 0 {
		t.Errorf("group g2 = %+v", b)
	}
}

func TestClusterStatusWithoutMetaGroup(t *testing.T) {
	c := newTestCluster(t)
	s := c.router(func(cfg *Config) { cfg.MetaGroup = "meta" })
	var got api.Cluster
	if err := json.Unmarshal(do(s, "GET", "/v1/cluster", nil).Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Groups) != 1 || got.Groups[0].Name != "meta" || !got.Groups[0].Meta ||
		!strings.Contains(got.Groups[0].Error, `no live member of meta group "meta"`) {
		t.Errorf("groups %+v, want the missing meta group with an error", got.Groups)
	}
}
