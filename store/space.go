package store

// Space accounting. Everything a node writes counts against its capacity:
// chunk files, and meta.db, which holds the log, the namespace and the
// content of small files kept inline. On top of the capacity the node
// keeps a reserve of its file system free for metadata: new data (a chunk,
// an operation that adds names or content) is refused with
// meta.ErrNoSpace before it would take the disk's free space under the
// reserve, so the writes that keep a group alive (promises, a new
// primary's first entry, deletes and renames, applying what is committed)
// still find room when the disk is full of data. Without the reserve the
// first of those to fail would make the node count its disk as failed,
// and with every member's disk full the group would have no primary left
// to serve reads.

import (
	"fmt"
	"math"
	"syscall"

	"shoal/meta"

	bolt "go.etcd.io/bbolt"
)

// DiskSpace is the room on the file system that holds a directory.
type DiskSpace struct {
	// Size is the file system's size in bytes; 0 when it is not known
	// (a MemFS without a size): no limit then comes from the disk.
	Size int64
	// Free is what the node may still write there: the blocks an
	// unprivileged process may use (statfs's f_bavail).
	Free int64
}

// Statfs implements FS: the file system's figures, from statfs(2).
func (OSFS) Statfs(dir string) (DiskSpace, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return DiskSpace{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize)
	return DiskSpace{Size: int64(st.Blocks) * bs, Free: int64(st.Bavail) * bs}, nil
}

// Usage is what a node's data takes and what its disk has left.
type Usage struct {
	// Chunks is the bytes of chunk files.
	Chunks int64
	// Meta is the bytes of meta.db in use and of the log's files (see
	// wal.go): the log, the namespace and the inline content in both.
	Meta int64
	// MetaFree is the bytes of meta.db's free pages: written before,
	// so reused without taking more of the disk.
	MetaFree int64
	// Disk is the file system's room (Size 0: not known).
	Disk DiskSpace
}

// Used is everything the node's data takes, counted against its
// capacity.
func (u Usage) Used() int64 { return u.Chunks + u.Meta }

// Limits bound what a node writes.
type Limits struct {
	// Capacity bounds Usage.Used; 0: only the disk's size does.
	Capacity int64
	// Reserve is how much of the file system is kept free for metadata.
	Reserve int64
}

// Reserve bounds: the default reserve is 2% of the file system, but at
// least MinReserve (a few batches of log entries) and at most MaxReserve.
const (
	MinReserve int64 = 4 << 20
	MaxReserve int64 = 256 << 20
)

// DefaultReserve is the reserve for a file system of size bytes: 2% of
// it, within MinReserve and MaxReserve, and never more than a quarter of
// a tiny disk.
func DefaultReserve(size int64) int64 {
	r := min(max(size/50, MinReserve), MaxReserve)
	if size > 0 {
		r = min(r, size/4)
	}
	return r
}

// DefaultCapacity is the capacity a node takes when none is given: what
// its data takes now (u.Used) plus what its disk has left, less the
// reserve. Chunks can then never take the room metadata needs: meta.db
// in use is inside the capacity, and the reserve outside it. It is at
// least 1 byte, as 0 would mean no limit.
func DefaultCapacity(u Usage, reserve int64) int64 {
	return max(u.Used()+u.Disk.Free-reserve, 1)
}

// ChunkRoom says whether a new chunk of size bytes fits, with inflight
// bytes of other chunks being written: nil, or an error wrapping
// meta.ErrNoSpace that says which bound it hit.
func (l Limits) ChunkRoom(u Usage, inflight, size int64) error {
	if l.Capacity > 0 && u.Used()+inflight+size > l.Capacity {
		return fmt.Errorf("%w: a chunk of %d bytes would take this node past its capacity (%d of %d bytes used): delete files, or raise --capacity",
			meta.ErrNoSpace, size, u.Used()+inflight, l.Capacity)
	}
	if u.Disk.Size > 0 && u.Disk.Free-inflight-size < l.Reserve {
		return fmt.Errorf("%w: a chunk of %d bytes would leave the disk under the %d bytes kept for metadata (%d free): delete files, or free or add disk space",
			meta.ErrNoSpace, size, l.Reserve, u.Disk.Free-inflight)
	}
	return nil
}

// MetaRoom is how many bytes of new data (names, inline content, the log
// entries that carry them) metadata may still take: up to the capacity,
// and what the disk and meta.db's free pages hold above the reserve. It
// may be negative; math.MaxInt64 when nothing bounds it.
func (l Limits) MetaRoom(u Usage) int64 {
	room := int64(math.MaxInt64)
	if l.Capacity > 0 {
		room = l.Capacity - u.Used()
	}
	if u.Disk.Size > 0 {
		room = min(room, u.Disk.Free+u.MetaFree-l.Reserve)
	}
	return room
}

// ChunkCap is the capacity to publish for placing chunks: Capacity, but
// no more than the disk holds above the reserve, so a router sees a node
// whose disk filled (with anything) as full. At least 1, as 0 would mean
// no limit.
func (l Limits) ChunkCap(u Usage) int64 {
	c := l.Capacity
	if u.Disk.Size > 0 {
		disk := u.Used() + max(u.Disk.Free-l.Reserve, 0)
		if c == 0 || disk < c {
			c = disk
		}
	}
	if c == 0 {
		return 0
	}
	return max(c, 1)
}

// measureMeta records how much of meta.db is in use and how much is free
// pages, which bbolt reuses before it grows the file: what the space
// accounting counts (see space.go). The caller holds mu or owns d.
func (d *DB) measureMeta() {
	var size int64
	if err := d.bolt.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return
	}
	st := d.bolt.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(d.bolt.Info().PageSize)
	d.metaInUse.Store(max(size-free, 0))
	d.metaFree.Store(min(free, size))
}

// SetLimits sets the node's capacity and the reserve its disk keeps for
// metadata (see space.go).
func (d *DB) SetLimits(l Limits) { d.Chunks.SetLimits(l) }

// Usage measures what the node's data takes (chunks and meta.db) and what
// its disk has left.
func (d *DB) Usage() Usage { return d.Chunks.Usage() }

// Room is how many bytes of new data metadata may take before the node
// reaches its capacity or its disk the reserve (Limits.MetaRoom): the
// log refuses proposals that add more (see replication).
func (d *DB) Room() int64 {
	return d.Chunks.Limits().MetaRoom(d.Usage())
}
