package client

import "shoal/api"

// The values of Attr.Type.
const (
	TypeFile    = api.TypeFile
	TypeDir     = api.TypeDir
	TypeSymlink = api.TypeSymlink
	// Special files: FIFOs, sockets and device nodes (see MknodIn).
	TypeFIFO     = api.TypeFIFO
	TypeSocket   = api.TypeSocket
	TypeCharDev  = api.TypeCharDev
	TypeBlockDev = api.TypeBlockDev
)

// special says typ is a FIFO, socket or device node: attributes without
// content, which the tree copies skip.
func special(typ string) bool {
	return typ == TypeFIFO || typ == TypeSocket || typ == TypeCharDev || typ == TypeBlockDev
}

// Attr is what the cluster keeps about a file, directory or symlink.
type Attr = api.Attr

// Stat describes one file or directory (GET ?op=stat).
type Stat = api.Stat

// Listing is a directory and its entries, as ls --json prints it.
type Listing = api.Listing

// DirEntry is one entry of a directory listing.
type DirEntry = api.DirEntry

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
type Cluster = api.Cluster

// Node is one member of the cluster.
type Node = api.Node

// Group is one replication group: a primary and its replicas. Every group
// keeps chunks; the meta group also keeps the namespace.
type Group = api.Group

// RepairProgress counts what the group's primary has done to restore full
// redundancy since it took over.
type RepairProgress = api.RepairProgress

// GroupMember is one member of a group as its primary reports it.
type GroupMember = api.GroupMember

// NodeID is a node's ID as decimal text; it decodes from a JSON number or
// a JSON string, so a 64-bit ID never loses precision in transit.
type NodeID = api.NodeID
