package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Cluster is the answer of GET /v1/cluster: the router's view of the
// cluster's nodes and groups, each sorted by name:
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
//	    "chunks": 12,             // chunks of the member holding most
//	    "under_replicated": 0,    // chunks some voting member lacks
//	    "repair": {"copied": 0, "copied_bytes": 0, "collected": 3, "last_round": "2024-05-01T12:30:45Z"},
//	    "member_details": [{"id": 3, "name": "n3", "addr": "10.0.0.3:7000", "voter": true,
//	                        "live": true, "synced": true, "chunks": 12, "used": 1048576},
//	                       {"id": 2, "name": "n2", "addr": "10.0.0.2:7000", "voter": true,
//	                        "live": true, "synced": false, "chunks": 12, "used": 1048576,
//	                        "disk_error": "..."}],   // only while its disk refuses writes
//	    "error": "..."            // only when the primary's status could not be read
//	  }],
//	  "standbys": ["n5"],
//	  "departed": [{"name": "n4", "group": "g1", "since": "2024-05-01T12:30:45Z",
//	                "why": "n4 (replica of group g1, term 3) is declared failed: ..."}]
//	}
//
// A group's name, meta, primary, term, members, used and free come from
// the router's gossip view; the rest from the group's primary, unless
// Error says why not.
type Cluster struct {
	Nodes  []Node  `json:"nodes"`
	Groups []Group `json:"groups"`
	// Standbys names the spare nodes from which replacements and new
	// groups are drawn.
	Standbys []string `json:"standbys"`
	// Departed lists the failed or departed nodes that their group's
	// primary no longer counts as members (replaced, or removed): they
	// are in neither Nodes nor a group's Members, and drop out of this
	// list when gossip forgets them.
	Departed []Departed `json:"departed"`
}

// Departed is a node that stopped serving its group.
type Departed struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	// Since is when the router saw it fail or leave the group; the zero
	// time (absent) when that was before the router started.
	Since time.Time `json:"since,omitzero"`
	Why   string    `json:"why"`
}

// Node is one member of the cluster, as gossip sees it.
type Node struct {
	ID     NodeID `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`  // primary, replica, standby or router
	Group  string `json:"group"` // empty for standbys and routers
	Term   uint64 `json:"term"`
	Status string `json:"status"`  // as gossip sees it: alive, suspect, failed, left
	Addr   string `json:"addr"`    // a router's is its HTTP address
	InSync bool   `json:"in_sync"` // its own claim in gossip: a voting member whose log is caught up (never for a failed node)
	Used   uint64 `json:"used"`    // bytes of data (chunks and metadata) the node stores
	Cap    uint64 `json:"cap"`     // bytes it may store, no more than its disk holds above the metadata reserve; 0 when it does not say
}

// Group is one replication group: a primary and its replicas. Every group
// keeps chunks; the meta group also keeps the namespace. The meta group is
// listed even with no member, to show that it is missing.
type Group struct {
	Name    string   `json:"name"`
	Meta    bool     `json:"meta"`    // the group that keeps the namespace
	Primary string   `json:"primary"` // node name; empty while there is none
	Term    uint64   `json:"term"`
	Members []string `json:"members"` // node names, as gossip sees them
	// Used is the bytes of data (chunks and metadata) the group keeps
	// (its fullest live member's).
	Used int64 `json:"used"`
	// Free is the room left for new chunks, as the router places them;
	// null when the members publish no capacity (no limit is known).
	Free *int64 `json:"free"`
	// The rest comes from the group's primary; zero when Error is set.
	// Commit is the index of the last entry of the group's log known
	// committed (held by a majority).
	Commit uint64 `json:"commit"`
	// Chunks is the count of the member holding most chunks, and each member's
	// Chunks and Used below, as the primary counted them at its last
	// repair round (Repair.LastRound): every figure of one moment.
	Chunks          int            `json:"chunks"`
	UnderReplicated int            `json:"under_replicated"` // chunks some voting member lacks
	Repair          RepairProgress `json:"repair"`
	MemberDetails   []GroupMember  `json:"member_details"`
	// Error says why the primary's report is missing (no primary, or it
	// did not answer in time); absent when the report is there.
	Error string `json:"error,omitempty"`
}

// RepairProgress counts what the group's primary has done to restore full
// redundancy since it took over.
type RepairProgress struct {
	Copied      int   `json:"copied"`       // chunk copies made
	CopiedBytes int64 `json:"copied_bytes"` // bytes those copies moved
	Collected   int   `json:"collected"`    // unreferenced chunks removed
	// LastRound is the last comparison of the members, in UTC; absent
	// (the zero time) if there was none yet.
	LastRound time.Time `json:"last_round,omitzero"`
}

// GroupMember is one member of a group as its primary reports it.
type GroupMember struct {
	ID     NodeID `json:"id"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`  // counts towards the group's majority
	Live   bool   `json:"live"`   // answers the primary
	Synced bool   `json:"synced"` // holds every chunk and entry the group holds
	// Match is the last entry of the group's log this member is known to
	// hold on its disk: a member with match below the group's commit is
	// behind by that many entries.
	Match  uint64 `json:"match"`
	Chunks int    `json:"chunks"` // chunks held at the primary's last repair round
	Used   int64  `json:"used"`   // their bytes
	// DiskError is the last write the member's disk refused (read-only,
	// an I/O error, full), while it refuses them: the member is then not
	// synced. Absent when the disk takes writes.
	DiskError string `json:"disk_error,omitempty"`
}

// NodeID is a node's ID (a 64-bit number) as decimal text. Routers send it
// as a JSON number; a JSON string decodes too. Either way the digits are
// kept as they came, so a 64-bit ID never loses precision in transit.
type NodeID string

// MarshalJSON writes a decimal ID as a JSON number, as routers send it, and
// anything else as a JSON string.
func (id NodeID) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseUint(string(id), 10, 64); err == nil && strconv.FormatUint(n, 10) == string(id) {
		return []byte(id), nil
	}
	return json.Marshal(string(id))
}

// UnmarshalJSON accepts a JSON number or a JSON string.
func (id *NodeID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = NodeID(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("node id %s: want a number or a string", b)
	}
	*id = NodeID(b)
	return nil
}
