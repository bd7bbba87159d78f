package mount

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"shoal/client"
)

// memCluster is a cluster in memory behind the mount's Client: a root
// directory of files, each with its bytes and attributes, changed as the
// router changes them for the calls an open file makes. Which behaviour
// of the router each call copies is checked against a real router by
// TestMemClusterActsLikeARouter. The namespace calls no test needs
// (mkdir, symlink, link, rmdir, rename) fail with client.ErrInvalid.
//
// Tests also use it as another client of the cluster would (change),
// make a call fail or wait (beforeWrite, beforeRead), and see which
// writes and reads the mount sent (writes, reads).
type memCluster struct {
	chunk, maxWrite int
	ranges          int // the most writes a PatchIno carries; 0: no PatchIno, as an older router

	mu     sync.Mutex
	inodes map[uint64]*memInode
	names  map[string]uint64 // the root directory's entries
	last   uint64            // the last inode number given out
	writes []writeCall       // every WriteAt that went through, in order
	calls  []string          // every call that changes content, in order
	reads  []int64           // the offset of every ReadIno, in order
	stats  int               // StatIno calls
	hints  []string          // every PatchIno's EmptyAt, in order
	// beforeWrite and beforeRead, when set (with onWrite and onRead),
	// run at the start of each WriteAt and ReadIno without mu held; an
	// error they return is the call's, which then changes nothing.
	beforeWrite func(off int64, data []byte) error
	beforeRead  func(off int64) error
}

func (c *memCluster) onWrite(h func(off int64, data []byte) error) {
	c.mu.Lock()
	c.beforeWrite = h
	c.mu.Unlock()
}

func (c *memCluster) onRead(h func(off int64) error) {
	c.mu.Lock()
	c.beforeRead = h
	c.mu.Unlock()
}

type memInode struct {
	attr client.Attr
	data []byte
}

// writeCall is one WriteAt the cluster applied.
type writeCall struct {
	off  int64
	data string
}

var _ Client = (*memCluster)(nil)

func newMemCluster(chunk, maxWrite int) *memCluster {
	root := &memInode{attr: client.Attr{Ino: rootIno, Type: client.TypeDir, Mode: 0o755, Nlink: 2}}
	return &memCluster{chunk: chunk, maxWrite: maxWrite, last: rootIno,
		inodes: map[uint64]*memInode{rootIno: root}, names: map[string]uint64{}}
}

func notFound(ino uint64) error { return fmt.Errorf("inode %d: %w", ino, client.ErrNotFound) }

// file returns the file ino (mu held).
func (c *memCluster) file(ino uint64) (*memInode, error) {
	in := c.inodes[ino]
	switch {
	case in == nil:
		return nil, notFound(ino)
	case in.attr.Type == client.TypeDir:
		return nil, fmt.Errorf("inode %d: %w", ino, client.ErrIsDir)
	}
	return in, nil
}

// resize cuts in or extends it with zeros (mu held).
func (in *memInode) resize(size int64) {
	if size <= int64(len(in.data)) {
		in.data = in.data[:size:size]
	} else {
		in.data = append(in.data, make([]byte, size-int64(len(in.data)))...)
	}
	in.attr.Size = size
}

// setAttrs sets the mode, owner and times a names (not the size; mu
// held).
func (in *memInode) setAttrs(a client.SetAttr) {
	if a.Mode != nil {
		in.attr.Mode = *a.Mode
	}
	if a.Uid != nil {
		in.attr.Uid = *a.Uid
	}
	if a.Gid != nil {
		in.attr.Gid = *a.Gid
	}
	if a.MTime != nil {
		in.attr.MTime = *a.MTime
	}
	if a.ATime != nil {
		in.attr.ATime = *a.ATime
	}
}

// splice writes p at off as the router does: the content as it is now,
// extended with zeros up to off, with p over it, and a new generation.
func (in *memInode) splice(off int64, p []byte) {
	in.resize(max(in.attr.Size, off+int64(len(p))))
	copy(in.data[off:], p)
	in.attr.Gen++
}

func (c *memCluster) Router() string { return "mem://cluster" }

func (c *memCluster) Statfs(ctx context.Context) (client.Statfs, error) {
	return client.Statfs{Capacity: -1, Free: -1, Groups: 1, ChunkSize: c.chunk, MaxWrite: c.maxWrite, MaxRanges: c.ranges, MaxFileSize: 1 << 40}, nil
}

func (c *memCluster) LookupIn(ctx context.Context, dir uint64, name string) (client.Attr, error) {
	if name == "" {
		return c.StatIno(ctx, dir)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dir != rootIno {
		return client.Attr{}, notFound(dir)
	}
	ino, ok := c.names[name]
	if !ok {
		return client.Attr{}, fmt.Errorf("%q: %w", name, client.ErrNotFound)
	}
	return c.inodes[ino].attr, nil
}

func (c *memCluster) StatIno(ctx context.Context, ino uint64) (client.Attr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats++
	in := c.inodes[ino]
	if in == nil {
		return client.Attr{}, notFound(ino)
	}
	return in.attr, nil
}

func (c *memCluster) ListIno(ctx context.Context, ino uint64) ([]client.DirEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ino != rootIno {
		return nil, notFound(ino)
	}
	var out []client.DirEntry
	for name, ino := range c.names {
		out = append(out, client.DirEntry{Name: name, Attr: c.inodes[ino].attr})
	}
	return out, nil
}

func (c *memCluster) ReadIno(ctx context.Context, ino uint64, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("read inode %d: bad range %d+%d", ino, off, n)
	}
	c.mu.Lock()
	before := c.beforeRead
	c.mu.Unlock()
	if before != nil {
		if err := before(off); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads = append(c.reads, off)
	in, err := c.file(ino)
	if err != nil {
		return nil, err
	}
	// Past the end the router answers 416, which the client reads as
	// no bytes.
	from, to := min(off, in.attr.Size), min(off+n, in.attr.Size)
	return io.NopCloser(bytes.NewReader(bytes.Clone(in.data[from:to]))), nil
}

func (c *memCluster) WriteAt(ctx context.Context, ino uint64, off int64, data []byte) (client.Attr, error) {
	if len(data) > c.maxWrite {
		return client.Attr{}, fmt.Errorf("write %d bytes: %w", len(data), client.ErrTooLarge)
	}
	c.mu.Lock()
	before := c.beforeWrite
	c.mu.Unlock()
	if before != nil {
		if err := before(off, data); err != nil {
			return client.Attr{}, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in, err := c.file(ino)
	if err != nil {
		return client.Attr{}, err
	}
	in.splice(off, data)
	in.attr.MTime = time.Now()
	c.writes = append(c.writes, writeCall{off, string(data)})
	c.calls = append(c.calls, fmt.Sprintf("write %d+%d", off, len(data)))
	return in.attr, nil
}

// PatchIno applies p as the router does, in one change of Gen; only a
// cluster made with ranges has it (Statfs says so).
func (c *memCluster) PatchIno(ctx context.Context, ino uint64, p client.Patch) (client.Attr, error) {
	n := 0
	for _, w := range p.Writes {
		n += len(w.Data)
	}
	if c.ranges == 0 || len(p.Writes) > c.ranges || n > c.maxWrite {
		return client.Attr{}, fmt.Errorf("patch of %d writes, %d bytes: %w", len(p.Writes), n, client.ErrTooLarge)
	}
	c.mu.Lock()
	before := c.beforeWrite
	c.mu.Unlock()
	if before != nil {
		for _, w := range p.Writes {
			if err := before(w.Off, w.Data); err != nil {
				return client.Attr{}, err
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in, err := c.file(ino)
	if err != nil {
		return client.Attr{}, err
	}
	if p.EmptyAt != nil {
		// What the router would check at the commit: the file is still
		// at that generation, and then it must be empty.
		hint := fmt.Sprintf("empty at %d", *p.EmptyAt)
		if in.attr.Gen == *p.EmptyAt && in.attr.Size != 0 {
			hint += fmt.Sprintf(", but the file has %d bytes there", in.attr.Size)
		}
		c.hints = append(c.hints, hint)
	}
	call := "patch"
	if p.Truncate != nil {
		in.resize(*p.Truncate)
		call += fmt.Sprintf(" truncate %d", *p.Truncate)
	}
	for _, w := range p.Writes {
		in.resize(max(in.attr.Size, w.Off+int64(len(w.Data))))
		copy(in.data[w.Off:], w.Data)
		c.writes = append(c.writes, writeCall{w.Off, string(w.Data)})
		call += fmt.Sprintf(" write %d+%d", w.Off, len(w.Data))
	}
	if p.Size != nil {
		in.resize(*p.Size)
		call += fmt.Sprintf(" size %d", *p.Size)
	}
	if id, ok := client.ActingAs(ctx); ok {
		call += fmt.Sprint(" as ", id.Uid)
	}
	in.attr.Gen++
	in.attr.MTime = time.Now()
	if p.Attrs != (client.SetAttr{}) {
		call += " attrs"
		in.setAttrs(p.Attrs)
	}
	c.calls = append(c.calls, call)
	return in.attr, nil
}

func (c *memCluster) SetAttrIno(ctx context.Context, ino uint64, sa client.SetAttr) (client.Attr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.inodes[ino]
	if in == nil {
		return client.Attr{}, notFound(ino)
	}
	if sa.Size != nil {
		if in.attr.Type != client.TypeFile {
			return client.Attr{}, fmt.Errorf("inode %d: %w", ino, client.ErrIsDir)
		}
		// The router commits a new size as new content, even the same.
		in.resize(*sa.Size)
		in.attr.Gen++
		c.calls = append(c.calls, fmt.Sprintf("truncate %d", *sa.Size))
	}
	in.setAttrs(sa)
	if sa.Size == nil {
		call := "attrs"
		if id, ok := client.ActingAs(ctx); ok {
			call += fmt.Sprint(" as ", id.Uid)
		}
		c.calls = append(c.calls, call)
	}
	return in.attr, nil
}

func (c *memCluster) CreateIn(ctx context.Context, dir uint64, name string, mode, uid, gid uint32, excl bool) (client.Attr, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dir != rootIno {
		return client.Attr{}, false, notFound(dir)
	}
	if ino, ok := c.names[name]; ok {
		if excl {
			return client.Attr{}, false, fmt.Errorf("%q: %w", name, client.ErrExists)
		}
		return c.inodes[ino].attr, false, nil
	}
	c.last++
	in := &memInode{attr: client.Attr{Ino: c.last, Type: client.TypeFile, Mode: mode, Nlink: 1, Uid: uid, Gid: gid}}
	c.inodes[in.attr.Ino], c.names[name] = in, in.attr.Ino
	c.rootChanged(ctx)
	return in.attr, true, nil
}

// rootChanged gives the root directory new times, as a change of its
// entries does, and answers it as a router does to a change asked for
// its directories (client.NoteDirs; mu held).
func (c *memCluster) rootChanged(ctx context.Context) {
	root := c.inodes[rootIno]
	root.attr.MTime = time.Now()
	root.attr.CTime = root.attr.MTime
	if into := client.DirsNoted(ctx); into != nil {
		*into = []client.Attr{root.attr}
	}
}

func (c *memCluster) UnlinkIn(ctx context.Context, dir uint64, name string, orphan bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.names[name]
	if dir != rootIno || !ok {
		return fmt.Errorf("%q: %w", name, client.ErrNotFound)
	}
	delete(c.names, name)
	c.rootChanged(ctx)
	in := c.inodes[ino]
	if in.attr.Nlink--; in.attr.Nlink == 0 && !orphan {
		delete(c.inodes, ino)
	}
	return nil
}

func (c *memCluster) ReleaseIno(ctx context.Context, ino uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A file with a name, or gone already, is left alone.
	if in := c.inodes[ino]; in != nil && in.attr.Nlink == 0 {
		delete(c.inodes, ino)
	}
	return nil
}

func notInMemory(call string) error {
	return fmt.Errorf("%s: %w: not in the in-memory cluster", call, client.ErrInvalid)
}

func (c *memCluster) MkdirIn(context.Context, uint64, string, uint32, uint32, uint32) (client.Attr, error) {
	return client.Attr{}, notInMemory("mkdir")
}

func (c *memCluster) SymlinkIn(context.Context, uint64, string, string, uint32, uint32) (client.Attr, error) {
	return client.Attr{}, notInMemory("symlink")
}

func (c *memCluster) MknodIn(context.Context, uint64, string, string, uint32, uint64, uint32, uint32) (client.Attr, error) {
	return client.Attr{}, notInMemory("mknod")
}

func (c *memCluster) KeepOrphanIno(context.Context, uint64, time.Duration) error { return nil }

func (c *memCluster) LinkIn(context.Context, uint64, uint64, string) (client.Attr, error) {
	return client.Attr{}, notInMemory("link")
}

func (c *memCluster) RmdirIn(context.Context, uint64, string) error { return notInMemory("rmdir") }

func (c *memCluster) RenameIn(context.Context, uint64, string, uint64, string, bool, bool) error {
	return notInMemory("rename")
}

// put makes the file name with content data, as another client would.
func (c *memCluster) put(name string, data []byte) client.Attr {
	a, _, _ := c.CreateIn(context.Background(), rootIno, name, 0o644, 0, 0, false)
	c.change(a.Ino, func(b []byte) []byte { return data })
	return c.stat(a.Ino)
}

// change replaces the content of ino by what edit makes of it, as
// another client's write would: a new generation.
func (c *memCluster) change(ino uint64, edit func([]byte) []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.inodes[ino]
	in.data = edit(bytes.Clone(in.data))
	in.attr.Size = int64(len(in.data))
	in.attr.Gen++
}

// content returns the stored bytes of ino.
func (c *memCluster) content(ino uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.inodes[ino].data)
}

func (c *memCluster) stat(ino uint64) client.Attr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inodes[ino].attr
}

// statCalls returns how many StatIno calls came so far, and forgets them.
func (c *memCluster) statCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.stats
	c.stats = 0
	return n
}

// changes returns the writes, truncates and other attribute changes
// applied so far, in order ("write OFF+N", "truncate SIZE", "attrs",
// "attrs as UID" for a call acting for a user), and forgets them.
func (c *memCluster) changes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}

// readsAt returns the offsets ReadIno was called at so far, in order, and
// forgets them.
func (c *memCluster) readsAt() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = nil
	return r
}

// sent returns the writes applied so far, and forgets them.
func (c *memCluster) sent() []writeCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}
