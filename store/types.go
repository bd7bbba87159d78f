package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Hash names a chunk by the SHA-256 of its content.
type Hash [32]byte

// HashOf returns the content hash of b.
func HashOf(b []byte) Hash { return sha256.Sum256(b) }

// String returns the lower-case hex form used in file names and on the wire.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses the hex form of a hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("parse chunk hash %q: want %d hex bytes", s, len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Ballot orders primaries. Term grows by one at each promotion; Node is the
// promoting node's ID, so two nodes that promote themselves with the same
// term still hold different ballots and at most one of them can gather a
// majority of promises.
type Ballot struct {
	Term uint64 `msgpack:"t"`
	Node uint64 `msgpack:"n"`
}

// Less reports whether b orders before o.
func (b Ballot) Less(o Ballot) bool {
	if b.Term != o.Term {
		return b.Term < o.Term
	}
	return b.Node < o.Node
}

// IsZero reports whether no primary ever held b.
func (b Ballot) IsZero() bool { return b.Term == 0 && b.Node == 0 }

func (b Ballot) String() string { return fmt.Sprintf("%d/%d", b.Term, b.Node) }

// ChunkRef is one chunk of a file's content, in order.
type ChunkRef struct {
	Hash  Hash   `msgpack:"h"`
	Size  int64  `msgpack:"s"`
	Group string `msgpack:"g,omitempty"`
}

// FileType says what an inode is.
type FileType uint8

// The inode types.
const (
	TypeFile FileType = 1
	TypeDir  FileType = 2
)

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	}
	return "unknown"
}

// Inode is the metadata of one file or directory.
type Inode struct {
	Ino    uint64     `msgpack:"i"`
	Type   FileType   `msgpack:"y"`
	Size   int64      `msgpack:"s"`
	Mode   uint32     `msgpack:"m"`
	MTime  int64      `msgpack:"t"` // Unix nanoseconds, set by the primary.
	Nlink  uint32     `msgpack:"l"`
	Hash   string     `msgpack:"h,omitempty"` // hex SHA-256 of the whole content
	Chunks []ChunkRef `msgpack:"c,omitempty"`
	// Data holds the whole content of a small file, kept in the metadata
	// instead of chunks: one replicated log entry makes it durable, where
	// chunks would cost a chunk file and its fsync on every member.
	Data []byte `msgpack:"d,omitempty"`
}

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name  string   `msgpack:"n"`
	Type  FileType `msgpack:"y"`
	Size  int64    `msgpack:"s"`
	MTime int64    `msgpack:"t"`
}

// OpKind is what a log entry does.
type OpKind uint8

// The operations of the replicated log.
const (
	OpNoop   OpKind = 0 // written by a new primary to commit its predecessors' entries
	OpPut    OpKind = 1 // create or replace the file at Path with File
	OpDelete OpKind = 2 // remove Path (Recursive for a non-empty directory)
	OpMkdir  OpKind = 3 // create directory Path (Parents: like mkdir -p)
	OpRename OpKind = 4 // move Path to To, replacing like rename(2)
	OpCopy   OpKind = 5 // copy Path to To, sharing chunks
	OpConfig OpKind = 6 // set the group's voting members to Members
)

// Op is one state-machine command carried by a log entry. Everything that
// varies between members (the time, the content) is fixed by the primary
// when it proposes the op, so applying it is deterministic.
type Op struct {
	Kind      OpKind   `msgpack:"k"`
	Path      string   `msgpack:"p,omitempty"`
	To        string   `msgpack:"o,omitempty"`
	Recursive bool     `msgpack:"r,omitempty"` // OpDelete
	Parents   bool     `msgpack:"a,omitempty"` // OpMkdir
	Time      int64    `msgpack:"t,omitempty"` // Unix nanoseconds
	Mode      uint32   `msgpack:"m,omitempty"` // OpPut, OpMkdir; 0 means the default
	File      *Inode   `msgpack:"f,omitempty"` // OpPut: size, hash and chunks
	Members   []Member `msgpack:"v,omitempty"` // OpConfig
	// ReqID identifies the client request the op comes from: a retry of
	// the same request is applied once (see requests.go).
	ReqID string `msgpack:"q,omitempty"`
}

// Member is a voting member of a group's configuration.
type Member struct {
	ID   uint64 `msgpack:"i"`
	Name string `msgpack:"n"`
	Addr string `msgpack:"a"` // replication listen address
}

// Result is the outcome of applying an op, the same on every member.
type Result struct {
	Code    Code `msgpack:"c,omitempty"`
	Created bool `msgpack:"n,omitempty"` // OpPut, OpMkdir: the path did not exist before
}

// Err returns the namespace error of the result, or nil.
func (r Result) Err() error { return r.Code.Err() }

// Entry is one record of the replicated log.
type Entry struct {
	Index  uint64 `msgpack:"i"`
	Ballot Ballot `msgpack:"b"`
	Op     Op     `msgpack:"o"`
}
