package api

import (
	"errors"
	"time"
)

// The values of Attr.Type.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	// Special files, made by POST op=mknod (a mount's mknod, mkfifo and
	// bind of a Unix socket): attributes only, no content.
	TypeFIFO     = "fifo"
	TypeSocket   = "socket"
	TypeCharDev  = "chardev"
	TypeBlockDev = "blockdev"
)

// Attr is what the cluster keeps about a file, directory or symlink. It is
// part of Stat, DirEntry and OwnedFile. The router sends times in UTC, so
// they read as RFC 3339 with nanoseconds and a "Z".
type Attr struct {
	Ino  uint64 `json:"ino"`  // the inode number, stable for the inode's life
	Type string `json:"type"` // TypeFile, TypeDir, TypeSymlink or a special file's
	Size int64  `json:"size"` // a symlink's is its target's length
	// Mode is the permission bits with setuid, setgid and sticky (07777),
	// ModeOctal the same in octal as chmod takes it ("0644").
	Mode      uint32    `json:"mode"`
	ModeOctal string    `json:"mode_octal"`
	Nlink     uint32    `json:"nlink"`
	Uid       uint32    `json:"uid"`
	Gid       uint32    `json:"gid"`
	ATime     time.Time `json:"atime"`
	MTime     time.Time `json:"mtime"`
	CTime     time.Time `json:"ctime"`
	// Gen counts the changes of a file's content: equal Gen, equal bytes.
	Gen    uint64 `json:"gen"`
	Target string `json:"target,omitempty"` // a symlink's target
	// Rdev is a device node's device number, as stat(2)'s st_rdev.
	Rdev uint64 `json:"rdev,omitempty"`
	// Usage is a directory's totals, at every depth below it (kept by the
	// cluster as the tree changes: reading it walks nothing).
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is what a directory holds below it: the bytes of its files and
// symlinks (a file with several names counts under each), how many files
// and symlinks, how many directories.
type Usage struct {
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
	Dirs  int64 `json:"dirs"`
}

// Stat describes one file, directory or symlink: the answer of
// GET /v1/fs/PATH?op=stat, and of the requests that make or change an
// inode and return it (PATCH at an offset; POST op=create, mkdir,
// symlink, setattr, copy and link).
type Stat struct {
	Path string `json:"path"`
	Attr
	// Hash is the SHA-256 of a file written whole; "chunks:" and a
	// digest of its chunk list for one changed in place; empty for a
	// directory.
	Hash string `json:"hash"`
	// ContentType is the media type the file was uploaded with, if any.
	ContentType string `json:"content_type,omitempty"`
}

// Changed is the answer to a change of names (create, mkdir, symlink,
// mknod, link, rename, delete) asked with ?dirs=1: the inode's Stat when
// the change answers with one, and Dirs, the directories whose entries
// it made, removed or moved, as they are after it (their times and
// links). Dirs is empty when the change was answered from the record of
// an earlier try of the same request.
type Changed struct {
	*Stat
	Dirs []Attr `json:"dirs"`
}

// DirEntry is one entry of a Listing.
type DirEntry struct {
	Name string `json:"name"`
	Attr
}

// Listing is the answer of GET /v1/fs/PATH on a directory.
type Listing struct {
	Path    string     `json:"path"`
	Entries []DirEntry `json:"entries"`
	// Next, in a listing asked for with ?limit=N, is the name to pass as
	// ?after= for the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// MatchRequest is the body of POST /v1/fs/PATH?op=match: a client that
// cut its own copy of a file into chunks of ChunkSize bytes (the last one
// shorter) and hashed each asks which of them the file at PATH already
// holds at the same offset. Sums are the hex SHA-256 of chunks First,
// First+1, ...; Size is the size of the client's copy (it gives the last
// chunk's length).
type MatchRequest struct {
	Size      int64    `json:"size"`
	ChunkSize int64    `json:"chunk_size"`
	First     int64    `json:"first"`
	Sums      []string `json:"sums"`
}

// MaxMatchSums is the most chunks one MatchRequest may ask about.
const MaxMatchSums = 10000

// MatchResult answers a MatchRequest: Same[i] is true when the file holds
// chunk First+i of the client's copy, byte for byte, at its offset. Size
// and Hash are the file's (Hash is its ETag, for an If-Match that the
// file is still the one compared).
type MatchResult struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Hash string `json:"hash"`
	Same []bool `json:"same"`
}

// ChunkList is the answer of GET /v1/fs/PATH?op=chunks (admins only):
// where a file's content is stored.
type ChunkList struct {
	Path string `json:"path"`
	// Inline is set for a file kept inside its metadata, which has no
	// chunks.
	Inline bool        `json:"inline"`
	Chunks []ChunkInfo `json:"chunks"`
}

// ChunkInfo is one chunk of a file's content, in order: its name on the
// disks of the group that keeps it.
type ChunkInfo struct {
	Hash  string `json:"hash"`
	Size  int64  `json:"size"`
	Group string `json:"group"`
	// Key is the ID (hex) of the data key the chunk is sealed with; ""
	// for a chunk stored in clear.
	Key string `json:"key,omitempty"`
	// Hole: Size zero bytes stored nowhere (a file extended by truncate
	// or written past its end), with no hash or group.
	Hole bool `json:"hole,omitempty"`
}

// Statfs is the answer of GET /v1/statfs: the cluster's room, as a mount's
// statfs(2) reports it, and the router's chunking.
type Statfs struct {
	// Capacity and Free are the bytes of file content the cluster holds
	// at most and can still take: the sum over groups of each group's
	// fullest member (every member keeps a full copy). Both are -1 when
	// some group has no member publishing a capacity (no limit is known).
	Capacity int64 `json:"capacity"`
	Used     int64 `json:"used"`
	Free     int64 `json:"free"`
	Groups   int   `json:"groups"`
	// ChunkSize is the size the router cuts files into; writes of whole
	// chunks at chunk boundaries need no read of the old content.
	ChunkSize int `json:"chunk_size"`
	InlineMax int `json:"inline_max"`
	// MaxWrite is the most one write at an offset (PATCH) may carry.
	MaxWrite int `json:"max_write"`
	// ChunkUploads: the router compares chunks (op=match) and puts one
	// file's content at another (PUT ?from=), so a client may upload by
	// chunks. An older router lacks both, and would take a PUT with from=
	// as an empty file.
	ChunkUploads bool `json:"chunk_uploads"`
	// MaxRanges is the most writes one PATCH with ranges= may carry
	// (with a truncate before them and a size after, in one commit); 0
	// from an older router, which has no ranges=.
	MaxRanges int `json:"max_ranges"`
	// MaxFileSize is the largest file the router makes, in bytes; 0 from
	// an older router, which does not say.
	MaxFileSize int64 `json:"max_file_size"`
}

// SearchPage is the answer of GET /v1/search: the matches found under
// Path in name order (a directory before what is in it). Next, when set,
// is the after= that goes on where this answer stopped (it looked at a
// bounded number of entries, or found limit matches); Visited counts the
// entries looked at, Denied the directories passed over because the
// caller may not read them.
type SearchPage struct {
	Path    string `json:"path"`
	Matches []Stat `json:"matches"`
	Next    string `json:"next,omitempty"`
	Visited int    `json:"visited"`
	Denied  int    `json:"denied,omitempty"`
}

// GlobResult is the answer of GET /v1/glob: the paths matching Pattern,
// in name order; Truncated when there were more than the router returns,
// or (TooManyEntries) the directories the pattern names hold more entries
// than one glob looks through.
type GlobResult struct {
	Pattern        string `json:"pattern"`
	Matches        []Stat `json:"matches"`
	Truncated      bool   `json:"truncated,omitempty"`
	TooManyEntries bool   `json:"too_many_entries,omitempty"`
}

// ParseWhen reads a time as search's newer= takes it: RFC 3339, a date
// (YYYY-MM-DD, UTC), or how long before now (24h, 90m).
func ParseWhen(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want a time (2024-05-01T12:00:00Z), a date (2024-05-01) or how long ago (24h)")
}
