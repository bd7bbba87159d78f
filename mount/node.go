package mount

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"shoal/client"
)

// node is one inode of the cluster as the kernel knows it. It names its
// inode by number in every request, so a rename by another client does
// not send its changes elsewhere.
type node struct {
	fs.Inode
	m   *fsys
	ino uint64

	mu    sync.Mutex
	attr  client.Attr // as last seen; for a directory's mode and group
	known bool
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
	_ fs.NodeFsyncer    = (*node)(nil)
)

// renameNoReplace is renameat2's RENAME_NOREPLACE.
const renameNoReplace = 0x1

// maxName is NAME_MAX; the router refuses longer names as invalid, but a
// program expects ENAMETOOLONG.
const maxName = 255

// child returns the kernel's inode for a, creating it if the kernel has
// none yet (a hard link found by another name gets the same one).
func (n *node) child(ctx context.Context, a client.Attr, out *fuse.EntryOut) *fs.Inode {
	n.m.fill(&out.Attr, a)
	// When the kernel knows the inode already (a hard link, a name looked
	// up again), go-fuse keeps its node and drops this one; that node's
	// attributes are brought up to date by its next Getattr.
	return n.NewInode(ctx, &node{m: n.m, ino: a.Ino, attr: a, known: true}, fs.StableAttr{Mode: typeBits(a.Type), Ino: a.Ino})
}

// seen records the attributes a request returned.
func (n *node) seen(a client.Attr) {
	n.mu.Lock()
	n.attr, n.known = a, true
	n.mu.Unlock()
}

// attrs returns the attributes last seen, asking if none were.
func (n *node) attrs(ctx context.Context) (client.Attr, error) {
	n.mu.Lock()
	a, known := n.attr, n.known
	n.mu.Unlock()
	if known {
		return a, nil
	}
	a, err := n.m.c.StatIno(ctx, n.ino)
	if err == nil {
		n.seen(a)
	}
	return a, err
}

// openAttrs returns the attributes of n, open here as f: the last answer
// about it when recent, else those the kernel was last told.
func (n *node) openAttrs(ctx context.Context, f *openFile) (client.Attr, error) {
	if a, ok := f.recentAttr(); ok {
		return a, nil
	}
	return n.attrs(ctx)
}

// caller is the user and group a new inode belongs to: the calling
// process's, except that a directory with the setgid bit hands its group
// (and, to directories, the bit) down, as on Linux file systems.
func (n *node) caller(ctx context.Context, mode uint32, isDir bool) (uid, gid, outMode uint32, err error) {
	c, ok := fuse.FromContext(ctx)
	if ok {
		uid, gid = c.Uid, c.Gid
	}
	parent, err := n.attrs(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	if parent.Mode&syscall.S_ISGID != 0 {
		gid = parent.Gid
		if isDir {
			mode |= syscall.S_ISGID
		}
	}
	return uid, gid, mode & 0o7777, nil
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	a, err := n.m.lookup(ctx, n.ino, name)
	if err != nil {
		return nil, n.m.errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = n.m.as(ctx)
	if f := n.m.opened(n.ino); f != nil {
		if a, ok := f.recentAttr(); ok {
			n.m.fill(&out.Attr, a)
			return 0
		}
	}
	if a, ok := n.m.dirAttr(n.ino); ok {
		n.m.fill(&out.Attr, a)
		return 0
	}
	a, err := n.m.c.StatIno(ctx, n.ino)
	if err != nil {
		return n.m.errno(err)
	}
	n.seen(a)
	n.m.fill(&out.Attr, a)
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = n.m.as(ctx)
	var sa client.SetAttr
	if m, ok := in.GetMode(); ok {
		m &= 0o7777
		sa.Mode = &m
	}
	if uid, ok := in.GetUID(); ok {
		sa.Uid = &uid
	}
	if gid, ok := in.GetGID(); ok {
		sa.Gid = &gid
	}
	sa.ATime = setTime(in, fuse.FATTR_ATIME, fuse.FATTR_ATIME_NOW, in.Atime, in.Atimensec)
	sa.MTime = setTime(in, fuse.FATTR_MTIME, fuse.FATTR_MTIME_NOW, in.Mtime, in.Mtimensec)
	size, hasSize := in.GetSize()
	if hasSize {
		s := int64(size)
		sa.Size = &s
	}
	if sa == (client.SetAttr{}) {
		return n.Getattr(ctx, fh, out)
	}
	f := n.m.opened(n.ino)
	// A change made with the file not open here may race an open of it,
	// whose answer may predate the change: that answer goes.
	defer n.m.attrChanged(n.ino, f == nil)
	var a client.Attr
	var err error
	if f != nil && sa.Size != nil && sa == (client.SetAttr{Size: sa.Size}) {
		// A truncate of a file open here goes with its next batch of
		// writes, as the writes before and after it do.
		var who *client.Identity
		if id, ok := n.m.caller(ctx); ok {
			who = &id
		}
		if f.deferTruncate(*sa.Size, who) {
			if a, err = n.openAttrs(ctx, f); err != nil {
				return n.m.errno(err)
			}
			n.m.fill(&out.Attr, a)
			return 0
		}
	}
	if f != nil {
		var who *client.Identity
		if id, ok := n.m.caller(ctx); ok {
			who = &id
		}
		if f.deferAttrs(sa, who) {
			// Sent after the writes it waits for (see openFile); shown
			// from the attributes last seen until then.
			if a, err = n.openAttrs(ctx, f); err != nil {
				return n.m.errno(err)
			}
			n.m.fill(&out.Attr, a)
			return 0
		}
	}
	if f != nil {
		// Unsent writes go first: they are older than this change, and a
		// write sent after it would undo an explicit mtime or a truncate.
		a, err = f.setattr(ctx, sa)
	} else {
		a, err = n.m.c.SetAttrIno(ctx, n.ino, sa)
	}
	if err != nil {
		return n.m.errno(err)
	}
	n.seen(a)
	n.m.fill(&out.Attr, a)
	// The cluster's answer is kept as a stat's is (the library does not
	// time this one): without it the kernel asks again at once, rsync's
	// utimes and chmod of each file a round trip more each. A change
	// kept for the next flush (above) is not: its times are not the
	// cluster's yet, and a stat after the close must ask.
	out.SetTimeout(n.m.cfg.AttrTimeout)
	return 0
}

// setTime reads one time of a setattr; the zero time means "now" by the
// cluster's clock.
func setTime(in *fuse.SetAttrIn, bit, nowBit uint32, sec uint64, nsec uint32) *time.Time {
	if in.Valid&bit == 0 {
		return nil
	}
	var t time.Time
	if in.Valid&nowBit == 0 {
		t = time.Unix(int64(sec), int64(nsec))
	}
	return &t
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ctx = n.m.as(ctx)
	entries, err := n.m.c.ListIno(ctx, n.ino)
	if err != nil {
		return nil, n.m.errno(err)
	}
	n.m.listed(n.ino, entries)
	// "." and ".." come first, as from a local file system (ls -a,
	// readdir(3) callers that count them). The root is its own parent.
	up := n.ino
	if _, p := n.EmbeddedInode().Parent(); p != nil {
		up = p.StableAttr().Ino
	}
	out := make([]fuse.DirEntry, 0, len(entries)+2)
	out = append(out, fuse.DirEntry{Name: ".", Ino: n.ino, Mode: syscall.S_IFDIR}, fuse.DirEntry{Name: "..", Ino: up, Mode: syscall.S_IFDIR})
	for _, e := range entries {
		out = append(out, fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: typeBits(e.Type)})
	}
	return fs.NewListDirStream(out), 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	uid, gid, mode, err := n.caller(ctx, mode, true)
	if err != nil {
		return nil, n.m.errno(err)
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	a, err := n.m.c.MkdirIn(ctx, n.ino, name, mode, uid, gid)
	if err != nil {
		return nil, n.m.errno(err)
	}
	return n.child(ctx, a, out), 0
}

// Mknod makes a FIFO, socket or device node (mkfifo, mknod, bind of a
// Unix socket). The cluster keeps the inode; what it does is the
// kernel's: a FIFO's or socket's I/O never reaches the mount.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	typ := nodeType(mode)
	if typ == "" && mode&syscall.S_IFMT != 0 && mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, syscall.EINVAL
	}
	if typ == client.TypeFIFO || typ == client.TypeSocket {
		dev = 0
	}
	uid, gid, perm, err := n.caller(ctx, mode, false)
	if err != nil {
		return nil, n.m.errno(err)
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	var a client.Attr
	if typ == "" {
		// A regular file (mknod(2) with S_IFREG, or the kernel's create
		// without an open): made, not opened.
		a, _, err = n.m.c.CreateIn(ctx, n.ino, name, perm, uid, gid, true)
	} else {
		a, err = n.m.c.MknodIn(ctx, n.ino, name, typ, perm, uint64(dev), uid, gid)
	}
	if err != nil {
		return nil, n.m.errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, nil, 0, syscall.ENAMETOOLONG
	}
	uid, gid, mode, err := n.caller(ctx, mode, false)
	if err != nil {
		return nil, nil, 0, n.m.errno(err)
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	q := n.m.asking()
	a, created, err := n.m.c.CreateIn(ctx, n.ino, name, mode, uid, gid, flags&syscall.O_EXCL != 0)
	if err != nil {
		return nil, nil, 0, n.m.errno(err)
	}
	f := n.m.open(a, q)
	f.act(ctx)
	if !created && flags&syscall.O_TRUNC != 0 {
		zero := int64(0)
		if a, err = f.setattr(ctx, client.SetAttr{Size: &zero}); err != nil {
			f.release()
			return nil, nil, 0, n.m.errno(err)
		}
	}
	return n.child(ctx, a, out), &handle{f: f}, 0, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ctx = n.m.as(ctx)
	// Close-to-open: every open asks for the current attributes, so a
	// file closed on another host is read whole here.
	q := n.m.asking()
	a, err := n.m.c.StatIno(ctx, n.ino)
	if err != nil {
		return nil, 0, n.m.errno(err)
	}
	n.mu.Lock()
	stale := !n.known || n.attr.Gen != a.Gen || n.attr.Size != a.Size
	n.mu.Unlock()
	if stale {
		// The kernel may hold older attributes (its size, above all) for
		// up to the attribute timeout: drop them, so an fstat right after
		// this open asks again. Attributes only (offset -1): that takes
		// no page lock, so it is safe inside this request.
		n.NotifyContent(-1, 0)
		n.seen(a)
	}
	f := n.m.open(a, q)
	f.act(ctx)
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		zero := int64(0)
		if _, err := f.setattr(ctx, client.SetAttr{Size: &zero}); err != nil {
			f.release()
			return nil, 0, n.m.errno(err)
		}
		n.m.contentChanged()
	}
	return &handle{f: f}, 0, 0
}

// openChild returns the open state of the child called name, if the
// kernel knows that child and this mount has it open.
func (n *node) openChild(name string) *openFile {
	c := n.GetChild(name)
	if c == nil {
		return nil
	}
	return n.m.opened(c.StableAttr().Ino)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx = n.m.as(ctx)
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	n.m.namesEpoch.Add(1) // and again once done: an answer noted meanwhile may predate it
	defer n.m.namesEpoch.Add(1)
	f := n.openChild(name)
	// A file open here keeps its inode (an orphan) until its last close,
	// so the programs using it go on reading and writing it.
	if err := n.m.c.UnlinkIn(ctx, n.ino, name, f != nil); err != nil {
		return n.m.errno(err)
	}
	if f != nil {
		f.orphaned()
	}
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = n.m.as(ctx)
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	return n.m.errno(n.m.c.RmdirIn(ctx, n.ino, name))
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = n.m.as(ctx)
	if len(newName) > maxName {
		return syscall.ENAMETOOLONG
	}
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	n.m.namesEpoch.Add(1) // and again once done: an answer noted meanwhile may predate it
	defer n.m.namesEpoch.Add(1)
	victim := np.openChild(newName)
	if err := n.m.c.RenameIn(ctx, n.ino, name, np.ino, newName, flags&renameNoReplace != 0, victim != nil); err != nil {
		return n.m.errno(err)
	}
	if victim != nil {
		victim.orphaned()
	}
	return 0
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	n.m.namesEpoch.Add(1) // and again once done: an answer noted meanwhile may predate it
	defer n.m.namesEpoch.Add(1)
	a, err := n.m.c.LinkIn(ctx, t.ino, n.ino, name)
	if err != nil {
		return nil, n.m.errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = n.m.as(ctx)
	if len(name) > maxName {
		return nil, syscall.ENAMETOOLONG
	}
	uid, gid, _, err := n.caller(ctx, 0o777, false)
	if err != nil {
		return nil, n.m.errno(err)
	}
	ctx, ch := n.m.changing(ctx)
	defer ch.end()
	a, err := n.m.c.SymlinkIn(ctx, n.ino, name, target, uid, gid)
	if err != nil {
		return nil, n.m.errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = n.m.as(ctx)
	a, err := n.m.c.StatIno(ctx, n.ino)
	if err != nil {
		return nil, n.m.errno(err)
	}
	if a.Type != client.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(a.Target), 0
}

// statfsBlock is the block size statfs reports sizes in.
const statfsBlock = 4096

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	ctx = n.m.as(ctx)
	st, err := n.m.c.Statfs(ctx)
	if err != nil {
		return n.m.errno(err)
	}
	capacity, free := st.Capacity, st.Free
	if capacity < 0 { // no member publishes a limit
		capacity, free = 1<<50, 1<<50-st.Used
	}
	out.Bsize, out.Frsize = statfsBlock, statfsBlock
	out.Blocks = uint64(capacity) / statfsBlock
	out.Bfree = uint64(max(free, 0)) / statfsBlock
	out.Bavail = out.Bfree
	// Inodes cost a metadata entry each, not space on a fixed table.
	out.Files, out.Ffree = 1<<32, 1<<32
	out.NameLen = maxName
	return 0
}

// Fsync on a directory: namespace changes are durable on a majority when
// they return, so there is nothing left to do.
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	ctx = n.m.as(ctx)
	if h, ok := fh.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	return 0
}
