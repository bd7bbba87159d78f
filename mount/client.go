package mount

import (
	"context"
	"io"
	"time"

	"shoal/client"
)

// Client is what the mount asks of the cluster: the calls of the client
// package's inode API it makes, and no others. A *client.Client does it
// over HTTP; tests give the mount an in-memory cluster instead, so the
// write-back and read-ahead of open files are checked without FUSE.
//
// Every call names its file by inode number, or by a name in a directory
// named by inode number (see client/inode.go). Calls that make or change
// an inode return its attributes as they are after the change.
type Client interface {
	// Router is the URL of the router the client reaches, for messages.
	Router() string
	// Statfs returns the cluster's room and the router's chunking: the
	// mount's read windows are ChunkSize long, and no write it sends
	// carries more than MaxWrite bytes.
	Statfs(ctx context.Context) (client.Statfs, error)

	// LookupIn returns the attributes of name in the directory dir.
	LookupIn(ctx context.Context, dir uint64, name string) (client.Attr, error)
	// StatIno returns the attributes of the inode ino.
	StatIno(ctx context.Context, ino uint64) (client.Attr, error)
	// ListIno returns the entries of the directory ino, with their
	// attributes.
	ListIno(ctx context.Context, ino uint64) ([]client.DirEntry, error)

	// ReadIno opens n bytes of the file ino from offset off: fewer come
	// back at its end, none past it. The caller closes the body.
	ReadIno(ctx context.Context, ino uint64, off, n int64) (io.ReadCloser, error)
	// WriteAt writes data into the file ino at off, extending it (with
	// zeros up to off) as pwrite(2) does, and returns the attributes
	// after the write, with a new Gen. The router splices the data into
	// the content as it is when the write lands, so what another client
	// wrote meanwhile to other bytes stays; it fails with
	// client.ErrConflict only when other changes kept landing first.
	// When WriteAt returns, the data is on a majority of its group's
	// disks.
	WriteAt(ctx context.Context, ino uint64, off int64, data []byte) (client.Attr, error)
	// PatchIno changes the content of the file ino in one commit: it is
	// cut or extended to p.Truncate bytes, then takes each of p.Writes,
	// then is cut or extended to p.Size (each part optional), and
	// returns the attributes after, with a new Gen. Only a router whose
	// Statfs gives MaxRanges has it.
	PatchIno(ctx context.Context, ino uint64, p client.Patch) (client.Attr, error)
	// SetAttrIno changes the attributes sa names. A Size cuts the file or
	// extends it with zeros, and gives the content a new Gen.
	SetAttrIno(ctx context.Context, ino uint64, sa client.SetAttr) (client.Attr, error)

	// CreateIn makes an empty file name in dir, or, with excl unset,
	// returns the file already there; created says which.
	CreateIn(ctx context.Context, dir uint64, name string, mode, uid, gid uint32, excl bool) (a client.Attr, created bool, err error)
	// MkdirIn makes the directory name in dir.
	MkdirIn(ctx context.Context, dir uint64, name string, mode, uid, gid uint32) (client.Attr, error)
	// MknodIn makes the FIFO, socket or device node name in dir.
	MknodIn(ctx context.Context, dir uint64, name, typ string, mode uint32, rdev uint64, uid, gid uint32) (client.Attr, error)
	// SymlinkIn makes the symlink name in dir, pointing at target.
	SymlinkIn(ctx context.Context, dir uint64, name, target string, uid, gid uint32) (client.Attr, error)
	// LinkIn gives the file ino the new name name in dir (a hard link).
	LinkIn(ctx context.Context, ino, dir uint64, name string) (client.Attr, error)
	// UnlinkIn removes the name of a file or symlink. With orphan, a file
	// losing its last name is kept until ReleaseIno, or until its lease
	// runs out unless KeepOrphanIno renews it: the mount still has it
	// open.
	UnlinkIn(ctx context.Context, dir uint64, name string, orphan bool) error
	// RmdirIn removes the empty directory name in dir.
	RmdirIn(ctx context.Context, dir uint64, name string) error
	// RenameIn moves name in dir to newName in newDir, replacing what is
	// there as rename(2) does, or failing with client.ErrExists when
	// noReplace is set. orphan keeps a replaced file the mount has open
	// (see UnlinkIn).
	RenameIn(ctx context.Context, dir uint64, name string, newDir uint64, newName string, noReplace, orphan bool) error
	// KeepOrphanIno renews the lease of the orphan ino (see UnlinkIn).
	KeepOrphanIno(ctx context.Context, ino uint64, ttl time.Duration) error
	// ReleaseIno drops the file ino if it is an orphan (see UnlinkIn).
	ReleaseIno(ctx context.Context, ino uint64) error
}

var _ Client = (*client.Client)(nil)
