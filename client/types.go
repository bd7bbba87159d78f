package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The values of Attr.Type.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Attr is what the cluster keeps about a file, directory or symlink.
type Attr struct {
	Ino  uint64 `json:"ino"`  // the inode number, stable for the inode's life
	Type string `json:"type"` // TypeFile, TypeDir or TypeSymlink
	Size int64  `json:"size"` // a symlink's is its target's length
	// Mode is the permission bits with setuid, setgid and sticky (07777).
	Mode  uint32    `json:"mode"`
	Nlink uint32    `json:"nlink"`
	Uid   uint32    `json:"uid"`
	Gid   uint32    `json:"gid"`
	ATime time.Time `json:"atime"`
	MTime time.Time `json:"mtime"`
	CTime time.Time `json:"ctime"`
	// Gen counts the changes of a file's content: equal Gen, equal bytes.
	Gen    uint64 `json:"gen"`
	Target string `json:"target,omitempty"` // a symlink's target
}

// Stat describes one file or directory (GET ?op=stat).
type Stat struct {
	Path string `json:"path"`
	Attr
	// Hash is the SHA-256 of a file written whole; "chunks:" and a
	// digest of its chunk list for one changed in place; empty for a
	// directory.
	Hash string `json:"hash"`
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name string `json:"name"`
	Attr
}

// listing is the body of GET on a directory.
type listing struct {
	Path    string     `json:"path"`
	Entries []DirEntry `json:"entries"`
}

// ContentInfo describes the body of a GET on a file, from the answer's
// headers.
type ContentInfo struct {
	// Size is the number of bytes in the body; -1 when the router did not
	// say (no Content-Length).
	Size int64
	// ETag identifies this version of the content; it changes whenever the
	// file is replaced.
	ETag string
}

// Cluster is the router's view of the cluster (GET /v1/cluster).
type Cluster struct {
	Nodes  []Node  `json:"nodes"`
	Groups []Group `json:"groups"`
	// Standbys names the spare nodes from which replacements and new
	// groups are drawn.
	Standbys []string `json:"standbys"`
}

// Node is one member of the cluster.
type Node struct {
	// ID is the node's ID in decimal. The router may send it as a JSON
	// number or a string; both decode here, so a 64-bit ID never loses
	// precision in transit.
	ID     NodeID `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`  // primary, replica, standby or router
	Group  string `json:"group"` // empty for standbys and routers
	Term   uint64 `json:"term"`
	Status string `json:"status"` // as gossip sees it: alive, suspect, dead, left
	Addr   string `json:"addr"`
	InSync bool   `json:"in_sync"` // a replica holding every committed entry
	Used   uint64 `json:"used"`    // chunk bytes the node stores
	Cap    uint64 `json:"cap"`     // chunk bytes it may store; 0 when it does not say
}

// Group is one replication group: a primary and its replicas. Every group
// keeps chunks; the meta group also keeps the namespace.
type Group struct {
	Name    string   `json:"name"`
	Meta    bool     `json:"meta"`    // the group that keeps the namespace
	Primary string   `json:"primary"` // node name; empty while there is none
	Term    uint64   `json:"term"`
	Members []string `json:"members"` // node names, as gossip sees them
	// Used is the chunk bytes the group keeps (its fullest member's).
	Used int64 `json:"used"`
	// Free is the room left for new chunks, as the router places them;
	// nil when the members publish no capacity (no limit is known).
	Free *int64 `json:"free"`
	// The rest comes from the group's primary; zero when Error is set.
	Chunks          int            `json:"chunks"`           // distinct chunks held by any member
	UnderReplicated int            `json:"under_replicated"` // chunks some voting member lacks
	Repair          RepairProgress `json:"repair"`
	MemberDetails   []GroupMember  `json:"member_details"`
	// Error says why the primary's report is missing (no primary, or it
	// did not answer in time).
	Error string `json:"error"`
}

// RepairProgress counts what the group's primary has done to restore full
// redundancy since it took over.
type RepairProgress struct {
	Copied      int       `json:"copied"`       // chunk copies made
	CopiedBytes int64     `json:"copied_bytes"` // bytes those copies moved
	Collected   int       `json:"collected"`    // unreferenced chunks removed
	LastRound   time.Time `json:"last_round"`   // last comparison of members; zero if none yet
}

// GroupMember is one member of a group as its primary reports it.
type GroupMember struct {
	ID     NodeID `json:"id"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`  // counts towards the group's majority
	Live   bool   `json:"live"`   // answers the primary
	Synced bool   `json:"synced"` // holds every chunk and entry the group holds
	Chunks int    `json:"chunks"`
	Used   int64  `json:"used"`
}

// NodeID is a node's ID as decimal text.
type NodeID string

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
